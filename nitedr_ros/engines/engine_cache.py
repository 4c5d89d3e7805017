"""TensorRT engine cache: key, file lock, atomic writes and the build-or-load decision.

Nothing here imports TensorRT. The TensorRT calls live in a thin toolkit object
(:class:`nitedr_ros.engines.tensorrt_toolkit.TensorRTToolkit`) passed in, so the lifecycle is testable with
a fake. An engine is specific to its key: ONNX sha256 and file name, TensorRT version, GPU name and compute
capability, precision, optimisation profile and builder settings. Files in the cache directory::

    <stem>.<sha12>.trt<version>.sm<cc>.<precision>.<digest8>.engine   serialized plan
    <same>.engine.json                                              sidecar: key, build time, plan sha256
    <same>.engine.lock                                              fcntl lock: one builder at a time
    timing.trt<version>.sm<cc>.cache                                 shared timing cache

Loading without the lock is safe because files only ever appear by ``os.replace``.

Pruning: after a successful build, still under the lock, engines of the same ONNX file name (stem) for the
same GPU compute capability with another key are removed with their sidecars and lock files, so a changed
profile or a new ONNX does not leave 100+ MB plans behind forever (``prune=False`` keeps them). Two
processes that share one cache directory but build the same model with different settings would therefore
replace each other's engine on every start: give them separate ``engine_cache_dir`` or ``engine_files``.

Explicit engine files (``PipelineConfig.engine_files``, ``get(..., engine_path=...)``): the plan is used
at the given path, its sidecar ``<file>.json`` beside it, its lock ``<file>.lock``; the timing cache stays in
the cache directory, and nothing is ever pruned there. Policy:

- no file yet, or ``force_rebuild``: built into that path (needs the ONNX);
- a sidecar whose key matches: loaded;
- a sidecar with another key: rebuilt into that path when the ONNX is available (the sidecar proves this
  package wrote the file); without the ONNX, :class:`EngineFileError` naming the differing fields;
- no sidecar (e.g. written by ``trtexec``): loaded as given with a warning (nothing to check against);
  a plan that cannot be deserialized is :class:`EngineFileError`, never overwritten.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from ..errors import BackendUnavailableError, ConfigError
from ..fileio import write_bytes_atomic
from .cuda import DeviceIdentity
from .options import BuildSettings

LOG = logging.getLogger('nitedr_ros.engines')

KEY_FORMAT = 1
_HASH_CHUNK = 1 << 20
# Key fields an engine file can be checked against without its ONNX (plan-only deployment).
_FIELDS_WITHOUT_ONNX = ('tensorrt_version', 'gpu_name', 'compute_capability',
                        *(f.name for f in fields(BuildSettings) if f.name != 'precision'))


class EngineBuildError(BackendUnavailableError):
    """TensorRT could not parse or build a model (or create its builder/runtime); the message says why."""


class EngineFileError(BackendUnavailableError):
    """An explicit engine file that cannot be used as given (and cannot be rebuilt here)."""


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine file depends on; any difference means a rebuild: the model, TensorRT, the GPU
    and every field of :class:`BuildSettings`. The sidecar stores it flat (:meth:`to_dict`)."""

    onnx_name: str
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    settings: BuildSettings
    key_format: int = KEY_FORMAT

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != 'settings'}
        data.update(self.settings.to_dict())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineKey:
        identity = {f.name: data[f.name] for f in fields(cls) if f.name != 'settings' and f.name in data}
        return cls(settings=BuildSettings.from_dict(data), **identity)

    @property
    def precision(self) -> str:
        return self.settings.precision

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def filename(self) -> str:
        stem = self.onnx_name[:-5] if self.onnx_name.endswith('.onnx') else self.onnx_name
        sm = self.compute_capability.replace('.', '')
        return (f'{stem}.{self.onnx_sha256[:12]}.trt{self.tensorrt_version}.sm{sm}.{self.precision}.'
                f'{self.digest[:8]}.engine')


@dataclass
class BuildOutput:
    """What a toolkit build returns: the serialized plan and the updated timing cache."""

    plan: bytes
    timing_cache: bytes | None = None


class EngineToolkit(Protocol):
    """The TensorRT calls the cache needs (real: TensorRTToolkit; tests: a fake)."""

    version: str

    def build(self, onnx_path: Path, settings: BuildSettings, timing_cache: bytes | None) -> BuildOutput:
        """Parse the ONNX and build a serialized engine; raise on failure."""

    def deserialize(self, plan: bytes) -> Any | None:
        """An engine object, or None when the plan cannot be used."""


