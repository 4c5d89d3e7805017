"""``nitedr info``: parameters, GFLOPs and the tensor contract per network and configuration."""

from __future__ import annotations

import json

import pytest

from nitedr_ros.cli import main
from nitedr_ros.modelspec import CONFIGS, NETWORKS, get_spec


def _info_json(capsys, *args: str) -> list[dict]:
    assert main(['info', '--json', *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_json_fields_for_one_pair(capsys):
    rows = _info_json(capsys, '--network', 'fusionnet', '--config', 'realtime', '--height', '100',
                      '--width', '200')
    assert len(rows) == 1
    row = rows[0]
    assert row['network'] == 'fusionnet' and row['config'] == 'realtime'
    assert isinstance(row['params'], int) and row['params'] > 0
    assert isinstance(row['gflops'], float) and row['gflops'] > 0
    assert (row['height'], row['width']) == (100, 200)
    spec = get_spec('fusionnet')
    assert [t['name'] for t in row['inputs']] == list(spec.input_names)
    assert [t['channels'] for t in row['inputs']] == [3, 1]
    assert [t['name'] for t in row['outputs']] == ['fused']
    assert row['multiple_of'] == 1


def test_info_gflops_scale_with_area_and_pad_to_the_multiple(capsys):
    pair = ('--network', 'mspfn', '--config', 'realtime')
    small = _info_json(capsys, *pair, '--height', '64', '--width', '64')
    large = _info_json(capsys, *pair, '--height', '128', '--width', '128')
    assert large[0]['params'] == small[0]['params']
    assert 3.5 < large[0]['gflops'] / small[0]['gflops'] < 4.5
    padded = _info_json(capsys, *pair, '--height', '60', '--width', '63')
    assert (padded[0]['height'], padded[0]['width']) == (64, 64)
    assert padded[0]['gflops'] == small[0]['gflops']


def test_info_text_table_and_bad_size(capsys):
    assert main(['info', '--network', 'fusionnet', '--height', '64', '--width', '64']) == 0
    out = capsys.readouterr().out
    assert 'fusionnet' in out and 'paper' in out and 'realtime' in out and 'GFLOPs@64x64' in out
    assert 'published' in out
    assert main(['info', '--network', 'fusionnet', '--height', '0']) == 2
    assert 'positive' in capsys.readouterr().err


@pytest.mark.slow
def test_info_all_ten_pairs_at_1280x720(capsys):
    rows = _info_json(capsys)
    assert [(r['network'], r['config']) for r in rows] == [(n, c) for n in NETWORKS for c in CONFIGS]
    by_pair = {(r['network'], r['config']): r for r in rows}
    for network in NETWORKS:
        paper, realtime = by_pair[network, 'paper'], by_pair[network, 'realtime']
        assert (paper['height'], paper['width']) == (720, 1280)
        assert realtime['gflops'] * 20 <= paper['gflops'], network
        published = get_spec(network).published_params
        if published:
            assert abs(paper['params'] - published) <= 0.01 * published, network


def test_info_reports_stereoirr_next_to_the_third_party_figure(capsys):
    rows = _info_json(capsys, '--network', 'stereoirr', '--height', '16', '--width', '16')
    by_config = {r['config']: r for r in rows}
    paper = by_config['paper']
    figure = get_spec('stereoirr').third_party_params
    assert figure and paper['third_party_params'] == figure
    assert paper['params_vs_third_party_pct'] == pytest.approx(100.0 * (paper['params'] - figure) / figure,
                                                               abs=1e-3)
    assert 'published_params' not in paper and 'third_party_params' not in by_config['realtime']
    argv = ['info', '--network', 'stereoirr', '--config', 'paper', '--height', '16', '--width', '16']
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f'{figure:,}*' in text and 'third-party figure, no published code' in text
