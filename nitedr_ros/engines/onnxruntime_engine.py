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
from .base import InferenceEngine, ShapeLimits, checked_inputs
from .cuda import probe_cuda
from .options import EngineOptions

_ORT_TYPES = {'tensor(float)': np.float32, 'tensor(float16)': np.float32, 'tensor(uint8)': np.uint8,
              'tensor(uint16)': np.uint16, 'tensor(int64)': np.int64, 'tensor(int32)': np.int32}
PROVIDERS: dict[str, str] = {
    'onnxruntime-tensorrt': 'TensorrtExecutionProvider',
    'onnxruntime-cuda': 'CUDAExecutionProvider',
    'onnxruntime-cpu': 'CPUExecutionProvider',
}


def available_providers() -> list[str]:
    """ONNX Runtime's installed execution providers ([] when onnxruntime itself is missing)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


class OnnxRuntimeEngine(InferenceEngine):
    """:class:`InferenceEngine` on an ``onnxruntime.InferenceSession``."""

    def __init__(self, model_path: str | os.PathLike[str], backend: str = 'onnxruntime-cpu',
                 options: EngineOptions | None = None) -> None:
        if backend not in PROVIDERS:
            raise ConfigError(f'unknown ONNX Runtime backend {backend!r}; '
                              f'choose one of {", ".join(PROVIDERS)}')
        options = options or EngineOptions(backend=backend)
        device_index = options.device_index
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
        self.threads = int(options.threads)
        session_options = ort.SessionOptions()
        session_options.graph_optimization_level = {
            'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[options.ort_optimization]
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.intra_op_num_threads = max(0, self.threads)
        session_options.inter_op_num_threads = 1
        session_options.log_severity_level = 3
        providers = self._providers(provider, options, model_path)
        try:
            self._session = ort.InferenceSession(str(model_path), session_options, providers=providers)
        except Exception as exc:
            raise ConfigError(f'ONNX Runtime cannot load {model_path}: {exc}') from exc
        active = self._session.get_providers()
        if not active or active[0] != provider:
            raise BackendUnavailableError(f'ONNX Runtime did not activate {provider} (active: {active})')
        self.providers = tuple(active)
        self.optimization = options.ort_optimization
        self.input_names = tuple(a.name for a in self._session.get_inputs())
        self.output_names = tuple(a.name for a in self._session.get_outputs())
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        # An fp16 model may declare float16 I/O; the engine interface stays float32 either way.
        self._half_inputs = {a.name for a in self._session.get_inputs() if a.type == 'tensor(float16)'}
        self._dtypes = {a.name: np.dtype(_ORT_TYPES.get(a.type, np.float32))
                        for a in self._session.get_inputs()}
        self.io = 'uint8' if self._dtypes[self.input_names[0]] == np.uint8 else 'float'
        first = self._session.get_inputs()[0].shape
        h_axis, w_axis = (1, 2) if self.io == 'uint8' else (2, 3)
        if len(first) == 4 and isinstance(first[h_axis], int) and isinstance(first[w_axis], int):
            self.limits = ShapeLimits(fixed=(first[h_axis], first[w_axis]))

    @staticmethod
    def _providers(provider: str, options: EngineOptions, model_path: Path) -> list:
        """The ``providers`` list for ``InferenceSession``: the chosen provider first, then fallbacks. The
        TensorRT provider gets the workspace, builder level and profile of ``options.build``."""
        if provider == 'CPUExecutionProvider':
            return ['CPUExecutionProvider']
        cuda = ('CUDAExecutionProvider', {'device_id': options.device_index})
        if provider == 'CUDAExecutionProvider':
            return [cuda, 'CPUExecutionProvider']
        from ..paths import engine_cache_dir
        from .onnx_info import read_model_info

        cache = Path(options.cache_dir or engine_cache_dir()) / 'onnxruntime-trt'
        cache.mkdir(parents=True, exist_ok=True)
        build = options.build
        trt: dict[str, object] = {
            'device_id': options.device_index,
            'trt_engine_cache_enable': True,
            'trt_engine_cache_path': str(cache),
            'trt_timing_cache_enable': True,
            'trt_timing_cache_path': str(cache),
            'trt_max_workspace_size': build.workspace_mb << 20,
            'trt_builder_optimization_level': build.optimization_level,
        }
        info = read_model_info(model_path)
        for key, hw in (('trt_profile_min_shapes', build.profile_min_hw),
                        ('trt_profile_opt_shapes', build.profile_opt_hw),
                        ('trt_profile_max_shapes', build.profile_max_hw)):
            trt[key] = ','.join(f'{name}:1x{shape[1] or 3}x{hw[0]}x{hw[1]}'
                                for name, shape in info.inputs.items())
        return [('TensorrtExecutionProvider', trt), cuda, 'CPUExecutionProvider']

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = checked_inputs(inputs, self.input_names, self._dtypes)
        for name in self._half_inputs:
            feed[name] = feed[name].astype(np.float16)
        started = time.perf_counter()
        results = self._session.run(list(self.output_names), feed)
        self.last_inference_ms = (time.perf_counter() - started) * 1000.0
        return {name: r if r.dtype == np.float32 or r.dtype.kind != 'f' else r.astype(np.float32)
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
