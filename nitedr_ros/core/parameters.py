"""THE parameter schema of the node (every transport declares from it), validation, and the YAML loader.

Each :class:`ParamSpec` has a ROS type, default, description, optional inclusive range or choices,
``read_only`` (fixed after start) and ``dynamic`` (applied live by the core: slop, max input age, IR
timeout, pass-through, thresholds, enable, debug timing). Names are dotted (``sync.slop``); in YAML they
nest (``sync: {slop: 0.015}``).

- :func:`validate` checks a whole parameter set (types, ranges, choices, cross-field rules) and returns a
  complete, coerced copy, or raises :class:`~nitedr_ros.errors.ConfigError` naming every problem.
- :func:`check_changes` validates a live change set against the current values as a whole: a read-only
  name or any invalid value rejects the entire set with a reason, so nothing is ever half-applied.
- :func:`load_parameter_file` reads ``/**: ros__parameters:`` (or ``<node name>: ros__parameters:``) YAML,
  flattens nested keys to dotted names and validates them; ``qos_overrides.*`` and ``use_sim_time`` are
  ROS's own and are returned separately.
- :func:`pipeline_config` turns parameters into the pipeline's ``PipelineConfig``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engines.options import BACKENDS, ENGINE_IO, PRECISIONS
from ..errors import ConfigError
from ..modelspec import CONFIGS, networks_for_role
from ..modes import MODES, ROLES, STREAMS
from ..pipeline.registration_spec import IDENTITY_3X3, NO_EXTRINSICS, REGISTRATION_MODES, registration_problem

TYPES = ('bool', 'integer', 'double', 'string', 'integer_array', 'double_array', 'string_array')
RELIABILITIES = ('best_effort', 'reliable', 'system_default')
DEFAULT_NODE_NAME = 'nitedr_node'
# rain diagnostics thresholds: 8-bit levels of derain residual (benchmarks/results/rain_intensity.md)
RAIN_WARN_INTENSITY = 11.5   # 1 streak per 1000 px: camera degraded
RAIN_ERROR_INTENSITY = 43.7  # 4 streaks per 1000 px: camera blinded
ROS_OWN_PREFIXES = ('qos_overrides.',)
ROS_OWN_NAMES = ('use_sim_time',)
SINGLE_NETWORKS = networks_for_role('derain')  # what single mode's derain role can run


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: ROS type, default, description and constraints."""

    name: str
    type: str
    default: Any
    description: str
    range: tuple[float, float] | None = None  # inclusive; for arrays it applies to every element
    choices: tuple[str, ...] = ()
    dynamic: bool = False  # the core applies a live change
    read_only: bool = field(default=True)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f'{self.name}: unknown type {self.type}')
        if self.dynamic and self.read_only:
            object.__setattr__(self, 'read_only', False)

    @property
    def constraints(self) -> str:
        """Plain-English constraints (ParameterDescriptor.additional_constraints)."""
        parts = []
        if self.range is not None:
            parts.append(f'range [{self.range[0]:g}, {self.range[1]:g}]')
        if self.choices:
            parts.append(f'one of: {", ".join(self.choices)}')
        parts.append('changeable at run time' if self.dynamic else 'read-only after start')
        return '; '.join(parts)


def _p(name: str, type_: str, default: Any, description: str, **kwargs: Any) -> ParamSpec:
    return ParamSpec(name, type_, default, description, **kwargs)


