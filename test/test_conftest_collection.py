"""A test module whose optional dependency is missing is reported test by test, never as one module-level
skip or a collection error (colcon test and launch_testing count those wrong)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(importlib.util.find_spec('tensorrt') is not None, reason='tensorrt is installed here')
def test_missing_optional_dependencies_skip_each_test_with_the_reason(tmp_path):
    shutil.copy(HERE / 'conftest.py', tmp_path / 'conftest.py')
    (tmp_path / 'test_needs_tensorrt.py').write_text(
        'import tensorrt\n\n\ndef test_one():\n    pass\n\n\ndef test_two():\n    pass\n\n\n'
        'class TestGroup:\n    def test_three(self):\n        pass\n')
    (tmp_path / 'test_skips_itself.py').write_text(
        "import pytest\n\npytest.importorskip('tensorrt')\n\n\ndef test_four():\n    pass\n")
    broken = 'import not_an_optional_package_at_all\n\n\ndef test_x():\n    pass\n'
    (tmp_path / 'test_broken.py').write_text(broken)
    env = {k: v for k, v in os.environ.items() if k != 'PYTEST_ADDOPTS'}  # colcon test passes its args there
    result = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider',
                             '--continue-on-collection-errors',
                             str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env=env)
    out = result.stdout + result.stderr
    assert '4 skipped' in out, out
    assert 'needs tensorrt (not installed here)' in out
    assert '1 error' in out  # a real import error is still an error
