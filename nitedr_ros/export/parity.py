"""Numerical checks of exported graphs in ONNX Runtime (CPU): inputs, sessions, errors. Torch-free."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import NitedrError
from ..modelspec import NetworkSpec

# fp32 export: max |ORT - torch| allowed (issue 2).
FP32_TOLERANCE = 1e-4
# fp16 variant: max |fp16 ORT - fp32 ORT| allowed on [0, 1] images.
FP16_TOLERANCE = 2e-2
# How the parity sessions run; recorded in the ONNX metadata (nitedr.parity_onnxruntime) and ExportResult so
# nobody reads the 1e-4 as a promise for engines at ONNX Runtime's default level ('all', NCHWc layout).
PARITY_SESSION = ('ONNX Runtime CPU at ORT_ENABLE_EXTENDED, without the NCHWc layout optimisation that alone '
                  'moved paper CleanNet by 3.7e-4; engines at the default level ENABLE_ALL are held to 1e-3')


class ParityError(NitedrError):
    """An exported graph whose outputs differ from the reference by more than the tolerance."""


def random_inputs(spec: NetworkSpec, height: int, width: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One float32 ``[1, C, height, width]`` array in [0, 1) per network input, by input name."""
    rng = np.random.default_rng(seed)
    return {t.name: rng.random((1, t.channels, height, width), dtype=np.float32) for t in spec.inputs}


def parity_sizes(trace_hw: tuple[int, int], multiple_of: int) -> list[tuple[int, int]]:
    """The trace size and a second size differing in both H and W (proves dynamic axes)."""
    step = max(multiple_of, 8)
    h, w = trace_hw
    return [(h, w), (h + 2 * step, w + step)]


def ort_session(model: str | os.PathLike[str] | bytes, threads: int = 0, layout_optimizations: bool = False):
    """A CPU ONNX Runtime session (``threads`` 0: ONNX Runtime's default).

    Parity checks judge the graph, so by default the session applies ONNX Runtime's semantics-preserving
    optimisations only (``ORT_ENABLE_EXTENDED``): the layout level (NCHWc blocked convolutions) reorders
    accumulation and alone moved the paper CleanNet's output by 3.7e-4 at 64x64 (1.8e-7 without it).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not layout_optimizations:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(Path(model))
    return ort.InferenceSession(source, options, providers=['CPUExecutionProvider'])


def run_session(session, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a session on named inputs; outputs by name."""
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(inputs))))


def max_abs_diff(actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray],
                 names: Sequence[str]) -> float:
    """Largest absolute difference over the named outputs (shape mismatch or NaN: infinity)."""
    worst = 0.0
    for name in names:
        a, b = np.asarray(actual[name], dtype=np.float64), np.asarray(expected[name], dtype=np.float64)
        if a.shape != b.shape:
            return float('inf')
        diff = np.abs(a - b)
        if diff.size and not np.all(np.isfinite(diff)):
            return float('inf')
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
    return worst
