"""Which bags a fleet run derains and where each output goes.

INPUT is a folder, searched recursively for rosbag2 folders (``metadata.yaml``), ``.mcap`` files outside
them and ROS 1 ``.bag`` files, or a text file listing bags (one path per line, ``#`` comments, relative paths
from the list's folder). Each bag's output is ``OUTPUT_DIR/<its path relative to INPUT>``, a rosbag2 folder
(a file's suffix dropped: ``drive/a.mcap`` -> ``drive/a``). Hidden folders (the ``.OUT.partial-PID`` of a
running or killed bag tool among them) and OUTPUT_DIR itself are never searched.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

BAG_FILE_SUFFIXES = ('.mcap', '.bag')


@dataclass(frozen=True)
class Fingerprint:
    """What identifies an input's content: its size and newest modification time, or a sha256."""

    size: int
    mtime_ns: int
    sha256: str = ''

    def matches(self, record: Mapping[str, Any]) -> bool:
        if self.sha256 and record.get('sha256'):
            return self.sha256 == record['sha256'] and self.size == record.get('size')
        return self.size == record.get('size') and self.mtime_ns == record.get('mtime_ns')


@dataclass(frozen=True)
class FleetJob:
    """One bag to derain."""

    input: str
    output: str
    relative: str
    fingerprint: Fingerprint

    def as_record(self) -> dict[str, Any]:
        return {'input': self.input, 'output': self.output, 'relative': self.relative,
                **asdict(self.fingerprint)}


def _bag_files(bag: Path) -> list[Path]:
    return sorted(p for p in bag.rglob('*') if p.is_file()) if bag.is_dir() else [bag]


def fingerprint(bag: Path, checksum: bool = False) -> Fingerprint:
    """Size and newest mtime of a bag's files (sha256 of their contents with ``checksum``)."""
    files = _bag_files(bag)
    stats = [f.stat() for f in files]
    digest = ''
    if checksum:
        hasher = hashlib.sha256()
        for file in files:
            hasher.update(file.name.encode())
            with file.open('rb') as handle:
                for block in iter(lambda: handle.read(1 << 20), b''):
                    hasher.update(block)
        digest = hasher.hexdigest()
    return Fingerprint(sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0), digest)


def find_bags(root: Path, exclude: Path | None = None) -> list[Path]:
    """Every bag under ``root`` (see the module doc), sorted; ``exclude`` (OUTPUT_DIR) is skipped."""
    found: list[Path] = []
    skip = exclude.resolve() if exclude is not None else None

    def walk(folder: Path) -> None:
        if skip is not None and folder.resolve() == skip:
            return
        if (folder / 'metadata.yaml').is_file():
            found.append(folder)
            return
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith('.'):
                continue
            if entry.is_dir():
                walk(entry)
            elif entry.suffix in BAG_FILE_SUFFIXES and entry.is_file():
                found.append(entry)

    walk(root)
    return found


def read_bag_list(list_file: Path) -> list[Path]:
    """The bags named in a text file (relative paths are relative to the file's folder)."""
    bags = []
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        text = line.split('#', 1)[0].strip()
        if not text:
            continue
        path = Path(text).expanduser()
        path = path if path.is_absolute() else list_file.parent / path
        if not path.exists():
            raise ConfigError(f'{list_file}:{number}: bag not found: {text}')
        bags.append(path)
    return bags


def output_name(relative: Path) -> Path:
    """Where a bag's output goes, relative to OUTPUT_DIR: a file's suffix is dropped (rosbag2 folder)."""
    return relative.with_suffix('') if relative.suffix in BAG_FILE_SUFFIXES else relative


def plan_jobs(input_path: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
              checksum: bool = False) -> list[FleetJob]:
    """One job per bag of INPUT (a folder or a list file); ConfigError for nothing found or a clash."""
    given = Path(input_path).expanduser()
    out = Path(output_dir).expanduser()
    if not given.exists():
        raise ConfigError(f'input not found: {given}')
    if given.is_dir() and not (given / 'metadata.yaml').is_file():
        root, bags = given, find_bags(given, exclude=out)
    elif given.is_file() and given.suffix not in BAG_FILE_SUFFIXES:
        bags = read_bag_list(given)
        root = given.parent
    else:  # one bag
        root, bags = given.parent, [given]
    if not bags:
        raise ConfigError(f'no bags under {given} (rosbag2 folders, .mcap or ROS 1 .bag files)')
    jobs: list[FleetJob] = []
    outputs: dict[Path, Path] = {}
    for bag in bags:
        resolved = bag.resolve()
        relative = resolved.relative_to(root.resolve()) if resolved.is_relative_to(root.resolve()) \
            else Path(bag.name)
        target = (out / output_name(relative)).resolve()
        if target in outputs:
            raise ConfigError(f'{bag} and {outputs[target]} would both be written to {target}; give them '
                              'distinct names or folders')
        if target.is_relative_to(resolved) or resolved.is_relative_to(target):
            raise ConfigError(f'the output {target} of {bag} overlaps the input; choose another OUTPUT_DIR')
        outputs[target] = bag
        jobs.append(FleetJob(str(resolved), str(target), relative.as_posix(),
                             fingerprint(resolved, checksum)))
    return jobs


def settings_digest(settings: Mapping[str, Any], models: Iterable[str] = ()) -> str:
    """A short digest of what shapes the outputs (mode, models and their files' size/mtime, parameters,
    topics): a bag finished with other settings is derained again."""
    data: dict[str, Any] = {'settings': dict(settings)}
    for model in sorted(models):
        path = Path(model)
        if path.is_file():
            stat = path.stat()
            data[f'model:{path.name}'] = [stat.st_size, stat.st_mtime_ns]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
