"""The scripts in ``benchmarks/``: each starts, writes to a scratch folder unless told to publish (a quick run
never overwrites the committed reference numbers), and the GPU benchmark runs end to end on the CPU."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / 'benchmarks'
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob('*.py') if p.name != 'bench_output.py')


def run_script(name: str, *args: str, tmp: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONUNBUFFERED='1')
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True,
                          env=env, cwd=tmp, timeout=timeout)


def digest(folder: Path) -> str:
    files = sorted(p for p in folder.rglob('*') if p.is_file())
    return hashlib.sha256(b''.join(p.name.encode() + p.read_bytes() for p in files)).hexdigest()


@pytest.mark.parametrize('name', SCRIPTS)
def test_every_benchmark_script_starts_and_offers_publish(name, tmp_path):
    done = run_script(name, '--help', tmp=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '--publish' in done.stdout and '--output-dir' in done.stdout


def test_a_quick_run_writes_to_scratch_and_leaves_the_reference_numbers_alone(tmp_path):
    before = digest(BENCHMARKS / 'results')
    done = run_script('bench_sync.py', '--quick', '--reference-limit-s', '0.2', tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'nitedr-benchmarks' / 'sync_bench.md').is_file()
    assert f'wrote {tmp_path / "nitedr-benchmarks" / "sync_bench.md"}' in done.stdout
    refused = run_script('bench_sync.py', '--quick', '--publish', tmp=tmp_path)
    assert refused.returncode == 2 and 'never published' in refused.stderr
    assert digest(BENCHMARKS / 'results') == before


def test_the_node_overhead_benchmark_runs_every_variant(tmp_path):
    done = run_script('bench_node_overhead.py', '--sets', '3', '--copy-repeats', '1', '--output-dir',
                      str(tmp_path / 'out'), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / 'out' / 'node_overhead.md').read_text()
    for variant in ('| core |', '| rclpy_path |', '| offset_thermal |'):
        assert variant in text
    assert 'variant rclpy_path' in done.stdout  # progress


def test_the_gpu_benchmark_runs_end_to_end_on_the_cpu(tmp_path):
    pytest.importorskip('torch')
    done = run_script('bench_gpu.py', '--device', 'cpu', '--smoke', '--no-compile', '--output-dir',
                      str(tmp_path / 'out'), tmp=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / 'out' / 'gpu_bench.md').read_text()
    assert 'cleannet' in text and 'nitedr' in text


def test_a_benchmark_killed_outright_has_its_temp_folder_removed_by_the_next_run(tmp_path):
    pytest.importorskip('rosbags')
    pytest.importorskip('onnxruntime')
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    stale = tmp_path / f'nitedr-bench-{child.pid}-abcd'  # what a SIGKILLed run leaves
    (stale / 'sample').mkdir(parents=True)
    done = run_script('bench_bag_derain.py', '--width', '64', '--height', '48', '--duration', '0.5',
                      '--threads', '1', tmp=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not stale.exists()
    assert not any(p.name.startswith('nitedr-bench-') for p in tmp_path.iterdir())  # its own one is gone
    assert 'case tool:' in done.stdout and (tmp_path / 'nitedr-benchmarks' / 'bag_derain_64x48.md').is_file()
