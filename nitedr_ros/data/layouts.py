"""Dataset loaders for the public deraining and fusion layouts (numpy/cv2, torch-free).

Every loader returns an :class:`ImageSet`: a list of samples, each naming one file per *role*:

==============  ====================================================================
role            meaning
==============  ====================================================================
``rainy``       rainy visible RGB (left view for stereo sets)
``clean``       rain-free visible RGB (target; MSRS/LLVIP visible images)
``infrared``    registered thermal image (grey)
``rainy_right`` rainy right view (stereo sets)
``clean_right`` clean right view (stereo sets)
==============  ====================================================================

Layouts (``root`` may be the dataset folder or, where there are splits, the split folder itself):

* ``roadscene``: RoadScene-rain ``{train,test}/Vis/input``, ``Vis/target``, ``Inf/input`` (same file names).
* ``paired``: Rain100L/H, Rain200L/H, Rain13K, DDN-style ``input``/``target`` folders; also the
  ``rainy``/``norain``, ``rain``/``norain``, ``rainy_image``/``ground_truth`` and ``data``/``gt`` names. A
  rainy file is matched to its clean file by the same stem, by ``rain-N`` -> ``norain-N``, by dropping a
  ``xK`` repeat suffix (``norain-12x2`` -> ``norain-12``) or a ``_K`` suffix (``901_1`` -> ``901``).
* ``rain13k``: ``rain-*.png`` and ``norain-*.png`` side by side in one folder.
* ``gtav``: GTAV-NightRain ``[setK/]{train,test}/{rainy,gt}``, rainy ``NNNN_KK.png`` -> gt ``NNNN.png``
  (several rainy images share one ground truth).
* ``stereo``: StereoCityscapes-style ``{left,right}/{rainy,clean}`` or ``{rainy,clean}/{left,right}``
  (also ``image_2``/``image_3`` and ``rain``/``norain``/``gt`` names).
* ``vi_ir``: MSRS ``[split/]{vi,ir}`` and LLVIP ``{visible,infrared}/[split]`` (roles ``clean`` +
  ``infrared``; no rain: render it with :mod:`nitedr_ros.data.rain_renderer`).
* ``images``: a plain folder of images with none of the above (real rainy photos, frames of a drive): role
  ``rainy`` only, no ground truth (detected last).

A missing folder, or a rainy file without its counterpart, raises :class:`DatasetError` naming the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .imageio import DatasetError, list_images, read_gray, read_rgb

ROLES: tuple[str, ...] = ('rainy', 'clean', 'infrared', 'rainy_right', 'clean_right')
GREY_ROLES: frozenset[str] = frozenset({'infrared'})

RAINY_DIR_NAMES = ('input', 'rainy', 'rain', 'rainy_image', 'data', 'inp')
CLEAN_DIR_NAMES = ('target', 'norain', 'gt', 'clean', 'ground_truth', 'groundtruth', 'label')
LAYOUTS: tuple[str, ...] = ('roadscene', 'paired', 'rain13k', 'gtav', 'stereo', 'vi_ir', 'images')


@dataclass(frozen=True)
class Sample:
    """One dataset item: its name and one file per role."""

    name: str
    files: dict[str, Path]


@dataclass
class ImageSet:
    """A dataset as a list of samples; images are read on demand as uint8 arrays."""

    layout: str
    root: Path
    roles: tuple[str, ...]
    samples: list[Sample] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.samples]

    def load(self, index: int, roles: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Read one sample: RGB roles as uint8 (H, W, 3), ``infrared`` as uint8 (H, W); sizes checked."""
        sample = self.samples[index]
        wanted = tuple(roles) if roles is not None else self.roles
        missing = [r for r in wanted if r not in sample.files]
        if missing:
            raise DatasetError(f'{self.layout} dataset at {self.root} has no {", ".join(missing)} images '
                               f'(sample {sample.name})')
        images = {r: (read_gray if r in GREY_ROLES else read_rgb)(sample.files[r]) for r in wanted}
        shapes = {r: im.shape[:2] for r, im in images.items()}
        if len(set(shapes.values())) > 1:
            detail = ', '.join(f'{sample.files[r]} {h}x{w}' for r, (h, w) in shapes.items())
            raise DatasetError(f'images of sample {sample.name} differ in size: {detail}')
        return images

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.load(index)

    def subset(self, names: Iterable[str]) -> ImageSet:
        """The samples with the given names, in that order; an unknown name is a DatasetError."""
        by_name = {s.name: s for s in self.samples}
        chosen = []
        for name in names:
            if name not in by_name:
                raise DatasetError(f'sample {name!r} is not in the {self.layout} dataset at {self.root}')
            chosen.append(by_name[name])
        return ImageSet(self.layout, self.root, self.roles, chosen)


