"""nitedr_ros.fileio: whole files or nothing, no temporaries left, the old file kept on failure."""

from __future__ import annotations

import os

import pytest

from nitedr_ros.fileio import atomic_output, write_bytes_atomic, write_text_atomic


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / 'sub' / 'file.bin'
    write_bytes_atomic(target, b'first', fsync=True)
    write_bytes_atomic(target, b'second', fsync=True)
    assert target.read_bytes() == b'second'
    assert sorted(p.name for p in target.parent.iterdir()) == ['file.bin']


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / 'file.bin'
    write_bytes_atomic(target, b'old', fsync=True)

    def broken_replace(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'replace', broken_replace)
    with pytest.raises(OSError):
        write_bytes_atomic(target, b'new', fsync=True)
    assert target.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['file.bin']


def test_an_error_while_writing_keeps_the_old_file_and_the_target_suffix(tmp_path):
    target = write_text_atomic(tmp_path / 'plot.png', 'old')
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == '.png' and tmp.name.startswith('.plot.')
        tmp.write_text('half')
        raise RuntimeError('writer failed')
    assert target.read_text() == 'old'
    assert [p.name for p in tmp_path.iterdir()] == ['plot.png']
