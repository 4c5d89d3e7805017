#!/usr/bin/env bash
# Fresh machine with python3 -> virtual environment with every extra (CPU torch) -> lint -> full test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0          # the CPU build; never the multi-GB CUDA wheels
.venv/bin/python -m pip install -q -e '.[all]'
export CYCLONEDDS_URI="file://$PWD/nitedr_ros/transports/dds/cyclonedds-loopback.xml"
.venv/bin/ruff check nitedr_ros test launch scripts benchmarks setup.py
.venv/bin/python -m pytest -q "$@"
