"""``nitedr bag`` under the faults a car's recording box meets: a full disk or a file-size limit, SIGTERM
mid-write, partial folders of killed runs, an interrupt while the bag is closed and renamed, an undecodable
message, and a bag whose metadata contradicts its storage. Every one ends in one clear line (exit 2, or
130/143 for an interrupt) and leaves no half-written output."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nitedr_ros.cli import main as cli_main
from nitedr_ros.fileio import remove_stale, scratch_folder
from nitedr_ros.interrupts import pid_alive

rosbags = pytest.importorskip('rosbags')

from nitedr_ros.transports.bag import writer as bag_writer  # noqa: E402
from nitedr_ros.transports.bag.derain import BagDerainOptions, derain_bag, format_summary  # noqa: E402
from nitedr_ros.transports.bag.reader import BagError, open_bag  # noqa: E402
from nitedr_ros.transports.bag.sample import SampleSpec, make_sample  # noqa: E402

SMALL = SampleSpec(duration_s=1.0, width=64, height=48, cameras=('rgb',))


@pytest.fixture(scope='module')
def rgb_bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('faults') / 'rgb'
    make_sample(out, SampleSpec(duration_s=2.0, width=160, height=120, cameras=('rgb',)))
    return out


def _derain_args(bag: Path, out: Path, *extra: str) -> list[str]:
    return ['bag', 'derain', str(bag), str(out), '--mode', 'single', '--backend', 'identity', '--no-progress',
            *extra]


def dead_pid() -> int:
    """The pid of a process that has just exited."""
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def _child(code: str, *args: str) -> subprocess.Popen:
    """The CLI in a child process, after ``code`` (patches), with Ctrl-C's handler installed explicitly (a
    shell starting the suite in the background hands its children SIGINT ignored)."""
    program = ('import signal, sys, time\n'
               'signal.signal(signal.SIGINT, signal.default_int_handler)\n'
               f'{code}\n'
               'from nitedr_ros.cli import main\n'
               'sys.exit(main(sys.argv[1:]))\n')
    return subprocess.Popen([sys.executable, '-c', program, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_a_file_size_limit_mid_run_is_one_line_exit_2_and_nothing_left(rgb_bag, tmp_path, storage):
    # A real write failure: RLIMIT_FSIZE makes the kernel refuse the write with EFBIG ("File too large"),
    # as a full disk refuses with ENOSPC. Python ignores SIGXFSZ, so the write returns the error.
    code = ('import resource\n'
            'resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, resource.RLIM_INFINITY))')
    process = _child(code, *_derain_args(rgb_bag, tmp_path / 'out', '--storage', storage))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    said = {'sqlite3': 'sqlite3 says "disk I/O error"', 'mcap': 'failed: file too large'}[storage]
    assert said in err and 'partial bag was removed' in err, err
    assert list(tmp_path.iterdir()) == []


def test_sqlite_disk_full_is_named(rgb_bag, tmp_path, monkeypatch, capsys):
    from rosbags.rosbag2 import Writer

    original = Writer.write
    calls = {'n': 0}

    def full_disk(self, connection, timestamp, data):
        calls['n'] += 1
        if calls['n'] > 10:
            raise sqlite3.OperationalError('database or disk is full')
        return original(self, connection, timestamp, data)

    monkeypatch.setattr(Writer, 'write', full_disk)
    assert cli_main(_derain_args(rgb_bag, tmp_path / 'out')) == 2
    err = capsys.readouterr().err
    assert 'sqlite3 says "database or disk is full"' in err and 'free on' in err, err
    assert list(tmp_path.iterdir()) == []


def test_too_little_free_space_is_refused_before_anything_is_written(rgb_bag, tmp_path, monkeypatch, capsys):
    usage = bag_writer.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(bag_writer.shutil, 'disk_usage',
                        lambda _path: usage._replace(free=bag_writer.DISK_RESERVE_BYTES + 100_000))
    assert cli_main(_derain_args(rgb_bag, tmp_path / 'out')) == 2
    err = capsys.readouterr().err
    assert 'not enough disk space' in err and 'the output bag needs about' in err, err
    assert list(tmp_path.iterdir()) == []


def test_the_disk_filling_up_during_the_run_stops_it_before_the_writes_fail(rgb_bag, tmp_path, monkeypatch):
    usage = bag_writer.shutil.disk_usage(tmp_path)
    calls = {'n': 0}

    def shrinking(_path):
        calls['n'] += 1  # plenty at the start, then another program fills the disk
        return usage._replace(free=usage.free if calls['n'] <= 2 else 1000)

    monkeypatch.setattr(bag_writer.shutil, 'disk_usage', shrinking)
    monkeypatch.setattr('nitedr_ros.transports.bag.derain.SPACE_CHECK_EVERY', 8)
    with pytest.raises(BagError, match=r'not enough disk space .* writing \(after 8 of'):
        derain_bag(BagDerainOptions(input=rgb_bag, output=tmp_path / 'out', mode='single', backend='identity',
                                    progress=False))
    assert list(tmp_path.iterdir()) == []


def test_sigterm_mid_write_cleans_up_like_ctrl_c(tmp_path):
    out = tmp_path / 'terminated'
    slow = ('from rosbags.rosbag2 import Writer\n'
            'write = Writer.write\n'
            'Writer.write = lambda *args: (time.sleep(0.02), write(*args))[1]')
    process = _child(slow, 'bag', 'make-sample', str(out), '--duration', '30', '--width', '320', '--height',
                     '240', '--cameras', 'rgb')
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.name.startswith('.terminated.partial') for p in
                                                   tmp_path.iterdir()):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert 'interrupted (SIGTERM)' in err
    assert list(tmp_path.iterdir()) == []


def test_partial_folders_of_killed_runs_are_removed_and_named_live_ones_kept(rgb_bag, tmp_path):
    stale = tmp_path / f'.out.partial-{dead_pid()}'
    (stale / 'out').mkdir(parents=True)
    (stale / 'out' / 'out_0.db3').write_bytes(b'\0' * 1000)
    live = tmp_path / '.out.partial-1'  # pid 1 is always running
    live.mkdir()
    summary = derain_bag(BagDerainOptions(input=rgb_bag, output=tmp_path / 'out', mode='single',
                                          backend='identity', progress=False))
    assert not stale.exists() and live.exists()
    assert any(stale.name in note and 'killed' in note for note in summary['notes'])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.out.partial-1', 'out']


def test_an_interrupt_while_the_bag_is_closed_aborts_before_the_rename(tmp_path, monkeypatch):
    from rosbags.rosbag2 import Writer

    close = Writer.close

    def interrupted_close(self):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the storage is being finished
        close(self)

    monkeypatch.setattr(Writer, 'close', interrupted_close)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with pytest.raises(KeyboardInterrupt):
        make_sample(tmp_path / 'out', SMALL)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_during_the_rename_lets_the_complete_bag_land(tmp_path, monkeypatch):
    replace = os.replace

    def interrupted_replace(src, dst):
        if Path(dst) == tmp_path / 'out':
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C at the very end, while the bag gets its name
        replace(src, dst)

    monkeypatch.setattr(bag_writer.os, 'replace', interrupted_replace)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    summary = make_sample(tmp_path / 'out', SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out']
    with open_bag(tmp_path / 'out') as reader:
        assert reader.message_count == summary['messages']


def _bag_with_a_truncated_image(source: Path, out: Path) -> None:
    """A copy of ``source`` with the 5th /rgb/image message cut to 10 bytes."""
    from rosbags.rosbag2 import Writer

    with open_bag(source) as reader, Writer(out, version=8) as writer:
        connections = {conn.topic: writer.add_connection(conn.topic, conn.msgtype, typestore=reader.typestore)
                       for conn in reader.connections}
        images = 0
        for conn, record_ns, raw in reader.messages():
            if conn.topic == '/rgb/image':
                images += 1
                if images == 5:
                    raw = raw[:10]
            writer.write(connections[conn.topic], record_ns, raw)


def test_an_undecodable_message_is_skipped_counted_and_named(rgb_bag, tmp_path, capsys):
    broken = tmp_path / 'broken'
    _bag_with_a_truncated_image(rgb_bag, broken)
    summary = derain_bag(BagDerainOptions(input=broken, output=tmp_path / 'out', mode='single',
                                          backend='identity', progress=False))
    assert summary['undecodable_skipped'] == {'/rgb/image': 1}
    assert summary['frames_in']['rgb'] == 39 and summary['outputs_published'] == 39
    assert any('/rgb/image' in note and 'cannot decode' in note for note in summary['notes'])
    assert 'undecodable messages skipped' in format_summary(summary)
    assert cli_main(_derain_args(broken, tmp_path / 'strict', '--strict')) == 2
    assert 'cannot decode a sensor_msgs/msg/Image message on /rgb/image' in capsys.readouterr().err
    assert not (tmp_path / 'strict').exists()


def test_metadata_that_contradicts_the_storage_names_the_mismatch(tmp_path, capsys):
    bag = tmp_path / 'edited'
    make_sample(bag, SMALL)
    metadata = bag / 'metadata.yaml'
    metadata.write_text(metadata.read_text().replace('type: sensor_msgs/msg/Image',
                                                     'type: sensor_msgs/msg/CompressedImage', 1))
    assert cli_main(_derain_args(bag, tmp_path / 'out')) == 2
    err = capsys.readouterr().err
    assert ('metadata.yaml declares /rgb/image as sensor_msgs/msg/CompressedImage, but its storage file '
            'edited.db3 records sensor_msgs/msg/Image') in err, err
    assert 'Jazzy does not define' not in err


def test_scratch_folders_of_dead_processes_are_removed(tmp_path):
    stale = tmp_path / f'nitedr-bench-{dead_pid()}-abc'
    stale.mkdir()
    (stale / 'big.bin').write_bytes(b'\0' * 1000)
    mine = None
    with scratch_folder('nitedr-bench-', tmp_path) as folder:
        mine = folder
        assert folder.is_dir() and folder.name.startswith(f'nitedr-bench-{os.getpid()}-')
        assert not stale.exists()
        assert remove_stale(tmp_path, 'nitedr-bench-') == []  # its own folder is never stale
    assert not mine.exists()
    assert pid_alive(os.getpid()) and not pid_alive(dead_pid())
