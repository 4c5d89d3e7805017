"""``nitedr fleet derain`` on real processes: a folder of sample bags (one corrupt) derained by a local
process pool and by a real local Ray cluster (loopback, 2 CPUs); outputs equal ``bag derain`` bag by bag;
resumable through the manifest after a second run, Ctrl-C and a killed driver, with nothing half-written."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip('rosbags')
pytest.importorskip('onnxruntime')

from bag_messages import messages_by_topic
from nitedr_ros.cli import main as cli_main
from nitedr_ros.core.clock import header_stamp_ns
from nitedr_ros.engines import tiny_models
from nitedr_ros.errors import ConfigError
from nitedr_ros.fleet.jobs import find_bags, plan_jobs
from nitedr_ros.fleet.manifest import MANIFEST_NAME, Manifest
from nitedr_ros.transports.bag.derain import BagDerainOptions, derain_bag
from nitedr_ros.transports.bag.sample import SampleSpec, make_sample

OUTPUT_TOPICS = ('/derained/rgb/image', '/fused/image', '/derained/rgb/camera_info', '/rgb/image',
                 '/thermal/image')


@pytest.fixture(scope='module')
def archive(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """drive1/{a,b} (sqlite3), drive2/c.mcap, drive2/d (ROS 2, 1.5 s), drive2/corrupt; tiny real models."""
    root = tmp_path_factory.mktemp('fleet')
    models = {'derain': str(tiny_models.channel_gain_model(root / 'cleannet_gain.onnx', (1.0, 0.5, 0.25))),
              'fusion': str(tiny_models.blend_fusion_model(root / 'fusionnet_blend.onnx', 0.5))}
    archive = root / 'archive'
    spec = {'width': 96, 'height': 72, 'cameras': ('rgb', 'thermal')}
    make_sample(archive / 'drive1' / 'a', SampleSpec(duration_s=1.0, seed=1, **spec))
    make_sample(archive / 'drive1' / 'b', SampleSpec(duration_s=1.0, seed=2, **spec))
    make_sample(root / 'mcap_src', SampleSpec(duration_s=1.0, seed=3, storage='mcap', **spec))
    (archive / 'drive2').mkdir()
    (root / 'mcap_src' / 'mcap_src.mcap').rename(archive / 'drive2' / 'c.mcap')
    make_sample(archive / 'drive2' / 'd', SampleSpec(duration_s=1.5, seed=4, **spec))
    corrupt = archive / 'drive2' / 'corrupt'
    make_sample(corrupt, SampleSpec(duration_s=0.5, seed=5, **spec))
    (corrupt / 'corrupt.db3').write_bytes(b'this is not an sqlite database' * 10)
    return archive, models


def fleet(archive: Path, out: Path, models: dict[str, str], *extra: str) -> list[str]:
    return ['fleet', 'derain', str(archive), str(out), '--backend', 'onnxruntime-cpu',
            '--model', f'derain={models["derain"]}', '--model', f'fusion={models["fusion"]}', '--no-progress',
            *extra]


def digest_of(messages: list) -> list[tuple[int, str]]:
    out = []
    for _, msg in messages:
        data = bytes(getattr(msg, 'data', b'')) if hasattr(msg, 'data') else repr(msg).encode()
        out.append((header_stamp_ns(msg), hashlib.sha256(data).hexdigest()[:16]))
    return out


def assert_same_as_bag_derain(archive: Path, out: Path, models: dict[str, str], tmp_path: Path) -> None:
    """Each fleet output equals `nitedr bag derain` of that bag alone: same topics, counts, stamps, pixels."""
    for relative in ('drive1/a', 'drive1/b', 'drive2/c', 'drive2/d'):
        source = archive / relative if (archive / relative).exists() else archive / f'{relative}.mcap'
        alone = tmp_path / 'alone' / relative
        derain_bag(BagDerainOptions(input=source, output=alone, backend='onnxruntime-cpu', models=models,
                                    overrides={'threads': 1}, progress=False))
        mine, theirs = messages_by_topic(out / relative), messages_by_topic(alone)
        assert sorted(mine) == sorted(theirs), relative
        for topic in OUTPUT_TOPICS:
            assert digest_of(mine[topic]) == digest_of(theirs[topic]), (relative, topic)
            assert [t for t, _ in mine[topic]] == [t for t, _ in theirs[topic]], (relative, topic)
        assert len(mine['/diagnostics']) == len(theirs['/diagnostics'])


def no_partials(folder: Path) -> bool:
    return not [p for p in folder.rglob('.*.partial-*')]


def manifest_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines() if line.strip()]


def test_bags_are_found_and_mapped_to_their_relative_paths(archive, tmp_path):
    root, _ = archive
    (root / 'drive1' / '.a.partial-12345').mkdir()  # a bag tool's partial output is never an input
    try:
        found = [p.relative_to(root).as_posix() for p in find_bags(root)]
    finally:
        (root / 'drive1' / '.a.partial-12345').rmdir()
    assert found == ['drive1/a', 'drive1/b', 'drive2/c.mcap', 'drive2/corrupt', 'drive2/d']
    jobs = plan_jobs(root, tmp_path / 'out')
    assert [Path(j.output).relative_to((tmp_path / 'out').resolve()).as_posix() for j in jobs] == [
        'drive1/a', 'drive1/b', 'drive2/c', 'drive2/corrupt', 'drive2/d']
    listing = tmp_path / 'bags.txt'
    listing.write_text(f'# two of them\n{root / "drive1" / "b"}\n\n{root / "drive2" / "c.mcap"}  # mcap\n')
    assert [j.relative for j in plan_jobs(listing, tmp_path / 'out')] == ['b', 'c.mcap']
    listing.write_text(f'{root / "drive1" / "a"}\n{root / "drive2" / "d"}\n{root / "drive2" / "missing"}\n')
    with pytest.raises(ConfigError, match=r'bags\.txt:3: bag not found'):
        plan_jobs(listing, tmp_path / 'out')


def test_a_manifest_cut_mid_line_is_read_and_appended_to_safely(tmp_path, archive):
    root, _ = archive
    job = plan_jobs(root / 'drive1' / 'a', tmp_path)[0]
    cut = json.dumps({'input': 'x', 'status': 'done'}) + '\n{"input": "y", "sta'  # the driver died mid-line
    (tmp_path / MANIFEST_NAME).write_text(cut)
    manifest = Manifest(tmp_path)
    assert manifest.unreadable_lines == 1 and set(manifest.latest) == {'x'}
    manifest.append({**job.as_record(), 'status': 'done', 'settings': 's'})
    again = Manifest(tmp_path)
    assert again.unreadable_lines == 1 and job.input in again.latest
    Path(job.output).mkdir(parents=True)
    assert again.is_done(job, 's') and not again.is_done(job, 'other settings')


def test_local_pool_derains_the_archive_like_bag_derain_and_a_second_run_skips(archive, tmp_path, capsys):
    root, models = archive
    out = tmp_path / 'out'
    assert cli_main(fleet(root, out, models, '--workers', '2')) == 1  # one bag failed
    printed = capsys.readouterr().out
    assert '4 bags derained, 1 failed, 0 skipped' in printed
    records = {r['relative']: r for r in manifest_lines(out)}
    assert records['drive2/corrupt']['status'] == 'failed' and 'corrupt' in records['drive2/corrupt']['error']
    assert all(records[k]['status'] == 'done' for k in ('drive1/a', 'drive1/b', 'drive2/c.mcap', 'drive2/d'))
    assert len({r['worker'] for r in records.values()}) == 2
    assert_same_as_bag_derain(root, out, models, tmp_path)
    report = (out / 'fleet_report.md').read_text()
    assert '| drive2/corrupt | failed |' in report and 'failures by reason: BagError 1' in report

    assert cli_main(fleet(root, out, models, '--workers', '2')) == 1
    assert '0 bags derained, 1 failed, 4 skipped (done before)' in capsys.readouterr().out
    assert len(manifest_lines(out)) == 6  # only the corrupt bag was tried again
    assert no_partials(out)


def _driver(root: Path, out: Path, models: dict[str, str]) -> subprocess.Popen:
    """The CLI in its own process with one worker: bags one after another, so a signal sent when the first
    is recorded lands mid-run."""
    program = ('import signal, sys, time\n'
               'signal.signal(signal.SIGINT, signal.default_int_handler)\n'
               'from nitedr_ros.cli import main\n'
               'sys.exit(main(sys.argv[1:]))\n')
    return subprocess.Popen([sys.executable, '-c', program, *fleet(root, out, models, '--workers', '1')],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_records(out: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (out / MANIFEST_NAME).is_file() and len(manifest_lines(out)) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError('no bag finished in time')


@pytest.mark.parametrize('stop', ['ctrl-c', 'kill-driver'])
def test_a_run_stopped_mid_way_is_completed_by_the_next_with_nothing_duplicated(archive, tmp_path, stop,
                                                                                 capsys):
    root, models = archive
    out = tmp_path / 'out'
    process = _driver(root, out, models)
    _wait_for_records(out, 1, process)
    if stop == 'ctrl-c':
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=120)
        assert process.returncode == 130 and 'run the same command again' in stdout
        assert json.loads((out / 'fleet_report.json').read_text())['summary']['interrupted'] is True
    else:
        process.kill()  # the driver dies at once; its worker gets SIGTERM and aborts its bag cleanly
        process.communicate(timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not no_partials(out):
            time.sleep(0.1)
    assert no_partials(out)
    first = manifest_lines(out)
    assert 1 <= len(first) < 5
    finished = {r['relative'] for r in first if r['status'] == 'done'}

    assert cli_main(fleet(root, out, models, '--workers', '2')) == 1
    assert f'{4 - len(finished)} bags derained, 1 failed, {len(finished)} skipped' in capsys.readouterr().out
    lines = manifest_lines(out)
    done = [r['relative'] for r in lines if r['status'] == 'done']
    assert sorted(done) == ['drive1/a', 'drive1/b', 'drive2/c.mcap', 'drive2/d']  # each exactly once
    assert no_partials(out)
    assert_same_as_bag_derain(root, out, models, tmp_path)


@pytest.mark.slow
def test_a_real_local_ray_cluster_derains_the_archive_like_bag_derain(archive, tmp_path, capsys):
    ray = pytest.importorskip('ray')
    root, models = archive
    out = tmp_path / 'out'
    try:
        assert cli_main(fleet(root, out, models, '--address', 'start', '--workers', '2')) == 1
    finally:
        if ray.is_initialized():
            ray.shutdown()
    printed = capsys.readouterr().out
    assert '4 bags derained, 1 failed, 0 skipped' in printed
    records = {r['relative']: r for r in manifest_lines(out)}
    assert records['drive2/corrupt']['status'] == 'failed'
    assert not ray.is_initialized()  # the Ray it started is shut down
    assert_same_as_bag_derain(root, out, models, tmp_path)
    assert no_partials(out)
    assert cli_main(fleet(root, out, models, '--workers', '1')) == 1  # resumable across runners
    assert '0 bags derained, 1 failed, 4 skipped' in capsys.readouterr().out


def test_without_ray_the_command_names_the_extra(archive, tmp_path, monkeypatch, capsys):
    root, models = archive
    monkeypatch.setitem(sys.modules, 'ray', None)
    assert cli_main(fleet(root, tmp_path / 'out', models, '--address', 'auto')) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[fleet]'" in err and '--address local' in err