# ---------------------------------------------------------------- helpers

def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f'{what} folder not found: {path}')
    return path


def _find_child(folder: Path, names: Sequence[str]) -> Path | None:
    """The first child folder whose name matches one of ``names`` (case-insensitive)."""
    if not folder.is_dir():
        return None
    children = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    for name in names:
        if name.lower() in children:
            return children[name.lower()]
    return None


def counterpart_stems(stem: str) -> list[str]:
    """Candidate clean-file stems for a rainy-file stem, most specific first (see module docstring)."""
    candidates = [stem]
    match = re.fullmatch(r'(?i)(rain|rainy)([-_].*)', stem)
    if match:
        candidates.append('norain' + match.group(2))
    for base in list(candidates):
        repeat = re.fullmatch(r'(.*\d)x\d+', base)
        if repeat:
            candidates.append(repeat.group(1))
        indexed = re.fullmatch(r'(.*?)_\d+', base)
        if indexed:
            candidates.append(indexed.group(1))
    seen: list[str] = []
    for c in candidates:
        if c not in seen:
            seen.append(c)
    return seen


def _index_by_stem(files: Iterable[Path]) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for f in files:
        index.setdefault(f.stem, f)
    return index


def _match(rainy: Path, clean_index: dict[str, Path], clean_dir: Path) -> Path:
    stems = counterpart_stems(rainy.stem)
    for stem in stems:
        if stem in clean_index:
            return clean_index[stem]
    raise DatasetError(f'no clean counterpart for {rainy}: looked for {" / ".join(stems)}.* in {clean_dir}')


def _same_name(first: Path, folder: Path, what: str) -> Path:
    """The file in ``folder`` with the same stem as ``first`` (any image suffix), else a DatasetError."""
    index = _index_by_stem(list_images(folder))
    if first.stem not in index:
        raise DatasetError(f'no {what} counterpart for {first}: expected {folder / first.stem}.* ')
    return index[first.stem]


def _nonempty(images: list[Path], folder: Path) -> list[Path]:
    if not images:
        raise DatasetError(f'no image files in {folder}')
    return images


# ---------------------------------------------------------------- layouts

def roadscene_rain(root: str | os.PathLike[str], split: str = 'train') -> ImageSet:
    """RoadScene-rain: ``<root>/<split>/{Vis/input, Vis/target, Inf/input}`` (or ``root`` = the split)."""
    base = Path(root)
    split_dir = base / split if (base / split / 'Vis').is_dir() else base
    vis = _require_dir(split_dir / 'Vis', 'RoadScene-rain Vis')
    rainy_dir = _require_dir(vis / 'input', 'RoadScene-rain rainy (Vis/input)')
    clean_dir = _require_dir(vis / 'target', 'RoadScene-rain clean (Vis/target)')
    ir_dir = _require_dir(split_dir / 'Inf' / 'input', 'RoadScene-rain infrared (Inf/input)')
    clean_index = _index_by_stem(list_images(clean_dir))
    ir_index = _index_by_stem(list_images(ir_dir))
    samples = []
    for rainy in _nonempty(list_images(rainy_dir), rainy_dir):
        if rainy.stem not in clean_index:
            raise DatasetError(f'no clean counterpart for {rainy}: expected {clean_dir / rainy.stem}.*')
        if rainy.stem not in ir_index:
            raise DatasetError(f'no infrared counterpart for {rainy}: expected {ir_dir / rainy.stem}.*')
        samples.append(Sample(rainy.stem, {'rainy': rainy, 'clean': clean_index[rainy.stem],
                                           'infrared': ir_index[rainy.stem]}))
    return ImageSet('roadscene', split_dir, ('rainy', 'clean', 'infrared'), samples)


def paired_folders(root: str | os.PathLike[str], split: str | None = None) -> ImageSet:
    """Rain100/Rain200/Rain13K/DDN-style rainy and clean folders in ``root`` (or ``root/split``)."""
    base = _require_dir(Path(root), 'dataset')
    if split and _find_child(base, RAINY_DIR_NAMES) is None and (base / split).is_dir():
        base = base / split
    rainy_dir = _find_child(base, RAINY_DIR_NAMES)
    clean_dir = _find_child(base, CLEAN_DIR_NAMES)
    if rainy_dir is None or clean_dir is None:
        raise DatasetError(f'{base} has no rainy/clean folder pair (rainy: {"|".join(RAINY_DIR_NAMES)}; '
                           f'clean: {"|".join(CLEAN_DIR_NAMES)})')
    rainy_files = _rainy_files(rainy_dir)
    clean_index = _index_by_stem(list_images(clean_dir))
    samples = [Sample(_sample_name(rainy_dir, f), {'rainy': f, 'clean': _match(f, clean_index, clean_dir)})
               for f in rainy_files]
    return ImageSet('paired', base, ('rainy', 'clean'), samples)


