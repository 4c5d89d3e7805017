"""Reading and writing dataset images (numpy/cv2): RGB float32 in [0, 1], errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import ConfigError
from ..fileio import write_bytes_atomic

IMAGE_SUFFIXES: tuple[str, ...] = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


class DatasetError(ConfigError):
    """A dataset folder or file that cannot be used (missing, unreadable, no counterpart), naming it."""


def is_image_file(path: Path) -> bool:
    """True for a regular file with an image suffix (hidden files are skipped)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith('.')


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; a missing folder is a DatasetError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f'image folder not found: {folder}')
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """An image as uint8 RGB (H, W, 3); grey images are replicated, alpha dropped, 16-bit scaled."""
    image = _read(path)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def read_gray(path: str | os.PathLike[str]) -> np.ndarray:
    """An image as uint8 single channel (H, W): grey as is, colour converted with BT.601 luma (cv2)."""
    image = _read(path)
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    return np.ascontiguousarray(image)


def _read(path: str | os.PathLike[str]) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f'image file not found: {p}')
    image = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f'cannot decode image file: {p}')
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DatasetError(f'unsupported pixel type {image.dtype} in {p}')
    return image


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1] (float input is returned as float32 unchanged)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32, copy=False)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 with rounding and clipping (uint8 input is returned unchanged)."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_rgb(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an RGB (or grey) image atomically (temporary name + rename); float input is taken as [0, 1]."""
    out = Path(path)
    data = to_uint8(image)
    if data.ndim == 3 and data.shape[2] == 3:
        data = cv2.cvtColor(data, cv2.COLOR_RGB2BGR)
    elif data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    ok, encoded = cv2.imencode(out.suffix or '.png', data)
    if not ok:
        raise DatasetError(f'cannot encode image for {out}')
    return write_bytes_atomic(out, encoded.tobytes())
