"""``nitedr <verb>``: one command line for every tool; each verb's module is imported only when used.

A verb module lives in ``nitedr_ros.commands`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .errors import NitedrError
from .interrupts import exit_status, terminate_as_interrupt

# verb -> module under nitedr_ros.commands
VERBS: dict[str, str] = {
    'demo': 'demo',
    'info': 'info',
    'export': 'export',
    'check-onnx': 'check_onnx',
    'build-engine': 'build_engine',
    'calibrate-thermal': 'calibrate_thermal',
    'bench': 'bench',
    'run': 'run',
    'bag': 'bag',
    'fleet': 'fleet',
    'train': 'train',
    'eval': 'evaluate',
}


# an optional package -> the pip extra that installs it
EXTRA_OF: dict[str, str] = {
    'torch': 'train', 'onnx': 'train', 'onnxscript': 'train', 'pywt': 'train', 'onnxruntime': 'runtime',
    'cv2': 'runtime', 'matplotlib': 'runtime', 'rosbags': 'bag', 'cyclonedds': 'dds', 'ray': 'fleet',
    'tensorrt': 'tensorrt', 'cuda': 'tensorrt', 'rclpy': 'ROS 2 (source /opt/ros/<distro>/setup.bash)',
}


def missing_extra(exc: ImportError) -> str | None:
    """One line naming what to install for an ImportError of an optional package (None: not one of them)."""
    name = (exc.name or '').split('.')[0]
    extra = EXTRA_OF.get(name)
    if extra is None:
        return None
    if extra.startswith('ROS'):
        return f'needs {name}: {extra}'
    hint = " (CPU torch first: pip install torch==2.13.0)" if name == 'torch' else ''
    return f"needs {name}, which is not installed: pip install -e '.[{extra}]'{hint}"


def _load(verb: str):
    return importlib.import_module(f'nitedr_ros.commands.{VERBS[verb]}')


def _usage() -> str:
    lines = [f'usage: nitedr <verb> [options]   (nitedr_ros {__version__})', '', 'verbs:']
    for verb in VERBS:
        try:
            summary = _load(verb).HELP
        except ImportError as exc:  # a verb whose extra is not installed
            summary = f'(unavailable: {exc.name} is not installed)'
        lines.append(f'  {verb:<13} {summary}')
    lines.append('')
    lines.append("'nitedr <verb> --help' describes a verb.")
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nitedr`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ('-h', '--help', 'help'):
        print(_usage())
        return 0
    if args[0] == '--version':
        print(__version__)
        return 0
    verb = args[0]
    if verb not in VERBS:
        print(f'nitedr: unknown verb {verb!r}\n\n{_usage()}', file=sys.stderr)
        return 2
    try:
        module = _load(verb)
    except ImportError as exc:
        print(f'nitedr {verb}: {missing_extra(exc) or f"needs {exc.name}, which is not installed"}',
              file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f'nitedr {verb}', description=module.HELP)
    module.add_arguments(parser)
    parsed = parser.parse_args(args[1:])
    terminate_as_interrupt()  # SIGTERM (systemd, timeout, docker stop) cleans up as Ctrl-C does
    try:
        return int(module.run(parsed) or 0)
    except NitedrError as exc:
        print(f'nitedr {verb}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        status = exit_status(exc)
        print(f'nitedr {verb}: interrupted ({"SIGTERM" if status == 143 else "Ctrl-C"})', file=sys.stderr)
        return status
    except ImportError as exc:  # an optional package a verb imports when it needs it
        line = missing_extra(exc)
        if line is None:
            raise
        print(f'nitedr {verb}: {line}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