def _rainy_files(rainy_dir: Path) -> list[Path]:
    """Images in the rainy folder, or in its sub-folders (RainTrainH-style ``rain/X2``) when it has none."""
    files = list_images(rainy_dir)
    if not files:
        for sub in sorted(p for p in rainy_dir.iterdir() if p.is_dir()):
            files.extend(list_images(sub))
    return _nonempty(files, rainy_dir)


def _sample_name(rainy_dir: Path, path: Path) -> str:
    rel = path.relative_to(rainy_dir).with_suffix('')
    return rel.as_posix()


def rain13k_flat(root: str | os.PathLike[str]) -> ImageSet:
    """``rain-N.*`` and ``norain-N.*`` side by side in one folder."""
    base = _require_dir(Path(root), 'dataset')
    files = list_images(base)
    rainy = [f for f in files if re.match(r'(?i)rainy?[-_]', f.stem)]
    clean_index = _index_by_stem(f for f in files if re.match(r'(?i)norain[-_]', f.stem))
    samples = [Sample(f.stem, {'rainy': f, 'clean': _match(f, clean_index, base)})
               for f in _nonempty(rainy, base)]
    return ImageSet('rain13k', base, ('rainy', 'clean'), samples)


def gtav_nightrain(root: str | os.PathLike[str], split: str = 'train') -> ImageSet:
    """GTAV-NightRain: every ``[setK/]<split>/{rainy,gt}`` below ``root`` (or ``root`` = such a folder)."""
    base = _require_dir(Path(root), 'GTAV-NightRain')
    leaves: list[Path] = []
    if (base / 'rainy').is_dir():
        leaves.append(base)
    elif (base / split / 'rainy').is_dir():
        leaves.append(base / split)
    else:
        leaves.extend(sorted(p / split for p in base.iterdir() if (p / split / 'rainy').is_dir()))
    if not leaves:
        raise DatasetError(f'no GTAV-NightRain {split}/rainy folder below {base}')
    samples = []
    for leaf in leaves:
        rainy_dir, gt_dir = leaf / 'rainy', _require_dir(leaf / 'gt', 'GTAV-NightRain gt')
        clean_index = _index_by_stem(list_images(gt_dir))
        prefix = '' if leaf == base else leaf.relative_to(base).as_posix() + '/'
        for f in _nonempty(list_images(rainy_dir), rainy_dir):
            samples.append(Sample(prefix + f.stem, {'rainy': f, 'clean': _match(f, clean_index, gt_dir)}))
    return ImageSet('gtav', base, ('rainy', 'clean'), samples)


_LEFT_NAMES = ('left', 'image_2', 'left_image', 'l')
_RIGHT_NAMES = ('right', 'image_3', 'right_image', 'r')


def stereo_pairs(root: str | os.PathLike[str]) -> ImageSet:
    """Stereo rainy/clean pairs: ``{left,right}/{rainy,clean}`` or ``{rainy,clean}/{left,right}``."""
    base = _require_dir(Path(root), 'stereo dataset')
    dirs: dict[str, Path | None] = {}
    left, right = _find_child(base, _LEFT_NAMES), _find_child(base, _RIGHT_NAMES)
    if left is not None and right is not None:
        dirs = {'rainy': _find_child(left, RAINY_DIR_NAMES), 'clean': _find_child(left, CLEAN_DIR_NAMES),
                'rainy_right': _find_child(right, RAINY_DIR_NAMES),
                'clean_right': _find_child(right, CLEAN_DIR_NAMES)}
    else:
        rainy, clean = _find_child(base, RAINY_DIR_NAMES), _find_child(base, CLEAN_DIR_NAMES)
        if rainy is not None and clean is not None:
            dirs = {'rainy': _find_child(rainy, _LEFT_NAMES), 'clean': _find_child(clean, _LEFT_NAMES),
                    'rainy_right': _find_child(rainy, _RIGHT_NAMES),
                    'clean_right': _find_child(clean, _RIGHT_NAMES)}
    missing = [role for role in ('rainy', 'clean', 'rainy_right', 'clean_right') if dirs.get(role) is None]
    if missing:
        raise DatasetError(f'{base} is not a stereo rainy/clean layout: no folder for {", ".join(missing)} '
                           f'(expected {{left,right}}/{{rainy,clean}} or {{rainy,clean}}/{{left,right}})')
    folders: dict[str, Path] = {k: v for k, v in dirs.items() if v is not None}
    samples = []
    clean_index = _index_by_stem(list_images(folders['clean']))
    for f in _nonempty(list_images(folders['rainy']), folders['rainy']):
        files = {'rainy': f, 'clean': _match(f, clean_index, folders['clean'])}
        files['rainy_right'] = _same_name(f, folders['rainy_right'], 'right rainy')
        files['clean_right'] = _same_name(files['clean'], folders['clean_right'], 'right clean')
        samples.append(Sample(f.stem, files))
    return ImageSet('stereo', base, ('rainy', 'clean', 'rainy_right', 'clean_right'), samples)