SCHEMA: tuple[ParamSpec, ...] = (
    # what runs
    _p(
        'mode',
        'string',
        'nitedr',
        'pipeline mode: nitedr = derain RGB + fuse thermal IR; stereo = derain '
        'left/right; single = derain RGB; full = all four cameras (nitedr + stereo)',
        choices=MODES,
    ),
    _p(
        'configuration',
        'string',
        'realtime',
        'model configuration used for shipped default models (<network>_<configuration>.onnx)',
        choices=CONFIGS,
    ),
    _p(
        'network',
        'string',
        '',
        f"network of the derain role in single mode ('' = the mode's default; {', '.join(SINGLE_NETWORKS)})",
        choices=('', *SINGLE_NETWORKS),
    ),
    _p('models.derain', 'string', '', "derain model: ONNX path or a name in models/ ('' = shipped default)"),
    _p(
        'models.fusion',
        'string',
        '',
        "fusion model (nitedr, full modes): ONNX path or name ('' = shipped default)",
    ),
    _p(
        'models.stereo',
        'string',
        '',
        "stereo model (stereo, full modes): ONNX path or name ('' = shipped default)",
    ),
    _p(
        'backend',
        'string',
        'auto',
        'inference backend; auto = TensorRT if a CUDA device and tensorrt exist, '
        'else ONNX Runtime CUDA, else ONNX Runtime CPU',
        choices=BACKENDS,
    ),
    _p(
        'precision',
        'string',
        'fp16',
        'engine precision (TensorRT builds strongly typed from <model>.fp16.onnx)',
        choices=PRECISIONS,
    ),
    _p('engine_cache_dir', 'string', '', "TensorRT engine cache folder ('' = ~/.ros/nitedr_ros/engines)"),
    _p('force_engine_rebuild', 'bool', False, 'rebuild TensorRT engines even when a matching cache exists'),
    *(
        _p(
            f'engine_files.{role}',
            'string',
            '',
            f'TensorRT plan file of the {role} role, loaded as given (or built into it when missing); '
            "'' = the engine cache",
        )
        for role in ROLES
    ),
    _p('workspace_mb', 'integer', 1024, 'TensorRT builder workspace limit in MiB', range=(16, 65536)),
    _p(
        'optimization_level',
        'integer',
        3,
        'TensorRT builder optimisation level (0 = fastest build ... 5 = most tactics)',
        range=(0, 5),
    ),
    _p('gpu_id', 'integer', 0, 'CUDA device index the engines run on', range=(0, 15)),
    _p('build_only', 'bool', False, 'build (or load) the engines, then exit 0 without subscribing'),
    _p('threads', 'integer', 0, 'ONNX Runtime / torch CPU threads (0 = the runtime default)', range=(0, 256)),
    _p(
        'engine_io',
        'string',
        'auto',
        'engine input/output: uint8 = the model variant that takes and returns uint8 images (conversion '
        'inside the engine, 4x fewer bytes to the GPU); float = float32 tensors made on the host; '
        'auto = uint8 where the model has that variant',
        choices=ENGINE_IO,
    ),
    _p('torch.cuda_graphs', 'bool', True, 'torch-cuda: capture a CUDA graph per input size and replay it'),
    _p('torch.compile', 'bool', False, 'torch-cuda: torch.compile the model (slow first frame per size)'),
    _p('torch.channels_last', 'bool', True, 'torch-cuda: channels-last memory format'),
    _p(
        'profile.min_hw',
        'integer_array',
        [128, 128],
        'TensorRT optimisation profile minimum [H, W]',
        range=(1, 16384),
    ),
    _p(
        'profile.opt_hw',
        'integer_array',
        [720, 1280],
        'TensorRT optimisation profile optimum [H, W]',
        range=(1, 16384),
    ),
    _p(
        'profile.max_hw',
        'integer_array',
        [1088, 1920],
        'TensorRT optimisation profile maximum [H, W]',
        range=(1, 16384),
    ),
    _p(
        'thermal_range',
        'double_array',
        [0.0, 0.0],
        'raw thermal counts mapped to [0, 1] as [low, high]; [0, 0] = automatic (running percentiles)',
        range=(0.0, 1.0e9),
    ),
    _p(
        'registration.mode',
        'string',
        'identity',
        'thermal-to-RGB registration before fusion: identity = pre-registered (thermal resized to the RGB '
        'size); homography = registration.homography; extrinsics = from both camera_info, '
        'registration.extrinsics and registration.plane_distance_m',
        choices=REGISTRATION_MODES,
        dynamic=True,
    ),
    _p(
        'registration.homography',
        'double_array',
        list(IDENTITY_3X3),
        '3x3 homography, row by row, mapping thermal pixels to RGB pixels (nitedr calibrate-thermal '
        'measures it)',
        dynamic=True,
    ),
    _p(
        'registration.plane_distance_m',
        'double',
        20.0,
        'extrinsics mode: distance of the plane (in front of the RGB camera) the thermal frame is mapped '
        'through; scenes far compared with the baseline barely depend on it',
        range=(0.5, 100000.0),
        dynamic=True,
    ),
    _p(
        'registration.extrinsics',
        'double_array',
        list(NO_EXTRINSICS),
        'extrinsics mode: [tx, ty, tz, qx, qy, qz, qw], the RGB optical frame in the thermal optical frame: '
        'p_thermal = R(q) p_rgb + t, metres (nitedr calibrate-thermal measures it with intrinsics)',
        dynamic=True,
    ),
    _p(
        'rain.warn_intensity',
        'double',
        RAIN_WARN_INTENSITY,
        'rain diagnostics WARN (camera degraded) at this smoothed rain intensity: mean |luminance change| of '
        'the derain, 8-bit levels (benchmarks/results/rain_intensity.md calibrates it)',
        range=(0.0, 255.0),
        dynamic=True,
    ),
    _p(
        'rain.error_intensity',
        'double',
        RAIN_ERROR_INTENSITY,
        'rain diagnostics ERROR (camera blinded) at this smoothed rain intensity, 8-bit levels',
        range=(0.0, 255.0),
        dynamic=True,
    ),
    # inputs and outputs
    _p(
        'image_transport',
        'string',
        'raw',
        'input transport: raw sensor_msgs/Image, or compressed (<topic>/compressed, decoded with OpenCV)',
        choices=('raw', 'compressed'),
    ),
    _p('publish_camera_info', 'bool', True, 'republish each input camera_info with the output header'),
    _p(
        'enable',
        'bool',
        True,
        'process and publish; false drops synchronized sets (counted as disabled)',
        dynamic=True,
    ),
    _p(
        'passthrough_on_error',
        'bool',
        True,
        'on an inference error publish the input unchanged (diagnostics ERROR); false drops the set',
        dynamic=True,
    ),
    _p(
        'max_input_age_ms',
        'double',
        200.0,
        'drop sets older than this on the node clock before processing '
        '(0 = never; never while sim time has not started)',
        range=(0.0, 600000.0),
        dynamic=True,
    ),
    _p(
        'ir_timeout_ms',
        'double',
        0.0,
        'fusion modes: no current thermal frame (arrived, and stamped within this long) -> publish derained '
        'RGB without fusion (diagnostics WARN) until it returns; 0 = automatic: 4 thermal periods as '
        'measured, at least 500 ms (flat-field pauses)',
        range=(0.0, 600000.0),
        dynamic=True,
    ),
    # synchronization
    _p(
        'sync.mode',
        'string',
        'approximate',
        'approximate: ApproximateTime with slop and exact groups; exact: all stamps equal',
        choices=('approximate', 'exact'),
    ),
    _p(
        'sync.slop',
        'double',
        0.015,
        'maximum stamp spread of a set in seconds, inclusive',
        range=(0.0, 10.0),
        dynamic=True,
    ),
    _p(
        'sync.queue_size', 'integer', 5, 'messages held per input while waiting for partners', range=(1, 1000)
    ),
    _p(
        'sync.exact_groups',
        'string_array',
        ['left,right'],
        'streams that must carry identical stamps, one comma-separated group per entry '
        '(hardware-triggered stereo); groups with inactive streams are ignored',
    ),
    _p(
        'sync.min_interval_ms',
        'double',
        15.0,
        'lower bound of the stamp spacing of every input (ms): lets '
        'a set out without waiting for the next frame; keep below the fastest camera period (0 = off)',
        range=(0.0, 10000.0),
    ),
    # diagnostics
    _p(
        'diagnostics.period',
        'double',
        1.0,
        'seconds between /diagnostics publications (node clock)',
        range=(0.05, 3600.0),
    ),
    _p(
        'diagnostics.expected_rate_hz',
        'double',
        30.0,
        'expected input rate per stream (0 = not checked)',
        range=(0.0, 10000.0),
        dynamic=True,
    ),
    _p(
        'diagnostics.rate_tolerance',
        'double',
        0.2,
        'WARN when an input rate is outside expected x (1 +- tolerance)',
        range=(0.0, 1.0),
        dynamic=True,
    ),
    _p(
        'diagnostics.latency_warn_ms',
        'double',
        100.0,
        'WARN when end-to-end latency p95 exceeds this',
        range=(0.0, 600000.0),
        dynamic=True,
    ),
    _p(
        'diagnostics.latency_error_ms',
        'double',
        250.0,
        'ERROR when end-to-end latency p95 exceeds this',
        range=(0.0, 600000.0),
        dynamic=True,
    ),
    _p('diagnostics.window_size', 'integer', 100, 'samples per latency percentile window', range=(1, 100000)),
    _p('diagnostics.hardware_id', 'string', '', "hardware_id of the statuses ('' = backend and device)"),
    _p('debug.publish_timing', 'bool', True, 'publish ~/debug/*_ms Float64 timing values', dynamic=True),
    # QoS (REP-2003: sensor-data subscriptions, reliable publishers; qos_overrides.* also apply)
    _p(
        'qos.input.reliability',
        'string',
        'best_effort',
        'image/camera_info subscriptions reliability',
        choices=RELIABILITIES,
    ),
    _p('qos.input.depth', 'integer', 1, 'image/camera_info subscriptions history depth', range=(1, 1000)),
    _p(
        'qos.output.reliability',
        'string',
        'reliable',
        'image/camera_info publishers reliability',
        choices=RELIABILITIES,
    ),
    _p('qos.output.depth', 'integer', 1, 'image/camera_info publishers history depth', range=(1, 1000)),
)
SCHEMA_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in SCHEMA}
DYNAMIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in SCHEMA if spec.dynamic)


