"""The training mix of the derain networks and the generalisation validation kept apart from it.

Sources (``training_mix``), drawn per sample with these weights (:data:`MIX_WEIGHTS`), whatever their size:

- ``roadscene`` (0.20): RoadScene-rain training triplets (one synthetic night style), its recorded
  validation split left out;
- ``shared_pairs`` (0.20): the paired sets in ``rain/``: RainTrainL, Rain200L ``train_*``, Rain200H ``train``;
- ``rendered`` (0.30): renderer rain of :data:`~nitedr_ros.data.rain_styles.TRAINING_STYLES` on the clean
  images: RoadScene clean visible (train split), MSRS visible (the held-out ones left out) and the clean
  targets of the training rain pairs; each style draws day or night scenes (night made from day images too);
- ``rendered_night`` (0.30): the same images and styles, always as night scenes (what the node is for).

The sources differ in distribution (bright daylight Rain100-style pairs, dark RoadScene night, rendered
night); Rainmer aligns them before training. We do not learn an alignment; we **balance** them (the weights
above, so a 9-pair set is not drowned by 154 RoadScene triplets) and **overlap their photometry**: every
sample gets the same random exposure, gamma and white balance on its input and target
(:func:`photometric_jitter`), so day and night, bright and dark sources cover one range of brightness.

Generalisation validation (``generalisation_pairs``), never used in training:

- held-back pairs of the shared rain sets: Rain100L (all), Rain200H ``test``, Rain200L ``test_*``;
- renderer rain of :data:`~nitedr_ros.data.rain_styles.HELD_OUT_STYLES` (styles no training sample is drawn
  from) on clean images no training sample uses: every VIFB visible image and the MSRS images in
  :data:`HELD_OUT_MSRS`; fixed seeds (from the image name), at most 480 px on the long side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .imageio import DatasetError, list_images, read_rgb
from .layouts import ImageSet, Sample, open_dataset
from .rain_styles import HELD_OUT_STYLES, TRAINING_STYLES, render_style
from .split import DEFAULT_SEED, DEFAULT_VAL_FRACTION, RECORDED_SPLITS_DIR, Split, read_split, split_names

MIX_WEIGHTS: dict[str, float] = {'roadscene': 0.2, 'shared_pairs': 0.2, 'rendered': 0.3,
                                 'rendered_night': 0.3}
HELD_OUT_MSRS: tuple[str, ...] = ('00035N', '00037N', '00038N', '00039N')
TRAIN_PAIR_SETS: tuple[tuple[str, str | None, str], ...] = (
    ('rain/raintrainl_prenet', None, ''),
    ('rain/rain200l_nerdrain', None, 'train_'),
    ('rain/rain200h_drsformer', 'train', ''),
)
HELD_OUT_PAIR_SETS: tuple[tuple[str, str | None, str], ...] = (
    ('rain/rain100l_mfdnet', None, ''),
    ('rain/rain200h_drsformer', 'test', ''),
    ('rain/rain200l_nerdrain', None, 'test_'),
)
GENERALISATION_MAX_SIDE = 480


@dataclass(frozen=True)
class MixSource:
    """One source of the mix: its images and how samples are made from them."""

    name: str
    weight: float
    images: ImageSet
    render: bool                  # True: renderer rain on the clean images; False: the set's own pairs
    styles: tuple[str, ...] = ()
    night: bool = False           # rendered: always a night scene


def _pairs(root: Path, folder: str, split: str | None, prefix: str) -> ImageSet:
    data = open_dataset(root / folder, 'paired', split or 'train')
    if prefix:
        data = data.subset([n for n in data.names if n.startswith(prefix)])
    return data


def _clean_images(name: str, files: list[Path]) -> ImageSet:
    samples = [Sample(f'{name}/{f.stem}', {'clean': f}) for f in files]
    return ImageSet('clean', Path(name), ('clean',), samples)


def roadscene_split(root: Path) -> tuple[ImageSet, Split]:
    """The RoadScene-rain training set and its recorded split (the validation part is the RoadScene
    validation of every model card); the split is checked against the recorded one."""
    data = open_dataset(root / 'roadscene-rain', 'roadscene', 'train')
    split = split_names(data.names, DEFAULT_VAL_FRACTION, DEFAULT_SEED)
    recorded = read_split(RECORDED_SPLITS_DIR / 'roadscene_rain_train.json')
    if (split.train, split.val) != (recorded.train, recorded.val):
        raise DatasetError(f'{root / "roadscene-rain"} does not reproduce the recorded RoadScene-rain split')
    return data, split


def mix_weights(overrides: dict[str, float] | None = None) -> dict[str, float]:
    """:data:`MIX_WEIGHTS` with ``overrides`` (e.g. a fine-tune that favours one source); checked."""
    weights = dict(MIX_WEIGHTS)
    for name, value in (overrides or {}).items():
        if name not in weights:
            raise DatasetError(f'unknown mix source {name!r}; sources: {", ".join(MIX_WEIGHTS)}')
        if not value >= 0:
            raise DatasetError(f'mix weight of {name} must be >= 0, got {value}')
        weights[name] = float(value)
    if sum(weights.values()) <= 0:
        raise DatasetError('the mix weights are all zero')
    return weights


def training_mix(root: str | Path, weights: dict[str, float] | None = None) -> list[MixSource]:
    """The sources of the derain training mix under a shared data folder (see the module docstring);
    ``weights``: :data:`MIX_WEIGHTS` overridden per source."""
    root = Path(root)
    chosen = mix_weights(weights)
    roadscene, split = roadscene_split(root)
    road_train = roadscene.subset(split.train)
    pair_sets = [_pairs(root, *spec) for spec in TRAIN_PAIR_SETS]
    shared = ImageSet('paired', root / 'rain', ('rainy', 'clean'),
                      [s for data in pair_sets for s in data.samples])
    msrs = [f for f in list_images(root / 'vis_ir/msrs_train_superfusion/vi') if f.stem not in HELD_OUT_MSRS]
    clean_files = ([s.files['clean'] for s in road_train.samples] + msrs
                   + [s.files['clean'] for s in shared.samples])
    clean = _clean_images('clean', clean_files)
    return [
        MixSource('roadscene', chosen['roadscene'], road_train, render=False),
        MixSource('shared_pairs', chosen['shared_pairs'], shared, render=False),
        MixSource('rendered', chosen['rendered'], clean, render=True, styles=TRAINING_STYLES),
        MixSource('rendered_night', chosen['rendered_night'], clean, render=True, styles=TRAINING_STYLES,
                  night=True),
    ]


def photometric_jitter(images: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The same exposure (x0.6..1.25), gamma (0.8..1.25) and white balance (+-6 % per channel) on every
    float image of a sample, so sources of different brightness overlap."""
    exposure = rng.uniform(0.6, 1.25)
    gamma = rng.uniform(0.8, 1.25)
    balance = rng.uniform(0.94, 1.06, 3).astype(np.float32)
    return {k: np.clip((np.clip(v, 0.0, 1.0) ** gamma) * exposure * balance, 0.0, 1.0).astype(np.float32)
            for k, v in images.items()}