@dataclass
class CachedEngine:
    """An engine ready to use, where it came from and why."""

    engine: Any
    path: Path
    key: EngineKey
    source: str  # 'cache' | 'built' | 'file' (explicit engine file loaded as given)
    reason: str
    build_seconds: float = 0.0
    sidecar: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_sha256(path: Path) -> str:
    """sha256 of an ONNX file and, when present, its external-data file ``<name>.data``."""
    digest = hashlib.sha256()
    for part in (path, path.with_name(path.name + '.data')):
        if part.is_file():
            with open(part, 'rb') as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path, *, timeout_s: float | None = None, poll_s: float = 0.2,
              log: logging.Logger = LOG, what: str = 'this engine') -> Iterator[None]:
    """Exclusive ``fcntl.flock`` on ``path``; logs while waiting for another holder, optional timeout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, 'a+b')  # noqa: SIM115 - held open for the lifetime of the lock
    try:
        started = time.monotonic()
        next_note = started
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if timeout_s is not None and now - started >= timeout_s:
                    raise BackendUnavailableError(
                        f'timed out after {timeout_s:.0f} s waiting for {path} '
                        f'(another process is building {what})') from None
                if now >= next_note:
                    log.info('waiting for %s: another process is building %s', path, what)
                    next_note = now + 30.0
                time.sleep(poll_s)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar JSON, or None when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def changed_fields(stored: dict[str, Any], wanted: dict[str, Any], fields: tuple[str, ...] | None = None
                   ) -> list[str]:
    """Key fields whose values differ (all fields of both, or only ``fields``)."""
    names = fields if fields is not None else tuple(set(stored) | set(wanted))
    return sorted(k for k in names if stored.get(k) != wanted.get(k))


def stale_reason(engine_path: Path, sidecar: dict[str, Any] | None, key: EngineKey) -> str | None:
    """Why a cached engine cannot be used as is (None: it matches and may be loaded)."""
    if not engine_path.is_file():
        return 'no cached engine'
    if sidecar is None:
        return 'sidecar missing or unreadable'
    stored = sidecar.get('key')
    if stored != key.to_dict():
        if isinstance(stored, dict):
            return f'cache key differs ({", ".join(changed_fields(stored, key.to_dict()))})'
        return 'sidecar has no key'
    size = sidecar.get('engine_bytes')
    if size is not None and engine_path.stat().st_size != size:
        return 'engine file size differs from its sidecar (truncated or replaced)'
    return None


class EngineCache:
    """Builds or loads engines in ``directory`` for one device and one TensorRT toolkit."""

    def __init__(self, directory: str | os.PathLike[str], toolkit: EngineToolkit, device: DeviceIdentity, *,
                 lock_timeout_s: float | None = None, poll_s: float = 0.2, prune: bool = True,
                 log: logging.Logger = LOG) -> None:
        self.directory = Path(directory).expanduser()
        self.toolkit = toolkit
        self.device = device
        self.lock_timeout_s = lock_timeout_s
        self.poll_s = poll_s
        self.prune = prune
        self.log = log

    def key_for(self, onnx_path: Path, settings: BuildSettings) -> EngineKey:
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise ConfigError(f'ONNX model not found: {onnx_path}')
        return self._key(onnx_path.name, onnx_sha256(onnx_path), settings)

    def _key(self, onnx_name: str, sha256: str, settings: BuildSettings) -> EngineKey:
        major, minor = self.device.compute_capability
        return EngineKey(onnx_name=onnx_name, onnx_sha256=sha256, tensorrt_version=str(self.toolkit.version),
                         gpu_name=self.device.name, compute_capability=f'{major}.{minor}', settings=settings)

    def engine_path(self, key: EngineKey) -> Path:
        return self.directory / key.filename

    @staticmethod
    def sidecar_path(engine_path: Path) -> Path:
        return engine_path.with_name(engine_path.name + '.json')

    @staticmethod
    def lock_path(engine_path: Path) -> Path:
        return engine_path.with_name(engine_path.name + '.lock')

    def timing_cache_path(self) -> Path:
        return self.directory / f'timing.trt{self.toolkit.version}.sm{self.device.sm}.cache'

    def get(self, onnx_path: str | os.PathLike[str], settings: BuildSettings, *,
            force_rebuild: bool = False, engine_path: str | os.PathLike[str] | None = None) -> CachedEngine:
        """Load the matching cached engine, or build it (once across processes) and cache it.

        ``engine_path``: an explicit engine file instead of the cache's name (policy in the module doc).
        """
        onnx_path = Path(onnx_path)
        key = self.key_for(onnx_path, settings)
        explicit = engine_path is not None
        engine_path = Path(engine_path).expanduser() if explicit else self.engine_path(key)
        sidecar_path = self.sidecar_path(engine_path)
        if explicit and not force_rebuild and engine_path.is_file() and read_sidecar(sidecar_path) is None:
            return self.load_file(engine_path, settings, onnx_path=onnx_path)
        seen_build_id = None
        if force_rebuild:
            reason = 'forced rebuild'
            seen = read_sidecar(sidecar_path)
            seen_build_id = seen.get('build_id') if seen else None
        else:
            sidecar = read_sidecar(sidecar_path)
            reason = stale_reason(engine_path, sidecar, key)
            if reason == 'no cached engine' and not explicit:
                reason = self._why_not_cached(key, engine_path)
            if reason is None:
                engine, reason = self._load(engine_path, sidecar)
                if engine is not None:
                    self.log.info('loaded TensorRT engine %s from the cache', engine_path)
                    return CachedEngine(engine, engine_path, key, 'cache', 'cached engine matches the key',
                                        sidecar=sidecar or {})
        with file_lock(self.lock_path(engine_path), timeout_s=self.lock_timeout_s, poll_s=self.poll_s,
                       log=self.log, what=engine_path.name):
            # Another process may have built it while this one waited for the lock.
            sidecar = read_sidecar(sidecar_path)
            fresh = stale_reason(engine_path, sidecar, key) is None
            if fresh and force_rebuild:
                fresh = sidecar is not None and sidecar.get('build_id') != seen_build_id
            if fresh:
                engine, why = self._load(engine_path, sidecar)
                if engine is not None:
                    self.log.info('loaded TensorRT engine %s built by another process', engine_path)
                    return CachedEngine(engine, engine_path, key, 'cache',
                                        'built by another process meanwhile', sidecar=sidecar or {})
                reason = why
            built = self._build(onnx_path, settings, key, engine_path, sidecar_path, reason)
            if self.prune and not explicit:
                self._prune(key, engine_path)
            return built

    def load_file(self, engine_path: str | os.PathLike[str], settings: BuildSettings, *,
                  onnx_path: Path | None = None) -> CachedEngine:
        """Load an explicit engine file as given, without its ONNX (or without a sidecar to check).

        A sidecar's key is checked on the fields that do not need the ONNX; a mismatch or a plan that
        cannot be deserialized is :class:`EngineFileError`. Nothing is built or written.
        """
        engine_path = Path(engine_path).expanduser()
        if not engine_path.is_file():
            raise EngineFileError(f'engine file not found: {engine_path} '
                                  f'(and no ONNX model to build it from)')
        sidecar = read_sidecar(self.sidecar_path(engine_path))
        wanted = self._key(onnx_path.name if onnx_path else '', '', settings)
        if sidecar is not None and isinstance(sidecar.get('key'), dict):
            changed = changed_fields(sidecar['key'], wanted.to_dict(), _FIELDS_WITHOUT_ONNX)
            if changed:
                details = ', '.join(f'{k} {sidecar["key"].get(k)!r} != {wanted.to_dict().get(k)!r}'
                                    for k in changed)
                raise EngineFileError(f'engine file {engine_path} was built for other settings ({details}); '
                                      f'rebuild it (nitedr build-engine --params ...) or give its ONNX model')
            stored = {**wanted.to_dict(), **sidecar['key']}
            key = EngineKey.from_dict(stored)
            reason = 'explicit engine file, sidecar matches the settings'
        else:
            key = wanted
            reason = 'explicit engine file without sidecar: loaded as given, settings not checked'
            self.log.warning('%s has no sidecar %s: loading it as given; its profile and TensorRT version '
                             'are not checked', engine_path, self.sidecar_path(engine_path).name)
        engine, why = self._load(engine_path, sidecar)
        if engine is None:
            raise EngineFileError(f'cannot use engine file {engine_path}: {why}')
        self.log.info('loaded TensorRT engine file %s', engine_path)
        return CachedEngine(engine, engine_path, key, 'file', reason, sidecar=sidecar or {})

    def _siblings(self, key: EngineKey, keep: Path) -> list[Path]:
        """Engines in the cache directory of the same ONNX file name and GPU, other than ``keep``."""
        stem = key.onnx_name[:-5] if key.onnx_name.endswith('.onnx') else key.onnx_name
        sm = key.compute_capability.replace('.', '')
        pattern = re.compile(re.escape(stem) + r'\.[0-9a-f]{12}\.trt[^/]+\.sm' + re.escape(sm)
                             + r'\.fp(16|32)\.[0-9a-f]{8}\.engine')
        if not self.directory.is_dir():
            return []
        return [p for p in sorted(self.directory.glob('*.engine')) if p != keep and pattern.fullmatch(p.name)]

    def _why_not_cached(self, key: EngineKey, engine_path: Path) -> str:
        """'no cached engine', naming what differs where the cache holds this model with other settings."""
        notes = []
        for sibling in self._siblings(key, engine_path):
            stored = (read_sidecar(self.sidecar_path(sibling)) or {}).get('key')
            if isinstance(stored, dict):
                notes.append(f'{sibling.name} differs in {", ".join(changed_fields(stored, key.to_dict()))}')
        if not notes:
            return 'no cached engine'
        return 'no cached engine for these settings (' + '; '.join(notes) + ')'

    def _prune(self, key: EngineKey, keep: Path) -> list[Path]:
        """Remove engines of the same ONNX stem and GPU with other keys (their sidecars and locks too).

        Skips an engine whose lock another process holds (it is being rebuilt right now).
        """
        removed = []
        for candidate in self._siblings(key, keep):
            lock = self.lock_path(candidate)
            if lock.exists() and not _lock_free(lock):
                self.log.info('not pruning %s: another process holds its lock', candidate.name)
                continue
            for path in (candidate, self.sidecar_path(candidate), lock):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            removed.append(candidate)
            self.log.info('pruned old engine %s (same model and GPU, other key)', candidate.name)
        return removed

    def _load(self, engine_path: Path, sidecar: dict[str, Any] | None) -> tuple[Any | None, str]:
        try:
            plan = engine_path.read_bytes()
        except OSError as exc:
            return None, f'cannot read engine file ({exc.strerror})'
        expected = (sidecar or {}).get('engine_sha256')
        if expected and hashlib.sha256(plan).hexdigest() != expected:
            return None, 'engine file does not match the sha256 in its sidecar (corrupt)'
        try:
            engine = self.toolkit.deserialize(plan)
        except BackendUnavailableError:
            raise  # the toolkit itself is unusable (no runtime): rebuilding would not help
        except Exception as exc:  # noqa: BLE001 - any deserialisation failure means rebuild
            return None, f'deserialization failed ({exc.__class__.__name__}: {exc})'
        if engine is None:
            return None, 'deserialization returned no engine (corrupt or built by another TensorRT)'
        return engine, ''

    def _build(self, onnx_path: Path, settings: BuildSettings, key: EngineKey, engine_path: Path,
               sidecar_path: Path, reason: str) -> CachedEngine:
        self.log.warning('building TensorRT engine %s from %s (%s); this can take minutes',
                         engine_path.name, onnx_path, reason)
        timing_path = self.timing_cache_path()
        timing = None
        with contextlib.suppress(OSError):
            timing = timing_path.read_bytes()
        started = time.monotonic()
        output = self.toolkit.build(onnx_path, settings, timing)
        seconds = time.monotonic() - started
        if output is None or not output.plan:
            raise BackendUnavailableError(f'TensorRT could not build an engine from {onnx_path}')
        plan = bytes(output.plan)
        sidecar = {
            'key': key.to_dict(),
            'key_digest': key.digest,
            'onnx_path': str(onnx_path),
            'built_at': _dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds'),
            'build_seconds': round(seconds, 3),
            'build_id': uuid.uuid4().hex,
            'engine_bytes': len(plan),
            'engine_sha256': hashlib.sha256(plan).hexdigest(),
            'reason': reason,
            'onnx_metadata': _onnx_metadata(onnx_path),
        }
        write_bytes_atomic(engine_path, plan, fsync=True)
        write_bytes_atomic(sidecar_path, (json.dumps(sidecar, indent=2, sort_keys=True) + '\n').encode(),
                           fsync=True)
        if output.timing_cache:
            try:
                write_bytes_atomic(timing_path, bytes(output.timing_cache), fsync=True)
            except OSError as exc:  # a lost timing cache only slows the next build
                self.log.warning('could not save the timing cache %s: %s', timing_path, exc)
        engine = self.toolkit.deserialize(plan)
        if engine is None:
            raise BackendUnavailableError(f'TensorRT built {engine_path} but could not deserialize it')
        self.log.info('built TensorRT engine %s in %.1f s', engine_path, seconds)
        return CachedEngine(engine, engine_path, key, 'built', reason, seconds, sidecar)


def _lock_free(path: Path) -> bool:
    """Whether nobody holds the ``flock`` on ``path`` right now."""
    try:
        with open(path, 'a+b') as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True
    except OSError:
        return False


def _onnx_metadata(onnx_path: Path) -> dict[str, str]:
    """The ONNX file's metadata_props for the sidecar (engines loaded without their ONNX read them there)."""
    from .onnx_info import read_metadata_props

    try:
        return read_metadata_props(onnx_path)
    except Exception as exc:  # noqa: BLE001 - the sidecar is still useful without them
        LOG.warning('could not read the metadata of %s for the engine sidecar: %s', onnx_path, exc)
        return {}
