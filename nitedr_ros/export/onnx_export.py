"""torch -> ONNX export of a network: fixed tensor names, dynamic H/W, parity checks, fp16 variant.

The legacy TorchScript exporter (``dynamo=False``) is tried first; where it fails (an op it cannot
translate, fixed H/W, or failed parity) the dynamo exporter is used, and the result records which one
produced the file. Files are written under a temporary name and renamed only after every check passed.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from ..errors import ConfigError, NitedrError
from ..fileio import atomic_output
from ..modelspec import NetworkSpec, check_config, get_spec
from ..paths import ensure_writable_output
from . import parity as parity_check
from .fp16 import convert_to_fp16
from .trt_ops import MAX_OPSET

MIN_OPSET = 19  # DeformConv, and the TensorRT 10 parser's well-tested range
EXPORTERS = ('legacy', 'dynamo')
DYNAMIC_AXES = {2: 'height', 3: 'width'}


class ExportError(NitedrError):
    """No exporter produced a graph that passes the checks; the message gives each exporter's reason."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_network` wrote and how well it matches torch."""

    path: Path
    fp16_path: Path | None
    exporter: str  # 'legacy' | 'dynamo'
    opset: int
    parity_max_abs: float | None  # fp32 ORT vs torch, worst over the checked sizes (None: not checked)
    fp16_max_abs: float | None  # fp16 ORT vs fp32 ORT (None: no fp16 file or not checked)
    parity_sizes: tuple[tuple[int, int], ...] = ()
    fallback_reason: str | None = None  # why the legacy exporter was not used
    parity_onnxruntime: str = parity_check.PARITY_SESSION  # how the ONNX Runtime side of parity ran


def fp16_path_for(path: str | os.PathLike[str]) -> Path:
    """``<stem>.fp16.onnx`` beside ``path``."""
    p = Path(path)
    stem = p.name[:-len('.onnx')] if p.name.endswith('.onnx') else p.name
    return p.with_name(f'{stem}.fp16.onnx')


def export_network(model: torch.nn.Module, network: str, config: str, path: str | os.PathLike[str], *,
                   opset: int = 19, fp16: bool = True, parity: bool = True,
                   trace_hw: tuple[int, int] = (64, 64), force: bool = False,
                   metadata: Mapping[str, Any] | None = None, exporter: str = 'auto',
                   fp16_tolerance: float = parity_check.FP16_TOLERANCE, threads: int = 0) -> ExportResult:
    """Export ``model`` (network ``network`` in configuration ``config``) to ``path`` (+ fp16 variant).

    ``exporter``: 'auto' (legacy, then dynamo where legacy fails), 'legacy' or 'dynamo'.
    ``parity``: compare ONNX Runtime with torch (fp32, <= 1e-4) and fp16 with fp32 (<= ``fp16_tolerance``)
    at ``trace_hw`` and a second size. ``metadata`` entries are added to the ONNX metadata_props.
    Raises ConfigError (bad name, shape, opset or output path), OutputExistsError, ExportError, ParityError.
    """
    spec = get_spec(network)
    check_config(config)
    if not MIN_OPSET <= int(opset) <= MAX_OPSET:
        raise ConfigError(f'opset {opset} not supported; use {MIN_OPSET}..{MAX_OPSET}')
    if exporter not in ('auto', *EXPORTERS):
        raise ConfigError(f'unknown exporter {exporter!r}; choose auto, legacy or dynamo')
    height, width = _check_trace_hw(trace_hw, spec)
    out = ensure_writable_output(path, force)
    fp16_out = ensure_writable_output(fp16_path_for(out), force) if fp16 else None
    if fp16_out is not None and fp16_out == out:
        raise ConfigError(f'{out}: the fp32 output must not itself be named *.fp16.onnx')
    threads = threads or torch.get_num_threads()

    module, restore = _prepare(model)
    try:
        # Both files appear together, and only once every check passed; a failure leaves neither.
        with contextlib.ExitStack() as outputs:
            tmp = outputs.enter_context(atomic_output(out))
            tmp16 = outputs.enter_context(atomic_output(fp16_out)) if fp16_out is not None else None
            sizes = parity_check.parity_sizes((height, width), spec.multiple_of)
            feeds = [parity_check.random_inputs(spec, h, w, seed=i) for i, (h, w) in enumerate(sizes)]
            references = [_torch_outputs(module, spec, feed) for feed in feeds]
            order = EXPORTERS if exporter == 'auto' else (exporter,)
            failures: list[str] = []
            chosen, parity_max, parity_failed, ort_outputs = None, None, False, []
            for name in order:
                try:
                    proto = _run_exporter(name, module, spec, feeds[0], int(opset))
                    _name_dynamic_axes(proto, spec)
                    _set_metadata(proto, spec, config, 'fp32', name, metadata)
                    onnx.save(proto, str(tmp))
                    if parity:
                        parity_max, ort_outputs = _check_fp32(tmp, spec, feeds, references, sizes, threads)
                except parity_check.ParityError as exc:
                    failures.append(f'{name} exporter: {exc}')
                    parity_failed = True
                    continue
                except ExportError as exc:  # a graph with wrong names or fixed H/W
                    failures.append(f'{name} exporter: {exc}')
                    continue
                except NitedrError:
                    raise
                except Exception as exc:  # noqa: BLE001 - exporters raise many types; the reason is kept
                    failures.append(f'{name} exporter: {_first_line(exc)}')
                    continue
                chosen = name
                break
            if chosen is None:
                error = parity_check.ParityError if parity_failed else ExportError
                raise error(f'{network}/{config}: no exporter passed; ' + '; '.join(failures))
            fallback_reason = failures[0] if failures else None
            checked: dict[str, str] = {}
            if fallback_reason:
                checked['nitedr.legacy_failure'] = fallback_reason[:500]
            if parity:
                checked['nitedr.parity_max_abs'] = f'{parity_max:.3g}'
                checked['nitedr.parity_onnxruntime'] = parity_check.PARITY_SESSION
            if checked:
                _replace_props(proto, checked)
                onnx.save(proto, str(tmp))

            fp16_max = None
            if fp16_out is not None:
                proto16 = convert_to_fp16(proto)
                _set_metadata(proto16, spec, config, 'fp16', chosen, None)
                onnx.save(proto16, str(tmp16))
                if parity:
                    fp16_max = _check_fp16(tmp16, spec, feeds, ort_outputs, sizes, threads, fp16_tolerance)
                    _replace_props(proto16, {'nitedr.fp16_max_abs': f'{fp16_max:.3g}'})
                    onnx.save(proto16, str(tmp16))
            result = ExportResult(out, fp16_out, chosen, int(opset), parity_max, fp16_max, tuple(sizes),
                                  fallback_reason)
        return result
    finally:
        restore()


