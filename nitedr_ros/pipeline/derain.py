"""DerainPipeline: a synchronized set of frames -> pre-process -> engine(s) -> post-process, timed per stage.

Modes and the streams they need:

- ``nitedr``: ``rgb`` and ``thermal`` -> ``derained_rgb`` (derain model) and ``fused`` (fusion model on the
  derained RGB and the IR, resized to the RGB size). With ``fuse=False`` (thermal silent; the node degrades)
  only ``rgb`` is needed, only the derain model runs and there is no ``fused`` output.
- ``stereo``: ``left`` and ``right`` (same size) -> ``derained_left``, ``derained_right`` in one model call.
- ``single``: ``rgb`` -> ``derained_rgb``.
- ``full``: all four cameras: ``nitedr`` on ``rgb`` + ``thermal`` and ``stereo`` on ``left`` + ``right``
  in one call -> ``derained_rgb``, ``fused``, ``derained_left``, ``derained_right``. ``fuse=False``
  degrades as in ``nitedr`` (no thermal needed, no ``fused``).

Engine I/O: a role whose engine has uint8 I/O (``engine.io == 'uint8'``: the ``.u8.onnx`` variant, the
torch backend's wrapper) gets the camera's bytes and gives bytes back (:mod:`.bytes_io`; the conversions run
inside the engine); a float engine gets float32 NCHW tensors made on the host (padded to its multiple and
cropped back, :mod:`.geometry`). The two kinds mix freely (e.g. a uint8 derain engine feeding a float
fusion engine).

Timings: the engine call is split into ``inference_ms`` (the engine's own measurement) and ``transfer_ms``
(the rest of the call: host<->device copies and staging); see :class:`StageTimings`.

Outputs have the size and encoding of their input stream. Any problem with a frame, or a non-finite model
output, raises :class:`nitedr_ros.errors.FrameError` naming the stream; the caller drops or passes through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..engines.base import InferenceEngine
from ..errors import ConfigError, FrameError
from ..modelspec import CHANNEL_ORDER, THERMAL_INPUT, THERMAL_RANGE
from ..modes import MODE_ROLES, MODE_STREAMS, MODES
from .bytes_io import RGB_ORDER, from_u8, thermal_u16, to_u8
from .frames import ImageFrame, check_frame, from_rgb_chw, to_rgb_chw
from .geometry import FitPlan, fit, plan_fit, unfit
from .rain_intensity import rain_intensity
from .registration import ThermalRegistrar, blend_covered
from .registration_spec import RegistrationSpec
from .thermal import ThermalNormalizer
from .timing import STAGES, LatencyWindow, StageTimings

Allocator = Callable[[str, tuple, np.dtype], np.ndarray]
# derained output -> the input it was derained from (its rain intensity is measured against it)
DERAINED_SOURCES = {'derained_rgb': 'rgb', 'derained_left': 'left', 'derained_right': 'right'}


@dataclass
class PipelineResult:
    """Output frames by name (``derained_rgb``, ``fused``, ``derained_left``, ...), stage timings, and the
    rain intensity of each derained output (:mod:`.rain_intensity`, 8-bit levels)."""

    outputs: dict[str, ImageFrame]
    timings: StageTimings
    rain_intensity: dict[str, float] = field(default_factory=dict)


class _Clock:
    """Accumulates wall time into stages between marks."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.spent = {'pre': 0.0, 'post': 0.0, 'call': 0.0}

    def mark(self, stage: str | None) -> None:
        now = time.perf_counter()
        if stage is not None:
            self.spent[stage] += (now - self.last) * 1000.0
        self.last = now

    def total_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0


