"""Writing rosbag2 output safely: a temporary name renamed into place only when the bag is complete.

``OUT`` is checked before any work: it must not be, contain or lie inside an input bag; an existing OUT
needs ``--force``, and even then only a file, an empty folder or a rosbag2 folder (``metadata.yaml`` and
storage files, nothing else) is replaced, never a folder holding anything else. The bag is written to a
hidden folder beside it (``.OUT.partial-<pid>/OUT``, so the storage file inside already carries the final
name), and renamed to ``OUT`` after the writer has closed. Any error or interrupt (SIGTERM too, through
the CLI) removes the partial bag, so ``OUT`` is never a half bag; an interrupt while the bag is being closed
and renamed is held back until the last safe point and then aborts. Partial folders of OUT left by a process
that was killed outright are removed by the next run. A full disk is a one-line :class:`BagError` (checked
before the run, every few hundred messages while writing, and for the write errors it causes). Original
topics of a ROS 1 bag are converted to ROS 2 message definitions.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...fileio import remove_stale
from ...interrupts import deferred_interrupts
from ...paths import ensure_writable_output
from .reader import BagError, bag_location

STORAGES = ('sqlite3', 'mcap')
# what a rosbag2 folder holds besides metadata.yaml: storage files, their sqlite companions, compressed files
BAG_FILE_SUFFIXES = ('.db3', '.db3-shm', '.db3-wal', '.db3-journal', '.mcap', '.zstd')
# free space kept in reserve while writing: below it the run stops with a clear error before the disk fills
DISK_RESERVE_BYTES = 64 << 20
# write errors that mean "no room": no space, file too large for the filesystem or a ulimit, quota exceeded
NO_ROOM_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def ros2_typestore() -> Any:
    """Message definitions for messages this project writes (ROS 2 Jazzy)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def output_typestore(reader: Any) -> Any:
    """Typestore for OUT: a ROS 2 input keeps its own definitions (types and hashes preserved); a ROS 1 input
    is converted to ROS 2 (Jazzy) definitions; types this project adds come from Jazzy where missing."""
    from rosbags.typesys import Stores, get_typestore

    jazzy = ros2_typestore()
    store = get_typestore(Stores.EMPTY)
    if reader is not None and reader.is2:
        store.register(dict(reader.typestore.fielddefs))
    store.register({name: defs for name, defs in jazzy.fielddefs.items() if name not in store.fielddefs})
    return store


def storage_of(bag: str | os.PathLike[str]) -> str:
    """The storage plugin of an input bag: 'mcap' when it holds .mcap files, else 'sqlite3' (ROS 1 too)."""
    path = Path(bag).expanduser()
    if path.suffix == '.mcap' or (path.is_dir() and any(path.glob('*.mcap'))):
        return 'mcap'
    if path.name == 'metadata.yaml' and any(path.parent.glob('*.mcap')):
        return 'mcap'
    return 'sqlite3'


def check_apart(out: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]]) -> None:
    """BagError when the output path is an input bag, lies inside one or contains one (resolved paths)."""
    final = Path(out).expanduser().resolve()
    for given in inputs:
        path = Path(given).expanduser()
        bag = bag_location(path).resolve() if path.exists() else path.resolve()
        if final == bag:
            raise BagError(f'output {out} is the input bag {given}; choose another output path')
        if final.is_relative_to(bag):
            raise BagError(f'output {out} lies inside the input bag {bag}; writing there would change the '
                           'input: choose a path outside it')
        if bag.is_relative_to(final):
            raise BagError(f'output {out} contains the input bag {bag}; replacing it would delete the input: '
                           'choose another output path')


def _is_bag_file(entry: Path) -> bool:
    return entry.is_file() and not entry.is_symlink() and (
        entry.name == 'metadata.yaml' or entry.name.endswith(BAG_FILE_SUFFIXES))


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """BagError unless ``path`` may be replaced by ``--force``: nothing there, a file (or a link), an empty
    folder, or a rosbag2 folder (``metadata.yaml`` plus storage files and nothing else)."""
    target = Path(path)
    if target.is_symlink() or not target.exists() or not target.is_dir():
        return
    entries = sorted(target.iterdir())
    if not entries:
        return
    if (target / 'metadata.yaml').is_file():
        others = [entry for entry in entries if not _is_bag_file(entry)]
        if not others:
            return
        raise BagError(f'--force replaces a rosbag2 folder only when it holds nothing else, but {target} '
                       f'also holds {_listing(others)}; remove it yourself or choose another output path')
    raise BagError(f'{target} is a folder that is not a rosbag2 bag (no metadata.yaml; it holds '
                   f'{_listing(entries)}); --force replaces only a file, an empty folder or a rosbag2 '
                   'folder: remove it yourself or choose another output path')