def descriptor_fields(spec: ParamSpec) -> dict[str, Any]:
    """What a ROS ``ParameterDescriptor`` of this parameter holds, ROS-free: ``type`` (the
    ``ParameterType`` constant name), ``description``, ``additional_constraints``, ``read_only`` and
    ``integer_range`` / ``floating_point_range`` as ``(from, to)`` (scalars only; rclpy checks them)."""
    fields: dict[str, Any] = {
        'type': f'PARAMETER_{spec.type.upper()}',
        'description': spec.description,
        'additional_constraints': spec.constraints,
        'read_only': spec.read_only,
    }
    if spec.range is not None and spec.type == 'integer':
        fields['integer_range'] = (int(spec.range[0]), int(spec.range[1]))
    elif spec.range is not None and spec.type == 'double':
        fields['floating_point_range'] = (float(spec.range[0]), float(spec.range[1]))
    return fields


def parameters_markdown() -> str:
    """``docs/PARAMETERS.md``: every parameter of the schema with its default and constraints (generated:
    ``nitedr info --parameters > docs/PARAMETERS.md``; a test keeps the file equal to this)."""
    lines = ['# Node parameters', '',
             'Generated from `nitedr_ros/core/parameters.py` (the one place parameters and their defaults '
             'are declared) by `nitedr info --parameters`; do not edit by hand. The mode files in `config/` '
             'set only what differs from these defaults. "live" parameters change at run time '
             '(`ros2 param set`); the others are read at start.', '',
             '| parameter | type | default | constraints | description |', '|---|---|---|---|---|']
    for spec in SCHEMA:
        default = spec.default if not isinstance(spec.default, str) else repr(spec.default)
        constraints = spec.constraints.replace('changeable at run time', 'live').replace(
            'read-only after start', 'start')
        lines.append(f'| `{spec.name}` | {spec.type} | `{default}` | {constraints} | '
                     f'{spec.description.replace("|", "/")} |')
    return '\n'.join(lines) + '\n'