def _single_io(engine: InferenceEngine, role: str, inputs: tuple[str, ...], outputs: tuple[str, ...]
               ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The engine's I/O names for a role: the contract names, or the only ones for single-I/O roles."""
    if set(inputs) <= set(engine.input_names) and set(outputs) <= set(engine.output_names):
        return inputs, outputs
    if len(inputs) == 1 and len(engine.input_names) == 1 and len(engine.output_names) == 1:
        return engine.input_names, engine.output_names
    raise ConfigError(f'{role} model has inputs {engine.input_names} and outputs {engine.output_names}; '
                      f'the {role} role needs inputs {inputs} and outputs {outputs}')


class DerainPipeline:
    """Runs one mode's engines on frames; keeps a rolling latency window per stage."""

    def __init__(self, mode: str, engines: Mapping[str, InferenceEngine], *,
                 thermal: ThermalNormalizer | None = None, window_size: int = 100,
                 models: Mapping[str, str] | None = None, check_outputs: bool = True,
                 registration: RegistrationSpec | None = None) -> None:
        if mode not in MODES:
            raise ConfigError(f'unknown mode {mode!r}; choose one of {", ".join(MODES)}')
        missing = [role for role in MODE_ROLES[mode] if role not in engines]
        if missing:
            raise ConfigError(f'mode {mode} needs an engine for role(s) {", ".join(missing)}')
        self.mode = mode
        self.engines = dict(engines)
        self.thermal = thermal or ThermalNormalizer()
        self.registrar = ThermalRegistrar(registration)
        self.windows = {stage: LatencyWindow(window_size) for stage in STAGES}
        self._allocate: Allocator | None = None
        self._io: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self.bytes_io = {role: getattr(engine, 'io', 'float') == 'uint8'
                         for role, engine in self.engines.items()}
        for role, engine in self.engines.items():
            if self.bytes_io[role]:
                self._io[role] = (tuple(engine.input_names), tuple(engine.output_names))
        if 'derain' in MODE_ROLES[mode] and 'derain' not in self._io:
            self._io['derain'] = _single_io(self.engines['derain'], 'derain', ('image',), ('derained',))
        if 'fusion' in MODE_ROLES[mode] and 'fusion' not in self._io:
            self._io['fusion'] = _single_io(self.engines['fusion'], 'fusion', ('visible', 'infrared'),
                                            ('fused',))
        if 'stereo' in MODE_ROLES[mode] and 'stereo' not in self._io:
            self._io['stereo'] = _single_io(self.engines['stereo'], 'stereo', ('left', 'right'),
                                            ('left_derained', 'right_derained'))
        if check_outputs:
            for role in self.engines:
                if role in self._io:
                    self._check_outputs(role, (models or {}).get(role, ''))

    def _check_outputs(self, role: str, model: str) -> None:
        """One probe run per engine at open: every output the role needs exists with 3 channels at the input
        size, so a wrong model fails here naming the role and the file, not on every frame."""
        engine = self.engines[role]
        inputs, outputs = self._io[role]
        plan = plan_fit(64, 64, engine.multiple_of, engine.limits)
        h, w = plan.padded_hw
        if self.bytes_io[role]:
            feed = {name: _probe_bytes(name, h, w) for name in inputs}
            expected = (1, h, w, 3)
        else:
            channels = {name: 1 if name == 'infrared' else 3 for name in inputs}
            feed = {name: np.full((1, channels[name], h, w), 0.5, np.float32) for name in inputs}
            expected = (1, 3, h, w)
        label = f'{role} model {model}' if model else f'{role} model'
        try:
            results = engine.infer(feed)
        except Exception as exc:
            raise ConfigError(f'{label} failed on a {w}x{h} probe input: {exc}') from exc
        for name in outputs:
            if name not in results:
                raise ConfigError(f'{label} has no output {name!r} (outputs: {", ".join(results)}); '
                                  f'the {role} role needs {", ".join(outputs)}')
            shape = tuple(np.shape(results[name]))
            if shape != expected:
                raise ConfigError(f'{label} output {name!r} has shape {shape} for a {w}x{h} input; the '
                                  f'{role} role needs {expected} (an RGB image of the input size)')

    def required_streams(self, fuse: bool = True, outputs: Collection[str] | None = None) -> tuple[str, ...]:
        """Streams ``process`` needs in this mode (without ``thermal`` when ``fuse`` is False; only those of
        the wanted ``outputs``)."""
        rgb_side, stereo_side = self._sides(outputs)
        needed = {'rgb'} if rgb_side else set()
        if rgb_side and fuse:
            needed.add('thermal')
        if stereo_side:
            needed.update(('left', 'right'))
        return tuple(s for s in MODE_STREAMS[self.mode] if s in needed)

    def _sides(self, outputs: Collection[str] | None) -> tuple[bool, bool]:
        """(run the RGB derain/fusion side, run the stereo side) for the wanted outputs."""
        has_rgb = 'derain' in self.engines and self.mode != 'stereo'
        has_stereo = self.mode in ('stereo', 'full')
        if outputs is None:
            return has_rgb, has_stereo
        return (has_rgb and bool({'derained_rgb', 'fused'} & set(outputs)),
                has_stereo and bool({'derained_left', 'derained_right'} & set(outputs)))

    def process(self, frames: Mapping[str, ImageFrame], *, fuse: bool = True,
                outputs: Collection[str] | None = None, allocate: Allocator | None = None) -> PipelineResult:
        """Derain (and fuse) one synchronized set of frames. ``outputs``: only these are wanted (the parts
        of the mode that feed none of them are not run); None = all. ``allocate(output, shape, dtype)``:
        where each output image is written (the transport's message buffers: no copy after this)."""
        self._allocate = allocate
        rgb_side, stereo_side = self._sides(outputs)
        for stream in self.required_streams(fuse, outputs):
            if frames.get(stream) is None:
                hint = ' (pass fuse=False to derain without thermal)' if stream == 'thermal' else ''
                raise FrameError(stream, f'missing: mode {self.mode} needs '
                                         f'{" and ".join(self.required_streams(fuse))}{hint}')
        clock = _Clock()
        timings = StageTimings()
        results: dict[str, ImageFrame] = {}
        if rgb_side:
            results.update(self._derain_and_fuse(frames, fuse and 'fusion' in MODE_ROLES[self.mode], clock,
                                                 timings))
        if stereo_side:
            results.update(self._stereo(frames, clock, timings))
        rain = {output: rain_intensity(frames[source], results[output])
                for output, source in DERAINED_SOURCES.items() if output in results and source in frames}
        clock.mark('post')
        timings.preprocess_ms = clock.spent['pre']
        timings.postprocess_ms = clock.spent['post']
        timings.inference_ms = sum(timings.inference_by_role.values())
        timings.transfer_ms = max(0.0, clock.spent['call'] - timings.inference_ms)
        timings.total_ms = clock.total_ms()
        for stage, value in timings.as_dict().items():
            self.windows[stage].add(value)
        return PipelineResult(results, timings, rain)

    def _run(self, role: str, feed: dict[str, np.ndarray], output_streams: tuple[str, ...],
             clock: _Clock, timings: StageTimings) -> list[np.ndarray]:
        engine = self.engines[role]
        clock.mark('pre')
        results = engine.infer(feed)
        clock.mark('call')  # the engine call: its own inference time + transfers (split in process())
        timings.inference_by_role[role] = timings.inference_by_role.get(role, 0.0) + engine.last_inference_ms
        arrays = []
        for name, stream in zip(self._io[role][1], output_streams):
            array = results[name]
            if array.dtype.kind == 'f' and not np.isfinite(array).all():
                raise FrameError(stream, f'{role} model output contains NaN or Inf')
            arrays.append(array)
        clock.mark('post')
        return arrays

    def _plan(self, role: str, hw: tuple[int, int]) -> FitPlan:
        engine = self.engines[role]
        return plan_fit(hw[0], hw[1], engine.multiple_of, engine.limits)

    def _derain_and_fuse(self, frames: Mapping[str, ImageFrame], fuse: bool, clock: _Clock,
                         timings: StageTimings) -> dict[str, ImageFrame]:
        rgb_frame = frames['rgb']
        check_frame('rgb', rgb_frame)
        hw = (rgb_frame.height, rgb_frame.width)
        if self.bytes_io['derain']:
            image, order = to_u8('rgb', rgb_frame)
            (derained_u8,) = self._run_bytes('derain', [image], order, ('derained_rgb',), clock, timings)
            outputs = {'derained_rgb': from_u8(derained_u8, rgb_frame, self._out('derained_rgb', rgb_frame))}
            derained = _Derained(u8=derained_u8, order=order)
        else:
            rgb = to_rgb_chw('rgb', rgb_frame)
            plan = self._plan('derain', hw)
            (out,) = self._run('derain', {self._io['derain'][0][0]: fit(rgb, plan)}, ('derained_rgb',),
                               clock, timings)
            chw = unfit(out, plan)
            np.clip(chw, 0.0, 1.0, out=chw)  # the fusion model's input contract
            # chw is clipped already, so from_rgb_chw leaves it as it is for the fusion
            outputs = {'derained_rgb': from_rgb_chw(chw, rgb_frame, self._out('derained_rgb', rgb_frame))}
            derained = _Derained(chw=chw)
        if fuse:
            outputs['fused'] = self._fuse(derained, frames['thermal'], rgb_frame, hw, clock, timings)
        clock.mark('post')
        return outputs

    def _fuse(self, derained: _Derained, thermal: ImageFrame, rgb_frame: ImageFrame, hw: tuple[int, int],
              clock: _Clock, timings: StageTimings) -> ImageFrame:
        """Fuse the derained RGB with the thermal frame warped into the RGB camera's pixels (registration);
        where the thermal camera does not see, the output is the derained visible image, feathered."""
        if self.bytes_io['fusion']:
            visible, order = derained.as_u8()
            counts, value_range, weight = thermal_u16(self.thermal, 'thermal', thermal, hw,
                                                      self.registrar.warp)
            (fused,) = self._run_bytes('fusion', [visible, counts, value_range], order, ('fused',), clock,
                                       timings)
            return from_u8(blend_covered(fused, visible, weight), rgb_frame, self._out('fused', rgb_frame))
        infrared, weight = self.registrar.warp(self.thermal('thermal', thermal), hw)
        plan = self._plan('fusion', hw)
        visible_name, infrared_name = self._io['fusion'][0]
        visible = derained.as_chw()
        feed = {visible_name: fit(visible, plan), infrared_name: fit(infrared[None], plan)}
        (fused,) = self._run('fusion', feed, ('fused',), clock, timings)
        fused = blend_covered(unfit(fused, plan), visible, weight)
        return from_rgb_chw(fused, rgb_frame, self._out('fused', rgb_frame))

    def _run_bytes(self, role: str, images: list[np.ndarray], order: np.ndarray,
                   output_streams: tuple[str, ...], clock: _Clock, timings: StageTimings) -> list[np.ndarray]:
        """Run a uint8-I/O engine: ``images`` in its input order, then the channel order; engine limits
        beyond the graph's own padding (a TensorRT profile) are met by resizing on the host."""
        engine = self.engines[role]
        height, width = images[0].shape[1:3]
        plan = plan_fit(height, width, 1, engine.limits)
        if plan.scaled_hw != (height, width) or plan.padded_hw != plan.scaled_hw:
            images = [_resize_bytes(im, plan.padded_hw) if im.ndim >= 3 else im for im in images]
        names = self._io[role][0]
        feed = dict(zip(names, [*images, order]))
        arrays = self._run(role, feed, output_streams, clock, timings)
        if plan.scaled_hw != (height, width) or plan.padded_hw != plan.scaled_hw:
            arrays = [_resize_bytes(a, (height, width)) for a in arrays]
        return arrays

    def _stereo(self, frames: Mapping[str, ImageFrame], clock: _Clock,
                timings: StageTimings) -> dict[str, ImageFrame]:
        left_frame, right_frame = frames['left'], frames['right']
        check_frame('left', left_frame)
        check_frame('right', right_frame)
        if left_frame.data.shape[:2] != right_frame.data.shape[:2]:
            (lh, lw), (rh, rw) = left_frame.data.shape[:2], right_frame.data.shape[:2]
            raise FrameError('right', f'size {rw}x{rh} differs from left {lw}x{lh}; stereo views must match')
        if self.bytes_io['stereo']:
            left, order = to_u8('left', left_frame)
            right, right_order = to_u8('right', right_frame)
            if not np.array_equal(order, right_order):
                right = np.ascontiguousarray(right[..., ::-1])
            left_out, right_out = self._run_bytes('stereo', [left, right], order,
                                                  ('derained_left', 'derained_right'), clock, timings)
            if not np.array_equal(order, right_order):
                right_out = np.ascontiguousarray(right_out[..., ::-1])
            outputs = {'derained_left': from_u8(left_out, left_frame, self._out('derained_left', left_frame)),
                       'derained_right': from_u8(right_out, right_frame,
                                                 self._out('derained_right', right_frame))}
            clock.mark('post')
            return outputs
        left = to_rgb_chw('left', left_frame)
        right = to_rgb_chw('right', right_frame)
        plan = self._plan('stereo', (left.shape[1], left.shape[2]))
        left_name, right_name = self._io['stereo'][0]
        left_out, right_out = self._run('stereo', {left_name: fit(left, plan), right_name: fit(right, plan)},
                                        ('derained_left', 'derained_right'), clock, timings)
        outputs = {'derained_left': from_rgb_chw(unfit(left_out, plan), left_frame,
                                                 self._out('derained_left', left_frame)),
                   'derained_right': from_rgb_chw(unfit(right_out, plan), right_frame,
                                                  self._out('derained_right', right_frame))}
        clock.mark('post')
        return outputs

    def _out(self, output: str, like: ImageFrame) -> np.ndarray | None:
        """The buffer an output is written into (from the transport), or None (a new array)."""
        if self._allocate is None:
            return None
        return self._allocate(output, like.data.shape, like.data.dtype)

    def latency_summary(self) -> dict[str, dict[str, float]]:
        """Rolling p50/p95/p99/max per stage."""
        return {stage: window.summary() for stage, window in self.windows.items()}

    def describe(self) -> dict[str, dict[str, str]]:
        """``describe()`` of every engine, by role."""
        return {role: engine.describe() for role, engine in self.engines.items()}

    def set_registration(self, spec: RegistrationSpec) -> None:
        """New registration settings (live parameter change); the next set uses them."""
        self.registrar.set_spec(spec)

    def set_camera_info(self, stream: str, k: tuple[float, ...], height: int, width: int) -> None:
        """A camera's intrinsics (from its camera_info): the extrinsics registration needs both."""
        if stream in ('rgb', 'thermal'):
            self.registrar.set_intrinsics(stream, k, height, width)

    def registration_status(self) -> dict[str, str]:
        """The registration in use and the thermal coverage of the RGB frame (diagnostics)."""
        return self.registrar.describe()

    def reset_state(self) -> None:
        """Forget what earlier frames taught it (the automatic thermal range): a new recording starts as a
        fresh pipeline would, while the engines stay loaded (the fleet reuses one pipeline across bags)."""
        self.thermal.reset()

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()

    def __enter__(self) -> DerainPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Derained:
    """The derained RGB handed to the fusion: bytes from a uint8 engine or a float tensor."""

    u8: np.ndarray | None = None      # (1, H, W, 3) in ``order``
    order: np.ndarray | None = None
    chw: np.ndarray | None = None     # (3, H, W) float RGB in [0, 1]

    def as_u8(self) -> tuple[np.ndarray, np.ndarray]:
        if self.u8 is not None:
            return self.u8, self.order
        rgb = np.clip(np.rint(self.chw * np.float32(255.0)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(rgb.transpose(1, 2, 0))[None], RGB_ORDER

    def as_chw(self) -> np.ndarray:
        if self.chw is not None:
            return self.chw
        rgb = self.u8[0][..., self.order]  # the order is its own inverse (identity or R<->B)
        return rgb.transpose(2, 0, 1).astype(np.float32) * np.float32(1.0 / 255.0)


def _resize_bytes(array: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize a ``(1, H, W[, C])`` uint8/uint16 array (engine limits on a uint8-I/O engine)."""
    image = array[0]
    resized = cv2.resize(image, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
    return resized.reshape((1, *hw, *image.shape[2:]))


def _probe_bytes(name: str, height: int, width: int) -> np.ndarray:
    """A probe input of a uint8-I/O engine."""
    if name == THERMAL_INPUT:
        return np.full((1, height, width), 1000, '<u2').view(np.uint8).reshape(1, height, width, 2)
    if name == THERMAL_RANGE:
        return np.array([0.0, 2000.0], np.float32)
    if name == CHANNEL_ORDER:
        return RGB_ORDER.copy()
    return np.full((1, height, width, 3), 128, np.uint8)