def _mib(size: int) -> str:
    return f'{size / (1 << 20):.0f} MiB'


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes / contexts, outermost first."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _listing(entries: Sequence[Path]) -> str:
    names = [entry.name + ('/' if entry.is_dir() else '') for entry in entries[:3]]
    more = f' and {len(entries) - 3} more' if len(entries) > 3 else ''
    return ', '.join(names) + more


class AtomicBagWriter:
    """A rosbags rosbag2 ``Writer`` on a temporary path; ``commit()`` renames it to the final path.

    ``protect``: input bags the output must stay apart from (see :func:`check_apart`); ``force`` replaces an
    existing output only where :func:`check_replaceable` allows it.
    """

    def __init__(self, out: str | os.PathLike[str], *, storage: str = 'sqlite3', force: bool = False,
                 protect: Sequence[str | os.PathLike[str]] = ()) -> None:
        if storage not in STORAGES:
            raise BagError(f'unknown storage {storage!r}; choose {" or ".join(STORAGES)}')
        final = Path(out).expanduser()
        check_apart(final, protect)
        if final.suffix == '.bag':
            raise BagError(f'output {final} ends in .bag, which readers take for a ROS 1 bag file; '
                           'choose a folder name without it')
        self.final = ensure_writable_output(final, force)
        check_replaceable(self.final)
        self.storage = storage
        prefix = f'.{self.final.name}.partial-'
        self.removed_stale = remove_stale(self.final.parent, prefix)  # left by runs that were killed
        self._staging = self.final.parent / f'{prefix}{os.getpid()}'
        self.path = self._staging / self.final.name
        self.writer: Any = None

    def free_bytes(self) -> int:
        """Free space on the filesystem the bag is written to."""
        folder = self._staging if self._staging.exists() else self.final.parent
        return shutil.disk_usage(folder).free

    def check_space(self, needed_bytes: int, what: str) -> None:
        """BagError when fewer than ``needed_bytes`` + the reserve are free where the bag is written."""
        free = self.free_bytes()
        if free < needed_bytes + DISK_RESERVE_BYTES:
            raise BagError(f'not enough disk space for {self.final}: {what} needs about '
                           f'{_mib(needed_bytes)} and {_mib(free)} is free on {self.final.parent} (keeping '
                           f'{_mib(DISK_RESERVE_BYTES)} in reserve); free some space or write elsewhere')

    def explain(self, exc: BaseException) -> BagError | None:
        """A one-line BagError for a write failure caused by a full disk or a file-size limit, else None."""
        for cause in _chain(exc):
            if isinstance(cause, OSError) and cause.errno in NO_ROOM_ERRNOS:
                reason = os.strerror(cause.errno).lower()
            elif isinstance(cause, sqlite3.OperationalError) and any(
                    word in str(cause).lower() for word in ('disk', 'full')):
                reason = f'sqlite3 says "{cause}"'
            else:
                continue
            with contextlib.suppress(OSError):
                reason += f'; {_mib(self.free_bytes())} free on {self.final.parent}'
            return BagError(f'writing {self.final} failed: {reason}. The partial bag was removed; free some '
                            'space (or raise the file size limit) and run again')
        return None

    def open(self) -> Any:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if self._staging.exists():
            shutil.rmtree(self._staging)
        try:
            self._staging.mkdir(parents=True)
            plugin = StoragePlugin.MCAP if self.storage == 'mcap' else StoragePlugin.SQLITE3
            self.writer = Writer(self.path, version=8, storage_plugin=plugin)
            self.writer.open()
        except BaseException:  # an interrupt while opening leaves nothing behind either
            self.abort()
            raise
        return self.writer

    def commit(self) -> Path:
        """Close the writer and move the finished bag to its final name (replacing it if forced).

        SIGINT/SIGTERM are held back meanwhile: one that arrived while the writer closed aborts before the
        rename (OUT stays as it was); one after that lets the rename finish (OUT is complete)."""
        with deferred_interrupts() as deferred:
            try:
                self.writer.close()
            except BaseException as exc:
                self.writer = None
                explained = self.abort(exc)
                if explained is not None:
                    raise explained from exc
                raise
            self.writer = None
            if deferred.pending():
                self.abort()
                raise deferred.interrupt()
            if self.final.exists() or self.final.is_symlink():
                try:
                    check_replaceable(self.final)  # again: it may have changed while the bag was written
                except BagError:
                    self.abort()
                    raise
                if self.final.is_dir() and not self.final.is_symlink():
                    shutil.rmtree(self.final)
                else:
                    self.final.unlink()
            os.replace(self.path, self.final)
            shutil.rmtree(self._staging, ignore_errors=True)
        return self.final

    def abort(self, exc: BaseException | None = None) -> BagError | None:
        """Drop the partial bag; the final path is left as it was. With the error that ended the run:
        returns the one-line BagError to raise instead when it was a full disk (:meth:`explain`)."""
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None
        shutil.rmtree(self._staging, ignore_errors=True)
        return self.explain(exc) if exc is not None else None

    def __enter__(self) -> AtomicBagWriter:
        self.open()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
            return
        explained = self.abort(exc)
        if explained is not None:
            raise explained from exc


