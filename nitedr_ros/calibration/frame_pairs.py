"""RGB + thermal frame pairs for calibration: from a bag (paired by stamp) or from two image folders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')


def pairs_from_bag(bag: str | Path, topics: Mapping[str, str], count: int,
                   slop_s: float = 0.02) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Up to ``count`` (RGB, thermal) pairs, evenly spread over the bag, each pair stamped within
    ``slop_s``; and the streams' last camera_info messages (``{'rgb': msg, 'thermal': msg}``)."""
    from ..core.clock import header_stamp_ns
    from ..core.images import message_to_frame
    from ..transports.bag.derain import camera_info_topic
    from ..transports.bag.reader import CAMERA_INFO, assign_streams, image_topics, iter_raw, open_bag

    with open_bag(bag) as reader:
        all_topics = {conn.topic: conn.msgtype for conn in reader.connections}
        chosen, _ = assign_streams(image_topics(reader), all_topics, 'nitedr', dict(topics))
        wanted = {item.topic: stream for stream, item in chosen.items()}
        infos = {'/' + camera_info_topic(item.topic).lstrip('/'): stream for stream, item in chosen.items()}
        stamps: dict[str, list[tuple[int, Any]]] = {'rgb': [], 'thermal': []}
        camera_info: dict[str, Any] = {}
        for connection, _, raw in iter_raw(reader, bag=bag):
            if connection.topic in wanted:
                msg = reader.deserialize(raw, connection.msgtype)
                stamps[wanted[connection.topic]].append((header_stamp_ns(msg), msg))
            elif connection.msgtype == CAMERA_INFO and '/' + connection.topic.lstrip('/') in infos:
                camera_info[infos['/' + connection.topic.lstrip('/')]] = reader.deserialize(raw,
                                                                                            connection.msgtype)
    thermal_stamps = np.array([s for s, _ in stamps['thermal']], np.int64)
    matched = []
    for stamp, msg in stamps['rgb']:
        if thermal_stamps.size == 0:
            break
        nearest = int(np.abs(thermal_stamps - stamp).argmin())
        if abs(int(thermal_stamps[nearest]) - stamp) <= slop_s * 1e9:
            matched.append((msg, stamps['thermal'][nearest][1]))
    if not matched:
        raise ConfigError(f'no RGB and thermal frames of {bag} are stamped within {slop_s * 1000:g} ms of '
                          f'each other ({len(stamps["rgb"])} RGB, {len(stamps["thermal"])} thermal frames); '
                          'check the topics (--topic) or widen --slop')
    picks = np.unique(np.linspace(0, len(matched) - 1, min(count, len(matched))).round().astype(int))
    pairs = [(message_to_frame('rgb', matched[i][0]).data, message_to_frame('thermal', matched[i][1]).data)
             for i in picks]
    return [(_rgb(a), np.ascontiguousarray(b)) for a, b in pairs], camera_info


def _rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise ConfigError(f'image folder not found: {folder}')
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def pairs_from_folders(rgb_dir: str | Path, thermal_dir: str | Path,
                       count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of same-named images (else the n-th with the n-th); thermal read unchanged (16-bit kept)."""
    rgb_files, thermal_files = _images(Path(rgb_dir)), _images(Path(thermal_dir))
    common = sorted(set(rgb_files) & set(thermal_files))
    if common:
        names = [(rgb_files[n], thermal_files[n]) for n in common]
    elif len(rgb_files) == len(thermal_files) and rgb_files:
        names = list(zip(rgb_files.values(), thermal_files.values()))
    else:
        raise ConfigError(f'cannot pair the images of {rgb_dir} ({len(rgb_files)}) and {thermal_dir} '
                          f'({len(thermal_files)}): give them the same names, or the same number in order')
    picks = np.unique(np.linspace(0, len(names) - 1, min(count, len(names))).round().astype(int))
    pairs = []
    for index in picks:
        rgb_path, thermal_path = names[index]
        rgb = cv2.imread(str(rgb_path), cv2.IMREAD_COLOR)
        thermal = cv2.imread(str(thermal_path), cv2.IMREAD_UNCHANGED)
        if rgb is None or thermal is None:
            raise ConfigError(f'cannot read {rgb_path if rgb is None else thermal_path}')
        pairs.append((cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), thermal))
    return pairs