def from_ros_value(spec: ParamSpec, value: Any) -> Any:
    """A value as rclpy returns it (arrays may be ``array.array``) in the schema's Python form."""
    return list(value) if spec.type.endswith('_array') and value is not None else value


def defaults() -> dict[str, Any]:
    """Every parameter at its default (fresh copies of list defaults)."""
    return {
        spec.name: list(spec.default) if isinstance(spec.default, list) else spec.default for spec in SCHEMA
    }


def _coerce(spec: ParamSpec, value: Any, strict: bool) -> Any:
    """The value in the spec's type; ``strict`` refuses integers for doubles (rclpy does)."""

    def scalar(kind: str, v: Any) -> Any:
        if kind == 'bool':
            if isinstance(v, bool):
                return v
        elif kind == 'integer':
            if isinstance(v, int) and not isinstance(v, bool):
                return v
        elif kind == 'double':
            if isinstance(v, float) or (not strict and isinstance(v, int) and not isinstance(v, bool)):
                if math.isfinite(float(v)):
                    return float(v)
                raise ConfigError(f'{spec.name}: {v!r} is not a finite number')
        elif kind == 'string' and isinstance(v, str):
            return v
        suffix = (
            ' (write doubles with a decimal point, e.g. 1.0)'
            if kind == 'double' and isinstance(v, int)
            else ''
        )
        raise ConfigError(f'{spec.name}: expected {spec.type}, got {type(v).__name__} {v!r}{suffix}')

    if spec.type.endswith('_array'):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{spec.name}: expected {spec.type}, got {type(value).__name__} {value!r}')
        kind = spec.type[: -len('_array')]
        return [scalar(kind, v) for v in value]
    return scalar(spec.type, value)


