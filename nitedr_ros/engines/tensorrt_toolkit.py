"""The TensorRT-specific build and deserialize calls (TensorRT 10.x and 11.x), kept thin on purpose.

Imports ``tensorrt`` when constructed. Construct only after :func:`nitedr_ros.engines.cuda.cuda_device_count`
is positive: without a CUDA device TensorRT aborts or segfaults instead of raising.

Build, per the TensorRT Python API: a strongly typed network (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``
on 10.x; the only kind on 11.x), so precision comes from the ONNX itself (the ``.fp16.onnx`` file for fp16);
one optimisation profile covering the configured H/W range; a workspace limit; the builder optimisation
level; a timing cache loaded from and saved to the engine cache directory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, NitedrError
from .engine_cache import BuildOutput, EngineBuildError
from .options import BuildSettings

LOG = logging.getLogger('nitedr_ros.engines')


__all__ = ['EngineBuildError', 'TensorRTToolkit', 'profile_shapes', 'tensorrt_errors']


def profile_shapes(shape: tuple[int, ...], settings: BuildSettings
                   ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes of one input: a dynamic batch -> 1, the (at most two) other dynamic axes ->
    the profile's H and W, in order (NCHW float inputs: axes 2, 3; NHWC uint8 inputs: axes 1, 2).

    Static dimensions stay as they are, so a fixed-size ONNX (or a small static input such as
    ``channel_order``) gets min = opt = max.
    """
    dims = [int(d) for d in shape]
    dynamic = [axis for axis, d in enumerate(dims) if d < 0 and axis != 0]
    if len(dynamic) > 2:
        raise EngineBuildError(f'input shape {shape}: only batch, height and width may be dynamic '
                               '(the channel dimension must be static)')
    shapes = []
    for hw in (settings.profile_min_hw, settings.profile_opt_hw, settings.profile_max_hw):
        out = list(dims)
        if out and out[0] < 0:
            out[0] = 1
        for axis, value in zip(dynamic, hw):
            out[axis] = value
        shapes.append(tuple(out))
    return shapes[0], shapes[1], shapes[2]


class TensorRTToolkit:
    """Builder and runtime calls behind :class:`nitedr_ros.engines.engine_cache.EngineToolkit`.

    Every exception a TensorRT call raises (the Python layer raises TypeError "factory function returned
    nullptr" or RuntimeError for out-of-memory and driver problems) becomes :class:`EngineBuildError` with
    the original message, so ``backend: auto`` falls back to ONNX Runtime and says why.
    """

    def __init__(self, verbose: bool = False) -> None:
        try:
            import tensorrt as trt
        except Exception as exc:  # noqa: BLE001 - ImportError, or OSError/RuntimeError loading libnvinfer
            raise BackendUnavailableError(f'tensorrt is not importable: {exc.__class__.__name__}: {exc}'
                                          ) from None
        self.trt = trt
        self.version = str(getattr(trt, '__version__', 'unknown'))
        with tensorrt_errors('creating the TensorRT logger'):
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

    def network_flags(self) -> int:
        """``STRONGLY_TYPED`` where the flag exists (10.x); 11.x networks are strongly typed anyway."""
        flags = getattr(self.trt, 'NetworkDefinitionCreationFlag', None)
        flag = getattr(flags, 'STRONGLY_TYPED', None)
        return 0 if flag is None else 1 << int(flag)

    def build(self, onnx_path: Path, settings: BuildSettings, timing_cache: bytes | None) -> BuildOutput:
        with tensorrt_errors(f'building an engine from {onnx_path}'):
            return self._build(onnx_path, settings, timing_cache)

    def _build(self, onnx_path: Path, settings: BuildSettings, timing_cache: bytes | None) -> BuildOutput:
        trt = self.trt
        self._init_plugins()
        builder = _created(trt.Builder(self.logger), 'trt.Builder')
        network = _created(builder.create_network(self.network_flags()), 'create_network')
        parser = _created(trt.OnnxParser(network, self.logger), 'trt.OnnxParser')
        if not parser.parse_from_file(str(onnx_path)):
            errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineBuildError(f'TensorRT cannot parse {onnx_path}: {errors or "unknown parser error"}')
        config = _created(builder.create_builder_config(), 'create_builder_config')
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_mb) << 20)
        config.builder_optimization_level = int(settings.optimization_level)
        profile = _created(builder.create_optimization_profile(), 'create_optimization_profile')
        for index in range(network.num_inputs):
            tensor = network.get_input(index)
            low, opt, high = profile_shapes(tuple(tensor.shape), settings)
            profile.set_shape(tensor.name, low, opt, high)
        config.add_optimization_profile(profile)
        cache = self._timing_cache(config, timing_cache)
        if cache is not None and not config.set_timing_cache(cache, ignore_mismatch=False):
            LOG.warning('TensorRT refused the timing cache; building without it')
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise EngineBuildError(f'TensorRT build_serialized_network returned nothing for {onnx_path} '
                                   f'(see the TensorRT log above)')
        updated = config.get_timing_cache() if cache is not None else None
        serialized = updated.serialize() if updated is not None else None
        return BuildOutput(bytes(plan), bytes(serialized) if serialized is not None else None)

    @staticmethod
    def _timing_cache(config: Any, previous: bytes | None) -> Any | None:
        """A timing cache from ``previous`` bytes, else an empty one, else None (build without)."""
        if previous:
            try:
                cache = config.create_timing_cache(previous)
                if cache is not None:
                    return cache
                LOG.warning('ignoring unusable TensorRT timing cache (TensorRT returned none)')
            except Exception as exc:  # noqa: BLE001 - a stale or foreign cache only costs build time
                LOG.warning('ignoring unusable TensorRT timing cache: %s', exc)
        try:
            return config.create_timing_cache(b'')
        except Exception as exc:  # noqa: BLE001 - no timing cache only costs build time
            LOG.warning('TensorRT could not create an empty timing cache (%s); building without one', exc)
            return None

    def deserialize(self, plan: bytes) -> Any | None:
        """The engine of a plan; None when TensorRT cannot use this plan (corrupt, other version).

        A runtime that cannot be created is :class:`EngineBuildError` (rebuilding would not help).
        """
        self._init_plugins()
        if self._runtime is None:
            with tensorrt_errors('creating the TensorRT runtime'):
                self._runtime = _created(self.trt.Runtime(self.logger), 'trt.Runtime')
        try:
            return self._runtime.deserialize_cuda_engine(plan)
        except Exception as exc:  # noqa: BLE001 - report as "cannot deserialize": the cache rebuilds
            LOG.warning('TensorRT could not deserialize an engine: %s', exc)
            return None


def _created(value: Any, call: str) -> Any:
    """``value``, or EngineBuildError when a TensorRT factory returned None (out of memory, no device)."""
    if value is None:
        raise EngineBuildError(f'TensorRT {call} returned nothing (out of GPU memory or no usable device?)')
    return value


@contextlib.contextmanager
def tensorrt_errors(doing: str) -> Iterator[None]:
    """Turn any exception of TensorRT calls into EngineBuildError (NitedrErrors pass through unchanged)."""
    try:
        yield
    except NitedrError:
        raise
    except Exception as exc:  # TensorRT raises TypeError, RuntimeError, ...
        raise EngineBuildError(f'TensorRT failed {doing}: {exc.__class__.__name__}: {exc}') from exc
