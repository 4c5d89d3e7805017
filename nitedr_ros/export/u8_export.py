"""The uint8-I/O variant of an exported model: ``<stem>.u8.onnx`` (+ ``<stem>.u8.fp16.onnx``).

The graph is :class:`~nitedr_ros.networks.io_wrapper.UInt8IO` around the network (the conversions the
pipeline does on the host, inside the engine), exported with dynamic H and W, opset 19. Checks before the
files appear (both written under temporary names, renamed together):

- parity against the host path: the float ONNX file through ONNX Runtime with the pipeline's own host
  conversions (:mod:`nitedr_ros.pipeline.frames`, ``geometry``, ``thermal``) vs the uint8 file, at a size
  that needs padding and one that does not; outputs may differ by at most ``U8_TOLERANCE`` levels (the
  rounding of float arithmetic in a different order);
- the fp16 twin (:func:`~nitedr_ros.export.fp16.convert_to_fp16`: integer I/O stays, the image path runs in
  float16) against the fp32 uint8 file, at most ``U8_FP16_TOLERANCE`` levels;
- every op in the TensorRT ONNX parser's set (:func:`~nitedr_ros.export.trt_compat.check_onnx`).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from ..errors import ConfigError
from ..fileio import atomic_output
from ..modelspec import CHANNEL_ORDER, THERMAL_INPUT, THERMAL_RANGE, get_spec, u8_input_names, u8_output_names
from ..paths import ensure_writable_output
from . import parity as parity_check
from .fp16 import convert_to_fp16
from .onnx_export import ExportError, _quiet_exporter, _replace_props

U8_TOLERANCE = 1        # levels, fp32 uint8 graph vs the host path
U8_FP16_TOLERANCE = 8   # levels, fp16 twin vs the fp32 uint8 graph (worst pixel)
PARITY_HW = ((37, 53), (64, 96))


@dataclass(frozen=True)
class U8ExportResult:
    path: Path
    fp16_path: Path | None
    parity_max_levels: int
    fp16_max_levels: int | None
    ops_ok: bool


def u8_path_for(path: str | os.PathLike[str], fp16: bool = False) -> Path:
    """``<stem>.u8.onnx`` (``.u8.fp16.onnx``) beside a float ``<stem>.onnx``."""
    p = Path(path)
    stem = p.name.split('.', 1)[0]
    return p.with_name(f'{stem}.u8{".fp16" if fp16 else ""}.onnx')


def _inputs(network: str, height: int, width: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for name in u8_input_names(get_spec(network)):
        if name == CHANNEL_ORDER:
            feed[name] = np.array([2, 1, 0], np.int64)  # bgr8 camera: the order is exercised
        elif name == THERMAL_RANGE:
            feed[name] = np.array([1000.0, 6000.0], np.float32)
        elif name == THERMAL_INPUT:
            counts = rng.integers(500, 7000, (1, height, width)).astype('<u2')
            feed[name] = counts.view(np.uint8).reshape(1, height, width, 2)
        else:
            feed[name] = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    return feed


def host_path(float_onnx: Path, network: str, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """What the pipeline computes on the host around the float model, for the same uint8 inputs."""
    from ..engines.onnxruntime_engine import OnnxRuntimeEngine
    from ..engines.options import EngineOptions
    from ..pipeline.frames import ImageFrame, from_rgb_chw, to_rgb_chw
    from ..pipeline.geometry import fit, plan_fit, unfit

    spec = get_spec(network)
    engine = OnnxRuntimeEngine(float_onnx, 'onnxruntime-cpu', EngineOptions('onnxruntime-cpu', threads=1,
                                                                            ort_optimization='extended'))
    images = [n for n in u8_input_names(spec) if n.endswith('_u8')]
    height, width = feed[images[0]].shape[1:3]
    plan = plan_fit(height, width, spec.multiple_of)
    like = ImageFrame(feed[images[0]][0], 'bgr8')
    float_feed = {}
    for tensor in spec.inputs:
        if tensor.channels == 1:
            pairs = feed[THERMAL_INPUT][0].astype(np.float32)
            low, high = feed[THERMAL_RANGE]
            counts = pairs[..., 0] + 256.0 * pairs[..., 1]
            ir = np.clip((counts - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)
            float_feed[tensor.name] = fit(ir[None], plan)
        else:
            frame = ImageFrame(feed[tensor.name + '_u8'][0], 'bgr8')
            float_feed[tensor.name] = fit(to_rgb_chw('visible', frame), plan)
    outputs = engine.infer(float_feed)
    engine.close()
    return [from_rgb_chw(unfit(outputs[t.name], plan).copy(), like).data[None] for t in spec.outputs]


def _max_levels(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    return max(int(np.abs(x.astype(np.int32) - y.astype(np.int32)).max()) for x, y in zip(a, b))


def export_u8(model: torch.nn.Module, network: str, float_onnx: str | os.PathLike[str], *,
              fp16: bool = True, force: bool = False, opset: int = 19, threads: int = 1) -> U8ExportResult:
    """Export the uint8-I/O variant of ``model`` beside its float export ``float_onnx`` (module doc)."""
    from ..networks.io_wrapper import UInt8IO
    from .trt_compat import check_onnx

    spec = get_spec(network)
    float_onnx = Path(float_onnx)
    if not float_onnx.is_file():
        raise ConfigError(f'export the float model first: {float_onnx} not found')
    out = ensure_writable_output(u8_path_for(float_onnx), force)
    out16 = ensure_writable_output(u8_path_for(float_onnx, fp16=True), force) if fp16 else None
    wrapper = UInt8IO(model.float().cpu().eval(), spec).eval()
    names_in, names_out = u8_input_names(spec), u8_output_names(spec)
    trace = _inputs(network, 64, 64, seed=0)
    dynamic = {n: {1: 'height', 2: 'width'} for n in names_in if n not in (CHANNEL_ORDER, THERMAL_RANGE)}
    dynamic.update({n: {1: 'height', 2: 'width'} for n in names_out})
    buffer = io.BytesIO()
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(wrapper, tuple(torch.from_numpy(trace[n]) for n in names_in), buffer,
                              dynamo=False, opset_version=opset, input_names=list(names_in),
                              output_names=list(names_out), dynamic_axes=dynamic, do_constant_folding=True)
    except Exception as exc:
        raise ExportError(f'{network}: the uint8 variant did not export: {exc}'[:500]) from exc
    proto = onnx.load_from_string(buffer.getvalue())
    props = {p.key: p.value for p in onnx.load(str(float_onnx), load_external_data=False).metadata_props}
    props.update({'nitedr.io': 'uint8', 'nitedr.float_model': float_onnx.name})
    _replace_props(proto, props)
    with contextlib.ExitStack() as files:
        tmp = files.enter_context(atomic_output(out))
        onnx.save(proto, str(tmp))
        session = parity_check.ort_session(tmp, threads)
        worst = 0
        for seed, (h, w) in enumerate(PARITY_HW):
            feed = _inputs(network, h, w, seed)
            got = [session.run([n], feed)[0] for n in names_out]
            worst = max(worst, _max_levels(got, host_path(float_onnx, network, feed)))
        if worst > U8_TOLERANCE:
            raise parity_check.ParityError(f'{network}: the uint8 variant differs from the host path by '
                                           f'{worst} levels (allowed {U8_TOLERANCE})')
        _replace_props(proto, {'nitedr.u8_parity_max_levels': str(worst)})
        onnx.save(proto, str(tmp))
        report = check_onnx(tmp)
        if not report.ok:
            raise ExportError(f'{network}: the uint8 variant has ops TensorRT cannot parse: {report.issues}')
        worst16 = None
        if out16 is not None:
            tmp16 = files.enter_context(atomic_output(out16))
            proto16 = convert_to_fp16(proto)
            _replace_props(proto16, {'nitedr.precision': 'fp16'})
            onnx.save(proto16, str(tmp16))
            session16 = parity_check.ort_session(tmp16, threads)
            worst16 = 0
            for seed, (h, w) in enumerate(PARITY_HW):
                feed = _inputs(network, h, w, seed)
                worst16 = max(worst16, _max_levels([session16.run([n], feed)[0] for n in names_out],
                                                   [session.run([n], feed)[0] for n in names_out]))
            if worst16 > U8_FP16_TOLERANCE:
                raise parity_check.ParityError(f'{network}: the uint8 fp16 twin differs from fp32 by '
                                               f'{worst16} levels (allowed {U8_FP16_TOLERANCE})')
            _replace_props(proto16, {'nitedr.u8_fp16_max_levels': str(worst16)})
            onnx.save(proto16, str(tmp16))
            if not check_onnx(tmp16).ok:
                raise ExportError(f'{network}: the uint8 fp16 twin has ops TensorRT cannot parse')
    return U8ExportResult(out, out16, worst, worst16, True)