@dataclass(frozen=True)
class ValidationPair:
    """A generalisation validation pair, made on demand: ``load() -> (rainy, clean)`` uint8 RGB."""

    name: str
    group: str                   # 'held_out_pairs' or 'held_out_styles'
    load: Callable[[], tuple[np.ndarray, np.ndarray]]


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], 'little')


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return image
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _rendered_loader(path: Path, style: str, name: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def load() -> tuple[np.ndarray, np.ndarray]:
        clean = _fit(read_rgb(path), GENERALISATION_MAX_SIDE).astype(np.float32) / 255.0
        sample = render_style(clean, np.random.default_rng(_seed(name)), style)
        return _to_uint8(sample.rainy), _to_uint8(sample.clean)
    return load


def _pair_loader(data: ImageSet, index: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def load() -> tuple[np.ndarray, np.ndarray]:
        images = data.load(index, ('rainy', 'clean'))
        return images['rainy'], images['clean']
    return load


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def generalisation_pairs(root: str | Path) -> list[ValidationPair]:
    """The generalisation validation (module docstring): held-back pairs, then held-out styles."""
    root = Path(root)
    pairs: list[ValidationPair] = []
    for spec in HELD_OUT_PAIR_SETS:
        data = _pairs(root, *spec)
        for i, name in enumerate(data.names):
            pairs.append(ValidationPair(f'{Path(spec[0]).name}/{spec[1] or ""}{name}', 'held_out_pairs',
                                        _pair_loader(data, i)))
    clean = list_images(root / 'vis_ir/vifb/vi')
    clean += [f for f in list_images(root / 'vis_ir/msrs_train_superfusion/vi') if f.stem in HELD_OUT_MSRS]
    if not clean:
        raise DatasetError(f'no held-out clean images under {root / "vis_ir"}')
    for i, path in enumerate(clean):
        style = HELD_OUT_STYLES[i % len(HELD_OUT_STYLES)]
        name = f'{path.parent.parent.name}/{path.stem}+{style}'
        pairs.append(ValidationPair(name, 'held_out_styles', _rendered_loader(path, style, name)))
    return pairs


def clean_night_images(root: str | Path) -> list[tuple[str, Path]]:
    """Rain-free night images for the no-regression check: MSRS night visible images (``*N``) and the VIFB
    night scenes."""
    root = Path(root)
    msrs = [f for f in list_images(root / 'vis_ir/msrs_train_superfusion/vi') if f.stem.endswith('N')]
    vifb = [f for f in list_images(root / 'vis_ir/vifb/vi') if 'night' in f.stem.lower()
            or f.stem in ('carLight', 'manlight')]
    return [(f'{f.parent.parent.name}/{f.stem}', f) for f in msrs + vifb]
