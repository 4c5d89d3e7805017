"""Thin torch wrappers over the numpy datasets: deterministic training patches and validation images.

Item ``i`` of a :class:`PatchDataset` is made only from ``numpy.random.default_rng([seed, i])``, so batch
``s`` (items ``s*B*world + rank*B ...``) is the same whether training runs straight through or resumes
from a checkpoint, and whatever the number of loader workers.

Kinds of items (all float32 tensors in [0, 1], CHW):

* ``derain``: ``rainy``, ``clean`` [3,P,P]. Samples without a rainy image (MSRS/LLVIP visible images) and a
  ``synthetic`` fraction of the others get rain from the renderer (``day``: streaks only; ``night``: night
  exposure + lights + noise, whose target is the noise-free night image). With ``negatives = n`` also
  ``neg_chromatic`` [n,3,P,P] (the input re-coloured to other mean colours) and ``neg_degradation``
  [n,3,P,P] (the clean patch with other rain layers, or blurred) for Rainmer's contrastive term.
* ``fusion``: ``rainy``, ``clean`` [3,P,P], ``infrared`` [1,P,P]. Rain-free visible/infrared sets
  (MSRS/LLVIP ``vi_ir``) have no rainy image: their ``rainy`` is the clean image itself, the visible input
  a perfect stage 1 would hand the fusion network.
* ``stereo``: ``rainy``, ``clean``, ``rainy_right``, ``clean_right`` [3,P,P], ``disparity`` [1,P,P] (left
  view, px) and ``has_disparity`` []: a clean image (or a real stereo pair) gets a synthetic road-scene
  disparity, a synthesised right view and stereo night rain from the renderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from ..data.augment import dihedral, random_crop, random_stereo_flip
from ..data.corpus import MixSource, photometric_jitter
from ..data.imageio import DatasetError
from ..data.layouts import ImageSet
from ..data.rain_renderer import NightRainRenderer, road_disparity, warp_left_to_right
from ..data.rain_styles import STYLES, render_style
from ..modes import ROLES

KINDS = ROLES  # patches for a network of each pipeline role


@dataclass(frozen=True)
class PatchSettings:
    """How training patches are made."""

    patch: int = 64
    seed: int = 0
    synthetic: float = 0.0          # fraction of samples (with a rainy image) that get rendered rain instead
    synthetic_style: str = 'mixed'  # day | night | mixed
    negatives: int = 0              # contrastive negatives per kind (Rainmer)
    augment: bool = True
    max_disparity: float = 0.12     # stereo: largest synthetic disparity, fraction of the patch width


class ImageCache:
    """The images of one or more datasets, read once and kept as uint8 arrays."""

    def __init__(self, sets: Sequence[ImageSet], roles: Sequence[str]) -> None:
        self.entries: list[tuple[ImageSet, int]] = [(s, i) for s in sets for i in range(len(s))]
        if not self.entries:
            raise DatasetError('no training samples: the dataset list is empty')
        self.roles = tuple(roles)
        self._images: dict[int, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, index: int) -> dict[str, np.ndarray]:
        if index not in self._images:
            image_set, i = self.entries[index]
            wanted = [r for r in self.roles if r in image_set.samples[i].files]
            self._images[index] = image_set.load(i, wanted)
        return self._images[index]

    def name(self, index: int) -> str:
        image_set, i = self.entries[index]
        return f'{image_set.root.name}/{image_set.samples[i].name}'


def _chw(image: np.ndarray) -> torch.Tensor:
    array = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


class PatchDataset(torch.utils.data.Dataset):
    """Deterministic random patches for one kind of training (see the module docstring)."""

    LENGTH = 2 ** 31 - 1

    def __init__(self, sets: Sequence[ImageSet], kind: str, settings: PatchSettings,
                 renderer: NightRainRenderer | None = None, mix: Sequence[MixSource] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f'unknown patch kind {kind!r}; choose one of {", ".join(KINDS)}')
        self.mix = tuple(mix or ())
        if self.mix:
            if kind != 'derain':
                raise ValueError('a training mix is for derain networks')
            sets = [source.images for source in self.mix]
            weights = np.array([source.weight for source in self.mix], np.float64)
            self._mix_cumulative = np.cumsum(weights / weights.sum())
        roles = {'derain': ('rainy', 'clean'), 'fusion': ('rainy', 'clean', 'infrared'),
                 'stereo': ('clean', 'clean_right')}[kind]
        self.kind = kind
        self.settings = settings
        self.cache = ImageCache(sets, roles)
        self.renderer = renderer or NightRainRenderer()
        if kind == 'fusion':
            for image_set in sets:
                if 'infrared' not in image_set.roles or 'clean' not in image_set.roles:
                    raise DatasetError(f'fusion training needs visible (clean) + infrared images; '
                                       f'{image_set.root} ({image_set.layout}) has '
                                       f'{", ".join(image_set.roles)}')

    def __len__(self) -> int:
        return self.LENGTH

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.settings.seed, int(index)])
        if self.mix:
            return self._mixed(rng)
        sample = self.cache.get(int(rng.integers(0, len(self.cache))))
        if self.kind == 'stereo':
            return self._stereo(sample, rng)
        if self.kind == 'fusion':
            crop = random_crop(sample, self.settings.patch, rng)
            crop.setdefault('rainy', crop['clean'])  # rain-free sets: the clean image is the visible input
            if self.settings.augment:
                k = int(rng.integers(0, 8))
                crop = {name: dihedral(im, k) for name, im in crop.items()}
            return {name: _chw(im) for name, im in crop.items()}
        return self._derain(sample, rng)

    # ---------------------------------------------------------------- derain
    def _derain(self, sample: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        s = self.settings
        crop = random_crop(sample, s.patch, rng)
        clean = _float(crop['clean'])
        synthetic = 'rainy' not in crop or rng.random() < s.synthetic
        if synthetic:
            rainy, clean = self._render(clean, rng)
        else:
            rainy = _float(crop['rainy'])
        if s.augment:
            k = int(rng.integers(0, 8))
            rainy, clean = dihedral(rainy, k), dihedral(clean, k)
        item = {'rainy': _chw(rainy), 'clean': _chw(clean)}
        if s.negatives:
            item.update(self._negatives(rainy, clean, rng))
        return item

    def _mixed(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A sample of the training mix: a source by its weight, an image of it, then its pair or
        rendered rain of one of its styles; the same photometric jitter on input and target."""
        s = self.settings
        k = int(np.searchsorted(self._mix_cumulative, rng.random(), side='right'))
        source = self.mix[min(k, len(self.mix) - 1)]
        offset = sum(len(m.images) for m in self.mix[:k])
        sample = self.cache.get(offset + int(rng.integers(0, len(source.images))))
        if source.render:
            # render on a crop 1.5 x the patch (streak lengths are relative to it), then crop the patch
            wide = random_crop({'clean': sample['clean']}, (3 * s.patch) // 2, rng)['clean']
            clean = photometric_jitter({'clean': _float(wide)}, rng)['clean']
            style = STYLES[source.styles[int(rng.integers(0, len(source.styles)))]]
            if source.night:
                style = replace(style, night=1.0)
            rendered = render_style(clean, rng, style)
            pair = random_crop({'rainy': rendered.rainy, 'clean': rendered.clean}, s.patch, rng)
        else:
            crop = random_crop(sample, s.patch, rng)
            pair = photometric_jitter({'rainy': _float(crop['rainy']), 'clean': _float(crop['clean'])}, rng)
        rainy, clean = pair['rainy'], pair['clean']
        if s.augment:
            k = int(rng.integers(0, 8))
            rainy, clean = dihedral(rainy, k), dihedral(clean, k)
        item = {'rainy': _chw(rainy), 'clean': _chw(clean)}
        if s.negatives:
            item.update(self._negatives(rainy, clean, rng))
        return item

    def _render(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        style = self.settings.synthetic_style
        if style == 'mixed':
            style = 'night' if rng.random() < 0.5 else 'day'
        if style == 'day':
            return self.renderer.rain_only(clean, rng), clean
        if style == 'night':
            out = self.renderer.render(clean, rng)
            return out.rainy, out.clean
        raise ValueError(f'unknown synthetic rain style {style!r}; choose day, night or mixed')

    def _negatives(self, rainy: np.ndarray, clean: np.ndarray,
                   rng: np.random.Generator) -> dict[str, torch.Tensor]:
        n = self.settings.negatives
        chromatic, degradation = [], []
        mean = rainy.reshape(-1, 3).mean(axis=0) + 1e-3
        for j in range(n):
            target_colour = rng.uniform(0.15, 0.85, 3)
            chromatic.append(np.clip(rainy * (target_colour / mean), 0.0, 1.0))
            if j % 2 == 0:
                degradation.append(self.renderer.rain_only(clean, rng))
            else:
                degradation.append(cv2.GaussianBlur(clean, (0, 0), float(rng.uniform(1.0, 3.0))))
        return {'neg_chromatic': torch.stack([_chw(x) for x in chromatic]),
                'neg_degradation': torch.stack([_chw(x) for x in degradation])}

    # ---------------------------------------------------------------- stereo
    def _stereo(self, sample: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        s = self.settings
        p = s.patch
        if 'clean_right' in sample:  # a real rectified pair: its disparity is unknown
            crop = random_crop(sample, p, rng)
            left, right = _float(crop['clean']), _float(crop['clean_right'])
            disparity, known = np.zeros((p, p), np.float32), False
        else:
            max_d = float(rng.uniform(0.3, 1.0)) * s.max_disparity * p
            wide = random_crop({'clean': sample['clean']}, p + int(np.ceil(max_d)) + 1, rng)['clean']
            wide = _float(wide)
            horizon = float(rng.uniform(0.2, 0.6))
            disp_wide = road_disparity(wide.shape[0], wide.shape[1], max_d, horizon,
                                       far_disparity=float(rng.uniform(0.0, 1.0)))
            right_wide = warp_left_to_right(wide, disp_wide)
            left, right = wide[:p, :p], right_wide[:p, :p]
            disparity, known = disp_wide[:p, :p], True
        pair = self.renderer.render_stereo(left, right, rng, scene_disparity=disparity if known else None)
        images = {'rainy': pair.left.rainy, 'clean': pair.left.clean, 'rainy_right': pair.right.rainy,
                  'clean_right': pair.right.clean, 'disparity': disparity}
        if s.augment:
            # a mirror swaps the views; the disparity map (no right counterpart) is mirrored with them,
            # exact for the row-constant road disparity, whose left and right maps are equal
            images = random_stereo_flip(images, rng)
        item = {k: _chw(v) for k, v in images.items()}
        item['has_disparity'] = torch.tensor(1.0 if known else 0.0)
        return item


def collate(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack the items of a batch key by key."""
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def batch_indices(step: int, batch: int, rank: int = 0, world: int = 1) -> list[int]:
    """Dataset indices of one rank's part of training step ``step``."""
    start = (step * world + rank) * batch
    return list(range(start, start + batch))
