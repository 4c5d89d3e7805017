#!/usr/bin/env bash
# Fresh machine with python3 -> runtime virtual environment (no torch, no ROS, no GPU) -> the main job:
# sample night-rain bag -> player | nitedr node over loopback DDS (ONNX Runtime CPU) | recorder -> grid + report.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dds]'
exec .venv/bin/nitedr demo "$@"
