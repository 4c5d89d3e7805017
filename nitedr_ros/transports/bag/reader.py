"""Reading rosbag2 (sqlite3, mcap) and ROS 1 bags with rosbags, with errors that name the problem.

Also finds the image topics of a bag and assigns them to the node's input streams (explicit ``--topic``
choices first, then the node's own topic names, then names that say left/right/thermal).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.topics import STREAM_TOPICS
from ...errors import NitedrError
from ...modes import MODE_STREAMS

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)

_STREAM_HINTS: dict[str, re.Pattern[str]] = {
    'thermal': re.compile(r'(thermal|lwir|infra|flir|(^|[/_])ir($|[/_]))', re.IGNORECASE),
    'left': re.compile(r'left', re.IGNORECASE),
    'right': re.compile(r'right', re.IGNORECASE),
}


class BagError(NitedrError):
    """A bag that cannot be read or used: names the bag and the problem."""


@dataclass(frozen=True)
class ImageTopic:
    """An image topic of a bag."""

    topic: str
    msgtype: str
    count: int

    @property
    def compressed(self) -> bool:
        return self.msgtype == COMPRESSED_IMAGE

    def describe(self) -> str:
        return f'{self.topic} ({self.msgtype.rsplit("/", 1)[-1]}, {self.count} messages)'


def bag_location(path: Path) -> Path:
    """Accept a rosbag2 folder, its metadata.yaml, a storage file inside it, a bare .mcap or a ROS 1 .bag."""
    if path.name == 'metadata.yaml':
        return path.parent
    if path.is_file() and path.suffix in ('.db3', '.mcap') and (path.parent / 'metadata.yaml').is_file():
        return path.parent
    return path


@contextmanager
def open_bag(path: str | Path, *, default_typestore: Any = None) -> Iterator[Any]:
    """An open ``rosbags.highlevel.AnyReader`` on ``path``, or a BagError naming what is wrong."""
    from rosbags.highlevel import AnyReader

    given = Path(path).expanduser()
    if not given.exists():
        raise BagError(f'input bag not found: {given}')
    bag = bag_location(given)
    if bag.is_dir() and not (bag / 'metadata.yaml').is_file():
        raise BagError(f'{bag} is not a rosbag2 folder (no metadata.yaml) and not a ROS 1 .bag file')
    if default_typestore is None:
        from rosbags.typesys import Stores, get_typestore

        default_typestore = get_typestore(Stores.ROS2_JAZZY)
    try:
        reader = AnyReader([bag], default_typestore=default_typestore)
        reader.open()
    except NitedrError:
        raise
    except Exception as exc:
        raise BagError(f'cannot read bag {given}: {_reason(exc)}') from exc
    try:
        mismatches = storage_type_mismatches(reader)
        if mismatches:
            topic, declared, stored, file = mismatches[0]
            raise BagError(f'bag {bag} contradicts itself: metadata.yaml declares {topic} as {declared}, but '
                           f'its storage file {file} records {stored}; fix the type in metadata.yaml (or '
                           're-record the bag)')
        yield reader
    finally:
        with suppress(Exception):  # closing a broken bag must not hide the real error
            reader.close()


def storage_type_mismatches(reader: Any) -> list[tuple[str, str, str, str]]:
    """``(topic, type in metadata.yaml, type in the storage file, file name)`` for each rosbag2 topic whose
    metadata and storage disagree (an edited or mixed-up metadata.yaml); empty for ROS 1 bags."""
    found = []
    for bag_reader in getattr(reader, 'readers', ()):
        storages = getattr(getattr(bag_reader, 'storage', None), 'storages', None)
        if not storages:
            continue
        declared = {conn.topic: conn.msgtype for conn in getattr(bag_reader, 'connections', ())}
        for storage in storages:
            for conn in getattr(storage, 'connections', ()) or ():
                if conn.topic in declared and declared[conn.topic] != conn.msgtype:
                    found.append((conn.topic, declared[conn.topic], conn.msgtype,
                                  Path(getattr(storage, 'path', '?')).name))
    return found


def _reason(exc: BaseException) -> str:
    text = ' '.join(str(arg) for arg in exc.args) if exc.args else ''
    return f'{type(exc).__name__}: {text}'.rstrip(': ') if text else type(exc).__name__


def iter_raw(reader: Any, connections: Sequence[Any] | None = None, bag: str | Path = '') \
        -> Iterator[tuple[Any, int, bytes]]:
    """``(connection, record_time_ns, raw)`` in record-time order; a truncated or corrupt bag -> BagError."""
    iterator = reader.messages(connections=connections) if connections is not None else reader.messages()
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise BagError(f'bag {bag or "input"} is corrupt or truncated: {_reason(exc)}') from exc
        yield item


def deserialize(reader: Any, raw: bytes, connection: Any) -> Any:
    """One message, or a BagError naming the topic and type."""
    try:
        return reader.deserialize(raw, connection.msgtype)
    except Exception as exc:
        raise BagError(f'cannot decode a {connection.msgtype} message on {connection.topic}: '
                       f'{_reason(exc)}') from exc


def image_topics(reader: Any) -> list[ImageTopic]:
    """Every sensor_msgs/Image and CompressedImage topic of the bag, by topic name."""
    found: dict[str, ImageTopic] = {}
    for connection in reader.connections:
        if connection.msgtype in IMAGE_TYPES:
            previous = found.get(connection.topic)
            count = connection.msgcount + (previous.count if previous else 0)
            found[connection.topic] = ImageTopic(connection.topic, connection.msgtype, count)
    return sorted(found.values(), key=lambda item: item.topic)


def _normalized(topic: str) -> str:
    return '/' + topic.strip('/')


def assign_streams(topics: Sequence[ImageTopic], all_topics: Mapping[str, str], mode: str,
                   explicit: Mapping[str, str],
                   namespace: str = '/') -> tuple[dict[str, ImageTopic], list[str]]:
    """Choose the bag topic of each stream the mode needs; returns (stream -> topic, how each was chosen).

    ``all_topics`` maps every topic of the bag to its type (to name a wrong type clearly); ``explicit``
    holds the user's ``stream=topic`` choices.
    """
    if mode not in MODE_STREAMS:
        raise BagError(f'unknown pipeline mode {mode!r}; choose one of {", ".join(MODE_STREAMS)}')
    needed = MODE_STREAMS[mode]
    unknown = sorted(set(explicit) - set(STREAM_TOPICS))
    if unknown:
        raise BagError(f'unknown stream {unknown[0]!r} in --topic; '
                       f'streams are {", ".join(STREAM_TOPICS)}')
    by_name = {_normalized(item.topic): item for item in topics}
    types_by_name = {_normalized(name): msgtype for name, msgtype in all_topics.items()}
    listing = ', '.join(item.describe() for item in topics) or 'none'
    chosen: dict[str, ImageTopic] = {}
    notes: list[str] = []
    for stream, topic in explicit.items():
        name = _normalized(topic)
        if name not in types_by_name:
            raise BagError(f'topic {topic} (--topic {stream}=...) is not in the bag; image topics: {listing}')
        if name not in by_name:
            raise BagError(f'topic {topic} has type {types_by_name[name]}, not sensor_msgs/msg/Image or '
                           'CompressedImage')
        chosen[stream] = by_name[name]
        notes.append(f'{stream} = {by_name[name].describe()} (given)')
    if not topics:
        raise BagError(f'the bag has no image topics (sensor_msgs/msg/Image or CompressedImage); its topics: '
                       f'{", ".join(sorted(all_topics)) or "none"}')
    prefix = '' if namespace.strip('/') == '' else '/' + namespace.strip('/')
    for stream in needed:
        if stream in chosen:
            continue
        default = f'{prefix}/{STREAM_TOPICS[stream]}'
        for candidate in (default, default + '/compressed'):
            if candidate in by_name:
                chosen[stream] = by_name[candidate]
                notes.append(f'{stream} = {by_name[candidate].describe()} (node default name)')
                break
    free = [item for item in topics if item not in chosen.values()]
    for stream in needed:
        if stream in chosen:
            continue
        if stream in _STREAM_HINTS:
            matches = [item for item in free if _STREAM_HINTS[stream].search(item.topic)]
        else:  # rgb: whatever does not look like another stream
            matches = [item for item in free if not any(h.search(item.topic) for h in _STREAM_HINTS.values())]
        if len(matches) == 1:
            chosen[stream] = matches[0]
            free.remove(matches[0])
            notes.append(f'{stream} = {matches[0].describe()} (auto-detected from the topic name)')
        elif len(matches) > 1:
            names = ', '.join(item.topic for item in matches)
            raise BagError(f'several image topics could be the {stream} stream ({names}); '
                           f'choose one with --topic {stream}=TOPIC')
        else:
            hint = ' or --mode single' if mode == 'nitedr' and stream == 'thermal' else ''
            raise BagError(f'no image topic for the {stream} stream (mode {mode}); image topics: {listing}; '
                           f'choose one with --topic {stream}=TOPIC{hint}')
    return {stream: chosen[stream] for stream in needed}, notes
