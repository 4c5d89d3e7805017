"""Dataset loaders: the shared data, every layout on folders made here, errors naming the file, the split."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from nitedr_ros.data.imageio import DatasetError
from nitedr_ros.data.layouts import counterpart_stems, detect_layout, open_dataset, roadscene_rain
from nitedr_ros.data.split import RECORDED_SPLITS_DIR, read_split, split_dataset, split_names
from nitedr_ros.errors import NitedrError


def _write(path: Path, value: int, size=(6, 8), grey: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if grey else (*size, 3)
    image = np.full(shape, value, np.uint8)
    if not grey:
        image[..., 2] = (value + 50) % 256  # R in BGR order: checks the RGB conversion
    assert cv2.imwrite(str(path), image)
    return path


# ------------------------------------------------------------------ shared data

def test_roadscene_shared_training_split(shared_data):
    data = roadscene_rain(shared_data / 'roadscene-rain')
    assert data.layout == 'roadscene'
    assert len(data) == 181  # the stray non-image file in Inf/input is ignored
    images = data.load(0)
    assert set(images) == {'rainy', 'clean', 'infrared'}
    h, w = images['rainy'].shape[:2]
    assert images['rainy'].shape == images['clean'].shape == (h, w, 3)
    assert images['infrared'].shape == (h, w)
    assert images['rainy'].dtype == np.uint8
    assert not np.array_equal(images['rainy'], images['clean'])


@pytest.mark.parametrize('folder', ['rain/rain100l_mfdnet', 'rain/rain200h_drsformer/train',
                                    'rain/rain200h_drsformer/test'])
def test_shared_rain_pairs(shared_data, folder):
    data = open_dataset(shared_data / folder)
    assert data.layout == 'paired'
    assert len(data) == 3
    pair = data.load(len(data) - 1)
    assert pair['rainy'].shape == pair['clean'].shape


def test_shared_rain200h_split_argument(shared_data):
    data = open_dataset(shared_data / 'rain/rain200h_drsformer', split='test')
    assert all('/test/' in str(s.files['rainy']) for s in data.samples)


# ------------------------------------------------------------------ made layouts

def test_roadscene_made_and_rgb_order(tmp_path):
    for split in ('train', 'test'):
        _write(tmp_path / split / 'Vis/input/a.jpg', 10)
        _write(tmp_path / split / 'Vis/target/a.png', 20)
        _write(tmp_path / split / 'Inf/input/a.png', 30, grey=True)
    data = open_dataset(tmp_path, split='test')
    assert data.layout == 'roadscene' and data.names == ['a']
    assert data.samples[0].files['rainy'].parts[-4] == 'test'
    clean = data.load(0)['clean']
    assert clean[0, 0, 0] == 70 and clean[0, 0, 2] == 20  # red channel first


def test_roadscene_missing_infrared_names_the_file(tmp_path):
    _write(tmp_path / 'train/Vis/input/007.jpg', 1)
    _write(tmp_path / 'train/Vis/target/007.jpg', 1)
    (tmp_path / 'train/Inf/input').mkdir(parents=True)
    with pytest.raises(DatasetError, match=r'007\.jpg'):
        roadscene_rain(tmp_path)


@pytest.mark.parametrize(('rainy_dir', 'clean_dir', 'rainy_name', 'clean_name'), [
    ('input', 'target', '1.png', '1.png'),          # Rain100L/H, Rain200, Rain13K
    ('rainy', 'norain', 'rain-3.png', 'norain-3.png'),
    ('rain', 'norain', 'norain-12x2.png', 'norain-12.png'),   # RainTrainH repeats
    ('rainy_image', 'ground_truth', '901_4.jpg', '901.jpg'),  # DDN Rain1400
    ('data', 'gt', '5.jpg', '5.png'),               # different suffix
])
def test_paired_layout_variants(tmp_path, rainy_dir, clean_dir, rainy_name, clean_name):
    _write(tmp_path / rainy_dir / rainy_name, 100)
    _write(tmp_path / clean_dir / clean_name, 50)
    data = open_dataset(tmp_path)
    assert data.layout == 'paired'
    assert data.samples[0].files['clean'].name == clean_name
    assert data.load(0)['clean'][0, 0, 1] == 50


def test_paired_rainy_subfolders(tmp_path):
    _write(tmp_path / 'rain/X2/norain-1x2.png', 1)
    _write(tmp_path / 'norain/norain-1.png', 2)
    data = open_dataset(tmp_path)
    assert data.names == ['X2/norain-1x2']


def test_paired_missing_counterpart_names_the_file(tmp_path):
    _write(tmp_path / 'input/1.png', 1)
    _write(tmp_path / 'input/2.png', 1)
    _write(tmp_path / 'target/1.png', 1)
    with pytest.raises(DatasetError, match=r'input/2\.png') as info:
        open_dataset(tmp_path)
    assert 'target' in str(info.value)


def test_rain13k_flat(tmp_path):
    _write(tmp_path / 'rain-1.png', 1)
    _write(tmp_path / 'norain-1.png', 2)
    _write(tmp_path / 'rain-2.png', 3)
    _write(tmp_path / 'norain-2.png', 4)
    data = open_dataset(tmp_path)
    assert data.layout == 'rain13k' and data.names == ['rain-1', 'rain-2']
    assert data.load(1)['clean'][0, 0, 1] == 4
    (tmp_path / 'norain-2.png').unlink()
    with pytest.raises(DatasetError, match=r'rain-2\.png'):
        open_dataset(tmp_path, layout='rain13k')


def test_gtav_nightrain_sets_share_ground_truth(tmp_path):
    for s in ('set1', 'set2'):
        for k in range(3):
            _write(tmp_path / s / 'train' / 'rainy' / f'0000_0{k}.png', k)
        _write(tmp_path / s / 'train' / 'gt' / '0000.png', 9)
        _write(tmp_path / s / 'test' / 'rainy' / '0001_00.png', 1)
        _write(tmp_path / s / 'test' / 'gt' / '0001.png', 9)
    data = open_dataset(tmp_path)
    assert data.layout == 'gtav' and len(data) == 6
    assert data.names[0] == 'set1/train/0000_00'
    assert {s.files['clean'].name for s in data.samples} == {'0000.png'}
    test = open_dataset(tmp_path, split='test')
    assert len(test) == 2
    (tmp_path / 'set2/test/gt/0001.png').unlink()
    with pytest.raises(DatasetError, match=r'0001_00\.png'):
        open_dataset(tmp_path, split='test')


def test_split_folder_with_rainy_and_norain_is_paired_not_gtav(tmp_path):
    # train/{rainy,norain}: a paired set in a split folder; GTAV needs rainy and gt side by side
    _write(tmp_path / 'train' / 'rainy' / 'rain-1.png', 1)
    _write(tmp_path / 'train' / 'norain' / 'norain-1.png', 2)
    assert detect_layout(tmp_path) == 'paired'
    data = open_dataset(tmp_path)
    assert data.layout == 'paired' and len(data) == 1
    assert data.samples[0].files['clean'].name == 'norain-1.png'
    _write(tmp_path / 'train' / 'gt' / 'rain-1.png', 3)     # now rainy + gt siblings: GTAV
    assert detect_layout(tmp_path) == 'gtav'


@pytest.mark.parametrize('view_first', [True, False])
def test_stereo_layouts(tmp_path, view_first):
    for view, value in (('left', 10), ('right', 20)):
        for kind, offset in (('rainy', 0), ('clean', 5)):
            parts = (view, kind) if view_first else (kind, view)
            _write(tmp_path.joinpath(*parts, 'aachen_1.png'), value + offset)
    data = open_dataset(tmp_path)
    assert data.layout == 'stereo'
    images = data.load(0)
    assert [images[r][0, 0, 1] for r in ('rainy', 'clean', 'rainy_right', 'clean_right')] == [10, 15, 20, 25]


def test_stereo_missing_right_view_names_the_file(tmp_path):
    for parts in (('left', 'rainy'), ('left', 'clean'), ('right', 'clean')):
        _write(tmp_path.joinpath(*parts, 'x.png'), 1)
    (tmp_path / 'right' / 'rainy').mkdir()
    with pytest.raises(DatasetError, match=r'left/rainy/x\.png'):
        open_dataset(tmp_path)


def test_msrs_and_llvip(tmp_path):
    msrs = tmp_path / 'msrs'
    _write(msrs / 'train/vi/00001D.png', 1)
    _write(msrs / 'train/ir/00001D.png', 2, grey=True)
    data = open_dataset(msrs, split='train')
    assert data.layout == 'vi_ir' and data.roles == ('clean', 'infrared')
    assert data.load(0)['infrared'].ndim == 2
    llvip = tmp_path / 'llvip'
    _write(llvip / 'visible/test/190001.jpg', 1)
    _write(llvip / 'infrared/test/190001.jpg', 2)
    data = open_dataset(llvip, split='test')
    assert data.names == ['190001']
    assert data.load(0)['infrared'].ndim == 2  # colour-stored IR becomes grey
    _write(llvip / 'visible/test/190002.jpg', 1)
    with pytest.raises(DatasetError, match=r'190002\.jpg'):
        open_dataset(llvip, split='test')


def test_wrong_path_and_unknown_layout(tmp_path):
    with pytest.raises(NitedrError, match='nowhere'):
        open_dataset(tmp_path / 'nowhere')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='layout'):
        detect_layout(tmp_path / 'empty')
    with pytest.raises(DatasetError, match='unknown dataset layout'):
        open_dataset(tmp_path / 'empty', layout='kitti')


def test_size_mismatch_names_both_files(tmp_path):
    _write(tmp_path / 'input/1.png', 1, size=(6, 8))
    _write(tmp_path / 'target/1.png', 1, size=(6, 9))
    data = open_dataset(tmp_path)
    with pytest.raises(DatasetError, match=r'input/1\.png 6x8.*target/1\.png 6x9'):
        data.load(0)


def test_unreadable_image_names_the_file(tmp_path):
    _write(tmp_path / 'target/1.png', 1)
    (tmp_path / 'input').mkdir()
    (tmp_path / 'input/1.png').write_bytes(b'not a png')
    with pytest.raises(DatasetError, match=r'cannot decode image file: .*input/1\.png'):
        open_dataset(tmp_path).load(0)


def test_counterpart_rules():
    assert counterpart_stems('rain-12x2') == ['rain-12x2', 'norain-12x2', 'rain-12', 'norain-12']
    assert counterpart_stems('0000_03') == ['0000_03', '0000']
    assert counterpart_stems('abc') == ['abc']


# ------------------------------------------------------------------ split

def test_split_is_deterministic_disjoint_and_seeded():
    names = [f'{i:03d}' for i in range(100)]
    first = split_names(names, 0.2, seed=3)
    again = split_names(list(reversed(names)), 0.2, seed=3)
    assert first == again
    assert len(first.val) == 20 and not set(first.val) & set(first.train)
    assert sorted(first.val + first.train) == names
    assert split_names(names, 0.2, seed=4).val != first.val


def test_split_rejects_bad_arguments():
    with pytest.raises(DatasetError):
        split_names(['a', 'b'], 1.5)
    with pytest.raises(DatasetError):
        split_names(['a'], 0.5)


def test_recorded_roadscene_split_is_reproduced(shared_data, tmp_path):
    recorded = read_split(RECORDED_SPLITS_DIR / 'roadscene_rain_train.json')
    train, val, split = split_dataset(roadscene_rain(shared_data / 'roadscene-rain'), recorded.val_fraction,
                                      recorded.seed)
    assert split == recorded
    assert len(val) == 27 and len(train) == 154
    assert read_split(split.write(tmp_path / 'split.json')) == split
