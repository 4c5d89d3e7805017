"""Where models, configs, samples, shared data and caches live, installed or in a checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import ConfigError

PACKAGE_NAME = 'nitedr_ros'
PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent
SAMPLES_DIR = PACKAGE_DIR / 'samples'
DDS_LOOPBACK_CONFIG = PACKAGE_DIR / 'transports' / 'dds' / 'cyclonedds-loopback.xml'


def _share_dirs() -> list[Path]:
    """Candidate ``share/nitedr_ros`` folders: ament index first, then this checkout, then sys.prefix."""
    dirs: list[Path] = []
    try:  # only present where ROS 2 is installed
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory(PACKAGE_NAME)))
    except Exception:  # noqa: BLE001 - any failure just means "not installed through ament"
        pass
    dirs.append(CHECKOUT_DIR)
    dirs.append(Path(sys.prefix) / 'share' / PACKAGE_NAME)
    return dirs


def _find_dir(sub: str, env: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override).expanduser()
    for base in _share_dirs():
        if (base / sub).is_dir():
            return base / sub
    return CHECKOUT_DIR / sub


def models_dir() -> Path:
    """Folder of the shipped ONNX models (``$NITEDR_MODELS_DIR`` overrides)."""
    return _find_dir('models', 'NITEDR_MODELS_DIR')


def config_dir() -> Path:
    """Folder of the shipped parameter YAML files."""
    return _find_dir('config', 'NITEDR_CONFIG_DIR')


def resolve_model(path: str | os.PathLike[str]) -> Path:
    """Resolve a model path: absolute or relative to the working dir, else a name inside ``models_dir()``.

    A model is also found when only other variants of it exist (``x.onnx`` names ``x.u8.onnx``,
    ``x.u8.fp16.onnx`` ...; :mod:`nitedr_ros.engines.variants` picks the file): then the path of the name
    is returned as given, in the folder where its variants are.
    """
    from .engines.variants import existing_variants

    candidate = Path(path).expanduser()
    for place in (candidate, models_dir() / candidate):
        if place.is_file() or (place.suffix == '.onnx' and existing_variants(place)):
            return place
    from .modes import MODES

    hint = f'; {path} is a pipeline mode: use --mode {path}' if str(path) in MODES else ''
    raise ConfigError(f'model file not found: {path} (looked in {Path.cwd()} and {models_dir()}){hint}')


def resolve_config(path: str | os.PathLike[str]) -> Path:
    """Resolve a parameter file: an existing path, else a name inside ``config_dir()``."""
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate
    shipped = config_dir() / candidate
    if shipped.is_file():
        return shipped
    raise ConfigError(f'parameter file not found: {path} (looked in {Path.cwd()} and {config_dir()})')


def engine_cache_dir() -> Path:
    """Default TensorRT engine cache (``~/.ros/nitedr_ros/engines``; ``$ROS_HOME`` respected)."""
    ros_home = Path(os.environ.get('ROS_HOME', Path.home() / '.ros')).expanduser()
    return ros_home / PACKAGE_NAME / 'engines'


def shared_data_dir() -> Path | None:
    """The shared datasets folder (``$NITEDR_DATA`` or ``../shared/data`` beside the checkout), if any."""
    override = os.environ.get('NITEDR_DATA')
    candidates = [Path(override).expanduser()] if override else []
    candidates.append(CHECKOUT_DIR.parent / 'shared' / 'data')
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def benchmark_scratch_dir() -> Path:
    """Where benchmark results go unless a user asks for another folder (never the committed
    ``benchmarks/results``, so a quick run cannot overwrite the reference numbers)."""
    import tempfile

    return Path(tempfile.gettempdir()) / 'nitedr-benchmarks'


def portable_path(path: str | os.PathLike[str]) -> str:
    """A path as reports should record it, without this machine's layout: ``$NITEDR_DATA/...`` inside the
    shared data, relative inside the checkout, a relative path as given, else the file name only."""
    resolved = Path(path).expanduser().resolve()
    data = shared_data_dir()
    if data is not None and resolved.is_relative_to(data.resolve()):
        inside = resolved.relative_to(data.resolve()).as_posix()
        return '$NITEDR_DATA' if inside == '.' else f'$NITEDR_DATA/{inside}'
    if resolved.is_relative_to(CHECKOUT_DIR):
        return resolved.relative_to(CHECKOUT_DIR).as_posix()
    given = Path(path)
    return given.name if given.expanduser().is_absolute() else str(given)


def ensure_writable_output(path: str | os.PathLike[str], force: bool) -> Path:
    """Check an output path before any work: parent writable, no silent overwrite without ``force``."""
    from .errors import OutputExistsError

    out = Path(path).expanduser()
    if out.exists() and not force:
        raise OutputExistsError(out)
    parent = out.parent if str(out.parent) else Path('.')
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f'cannot create output folder {parent}: {exc.strerror}') from exc
    if not os.access(parent, os.W_OK):
        raise ConfigError(f'output folder {parent} is not writable')
    return out
