"""export_network on small torch modules: names, dynamic H/W, metadata, parity, fp16, refusals, fallback."""

from __future__ import annotations

import os
import stat

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from nitedr_ros.errors import ConfigError, OutputExistsError
from nitedr_ros.export.onnx_export import ExportError, export_network, fp16_path_for
from nitedr_ros.export.onnx_metadata import read_metadata
from nitedr_ros.export.parity import ParityError, ort_session, random_inputs, run_session
from nitedr_ros.export.trt_compat import check_onnx
from nitedr_ros.modelspec import get_spec

torch.set_num_threads(1)


class TinyDerain(nn.Module):
    """One image in, one image out; channel attention with a top-k mask, like the real networks."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.out = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.inp(image))
        b, c, h, w = x.shape
        flat = x.flatten(2)
        attn = torch.softmax(flat @ flat.transpose(1, 2) / (h * w), dim=-1)
        _, index = torch.topk(attn, k=c // 2, dim=-1)
        attn = attn * torch.zeros_like(attn).scatter(-1, index, 1.0)
        x = x + (attn @ flat).reshape(b, c, h, w)
        x = x + self.up(torch.relu(self.down(x)))
        return torch.clamp(image + 0.1 * torch.tanh(self.out(x)), 0, 1)


class TinyStereo(nn.Module):
    """Two images in, two out (the stereoirr contract)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.shared = nn.Conv2d(3, 4, 3, padding=1)
        self.mix = nn.Conv2d(8, 6, 1)

    def forward(self, left: torch.Tensor, right: torch.Tensor):
        fused = self.mix(torch.cat([self.shared(left), self.shared(right)], 1))
        return left + 0.1 * fused[:, :3], right + 0.1 * fused[:, 3:]


class LegacyRejects(TinyDerain):
    """Uses torch.diff, which the TorchScript exporter cannot translate but the dynamo exporter can."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        edges = torch.cat([image[..., :1], torch.diff(image, dim=-1)], dim=-1)
        return super().forward(image) * 0.9 + 0.1 * edges.abs().clamp(0, 1)


class Noisy(TinyDerain):
    """Random noise inside forward: no exported graph can match torch, so parity must fail."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return super().forward(image) + torch.rand_like(image)