def _check_trace_hw(trace_hw: tuple[int, int], spec: NetworkSpec) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in trace_hw)
    except (TypeError, ValueError):
        raise ConfigError(f'trace size must be (height, width), got {trace_hw!r}') from None
    if height <= 0 or width <= 0:
        raise ConfigError(f'trace size {height}x{width} must be positive')
    if height % spec.multiple_of or width % spec.multiple_of:
        raise ConfigError(f'{spec.name} takes H and W that are multiples of {spec.multiple_of}; '
                          f'trace size {height}x{width} is not')
    return height, width


def _prepare(model: torch.nn.Module):
    """An eval-mode CPU float32 module, and a function restoring the caller's training flag."""
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f'expected a torch.nn.Module, got {type(model).__name__}')
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.device.type != 'cpu' or (t.is_floating_point() and t.dtype != torch.float32)
           for t in tensors):
        module = copy.deepcopy(model).float().cpu().eval()
        return module, lambda: None
    was_training = model.training
    model.eval()
    return model, lambda: model.train(was_training)


def _torch_outputs(module: torch.nn.Module, spec: NetworkSpec,
                   feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Torch reference outputs by name; ConfigError when the network cannot take this input size."""
    args = tuple(torch.from_numpy(feed[name]) for name in spec.input_names)
    shape = 'x'.join(str(v) for v in args[0].shape[2:])
    try:
        with torch.no_grad():
            result = module(*args)
    except Exception as exc:  # a network rejecting an input size raises anything
        raise ConfigError(f'{spec.name} cannot take a {shape} input: {_first_line(exc)}') from exc
    outputs = (result,) if isinstance(result, torch.Tensor) else tuple(result)
    if len(outputs) != len(spec.outputs):
        raise ConfigError(f'{spec.name} returned {len(outputs)} outputs, the contract has '
                          f'{len(spec.outputs)} ({", ".join(spec.output_names)})')
    named = {}
    for tensor_spec, tensor in zip(spec.outputs, outputs):
        expected = (args[0].shape[0], tensor_spec.channels, *args[0].shape[2:])
        if tuple(tensor.shape) != expected:
            raise ConfigError(f'{spec.name} output {tensor_spec.name} has shape {tuple(tensor.shape)} '
                              f'for a {shape} input, expected {expected}')
        named[tensor_spec.name] = tensor.detach().float().numpy()
    return named


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence exporter chatter: deprecation warnings, the dynamo exporter's registry log lines, and the
    TorchScript IR dump the legacy exporter writes to the process's stdout when it fails (the reason is
    kept from the exception)."""
    logger = logging.getLogger('torch.onnx')
    level = logger.level
    logger.setLevel(logging.ERROR)
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
        os.close(devnull)
        logger.setLevel(level)


def _run_exporter(name: str, module: torch.nn.Module, spec: NetworkSpec,
                  feed: Mapping[str, np.ndarray], opset: int) -> onnx.ModelProto:
    args = tuple(torch.from_numpy(feed[n]) for n in spec.input_names)
    with _quiet_exporter(), torch.no_grad():
        if name == 'legacy':
            buffer = io.BytesIO()
            torch.onnx.export(
                module, args, buffer, dynamo=False, opset_version=opset,
                input_names=list(spec.input_names), output_names=list(spec.output_names),
                dynamic_axes={n: dict(DYNAMIC_AXES) for n in (*spec.input_names, *spec.output_names)},
                do_constant_folding=True)
            return onnx.load_from_string(buffer.getvalue())
        from torch.export import Dim

        with tempfile.TemporaryDirectory(prefix='nitedr-dynamo-') as artifacts:
            program = torch.onnx.export(
                module, args, dynamo=True, opset_version=opset, verbose=False, optimize=True,
                input_names=list(spec.input_names), output_names=list(spec.output_names),
                dynamic_shapes=tuple({2: Dim.DYNAMIC, 3: Dim.DYNAMIC} for _ in args),
                artifacts_dir=artifacts)
        return program.model_proto


def _name_dynamic_axes(proto: onnx.ModelProto, spec: NetworkSpec) -> None:
    """Check I/O names and that H/W are dynamic; call those axes ``height``/``width`` everywhere."""
    graph = proto.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    for label, values, expected in (('inputs', inputs, spec.input_names),
                                    ('outputs', graph.output, spec.output_names)):
        names = tuple(v.name for v in values)
        if names != expected:
            raise ExportError(f'graph {label} are {names}, expected {expected}')
    renamed: dict[str, str] = {}  # exporter's symbol of an input axis -> height / width
    for is_input, values in ((True, inputs), (False, graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            if len(dims) != 4:
                raise ExportError(f'{value.name} has rank {len(dims)}, expected 4 (NCHW)')
            for axis, new in DYNAMIC_AXES.items():
                dim = dims[axis]
                if not dim.HasField('dim_param'):
                    raise ExportError(f'the exporter fixed {value.name} axis {axis} ({new}) to '
                                      f'{dim.dim_value}; H and W must be dynamic')
                if is_input:
                    renamed.setdefault(dim.dim_param, new)
                dim.dim_param = new
    for info in graph.value_info:
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField('dim_param') and dim.dim_param in renamed:
                dim.dim_param = renamed[dim.dim_param]


def _set_metadata(proto: onnx.ModelProto, spec: NetworkSpec, config: str, precision: str, exporter: str,
                  extra: Mapping[str, Any] | None) -> None:
    entries = {
        'nitedr.network': spec.name,
        'nitedr.config': config,
        'nitedr.multiple_of': str(spec.multiple_of),
        'nitedr.precision': precision,
        'nitedr.exporter': exporter,
    }
    for key, value in (extra or {}).items():
        entries.setdefault(str(key), value if isinstance(value, str) else json.dumps(value, default=str))
    _replace_props(proto, entries)


def _replace_props(proto: onnx.ModelProto, entries: Mapping[str, str]) -> None:
    """Set metadata_props (replacing same-named entries)."""
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in entries.items():
        if key in existing:
            existing[key].value = value
        else:
            proto.metadata_props.add(key=key, value=value)


def _check_fp32(path: Path, spec: NetworkSpec, feeds, references, sizes,
                threads: int) -> tuple[float, list[dict[str, np.ndarray]]]:
    """Worst |ORT - torch| over the sizes, and the ORT outputs (reference for the fp16 variant)."""
    session = parity_check.ort_session(path, threads)
    worst, outputs = 0.0, []
    for feed, reference, (h, w) in zip(feeds, references, sizes):
        got = parity_check.run_session(session, feed)
        error = parity_check.max_abs_diff(got, reference, spec.output_names)
        if error > parity_check.FP32_TOLERANCE:
            raise parity_check.ParityError(
                f'ONNX Runtime differs from torch by {error:.3g} at {h}x{w} '
                f'(allowed {parity_check.FP32_TOLERANCE:g})')
        worst = max(worst, error)
        outputs.append(got)
    return worst, outputs


def _check_fp16(path16: Path, spec: NetworkSpec, feeds, fp32_outputs, sizes, threads: int,
                tolerance: float) -> float:
    """Worst |fp16 ORT - fp32 ORT| over the sizes."""
    session16 = parity_check.ort_session(path16, threads)
    worst = 0.0
    for feed, expected, (h, w) in zip(feeds, fp32_outputs, sizes):
        error = parity_check.max_abs_diff(parity_check.run_session(session16, feed), expected,
                                          spec.output_names)
        if error > tolerance:
            raise parity_check.ParityError(
                f'fp16 variant differs from fp32 by {error:.3g} at {h}x{w} (allowed {tolerance:g})')
        worst = max(worst, error)
    return worst


def _first_line(exc: BaseException) -> str:
    """A one-line reason from an exception (exporter errors carry pages of IR)."""
    for line in str(exc).splitlines():
        if line.strip():
            return f'{type(exc).__name__}: {line.strip()[:300]}'
    return type(exc).__name__
