"""ONNX Runtime backend: CPU, CUDA or TensorRT execution provider, whichever is installed and asked for.

Session options: full graph optimisation, sequential execution, configurable intra-op threads (0 = ONNX
Runtime's default, one per physical core), one inter-op thread. ``onnxruntime`` is imported when an engine
is created, not when this module is imported.

Precision: the engine runs the ONNX file it is given; :func:`nitedr_ros.engines.open_engine` gives the GPU
providers the ``.fp16.onnx`` file for fp16 (TensorRT 11 has no FP16 builder flag, so the TensorRT provider's
``trt_fp16_enable`` is not used; the precision is in the graph). ``last_inference_ms`` is wall clock around
``session.run``: on the CUDA and TensorRT providers it includes the host<->device copies of inputs and
outputs (``describe()['timing']`` says so).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, ConfigError
from .base import InferenceEngine, ShapeLimits, check_inputs
from .cuda import probe_cuda

PROVIDERS: dict[str, str] = {
    'onnxruntime-tensorrt': 'TensorrtExecutionProvider',
    'onnxruntime-cuda': 'CUDAExecutionProvider',
    'onnxruntime-cpu': 'CPUExecutionProvider',
}
OPTIMIZATION_LEVELS = ('disable', 'basic', 'extended', 'all')


def available_providers() -> list[str]:
    """ONNX Runtime's installed execution providers ([] when onnxruntime itself is missing)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


class OnnxRuntimeEngine(InferenceEngine):
    """:class:`InferenceEngine` on an ``onnxruntime.InferenceSession``."""

    def __init__(self, model_path: str | os.PathLike[str], backend: str = 'onnxruntime-cpu', *,
                 threads: int = 0, optimization: str = 'all', precision: str = 'fp32',
                 cache_dir: str | os.PathLike[str] | None = None, device_index: int = 0,
                 profile_hw: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None,
                 workspace_mb: int | None = None, optimization_level: int | None = None) -> None:
        if backend not in PROVIDERS:
            raise ConfigError(f'unknown ONNX Runtime backend {backend!r}; '
                              f'choose one of {", ".join(PROVIDERS)}')
        if optimization not in OPTIMIZATION_LEVELS:
            raise ConfigError(f'optimization must be one of {", ".join(OPTIMIZATION_LEVELS)}')
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(f'onnxruntime is not installed ({exc})') from None
        provider = PROVIDERS[backend]
        if provider not in ort.get_available_providers():
            raise BackendUnavailableError(
                f'{provider} is not in this onnxruntime build (available: '
                f'{", ".join(ort.get_available_providers())}); install onnxruntime-gpu for CUDA/TensorRT')
        if provider != 'CPUExecutionProvider':
            probe = probe_cuda()
            if probe.count <= device_index:
                raise BackendUnavailableError(f'{provider} needs CUDA device {device_index}: {probe.reason}')
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ConfigError(f'ONNX model not found: {model_path}')
        self.backend = backend
        self.model_path = model_path
        self.threads = int(threads)
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = max(0, self.threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = self._providers(provider, cache_dir, device_index, profile_hw, model_path,
                                    workspace_mb=workspace_mb, optimization_level=optimization_level)
        try:
            self._session = ort.InferenceSession(str(model_path), options, providers=providers)
        except Exception as exc:
            raise ConfigError(f'ONNX Runtime cannot load {model_path}: {exc}') from exc
        active = self._session.get_providers()
        if not active or active[0] != provider:
            raise BackendUnavailableError(f'ONNX Runtime did not activate {provider} (active: {active})')
        self.providers = tuple(active)
        self.optimization = optimization
        self.input_names = tuple(a.name for a in self._session.get_inputs())
        self.output_names = tuple(a.name for a in self._session.get_outputs())
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        # An fp16 model may declare float16 I/O; the engine interface stays float32 either way.
        self._half_inputs = {a.name for a in self._session.get_inputs() if a.type == 'tensor(float16)'}
        first = self._session.get_inputs()[0].shape
        if len(first) == 4 and isinstance(first[2], int) and isinstance(first[3], int):
            self.limits = ShapeLimits(fixed=(first[2], first[3]))

    @staticmethod
    def _providers(provider: str, cache_dir: str | os.PathLike[str] | None, device_index: int,
                   profile_hw: tuple[tuple[int, int], ...] | None, model_path: Path, *,
                   workspace_mb: int | None = None, optimization_level: int | None = None) -> list:
        """The ``providers`` list for ``InferenceSession``: the chosen provider first, then fallbacks."""
        if provider == 'CPUExecutionProvider':
            return ['CPUExecutionProvider']
        cuda = ('CUDAExecutionProvider', {'device_id': device_index})
        if provider == 'CUDAExecutionProvider':
            return [cuda, 'CPUExecutionProvider']
        from ..paths import engine_cache_dir

        cache = Path(cache_dir or engine_cache_dir()) / 'onnxruntime-trt'
        cache.mkdir(parents=True, exist_ok=True)
        options: dict[str, object] = {
            'device_id': device_index,
            'trt_engine_cache_enable': True,
            'trt_engine_cache_path': str(cache),
            'trt_timing_cache_enable': True,
            'trt_timing_cache_path': str(cache),
        }
        if workspace_mb:
            options['trt_max_workspace_size'] = int(workspace_mb) << 20
        if optimization_level is not None:
            options['trt_builder_optimization_level'] = int(optimization_level)
        if profile_hw is not None:
            from .onnx_info import read_model_info

            info = read_model_info(model_path)
            for key, hw in zip(('trt_profile_min_shapes', 'trt_profile_opt_shapes', 'trt_profile_max_shapes'),
                               profile_hw):
                options[key] = ','.join(f'{name}:1x{shape[1] or 3}x{hw[0]}x{hw[1]}'
                                        for name, shape in info.inputs.items())
        return [('TensorrtExecutionProvider', options), cuda, 'CPUExecutionProvider']

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = check_inputs(inputs, self.input_names)
        for name in self._half_inputs:
            feed[name] = feed[name].astype(np.float16)
        started = time.perf_counter()
        results = self._session.run(list(self.output_names), feed)
        self.last_inference_ms = (time.perf_counter() - started) * 1000.0
        return {name: r if r.dtype == np.float32 else r.astype(np.float32)
                for name, r in zip(self.output_names, results)}

    def describe(self) -> dict[str, str]:
        facts = self._describe_common()
        import onnxruntime as ort

        facts.update({
            'model': str(self.model_path),
            'precision': self.metadata.get('nitedr.precision', 'fp32'),
            'providers': ','.join(self.providers),
            'onnxruntime_version': ort.__version__,
            'intra_op_threads': str(self.threads) if self.threads > 0 else 'default',
            'graph_optimization': self.optimization,
            'timing': ('inference_ms: wall clock around session.run'
                       + (', including host<->device copies' if self.backend != 'onnxruntime-cpu' else '')),
        })
        return facts

    def close(self) -> None:
        self._session = None
