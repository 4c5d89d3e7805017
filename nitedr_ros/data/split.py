"""Deterministic train/validation split of a dataset, recorded as JSON.

The order is ``sha256(f'{seed}:{name}')`` of each sample name, so the split depends only on the names, the
seed and the fraction: not on file-system order, numpy's RNG or the platform. The first
``round(fraction * n)`` names in that order (at least one, at most n - 1) are the validation part.
The split of the shared RoadScene-rain training set (seed 0, fraction 0.15) is recorded in
``splits/roadscene_rain_train.json`` beside this module; a test checks that it is reproduced.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..fileio import write_text_atomic
from .imageio import DatasetError
from .layouts import ImageSet

DEFAULT_VAL_FRACTION = 0.15
DEFAULT_SEED = 0
RECORDED_SPLITS_DIR = Path(__file__).resolve().parent / 'splits'


@dataclass(frozen=True)
class Split:
    """Names of the training and validation samples, and how they were chosen."""

    train: list[str]
    val: list[str]
    seed: int
    val_fraction: float
    method: str = 'sha256(seed:name) order, first round(fraction*n) -> val'

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Record the split as JSON (temporary name + rename)."""
        return write_text_atomic(path, self.to_json() + '\n')


def split_names(names: Sequence[str], val_fraction: float = DEFAULT_VAL_FRACTION,
                seed: int = DEFAULT_SEED) -> Split:
    """Split sample names into train and validation parts (both sorted by name)."""
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f'validation fraction must be between 0 and 1, got {val_fraction}')
    unique = sorted(set(names))
    if len(unique) < 2:
        raise DatasetError(f'cannot split {len(unique)} sample(s) into train and validation parts')
    n_val = min(max(1, round(val_fraction * len(unique))), len(unique) - 1)
    order = sorted(unique, key=lambda n: hashlib.sha256(f'{seed}:{n}'.encode()).hexdigest())
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return Split(train, val, seed, val_fraction)


def split_dataset(dataset: ImageSet, val_fraction: float = DEFAULT_VAL_FRACTION,
                  seed: int = DEFAULT_SEED) -> tuple[ImageSet, ImageSet, Split]:
    """(train subset, validation subset, split record) of a dataset."""
    split = split_names(dataset.names, val_fraction, seed)
    return dataset.subset(split.train), dataset.subset(split.val), split


def read_split(path: str | os.PathLike[str]) -> Split:
    """A split recorded by :meth:`Split.write`."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        return Split(list(data['train']), list(data['val']), int(data['seed']), float(data['val_fraction']),
                     str(data.get('method', Split.method)))
    except FileNotFoundError:
        raise DatasetError(f'split file not found: {p}') from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f'{p} is not a split record: {exc}') from exc