def _check_constraints(spec: ParamSpec, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    if spec.range is not None:
        low, high = spec.range
        bad = [v for v in items if not low <= v <= high]
        if bad:
            raise ConfigError(f'{spec.name}: {bad[0]!r} is outside [{low:g}, {high:g}]')
    if spec.choices:
        bad = [v for v in items if v not in spec.choices]
        if bad:
            raise ConfigError(f'{spec.name}: {bad[0]!r} is not one of {", ".join(map(repr, spec.choices))}')


def parse_exact_groups(entries: list[str]) -> list[tuple[str, ...]]:
    """``['left,right']`` -> ``[('left', 'right')]``; ConfigError for unknown or repeated streams."""
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for entry in entries:
        members = tuple(m.strip() for m in entry.split(',') if m.strip())
        unknown = [m for m in members if m not in STREAMS]
        if unknown:
            raise ConfigError(
                f'sync.exact_groups: unknown stream {unknown[0]!r} in {entry!r} '
                f'(streams: {", ".join(STREAMS)})'
            )
        if len(members) < 2 or len(set(members)) != len(members) or seen.intersection(members):
            raise ConfigError(
                f'sync.exact_groups: {entry!r} must name two or more streams, each stream in one group only'
            )
        seen.update(members)
        groups.append(members)
    return groups


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if values['diagnostics.latency_warn_ms'] > values['diagnostics.latency_error_ms']:
        problems.append(
            f'diagnostics.latency_warn_ms ({values["diagnostics.latency_warn_ms"]:g}) must not '
            f'exceed diagnostics.latency_error_ms ({values["diagnostics.latency_error_ms"]:g})'
        )
    if values['rain.warn_intensity'] > values['rain.error_intensity']:
        problems.append(f'rain.warn_intensity ({values["rain.warn_intensity"]:g}) must not exceed '
                        f'rain.error_intensity ({values["rain.error_intensity"]:g})')
    low_high = values['thermal_range']
    if len(low_high) != 2 or not (low_high[0] < low_high[1] or low_high == [0.0, 0.0]):
        problems.append(f'thermal_range must be [low, high] with low < high, or [0.0, 0.0], got {low_high}')
    registration = registration_problem(values['registration.mode'], values['registration.homography'],
                                        values['registration.plane_distance_m'],
                                        values['registration.extrinsics'])
    if registration:
        problems.append(registration)
    for name in ('profile.min_hw', 'profile.opt_hw', 'profile.max_hw'):
        if len(values[name]) != 2:
            problems.append(f'{name} must be [H, W], got {values[name]}')
    if not problems:
        mins, opts, maxs = values['profile.min_hw'], values['profile.opt_hw'], values['profile.max_hw']
        if not all(a <= b <= c for a, b, c in zip(mins, opts, maxs)):
            problems.append(
                f'profile sizes must satisfy min <= opt <= max per axis, got {mins}, {opts}, {maxs}'
            )
    try:
        parse_exact_groups(values['sync.exact_groups'])
    except ConfigError as exc:
        problems.append(str(exc))
    if values['network'] and values['mode'] != 'single':
        problems.append(
            f'network selects the single-mode derain network; mode is {values["mode"]!r} '
            "(leave network '' or use models.*)"
        )
    return problems


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, SCHEMA_BY_NAME, n=1)
    return f'unknown parameter {name!r}' + (f' (did you mean {close[0]!r}?)' if close else '')


