"""The machine record every benchmark and training run carries: fields, caller extras, no torch import."""

from __future__ import annotations

import json
import subprocess
import sys

from nitedr_ros.machine import machine_info


def test_machine_info_fields_and_extra():
    info = machine_info({'torch_threads': 3, 'python': 'overridden'}, cuda=False)
    assert info['cpu_model'] and 1 <= info['usable_cpus'] <= info['logical_cpus']
    assert 'numpy' in info['versions'] and info['platform']
    assert info['torch_threads'] == 3 and info['python'] == 'overridden'
    assert 'cuda_devices' not in info and 'gpu' not in info


def test_machine_info_imports_neither_torch_nor_tensorrt():
    code = ('import json, sys; from nitedr_ros.machine import machine_info; info = machine_info(); '
            'print(json.dumps([info["cuda_devices"], "torch" in sys.modules, "tensorrt" in sys.modules]))')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    devices, torch_loaded, tensorrt_loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert devices >= 0 and not torch_loaded and not tensorrt_loaded
