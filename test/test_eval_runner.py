"""``nitedr eval``: tables and grids from checkpoints and ONNX files, sample selection, publishing."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nitedr_ros.cli import main as cli_main
from nitedr_ros.data.layouts import open_dataset
from nitedr_ros.data.split import split_names
from nitedr_ros.errors import ConfigError, OutputExistsError
from nitedr_ros.evaluation import metrics
from nitedr_ros.evaluation.evaluate import EvalOptions, evaluate, write_grid
from nitedr_ros.networks import build_network
from nitedr_ros.networks.checkpoint import save_checkpoint
from roadscene_data import make_roadscene


def _checkpoint(tmp_path: Path, network: str) -> Path:
    torch.manual_seed(0)
    model = build_network(network, 'realtime')
    return save_checkpoint(tmp_path / f'{network}.pt', model, network, 'realtime')


def _options(model, data, out, **kw) -> EvalOptions:
    return EvalOptions(model=str(model), data=str(data), out=str(out), split='train', grid_height=32,
                       threads=1, **kw)


def test_eval_writes_tables_and_grids(tmp_path):
    data = make_roadscene(tmp_path / 'data', seed=1)
    summary = evaluate(_options(_checkpoint(tmp_path, 'cleannet'), data, tmp_path / 'eval',
                                fusion_model=str(_checkpoint(tmp_path, 'fusionnet'))))
    assert summary['count'] == 3 and summary['model']['backend'] == 'torch-cpu'
    mean = summary['mean']
    assert set(mean) == {'input', 'derained', 'fusion', 'baseline_visible', 'baseline_average'}
    assert mean['baseline_visible']['colour_error'] == 0.0  # the visible image has its own colour
    assert set(mean['fusion']) == {*metrics.FUSION_METRICS, 'colour_error'}
    # the rainy-input row is the metric of the files themselves
    images = open_dataset(data).load(0)
    expected = metrics.derain_metrics(images['rainy'], images['clean'])['psnr_y']
    assert summary['samples'][0]['input']['psnr_y'] == pytest.approx(expected)
    report = (tmp_path / 'eval/metrics.md').read_text()
    for text in ('PSNR-Y', 'rainy input', 'derained', 'Qabf', 'FMI_pixel', 'PSNR-Y gain', '| 002 |',
                 'baseline: visible unchanged', 'baseline: average of visible and IR',
                 'Above both baselines'):
        assert text in report
    saved = json.loads((tmp_path / 'eval/metrics.json').read_text())
    assert saved['mean']['derained']['psnr_y'] == pytest.approx(mean['derained']['psnr_y'])
    grid = cv2.imread(str(tmp_path / 'eval/grids/000.png'))
    assert grid.shape[0] == 32 and grid.shape[1] > 5 * 40  # rainy | derained | fused | IR | clean
    with pytest.raises(OutputExistsError):
        evaluate(_options(_checkpoint(tmp_path, 'cleannet'), data, tmp_path / 'eval'))


def test_eval_selects_samples_by_split_file_and_names(tmp_path):
    data = make_roadscene(tmp_path / 'data', seed=1)
    split = split_names(['000', '001', '002'], 0.34, seed=0)
    split_file = split.write(tmp_path / 'split.json')
    model = _checkpoint(tmp_path, 'cleannet')
    summary = evaluate(_options(model, data, tmp_path / 'a', split_file=str(split_file), grids=False))
    assert [s['name'] for s in summary['samples']] == split.val
    summary = evaluate(_options(model, data, tmp_path / 'b', names=['002', '000'], grids=False))
    assert [s['name'] for s in summary['samples']] == ['002', '000']
    with pytest.raises(ConfigError, match='not mspfn'):
        evaluate(_options(model, data, tmp_path / 'c', network='mspfn'))


def test_eval_stereo_renders_pairs_from_clean_images(tmp_path):
    data = make_roadscene(tmp_path / 'data', size=(40, 48), seed=1)
    summary = evaluate(_options(_checkpoint(tmp_path, 'stereoirr'), data, tmp_path / 'eval'))
    assert {'input', 'derained', 'input_right', 'derained_right'} <= set(summary['mean'])
    assert (tmp_path / 'eval/grids/001.png').is_file()


@pytest.mark.slow
def test_eval_through_onnx_matches_torch(tmp_path):
    from nitedr_ros.export.onnx_export import export_network

    data = make_roadscene(tmp_path / 'data', seed=1)
    torch.manual_seed(0)
    cleannet, fusionnet = build_network('cleannet', 'realtime'), build_network('fusionnet', 'realtime')
    export_network(cleannet, 'cleannet', 'realtime', tmp_path / 'c.onnx', fp16=False, parity=False)
    export_network(fusionnet, 'fusionnet', 'realtime', tmp_path / 'f.onnx', fp16=False, parity=False)
    save_checkpoint(tmp_path / 'c.pt', cleannet, 'cleannet', 'realtime')
    save_checkpoint(tmp_path / 'f.pt', fusionnet, 'fusionnet', 'realtime')
    via_onnx = evaluate(_options(tmp_path / 'c.onnx', data, tmp_path / 'onnx',
                                 fusion_model=str(tmp_path / 'f.onnx'), backend='onnxruntime-cpu',
                                 skip_fmi=True))
    via_torch = evaluate(_options(tmp_path / 'c.pt', data, tmp_path / 'torch',
                                  fusion_model=str(tmp_path / 'f.pt'), skip_fmi=True))
    assert via_onnx['model']['backend'] == 'onnxruntime-cpu'
    assert 'FMI_pixel' not in via_onnx['mean']['fusion']
    for group in ('derained', 'fusion'):
        for key, value in via_torch['mean'][group].items():
            assert via_onnx['mean'][group][key] == pytest.approx(value, rel=2e-3, abs=2e-3), (group, key)


def test_cli_eval_verb(tmp_path, capsys):
    data = make_roadscene(tmp_path / 'data', seed=1)
    model = _checkpoint(tmp_path, 'cleannet')
    code = cli_main(['eval', '--checkpoint', str(model), '--data', str(data), '--split', 'train', '--out',
                     str(tmp_path / 'eval'), '--no-grids', '--threads', '1'])
    assert code == 0
    assert 'PSNR-Y' in capsys.readouterr().out
    assert (tmp_path / 'eval/metrics.md').is_file() and not (tmp_path / 'eval/grids').exists()
    assert cli_main(['eval', '--checkpoint', str(tmp_path / 'none.pt'), '--data', str(data), '--out',
                     str(tmp_path / 'x')]) == 2


@pytest.mark.slow
def test_publish_exports_onnx_with_a_model_card(tmp_path):
    from nitedr_ros.export.onnx_export import export_network
    from nitedr_ros.training.publish import publish_checkpoint
    from nitedr_ros.training.trainer import TrainOptions, train

    data = make_roadscene(tmp_path / 'data', count=4, seed=1)
    run = train(TrainOptions(network='fusionnet', data=[str(data)], out=str(tmp_path / 'run'), steps=1,
                             batch=1, patch=16, val_every=1, val_fraction=0.25, threads=1, progress=False,
                             settings={'stages': 1}))
    split_file = str(tmp_path / 'run/split.json')
    # the card reports the deployed chain: without a derain model there is nothing honest to report
    with pytest.raises(ConfigError, match='--derain-model'):
        publish_checkpoint(run.best_checkpoint, tmp_path / 'models', eval_data=str(data),
                           split_file=split_file)
    assert not (tmp_path / 'models').exists()
    torch.manual_seed(0)
    derain = export_network(build_network('cleannet', 'realtime'), 'cleannet', 'realtime',
                            tmp_path / 'stage1' / 'cleannet_realtime.onnx', fp16=False, parity=False).path
    published = publish_checkpoint(run.best_checkpoint, tmp_path / 'models', eval_data=str(data),
                                   split_file=split_file, eval_out=tmp_path / 'eval',
                                   derain_model=str(derain), skip_fmi=True)
    assert published.onnx.name == 'fusionnet_realtime.onnx' and published.fp16.is_file()
    card = published.card.read_text()
    for text in ('fusionnet_realtime', 'steps: 1 of 1', 'seed 0', 'sha256', 'Qabf',
                 'Evaluation (the exported ONNX file behind the CleanNet derain model (NiteDR chain), '
                 'onnxruntime-cpu, fp32)', 'PSNR-Y', 'validation hold-out: 1 images'):
        assert text in card, text
    assert published.evaluation['count'] == 1
    assert published.evaluation['fusion_model']['model'] == published.onnx.name  # no machine paths
    with pytest.raises(OutputExistsError):
        publish_checkpoint(run.best_checkpoint, tmp_path / 'models')


@pytest.mark.slow
def test_eval_fp16_runs_the_fp16_onnx_file(tmp_path, capsys):
    from nitedr_ros.export.onnx_export import export_network

    data = make_roadscene(tmp_path / 'data', seed=1)
    torch.manual_seed(0)
    export_network(build_network('cleannet', 'realtime'), 'cleannet', 'realtime', tmp_path / 'c.onnx',
                   fp16=True, parity=False)
    fp32 = evaluate(_options(tmp_path / 'c.onnx', data, tmp_path / 'fp32', backend='onnxruntime-cpu',
                             grids=False))
    fp16 = evaluate(_options(tmp_path / 'c.onnx', data, tmp_path / 'fp16', backend='onnxruntime-cpu',
                             grids=False, precision='fp16'))
    assert fp32['model']['precision'] == 'fp32' and fp16['model']['precision'] == 'fp16'
    assert 'precision fp16' in (tmp_path / 'fp16/metrics.md').read_text()
    # half precision: close to, but not bit-identical with, the fp32 numbers
    a, b = fp32['mean']['derained']['psnr_y'], fp16['mean']['derained']['psnr_y']
    assert b == pytest.approx(a, abs=0.5)
    assert 'eval cleannet' in capsys.readouterr().err            # the progress bar
    (tmp_path / 'c.fp16.onnx').unlink()
    with pytest.raises(ConfigError, match=r'c\.fp16\.onnx'):
        evaluate(_options(tmp_path / 'c.onnx', data, tmp_path / 'x', precision='fp16'))


def test_eval_fp16_needs_an_onnx_model(tmp_path):
    data = make_roadscene(tmp_path / 'data', seed=1)
    with pytest.raises(ConfigError, match='--onnx'):
        evaluate(_options(_checkpoint(tmp_path, 'cleannet'), data, tmp_path / 'x', precision='fp16'))


def test_train_refuses_a_fusionnet_export_without_a_derain_model_before_training(tmp_path, capsys):
    data = make_roadscene(tmp_path / 'data', seed=1)
    code = cli_main(['train', '--network', 'fusionnet', '--data', str(data), '--steps', '1', '--out',
                     str(tmp_path / 'run'), '--export-to', str(tmp_path / 'models'), '--no-progress'])
    assert code == 2
    assert '--derain-model' in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()


def test_grid_leaves_out_panels_the_data_has_no_image_for(tmp_path):
    image = np.full((20, 30, 3), 0.5, np.float32)
    full = cv2.imread(str(write_grid(tmp_path / 'full.png', [('a', image), ('b', image), ('c', image)], 20)))
    some = cv2.imread(str(write_grid(tmp_path / 'some.png', [('a', image), ('ir', None), ('c', image)], 20)))
    assert full.shape == (20, 3 * 30 + 2 * 4, 3)  # three panels, two 4-pixel gaps
    assert some.shape == (20, 2 * 30 + 4, 3)


def test_reports_record_no_paths_of_this_machine(tmp_path, monkeypatch):
    data_root = tmp_path / 'shared'
    data = make_roadscene(data_root / 'roadscene-rain', seed=1)
    monkeypatch.setenv('NITEDR_DATA', str(data_root))
    evaluate(_options(_checkpoint(tmp_path, 'cleannet'), data, tmp_path / 'eval'))
    report = (tmp_path / 'eval/metrics.md').read_text()
    saved = (tmp_path / 'eval/metrics.json').read_text()
    assert '- data: `$NITEDR_DATA/roadscene-rain`' in report
    assert str(tmp_path) not in report and str(tmp_path) not in saved


def test_eval_runs_on_a_plain_folder_of_real_photos_and_saves_the_outputs(tmp_path):
    photos = tmp_path / 'photos'
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ('street', 'tunnel'):
        cv2.imwrite(str(photos / f'{name}.jpg'), rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
    summary = evaluate(_options(_checkpoint(tmp_path, 'cleannet'), photos, tmp_path / 'eval',
                                save_outputs=True))
    assert summary['layout'] == 'images' and summary['count'] == 2 and summary['mean'] == {}
    assert sorted(p.name for p in (tmp_path / 'eval' / 'outputs').iterdir()) == [
        'street_derained.png', 'tunnel_derained.png']
    assert (tmp_path / 'eval' / 'grids' / 'street.png').is_file()


def test_the_chain_runs_on_rain_free_visible_infrared_pairs(tmp_path):
    data = tmp_path / 'msrs'
    for folder in ('vi', 'ir'):
        (data / folder).mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ('00001N', '00002N'):
        cv2.imwrite(str(data / 'vi' / f'{name}.png'), rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))
        cv2.imwrite(str(data / 'ir' / f'{name}.png'), rng.integers(0, 255, (32, 48), dtype=np.uint8))
    summary = evaluate(_options(_checkpoint(tmp_path, 'cleannet'), data, tmp_path / 'eval',
                                fusion_model=str(_checkpoint(tmp_path, 'fusionnet'))))
    mean = summary['mean']
    assert {'clean_input', 'fusion', 'baseline_visible', 'baseline_average'} <= set(mean)
    assert 'Rain-free input' in (tmp_path / 'eval' / 'metrics.md').read_text()


@pytest.mark.slow
def test_publish_ships_the_uint8_variants_and_the_weights_without_the_float_files(tmp_path):
    from nitedr_ros.engines import open_engine
    from nitedr_ros.engines.options import EngineOptions
    from nitedr_ros.training.publish import publish_checkpoint

    published = publish_checkpoint(_checkpoint(tmp_path, 'mspfn'), tmp_path / 'models', u8=True, weights=True,
                                   keep_float=False)
    names = sorted(p.name for p in (tmp_path / 'models').iterdir())
    assert names == ['mspfn_realtime.md', 'mspfn_realtime.pt', 'mspfn_realtime.u8.fp16.onnx',
                     'mspfn_realtime.u8.onnx']
    card = published.card.read_text()
    assert 'mspfn_realtime.u8.onnx' in card and 'mspfn_realtime.pt' in card and 'uint8-I/O variants' in card
    # the node opens the name of the float model and gets the uint8 variant; torch runs the weights
    engine = open_engine(str(tmp_path / 'models' / 'mspfn_realtime.onnx'), EngineOptions('onnxruntime-cpu'))
    assert engine.io == 'uint8'
    engine.close()
    torch_engine = open_engine(str(tmp_path / 'models' / 'mspfn_realtime.onnx'), EngineOptions('torch-cpu'))
    assert torch_engine.backend == 'torch-cpu'
    torch_engine.close()
