"""Test-wide setup: loopback-only DDS, small thread counts, the shared data folder, and per-test skips of
test modules whose optional dependencies are missing.

A module that cannot be imported because an optional package is missing (torch, onnx, rosbags, cyclonedds,
rclpy, launch_testing ...; the extras and ROS 2 are optional), or that skips itself at import time, is not
collected as one module-level skip or a collection error: every test function in it is reported as skipped
with the reason. So on a ROS machine with only the runtime dependencies ``colcon test`` runs every test that
can run and lists the others one by one (a module-level skip ends a launch_testing run as "1 skipped").
"""

from __future__ import annotations

import ast
import logging
import os
import re
from pathlib import Path

import pytest

from nitedr_ros.paths import DDS_LOOPBACK_CONFIG, shared_data_dir

OPTIONAL_PACKAGES = frozenset({
    'torch', 'onnx', 'onnxscript', 'onnxruntime', 'rosbags', 'cyclonedds', 'rclpy', 'launch', 'launch_ros',
    'launch_testing', 'launch_testing_ros', 'rosbag2_py', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs',
    'rcl_interfaces', 'rosgraph_msgs', 'pywt', 'matplotlib', 'cuda', 'tensorrt', 'ray', 'cv2', 'yaml', 'tqdm',
})
_MISSING = re.compile(r"No module named '([\w.]+)'")


def _test_names(path: Path) -> list[str]:
    """Top-level ``test*`` functions and ``Test*`` class methods of a module, read without importing it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith('test'):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith('Test'):
            names += [f'{node.name}::{m.name}' for m in node.body
                      if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name.startswith('test')]
    return names


class SkippedTest(pytest.Item):
    """A test of a module that could not be imported for a missing optional dependency."""

    def __init__(self, *, reason: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        pytest.skip(self.reason)

    def reportinfo(self):
        return self.path, None, self.name


class OptionalDepsModule(pytest.Module):
    """A test module whose import may need an optional package (see the module docstring)."""

    def collect(self):
        try:
            return super().collect()
        except pytest.skip.Exception as exc:
            reason = str(exc.msg)
        except self.CollectError as exc:
            match = _MISSING.search(str(exc))
            if match is None or match.group(1).split('.')[0] not in OPTIONAL_PACKAGES:
                raise
            reason = f'needs {match.group(1)} (not installed here)'
        return [SkippedTest.from_parent(self, name=name, reason=reason) for name in _test_names(self.path)]


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector):
    source = module_path.read_text()
    if 'generate_test_description' in source:
        try:
            import launch_testing  # noqa: F401 - its pytest plugin collects launch tests
        except ImportError:
            pass
        else:
            return None
    return OptionalDepsModule.from_parent(parent, path=module_path)


# Every test and every process it starts keeps DDS on this host.
os.environ['CYCLONEDDS_URI'] = DDS_LOOPBACK_CONFIG.as_uri()
os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(autouse=True)
def python_logs_propagate() -> None:
    """Wherever ROS 2 is sourced, launch_testing's pytest plugin imports ``launch``, which makes every logger
    created after it a non-propagating LaunchLogger, so ``caplog`` (at the root logger) hears nothing from
    modules imported later. This project's loggers propagate, as Python's own do."""
    if logging.getLoggerClass() is not logging.Logger:
        logging.setLoggerClass(logging.Logger)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if name.startswith('nitedr_ros') and isinstance(logger, logging.Logger):
            logger.propagate = True


@pytest.fixture(autouse=True)
def rclpy_logging_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every core logger in every test enforces rclpy's one-severity-per-call-site rule (a stand-in that
    logs one call site with two severities fails the test, as the real rclpy kills the node)."""
    from nitedr_ros.core.log import CoreLog
    from nitedr_ros.core.testing import StrictSeverityLogger

    original = CoreLog.__init__

    def strict_init(self: CoreLog, target: object) -> None:
        original(self, StrictSeverityLogger(target))

    monkeypatch.setattr(CoreLog, '__init__', strict_init)


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """``../shared/data`` (or ``$NITEDR_DATA``); tests that need it skip where it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip('shared data folder not present (set NITEDR_DATA)')
    return path