def visible_infrared(root: str | os.PathLike[str], split: str | None = None) -> ImageSet:
    """MSRS ``[split/]{vi,ir}`` or LLVIP ``{visible,infrared}/[split]`` pairs (roles clean + infrared)."""
    base = _require_dir(Path(root), 'visible/infrared dataset')
    candidates = [base / split, base] if split else [base]
    vis_dir = ir_dir = None
    for folder in candidates:
        vis_dir = _find_child(folder, ('vi', 'vis', 'visible'))
        ir_dir = _find_child(folder, ('ir', 'infrared'))
        if vis_dir is not None and ir_dir is not None:
            break
    if vis_dir is None or ir_dir is None:
        raise DatasetError(f'{base} has no vi/ir (or visible/infrared) folders')
    if split and (vis_dir / split).is_dir():  # LLVIP: visible/train, infrared/train
        vis_dir, ir_dir = vis_dir / split, _require_dir(ir_dir / split, 'infrared split')
    ir_index = _index_by_stem(list_images(ir_dir))
    samples = []
    for f in _nonempty(list_images(vis_dir), vis_dir):
        if f.stem not in ir_index:
            raise DatasetError(f'no infrared counterpart for {f}: expected {ir_dir / f.stem}.*')
        samples.append(Sample(f.stem, {'clean': f, 'infrared': ir_index[f.stem]}))
    return ImageSet('vi_ir', base, ('clean', 'infrared'), samples)


def plain_images(root: str | os.PathLike[str]) -> ImageSet:
    """A plain folder of rainy images (real photos, frames of a drive): no ground truth."""
    base = Path(root)
    files = _nonempty(list_images(base), base)
    return ImageSet('images', base, ('rainy',), [Sample(f.stem, {'rainy': f}) for f in files])


def _gtav_leaf(folder: Path) -> bool:
    """A GTAV-NightRain ``<split>`` folder: ``rainy`` and ``gt`` side by side (``rainy`` + ``norain`` is
    the paired layout)."""
    return (folder / 'rainy').is_dir() and (folder / 'gt').is_dir()


def detect_layout(root: str | os.PathLike[str], split: str = 'train') -> str:
    """Guess the layout of a dataset folder (see module docstring); DatasetError when none fits."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f'dataset folder not found: {base}')
    if (base / 'Vis').is_dir() or (base / split / 'Vis').is_dir():
        return 'roadscene'
    if _gtav_leaf(base / split) or any(_gtav_leaf(p / split) for p in base.iterdir() if p.is_dir()):
        return 'gtav'
    if _find_child(base, _LEFT_NAMES) and _find_child(base, _RIGHT_NAMES):
        return 'stereo'
    for folder in (base, base / split):
        rainy, clean = _find_child(folder, RAINY_DIR_NAMES), _find_child(folder, CLEAN_DIR_NAMES)
        if rainy is not None and clean is not None:
            if _find_child(rainy, _LEFT_NAMES) and _find_child(rainy, _RIGHT_NAMES):
                return 'stereo'
            return 'paired'
    vis_like = ('vi', 'vis', 'visible')
    for folder in (base, base / split):
        if _find_child(folder, vis_like) and _find_child(folder, ('ir', 'infrared')):
            return 'vi_ir'
    images = list_images(base)
    if any(re.match(r'(?i)norain[-_]', p.stem) for p in images):
        return 'rain13k'
    if images:
        return 'images'
    raise DatasetError(f'cannot tell the dataset layout of {base}; pass one of {", ".join(LAYOUTS)}')


def open_dataset(root: str | os.PathLike[str], layout: str = 'auto', split: str = 'train') -> ImageSet:
    """Open a dataset folder in a named layout (``auto`` detects it)."""
    name = detect_layout(root, split) if layout == 'auto' else layout
    if name == 'roadscene':
        return roadscene_rain(root, split)
    if name == 'paired':
        return paired_folders(root, split)
    if name == 'rain13k':
        return rain13k_flat(root)
    if name == 'gtav':
        return gtav_nightrain(root, split)
    if name == 'stereo':
        return stereo_pairs(root)
    if name == 'vi_ir':
        return visible_infrared(root, split)
    if name == 'images':
        return plain_images(root)
    raise DatasetError(f'unknown dataset layout {layout!r}; choose auto or one of {", ".join(LAYOUTS)}')