class OriginalTopicCopier:
    """Copies every connection of the input bag to the output writer (ROS 1 -> ROS 2 where needed)."""

    def __init__(self, reader: Any, writer: Any, typestore: Any) -> None:
        from rosbags.convert.converter import create_connections_converters

        conversion_log = io.StringIO()
        try:
            with contextlib.redirect_stdout(conversion_log):  # rosbags prints what it migrates
                self._connections, self._converters = create_connections_converters(
                    reader.connections, typestore, reader, writer)
        except Exception as exc:
            raise BagError(f'cannot copy the input topics to ROS 2: {exc} (the bag carries no definition of '
                           'that type and ROS 2 Jazzy does not define it either)') from exc
        self.notes = [line.strip() for line in conversion_log.getvalue().splitlines() if line.strip()]
        self.topics = {conn.topic for conn in self._connections.values()}
        self._writer = writer

    def write(self, connection: Any, record_ns: int, raw: bytes) -> None:
        out = self._connections[(connection.id, connection.owner)]
        try:
            data = self._converters[connection.msgtype](raw)
        except Exception as exc:
            raise BagError(f'cannot convert a {connection.msgtype} message on {connection.topic}: {exc}') \
                from exc
        self._writer.write(out, record_ns, data)


class Ros2PayloadConverter:
    """Raw messages of the input bag as ROS 2 CDR payloads (ROS 1 input converted, ROS 2 passed through).

    ``typestore`` is where the ROS 2 definitions live (``output_typestore(reader)``); ROS 1 types it lacks are
    added from the bag's own definitions.
    """

    def __init__(self, reader: Any, typestore: Any) -> None:
        self.reader = reader
        self.typestore = typestore
        self._converters: dict[str, Any] = {}
        self._cache: dict[str, object] = {}

    def msgtype(self, connection: Any) -> str:
        from rosbags.convert.converter import STATIC_MSGTYPE_RENAMES

        return STATIC_MSGTYPE_RENAMES.get(connection.msgtype, connection.msgtype)

    def prepare(self, connection: Any) -> str:
        """Make sure the connection's ROS 2 type is in the typestore; returns its name."""
        if self.reader.is2:
            return connection.msgtype
        if connection.msgtype not in self._converters:
            self._converters[connection.msgtype] = self._make(connection)
        return self.msgtype(connection)

    def __call__(self, connection: Any, raw: bytes) -> bytes | memoryview:
        if self.reader.is2:
            return raw
        converter = self._converters.get(connection.msgtype)
        if converter is None:
            converter = self._converters[connection.msgtype] = self._make(connection)
        try:
            return converter(raw)
        except Exception as exc:
            raise BagError(f'cannot convert a {connection.msgtype} message on {connection.topic} to ROS 2: '
                           f'{exc}') from exc

    def _make(self, connection: Any) -> Any:
        from rosbags.convert.converter import generate_message_converter
        from rosbags.typesys import get_types_from_msg

        dst = self.msgtype(connection)
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                if dst not in self.typestore.fielddefs:
                    definition = self.reader.typestore.generate_msgdef(connection.msgtype, ros_version=2)[0]
                    types = get_types_from_msg(definition, dst)
                    types.pop('std_msgs/msg/Header', None)
                    self.typestore.register(types)
                return generate_message_converter(self.reader.typestore, self.typestore, connection.msgtype,
                                                  dst, self._cache, src_is2=False, dst_is2=True)
            except Exception as exc:
                raise BagError(f'cannot convert {connection.msgtype} ({connection.topic}) to ROS 2: {exc}') \
                    from exc