class NeedsSixteen(TinyDerain):
    """A network that rejects inputs smaller than 16 pixels."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] < 16 or image.shape[-2] < 16:
            raise ValueError(f'input {tuple(image.shape[-2:])} is smaller than 16x16')
        return super().forward(image)


def _dims(value: onnx.ValueInfoProto) -> list[object]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.fixture(scope='module')
def tiny_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tiny')
    result = export_network(TinyDerain(), 'cleannet', 'realtime', folder / 'tiny.onnx', trace_hw=(32, 40),
                            metadata={'nitedr.weights': 'random', 'training': {'epochs': 2}})
    return result


def test_export_writes_named_dynamic_graph_with_metadata(tiny_export):
    result = tiny_export
    assert result.path.is_file() and result.exporter == 'legacy' and result.opset == 19
    model = onnx.load(str(result.path))
    assert [v.name for v in model.graph.input] == ['image']
    assert [v.name for v in model.graph.output] == ['derained']
    assert _dims(model.graph.input[0]) == [1, 3, 'height', 'width']
    assert _dims(model.graph.output[0]) == [1, 3, 'height', 'width']
    assert next(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')) >= 19
    meta = read_metadata(result.path)
    assert meta['nitedr.network'] == 'cleannet' and meta['nitedr.config'] == 'realtime'
    assert meta['nitedr.multiple_of'] == '8' and meta['nitedr.precision'] == 'fp32'
    assert meta['nitedr.exporter'] == 'legacy'
    assert meta['nitedr.weights'] == 'random' and meta['training'] == '{"epochs": 2}'
    assert not [p for p in result.path.parent.iterdir() if p.name.startswith('.')]  # no temporary files


def test_export_parity_at_two_sizes(tiny_export):
    result = tiny_export
    assert result.parity_sizes[0] == (32, 40) and len(set(result.parity_sizes)) == 2
    assert result.parity_max_abs is not None and result.parity_max_abs <= 1e-4
    assert 'ORT_ENABLE_EXTENDED' in result.parity_onnxruntime  # how it was judged, next to the number
    meta = read_metadata(result.path)
    assert meta['nitedr.parity_onnxruntime'] == result.parity_onnxruntime
    assert float(meta['nitedr.parity_max_abs']) == pytest.approx(result.parity_max_abs, rel=1e-2, abs=1e-12)
    assert float(read_metadata(result.fp16_path)['nitedr.fp16_max_abs']) == pytest.approx(
        result.fp16_max_abs, rel=1e-2, abs=1e-12)
    # independent check at a third size the exporter never saw
    module = TinyDerain().eval()
    feed = random_inputs(get_spec('cleannet'), 48, 24, seed=7)
    got = run_session(ort_session(result.path, threads=1), feed)['derained']
    with torch.no_grad():
        expected = module(torch.from_numpy(feed['image'])).numpy()
    assert got.shape == (1, 3, 48, 24)
    assert np.abs(got - expected).max() <= 1e-4


def test_fp16_variant_is_float16_inside_and_close(tiny_export):
    result = tiny_export
    assert result.fp16_path == fp16_path_for(result.path) and result.fp16_path.name == 'tiny.fp16.onnx'
    model = onnx.load(str(result.fp16_path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == 'Conv'}
    weights = [i for i in model.graph.initializer if i.name in conv_weights]
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    assert read_metadata(result.fp16_path)['nitedr.precision'] == 'fp16'
    assert result.fp16_max_abs is not None and 0 < result.fp16_max_abs <= 2e-2
    assert check_onnx(result.fp16_path).ok


def test_exported_tiny_graph_passes_tensorrt_check(tiny_export):
    report = check_onnx(tiny_export.path)
    assert report.ok, report.format()
    assert report.op_counts.get('TopK') == 1


def test_refuses_to_overwrite_without_force(tiny_export, tmp_path):
    target = tmp_path / 'keep.onnx'
    target.write_bytes(b'precious')
    with pytest.raises(OutputExistsError):
        export_network(TinyDerain(), 'cleannet', 'realtime', target, trace_hw=(16, 16))
    assert target.read_bytes() == b'precious'
    # an existing fp16 sibling is protected too
    other = tmp_path / 'other.onnx'
    fp16_path_for(other).write_bytes(b'fp16 precious')
    with pytest.raises(OutputExistsError):
        export_network(TinyDerain(), 'cleannet', 'realtime', other, trace_hw=(16, 16))
    assert not other.exists() and fp16_path_for(other).read_bytes() == b'fp16 precious'
    result = export_network(TinyDerain(), 'cleannet', 'realtime', target, trace_hw=(16, 16), force=True,
                            fp16=False)
    assert result.fp16_path is None and onnx.load(str(target)).graph.output[0].name == 'derained'


def test_two_input_two_output_contract(tmp_path):
    result = export_network(TinyStereo(), 'stereoirr', 'realtime', tmp_path / 's.onnx', trace_hw=(16, 24))
    model = onnx.load(str(result.path))
    assert [v.name for v in model.graph.input] == ['left', 'right']
    assert [v.name for v in model.graph.output] == ['left_derained', 'right_derained']
    assert all(_dims(v)[2:] == ['height', 'width'] for v in (*model.graph.input, *model.graph.output))
    assert result.parity_max_abs <= 1e-4 and result.fp16_max_abs <= 2e-2


@pytest.mark.parametrize('network, config, message', [
    ('nosuchnet', 'realtime', 'unknown network'),
    ('cleannet', 'huge', 'unknown configuration'),
])
def test_unknown_network_or_config(tmp_path, network, config, message):
    with pytest.raises(ConfigError, match=message):
        export_network(TinyDerain(), network, config, tmp_path / 'x.onnx')
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('trace_hw, message', [
    ((30, 32), 'multiples of 8'),
    ((0, 16), 'positive'),
    ((8, 8), 'cannot take a 8x8 input'),
])
def test_bad_shape_is_a_clear_error(tmp_path, trace_hw, message):
    with pytest.raises(ConfigError, match=message):
        export_network(NeedsSixteen(), 'cleannet', 'realtime', tmp_path / 'x.onnx', trace_hw=trace_hw)
    assert not list(tmp_path.iterdir())


class StereoOneOutput(TinyStereo):
    def forward(self, left: torch.Tensor, right: torch.Tensor):
        return super().forward(left, right)[0]


def test_wrong_output_count_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match='returned 1 outputs'):
        export_network(StereoOneOutput(), 'stereoirr', 'realtime', tmp_path / 'x.onnx', trace_hw=(16, 16))


def test_opset_below_19_is_refused(tmp_path):
    with pytest.raises(ConfigError, match='opset 17'):
        export_network(TinyDerain(), 'cleannet', 'realtime', tmp_path / 'x.onnx', opset=17)


def test_non_writable_output_folder(tmp_path, monkeypatch):
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root writes into read-only folders: let the permission check see it as denied
        real_access = os.access
        monkeypatch.setattr(os, 'access',
                            lambda p, mode: str(p) != str(locked) and real_access(p, mode))
    try:
        with pytest.raises(ConfigError, match='not writable'):
            export_network(TinyDerain(), 'cleannet', 'realtime', locked / 'x.onnx', trace_hw=(16, 16))
    finally:
        locked.chmod(stat.S_IRWXU)
    assert not list(locked.iterdir())


def test_output_under_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / 'plain-file'
    blocker.write_text('not a folder')
    with pytest.raises(ConfigError, match='cannot create output folder'):
        export_network(TinyDerain(), 'cleannet', 'realtime', blocker / 'x.onnx', trace_hw=(16, 16))


def test_restores_training_mode(tmp_path):
    module = TinyDerain().train()
    export_network(module, 'cleannet', 'realtime', tmp_path / 'x.onnx', trace_hw=(16, 16), fp16=False)
    assert module.training


@pytest.mark.slow
def test_dynamo_fallback_where_legacy_fails(tmp_path):
    result = export_network(LegacyRejects(), 'cleannet', 'realtime', tmp_path / 'd.onnx', trace_hw=(16, 24))
    assert result.exporter == 'dynamo'
    assert 'legacy' in result.fallback_reason and 'diff' in result.fallback_reason
    meta = read_metadata(result.path)
    assert meta['nitedr.exporter'] == 'dynamo' and 'diff' in meta['nitedr.legacy_failure']
    model = onnx.load(str(result.path))
    assert _dims(model.graph.input[0]) == [1, 3, 'height', 'width']
    assert _dims(model.graph.output[0]) == [1, 3, 'height', 'width']
    assert result.parity_max_abs <= 1e-4 and result.fp16_max_abs <= 2e-2
    assert check_onnx(result.path).ok and check_onnx(result.fp16_path).ok


def test_legacy_only_reports_its_failure(tmp_path):
    with pytest.raises(ExportError, match='diff'):
        export_network(LegacyRejects(), 'cleannet', 'realtime', tmp_path / 'd.onnx', trace_hw=(16, 16),
                       exporter='legacy')
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_failed_parity_is_an_error_and_leaves_no_file(tmp_path):
    with pytest.raises(ParityError, match='differs from torch'):
        export_network(Noisy(), 'cleannet', 'realtime', tmp_path / 'n.onnx', trace_hw=(16, 16))
    assert not list(tmp_path.iterdir())


def test_fixed_height_width_from_one_exporter_falls_back_to_the_next(tmp_path, monkeypatch):
    from nitedr_ros.export import onnx_export

    real = onnx_export._run_exporter

    def fake(name, module, spec, feed, opset):
        proto = real('legacy', module, spec, feed, opset)  # fast stand-in for both exporters
        if name == 'legacy':  # as if the exporter had baked the trace size in
            dim = proto.graph.input[0].type.tensor_type.shape.dim[2]
            dim.dim_value = 16
        return proto

    monkeypatch.setattr(onnx_export, '_run_exporter', fake)
    result = export_network(TinyDerain(), 'cleannet', 'realtime', tmp_path / 'f.onnx', trace_hw=(16, 16),
                            fp16=False)
    assert result.exporter == 'dynamo' and 'fixed' in result.fallback_reason
    assert read_metadata(result.path)['nitedr.exporter'] == 'dynamo'
