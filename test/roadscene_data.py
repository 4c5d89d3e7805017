"""Tiny dataset folders for tests: RoadScene-rain (smooth clean images, streaky rainy ones, an IR image)
and an MSRS-style rain-free visible/infrared set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_roadscene(root: Path, count: int = 3, size: tuple[int, int] = (40, 52), seed: int = 0) -> Path:
    """Write ``count`` image triples (``train/Vis/input``, ``Vis/target``, ``Inf/input``) under ``root``."""
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        clean = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 3)
        rainy = clean.copy()
        rainy[:, (i + 2)::6] = np.minimum(255, rainy[:, (i + 2)::6].astype(int) + 90)
        infrared = cv2.GaussianBlur(rng.integers(0, 256, (h, w)).astype(np.uint8), (0, 0), 2)
        for sub, image in (('Vis/input', rainy), ('Vis/target', clean), ('Inf/input', infrared)):
            folder = root / 'train' / sub
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f'{i:03d}.png'), image)
    return root


def make_visible_infrared(root: Path, count: int = 4, size: tuple[int, int] = (40, 52),
                          seed: int = 0) -> Path:
    """An MSRS-style rain-free set: ``vi/NNN.png`` (RGB) and ``ir/NNN.png`` (grey) under ``root``."""
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        visible = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 3)
        infrared = cv2.GaussianBlur(rng.integers(0, 256, (h, w)).astype(np.uint8), (0, 0), 2)
        for sub, image in (('vi', visible), ('ir', infrared)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / sub / f'{i:03d}.png'), image)
    return root
