#!/usr/bin/env python3
"""This package on a real ROS 2: the versions it ran against, ``colcon build``, ``colcon test`` and
``colcon test-result --verbose`` with the real counts.

Needs ROS 2 sourced (``/opt/ros/<distro>/setup.bash``) and colcon. Builds into a scratch workspace (never the
checkout's ``build/``), runs the whole test suite through ``colcon test`` (pytest under launch_testing's
plugin, as on a ROS machine) and records the commands, their exit codes, the durations, the counts and the
failing tests, if any. Writes ``colcon.md``, ``colcon_build.log``, ``colcon_test.log`` and
``colcon_test_result.log`` to a scratch folder (benchmarks/results/ros2 with ``--publish``).

    python benchmarks/ros2_colcon.py [--publish] [--pytest-args ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_output import ROOT, TEMP_PREFIX, add_output_arguments, output_dir, write_result

from nitedr_ros.fileio import scratch_folder
from nitedr_ros.machine import machine_info

PACKAGES = ('rclpy', 'rmw_cyclonedds_cpp', 'cyclonedds', 'rosbag2', 'rosbag2_storage_mcap',
            'rosbag2_storage_default_plugins', 'launch', 'launch_ros', 'launch_testing', 'ros2cli',
            'message_filters', 'sensor_msgs', 'diagnostic_msgs')


def ros_versions() -> dict[str, str]:
    """Package versions from the sourced ROS 2's package.xml files."""
    prefixes = [Path(p) for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    found = {'ROS_DISTRO': os.environ.get('ROS_DISTRO', '?'),
             'RMW_IMPLEMENTATION': os.environ.get('RMW_IMPLEMENTATION', '(default)')}
    for package in PACKAGES:
        for prefix in prefixes:
            xml = prefix / 'share' / package / 'package.xml'
            if xml.is_file():
                version = re.search(r'<version>([^<]+)</version>', xml.read_text())
                found[package] = version.group(1) if version else '?'
                break
    return found


def run(command: list[str], log: Path, cwd: Path) -> tuple[int, float]:
    print('$', ' '.join(command), flush=True)
    started = time.monotonic()
    with log.open('w') as handle:
        code = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT).returncode
    return code, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pytest-args', nargs=argparse.REMAINDER, default=[],
                        help='passed to colcon test --pytest-args (default: the whole suite)')
    add_output_arguments(parser, 'ros2')
    args = parser.parse_args()
    out = output_dir(args)
    if shutil.which('ros2') is None:
        print('ROS 2 is not sourced: source /opt/ros/<distro>/setup.bash first', file=sys.stderr)
        return 2
    colcon = [sys.executable, '-m', 'colcon']
    with scratch_folder(TEMP_PREFIX) as workspace:
        base = ['--base-paths', str(ROOT), '--build-base', str(workspace / 'build'),
                '--install-base', str(workspace / 'install')]
        steps = []
        build = [*colcon, 'build', '--symlink-install', *base, '--event-handlers', 'console_direct+']
        steps.append(('colcon build', *run(build, workspace / 'build.log', workspace)))
        test = [*colcon, 'test', *base, '--test-result-base', str(workspace / 'results'),
                '--event-handlers', 'console_direct+']
        if args.pytest_args:
            test += ['--pytest-args', *args.pytest_args]
        steps.append(('colcon test', *run(test, workspace / 'test.log', workspace)))
        result = [*colcon, 'test-result', '--test-result-base', str(workspace / 'results'), '--verbose']
        steps.append(('colcon test-result --verbose', *run(result, workspace / 'result.log', workspace)))
        for name, log in (('colcon_build.log', 'build.log'), ('colcon_test.log', 'test.log'),
                          ('colcon_test_result.log', 'result.log')):
            text = (workspace / log).read_text().replace(str(workspace), '<workspace>')
            text = text.replace(str(ROOT), '.')
            write_result(out, name, text)
        summary = (workspace / 'result.log').read_text()
        pytest_line = [line for line in (workspace / 'test.log').read_text().splitlines()
                       if re.search(r'\d+ (passed|failed)', line)]
    counts = re.search(r'Summary: (\d+) tests, (\d+) errors, (\d+) failures, (\d+) skipped', summary)
    lines = ['# This package on a real ROS 2: colcon build, colcon test, colcon test-result', '',
             '## Versions', '', *[f'- {k}: {v}' for k, v in ros_versions().items()], '',
             '## Commands', '', '| command | exit code | seconds |', '|---|---|---|',
             *[f'| `{name}` | {code} | {seconds:.0f} |' for name, code, seconds in steps], '',
             '## Counts', '',
             f'- colcon test-result: `{counts.group(0) if counts else "no summary line"}`',
             f'- pytest: `{pytest_line[-1].strip("= ") if pytest_line else "no pytest summary"}`', '',
             'Logs: `colcon_build.log`, `colcon_test.log`, `colcon_test_result.log` beside this file.', '',
             f'Machine: {machine_info()}', '']
    print('\n'.join(lines))
    write_result(out, 'colcon.md', '\n'.join(lines))
    return 0 if all(code == 0 for _, code, _ in steps) else 1


if __name__ == '__main__':
    sys.exit(main())