def validate(
    values: Mapping[str, Any], *, base: Mapping[str, Any] | None = None, strict_types: bool = False
) -> dict[str, Any]:
    """A complete, coerced parameter set: ``values`` over ``base`` (default: the defaults).

    Raises ConfigError listing every problem (unknown names, types, ranges, choices, cross-field rules).
    """
    merged = dict(base) if base is not None else defaults()
    problems = []
    for name, value in values.items():
        spec = SCHEMA_BY_NAME.get(name)
        if spec is None:
            problems.append(_unknown(name))
            continue
        try:
            coerced = _coerce(spec, value, strict_types)
            _check_constraints(spec, coerced)
            merged[name] = coerced
        except ConfigError as exc:
            problems.append(str(exc))
    if not problems:
        problems = _cross_checks(merged)
    if problems:
        raise ConfigError('invalid parameters: ' + '; '.join(problems))
    return merged


def check_changes(
    current: Mapping[str, Any], changes: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """Validate a live change set as a whole: ``(new complete values, '')`` or ``(None, reason)``."""
    fixed = [
        name
        for name in changes
        if name in SCHEMA_BY_NAME and not SCHEMA_BY_NAME[name].dynamic and changes[name] != current.get(name)
    ]
    if fixed:
        return None, f'read-only after start (restart the node to change): {", ".join(sorted(fixed))}'
    try:
        return validate(changes, base=current), ''
    except ConfigError as exc:
        return None, str(exc)


# -- YAML -------------------------------------------------------------------------------------------------
@dataclass
class ParameterFile:
    """A loaded parameter file: ``values`` (complete, validated), ``given`` (names set in the file) and
    ``ros`` (ROS's own entries: ``use_sim_time``, ``qos_overrides.*``)."""

    path: Path
    values: dict[str, Any]
    given: dict[str, Any]
    ros: dict[str, Any]


def flatten(mapping: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
    """Nested mappings -> dotted names (``{'sync': {'slop': 0.01}}`` -> ``{'sync.slop': 0.01}``)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat


def _node_keys(node_name: str, namespace: str) -> list[str]:
    ns = '/' + namespace.strip('/') if namespace.strip('/') else ''
    full = f'{ns}/{node_name}'
    return [node_name, '/' + node_name, full, full.lstrip('/'), f'/**/{node_name}']


def parse_parameter_document(
    document: Any,
    *,
    node_name: str = DEFAULT_NODE_NAME,
    namespace: str = '',
    source: str = '<yaml>',
    strict_types: bool = True,
) -> ParameterFile:
    """Validate a parsed ``ros__parameters`` document (see :func:`load_parameter_file`)."""
    if not isinstance(document, Mapping):
        raise ConfigError(f'{source}: expected a mapping with "/**:" or "{node_name}:" at the top')
    sections = []
    for key in ['/**', *_node_keys(node_name, namespace)]:
        if key in document and document[key] not in [s for _, s in sections]:
            sections.append((key, document[key]))
    if not sections:
        raise ConfigError(
            f'{source}: no section for this node (expected "/**:" or "{node_name}:"; found '
            f'{", ".join(map(str, document)) or "nothing"})'
        )
    given: dict[str, Any] = {}
    ros: dict[str, Any] = {}
    problems = []
    for key, section in sections:
        params = section.get('ros__parameters') if isinstance(section, Mapping) else None
        if not isinstance(params, Mapping):
            raise ConfigError(f'{source}: section {key!r} has no "ros__parameters:" mapping')
        for name, value in flatten(params).items():
            if name in ROS_OWN_NAMES or name.startswith(ROS_OWN_PREFIXES):
                ros[name] = value
            elif name in SCHEMA_BY_NAME:
                given[name] = value
            else:
                problems.append(_unknown(name))
    if problems:
        raise ConfigError(f'{source}: ' + '; '.join(problems))
    try:
        values = validate(given, strict_types=strict_types)
    except ConfigError as exc:
        raise ConfigError(f'{source}: {exc}') from None
    return ParameterFile(Path(source), values, given, ros)


def load_parameter_file(
    path: str | Path, *, node_name: str = DEFAULT_NODE_NAME, namespace: str = '', strict_types: bool = True
) -> ParameterFile:
    """Read a ROS 2 parameter YAML for this node: ``/**`` first, then the node's own section on top.

    ``strict_types`` (default) refuses integers for double parameters, as rclpy does when declaring them.
    """
    import yaml

    from ..paths import resolve_config

    resolved = resolve_config(path)
    try:
        document = yaml.safe_load(resolved.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'{resolved}: not valid YAML: {exc}') from None
    loaded = parse_parameter_document(
        document, node_name=node_name, namespace=namespace, source=str(resolved), strict_types=strict_types
    )
    loaded.path = resolved
    return loaded


def apply_choices(given: Mapping[str, Any], *, mode: str | None = None, backend: str | None = None,
                  models: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parameters (from a file) with a run's choices on top: ``mode`` (a different mode drops the file's
    ``models.*`` and ``engine_files.*``, which belong to the file's mode), ``backend`` and ``models``
    (role -> path; drops the file's ``engine_files.<role>``, built from the file's model)."""
    values = dict(given)
    if mode:
        if values.get('mode', mode) != mode:
            values = {k: v for k, v in values.items() if not k.startswith(('models.', 'engine_files.'))}
        values['mode'] = mode
    if backend:
        values['backend'] = backend
    for role, path in (models or {}).items():
        values[f'models.{role}'] = path
        values.pop(f'engine_files.{role}', None)  # the file's plan was built from the file's model
    return values


# -- parameters -> pipeline -------------------------------------------------------------------------------
def exact_groups_for(values: Mapping[str, Any], streams: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Synchronizer exact groups for the active streams (``exact`` mode: all streams in one group)."""
    if values['sync.mode'] == 'exact':
        return [streams] if len(streams) > 1 else []
    groups = []
    for group in parse_exact_groups(values['sync.exact_groups']):
        active = tuple(s for s in group if s in streams)
        if len(active) > 1:
            groups.append(active)
    return groups


def engine_options(values: Mapping[str, Any]):
    """THE mapping from node parameters to :class:`~nitedr_ros.engines.options.EngineOptions` (validated
    once there); ``engine_files.*`` are per role and live in the pipeline config."""
    from ..engines.options import BuildSettings, EngineOptions

    build = BuildSettings(precision=values['precision'], profile_min_hw=tuple(values['profile.min_hw']),
                          profile_opt_hw=tuple(values['profile.opt_hw']),
                          profile_max_hw=tuple(values['profile.max_hw']), workspace_mb=values['workspace_mb'],
                          optimization_level=values['optimization_level'])
    return EngineOptions(backend=values['backend'], build=build, threads=values['threads'],
                         device_index=values['gpu_id'], cache_dir=values['engine_cache_dir'],
                         force_rebuild=values['force_engine_rebuild'], io=values['engine_io'],
                         cuda_graphs=values['torch.cuda_graphs'], torch_compile=values['torch.compile'],
                         channels_last=values['torch.channels_last'])


def pipeline_config(values: Mapping[str, Any]):
    """The pipeline's ``PipelineConfig`` for these parameters."""
    from ..modelspec import default_model_filename
    from ..modes import DEFAULT_NETWORKS, MODE_ROLES
    from ..pipeline.config import PipelineConfig

    mode = values['mode']
    models: dict[str, str] = {}
    for role in MODE_ROLES[mode]:
        given = values.get(f'models.{role}', '')
        if given:
            models[role] = given
            continue
        network = DEFAULT_NETWORKS[mode][role][0]
        if role == 'derain' and mode == 'single' and values['network']:
            network = values['network']
        if (network, values['configuration']) != DEFAULT_NETWORKS[mode][role]:
            models[role] = default_model_filename(network, values['configuration'])
    low, high = values['thermal_range']
    engine_files = {
        role: values[f'engine_files.{role}']
        for role in MODE_ROLES[mode]
        if values.get(f'engine_files.{role}', '')
    }
    return PipelineConfig(
        mode=mode,
        models=models,
        engine=engine_options(values),
        engine_files=engine_files,
        thermal_range=None if (low, high) == (0.0, 0.0) else (low, high),
        registration=registration_spec(values),
        latency_window=values['diagnostics.window_size'],
    )


def registration_spec(values: Mapping[str, Any]):
    """The pipeline's registration settings from the ``registration.*`` parameters."""
    from ..pipeline.registration_spec import RegistrationSpec

    return RegistrationSpec(mode=values['registration.mode'],
                            homography=tuple(float(v) for v in values['registration.homography']),
                            plane_distance_m=float(values['registration.plane_distance_m']),
                            extrinsics=tuple(float(v) for v in values['registration.extrinsics']))
