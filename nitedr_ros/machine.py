"""The machine a benchmark or training ran on, as one JSON-ready record (imports neither torch nor tensorrt).

Every benchmark result and training record carries :func:`machine_info`: CPU model, cores, memory, load
average, OS, Python, library versions (read from the installed distributions' metadata, so nothing is
imported) and, unless ``cuda=False``, the CUDA devices cuda-python sees. Callers add what only they know
(torch threads, the training device, the DDS configuration) through ``extra``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

# Distributions whose versions are recorded when installed (never imported).
VERSIONED_DISTRIBUTIONS = ('numpy', 'opencv-python-headless', 'onnxruntime', 'onnxruntime-gpu', 'onnx',
                           'torch', 'tensorrt', 'cuda-python', 'cyclonedds', 'rosbags')


def _proc_field(path: str, key: str) -> str | None:
    """The value after ``key`` in a ``/proc`` file of ``key: value`` lines (None where absent)."""
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(':', 1)[1].strip()
    return None


def _cuda_fields() -> dict[str, Any]:
    """``cuda_devices`` and the first device's name, memory and compute capability (or why there is none)."""
    from .engines.cuda import device_identity, probe_cuda  # cuda-python only; no torch, no tensorrt

    probe = probe_cuda()
    fields: dict[str, Any] = {'cuda_devices': probe.count}
    if probe.count:
        with contextlib.suppress(Exception):
            device = device_identity(0)
            fields['gpu'] = {'name': device.name, 'memory_mb': device.total_memory_mb,
                             'compute_capability': '.'.join(map(str, device.compute_capability))}
    else:
        fields['cuda'] = probe.reason
    return fields


def machine_info(extra: dict[str, Any] | None = None, *, cuda: bool = True) -> dict[str, Any]:
    """CPU model, cores, memory, load, OS, Python, library versions, CUDA devices, the time; then ``extra``.

    Keys: ``cpu_model``, ``logical_cpus``, ``usable_cpus``, ``platform``, ``python``, ``memory_gb``,
    ``load_average`` (1, 5, 15 min), ``versions`` (distribution -> version), ``cuda_devices`` with ``gpu``
    (name, memory_mb, compute_capability) or ``cuda`` (why none), ``time`` (local, seconds).
    """
    info: dict[str, Any] = {
        'cpu_model': _proc_field('/proc/cpuinfo', 'model name') or platform.processor() or platform.machine(),
        'logical_cpus': os.cpu_count(),
        'usable_cpus': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(),
        'platform': platform.platform(),
        'python': platform.python_version(),
    }
    memory_kb = _proc_field('/proc/meminfo', 'MemTotal')
    if memory_kb:
        info['memory_gb'] = round(int(memory_kb.split()[0]) / 2**20, 1)
    with contextlib.suppress(OSError):
        info['load_average'] = [round(v, 2) for v in os.getloadavg()]
    versions = {}
    for dist in VERSIONED_DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    info['versions'] = versions
    if cuda:
        info.update(_cuda_fields())
    info['time'] = time.strftime('%Y-%m-%d %H:%M:%S')
    info.update(extra or {})
    return info
