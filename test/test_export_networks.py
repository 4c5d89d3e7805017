"""Each network's realtime configuration (and the smaller paper ones) exports, matches torch, passes the
TensorRT check; the ``nitedr export`` verb end to end."""

from __future__ import annotations

import hashlib
import json

import onnx
import pytest
import torch

from nitedr_ros.cli import main
from nitedr_ros.export.onnx_export import export_network
from nitedr_ros.export.onnx_metadata import read_metadata
from nitedr_ros.export.trt_compat import check_onnx
from nitedr_ros.modelspec import NETWORKS, get_spec
from nitedr_ros.networks import build_network

torch.set_num_threads(1)


def _export_and_check(tmp_path, network: str, config: str):
    torch.manual_seed(0)
    model = build_network(network, config)
    result = export_network(model, network, config, tmp_path / f'{network}_{config}.onnx', trace_hw=(64, 64))
    assert result.parity_max_abs <= 1e-4
    assert result.fp16_max_abs <= 2e-2
    spec = get_spec(network)
    graph = onnx.load(str(result.path)).graph
    assert tuple(v.name for v in graph.input) == spec.input_names
    assert tuple(v.name for v in graph.output) == spec.output_names
    for value in (*graph.input, *graph.output):
        assert [d.dim_param for d in value.type.tensor_type.shape.dim][2:] == ['height', 'width']
    for path in (result.path, result.fp16_path):
        report = check_onnx(path)
        assert report.ok, report.format()
    meta = read_metadata(result.fp16_path)
    assert (meta['nitedr.network'], meta['nitedr.config'], meta['nitedr.precision']) == (network, config,
                                                                                          'fp16')
    return result


# cleannet and rainmer (transformers, thousands of nodes) take several seconds each
@pytest.mark.parametrize('network', [pytest.param(n, marks=pytest.mark.slow) if n in ('cleannet', 'rainmer')
                                     else n for n in NETWORKS])
def test_realtime_config_exports_with_parity_and_passes_tensorrt_check(tmp_path, network):
    _export_and_check(tmp_path, network, 'realtime')


def test_fusionnet_paper_config_exports(tmp_path):
    _export_and_check(tmp_path, 'fusionnet', 'paper')


# ~15 s each on 2 cores; the cleannet and rainmer paper exports (~85 s each) are checked by
# benchmarks/export_networks.py instead
@pytest.mark.slow
@pytest.mark.parametrize('network', ['mspfn', 'stereoirr'])
def test_paper_config_exports(tmp_path, network):
    _export_and_check(tmp_path, network, 'paper')


def test_export_verb_random_then_checkpoint(tmp_path, monkeypatch, capsys):
    from nitedr_ros.networks.checkpoint import save_checkpoint

    monkeypatch.chdir(tmp_path)
    args = ['export', '--network', 'fusionnet', '--config', 'realtime', '--height', '32', '--width', '40']
    assert main(args) == 0
    out = capsys.readouterr().out
    assert 'random' in out and 'OK' in out
    assert (tmp_path / 'fusionnet_realtime.onnx').is_file()
    assert (tmp_path / 'fusionnet_realtime.fp16.onnx').is_file()
    assert read_metadata(tmp_path / 'fusionnet_realtime.onnx')['nitedr.weights'] == 'random'
    before = (tmp_path / 'fusionnet_realtime.onnx').read_bytes()
    assert main(args) == 2  # exists, no --force
    assert 'exists' in capsys.readouterr().err
    assert (tmp_path / 'fusionnet_realtime.onnx').read_bytes() == before

    torch.manual_seed(3)
    model = build_network('fusionnet', 'realtime')
    ckpt = save_checkpoint(tmp_path / 'trained.pt', model, 'fusionnet', 'realtime', meta={'epochs': 7})
    assert main(['export', '--checkpoint', str(ckpt), '--output', 'out/fused.onnx', '--no-fp16',
                 '--height', '32', '--width', '32', '--json']) == 0
    result = json.loads(capsys.readouterr().out)
    assert result['weights'] == 'checkpoint' and result['fp16_path'] is None
    assert result['parity_max_abs'] <= 1e-4 and result['tensorrt_check'][0]['ok']
    assert 'ORT_ENABLE_EXTENDED' in result['parity_onnxruntime']
    meta = read_metadata(tmp_path / 'out' / 'fused.onnx')
    assert meta['nitedr.weights'] == 'checkpoint' and json.loads(meta['nitedr.training']) == {'epochs': 7}
    assert meta['nitedr.checkpoint_sha256'] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    recorded = float(meta['nitedr.parity_max_abs'])
    assert recorded == pytest.approx(result['parity_max_abs'], rel=1e-2, abs=1e-12)
    assert 'ORT_ENABLE_EXTENDED' in meta['nitedr.parity_onnxruntime']
    assert not (tmp_path / 'out' / 'fused.fp16.onnx').exists()
    # With --checkpoint and no --output, an existing default output is refused before the model is built.
    (tmp_path / 'fusionnet_realtime.onnx').write_bytes(b'keep me')
    monkeypatch.setattr('nitedr_ros.networks.checkpoint.model_from_payload',
                        lambda *a: pytest.fail('the model was built before the output check'))
    assert main(['export', '--checkpoint', str(ckpt)]) == 2
    assert 'exists' in capsys.readouterr().err
    assert (tmp_path / 'fusionnet_realtime.onnx').read_bytes() == b'keep me'
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(['export', '--checkpoint', str(ckpt), '--network', 'mspfn', '--output', 'x.onnx']) == 2
    assert 'does not match' in capsys.readouterr().err
    assert main(['export', '--network', 'fusionnet']) == 2
    assert '--config' in capsys.readouterr().err
