"""The TensorRT-specific build and deserialize calls (TensorRT 10.x and 11.x), kept thin on purpose.

Imports ``tensorrt`` when constructed. Construct only after :func:`nitedr_ros.engines.cuda.cuda_device_count`
is positive: without a CUDA device TensorRT aborts or segfaults instead of raising.

Build, per the TensorRT Python API: a strongly typed network (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``
on 10.x; the only kind on 11.x), so precision comes from the ONNX itself (the ``.fp16.onnx`` file for fp16);
one optimisation profile covering the configured H/W range; a workspace limit; the builder optimisation
level; a timing cache loaded from and saved to the engine cache directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError
from .engine_cache import BuildOutput, BuildSettings

LOG = logging.getLogger('nitedr_ros.engines')


class EngineBuildError(BackendUnavailableError):
    """TensorRT could not parse or build a model; the message carries the parser errors."""


def profile_shapes(shape: tuple[int, ...], settings: BuildSettings
                   ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes of one NCHW input: dynamic batch -> 1, dynamic H/W -> the profile range.

    Static dimensions stay as they are, so a fixed-size ONNX gets min = opt = max.
    """
    if len(shape) != 4:
        raise EngineBuildError(f'TensorRT inputs must be NCHW (4-D), got shape {shape}')
    n, c, h, w = (int(d) for d in shape)
    if c < 0:
        raise EngineBuildError(f'input channel dimension must be static, got shape {shape}')
    n = 1 if n < 0 else n
    shapes = []
    for hw in (settings.profile_min_hw, settings.profile_opt_hw, settings.profile_max_hw):
        shapes.append((n, c, hw[0] if h < 0 else h, hw[1] if w < 0 else w))
    return shapes[0], shapes[1], shapes[2]


class TensorRTToolkit:
    """Builder and runtime calls behind :class:`nitedr_ros.engines.engine_cache.EngineToolkit`."""

    def __init__(self, verbose: bool = False) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BackendUnavailableError(f'tensorrt is not importable: {exc}') from None
        self.trt = trt
        self.version = str(trt.__version__)
        self.logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
        self._runtime: Any = None
        self._plugins_ready = False

    def _init_plugins(self) -> None:
        if not self._plugins_ready:
            try:
                self.trt.init_libnvinfer_plugins(self.logger, '')
            except Exception as exc:  # noqa: BLE001 - plugins are only needed by some graphs
                LOG.debug('init_libnvinfer_plugins failed: %s', exc)
            self._plugins_ready = True

    def _network_flags(self) -> int:
        flag = getattr(self.trt.NetworkDefinitionCreationFlag, 'STRONGLY_TYPED', None)
        return 0 if flag is None else 1 << int(flag)

    def build(self, onnx_path: Path, settings: BuildSettings, timing_cache: bytes | None) -> BuildOutput:
        trt = self.trt
        self._init_plugins()
        builder = trt.Builder(self.logger)
        network = builder.create_network(self._network_flags())
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineBuildError(f'TensorRT cannot parse {onnx_path}: {errors or "unknown parser error"}')
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_mb) << 20)
        config.builder_optimization_level = int(settings.optimization_level)
        profile = builder.create_optimization_profile()
        for index in range(network.num_inputs):
            tensor = network.get_input(index)
            low, opt, high = profile_shapes(tuple(tensor.shape), settings)
            profile.set_shape(tensor.name, low, opt, high)
        config.add_optimization_profile(profile)
        cache = self._timing_cache(config, timing_cache)
        config.set_timing_cache(cache, ignore_mismatch=False)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise EngineBuildError(f'TensorRT build_serialized_network returned nothing for {onnx_path} '
                                   f'(see the TensorRT log above)')
        updated = config.get_timing_cache()
        return BuildOutput(bytes(plan), bytes(updated.serialize()) if updated is not None else None)

    def _timing_cache(self, config: Any, previous: bytes | None) -> Any:
        if previous:
            try:
                return config.create_timing_cache(previous)
            except Exception as exc:  # noqa: BLE001 - a stale or foreign cache only costs build time
                LOG.warning('ignoring unusable TensorRT timing cache: %s', exc)
        return config.create_timing_cache(b'')

    def deserialize(self, plan: bytes) -> Any | None:
        self._init_plugins()
        if self._runtime is None:
            self._runtime = self.trt.Runtime(self.logger)
        try:
            return self._runtime.deserialize_cuda_engine(plan)
        except Exception as exc:  # noqa: BLE001 - report as "cannot deserialize": the cache rebuilds
            LOG.warning('TensorRT could not deserialize an engine: %s', exc)
            return None
