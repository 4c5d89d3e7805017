"""Where a benchmark writes, and how it stops: shared by every script in ``benchmarks/``.

By default results go to a scratch folder (``$TMPDIR/nitedr-benchmarks``), so a quick or smoke run never
overwrites the reference numbers committed in ``benchmarks/results/``; ``--publish`` writes there on purpose,
``--output-dir`` anywhere else. Files are written atomically. SIGTERM is handled like Ctrl-C, so temporary
folders (made with :func:`nitedr_ros.fileio.scratch_folder`) are removed either way, and the folders of a
benchmark that was killed outright are removed by the next run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nitedr_ros.fileio import write_text_atomic  # noqa: E402
from nitedr_ros.interrupts import terminate_as_interrupt  # noqa: E402
from nitedr_ros.paths import benchmark_scratch_dir  # noqa: E402

RESULTS = ROOT / 'benchmarks' / 'results'
SCRATCH = benchmark_scratch_dir()
# prefix of the temporary folders benchmarks work in (stale ones of killed runs are removed)
TEMP_PREFIX = 'nitedr-bench-'


def add_output_arguments(parser: argparse.ArgumentParser, subfolder: str = '') -> None:
    """``--output-dir`` and ``--publish``; call :func:`output_dir` with the parsed arguments."""
    where = f'benchmarks/results/{subfolder}'.rstrip('/')
    parser.add_argument('--output-dir', type=Path, default=None,
                        help=f'where to write the results (default: {SCRATCH / subfolder})')
    parser.add_argument('--publish', action='store_true',
                        help=f'write into {where}, the reference numbers committed with the code')
    parser.set_defaults(results_subfolder=subfolder)


def output_dir(args: argparse.Namespace) -> Path:
    """The results folder the arguments ask for (created); also makes SIGTERM clean up like Ctrl-C."""
    terminate_as_interrupt()
    subfolder = getattr(args, 'results_subfolder', '')
    if args.publish and args.output_dir is not None:
        raise SystemExit('--publish and --output-dir exclude each other')
    folder = (RESULTS / subfolder if args.publish else args.output_dir or SCRATCH / subfolder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_result(folder: Path, name: str, text: str) -> Path:
    """Write one result file atomically and say where it went."""
    path = write_text_atomic(folder / name, text if text.endswith('\n') else text + '\n')
    print(f'wrote {path}', flush=True)
    return path
