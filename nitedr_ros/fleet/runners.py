"""Where the fleet's workers run: a local process pool (``--address local``, no Ray) or Ray actors.

Both keep one :class:`~.worker.BagWorker` per worker for the whole run (engines built once per worker) and
hand each finished bag's record to ``on_record`` in the driver, as bags finish. Ctrl-C in the driver stops
handing out bags and ends the workers: a local worker gets SIGTERM, which aborts its bag cleanly (the
partial output removed); a Ray actor is killed, and the partial folder it leaves is removed by the next run
on that output. A local worker also gets SIGTERM when the driver dies (Linux ``PR_SET_PDEATHSIG``), so a
killed driver leaves no worker writing behind it.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..interrupts import terminate_as_interrupt
from .jobs import FleetJob
from .worker import BagWorker, FleetSettings

Record = dict[str, Any]
OnRecord = Callable[[Record], None]


@dataclass(frozen=True)
class Resources:
    """What each worker gets and how many run."""

    workers: int = 0  # 0: as many as the CPUs (GPUs) allow
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0


# -- local process pool -----------------------------------------------------------------------------------
_WORKER: BagWorker | None = None
PR_SET_PDEATHSIG = 1


def _die_with_the_driver() -> None:
    """Linux: SIGTERM this process when its parent (the driver) dies."""
    if sys.platform.startswith('linux'):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _init_local_worker(settings: FleetSettings) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what Ctrl-C means
    terminate_as_interrupt()  # SIGTERM aborts the bag cleanly (partial output removed)
    _die_with_the_driver()
    _WORKER = BagWorker(settings)


def _local_derain(job: FleetJob) -> Record:
    assert _WORKER is not None
    try:
        return _WORKER.derain(job)
    except KeyboardInterrupt:
        # SIGTERM: the driver ended this worker or died. The bag was aborted cleanly; leave now, since the
        # pool's worker loop would otherwise wait for the next bag from a driver that may be gone.
        os._exit(128 + signal.SIGTERM)


def run_local(jobs: Sequence[FleetJob], settings: FleetSettings, resources: Resources,
              on_record: OnRecord) -> None:
    """Derain ``jobs`` in a pool of local processes; KeyboardInterrupt after the workers were ended."""
    workers = resources.workers or max(1, int((os.cpu_count() or 1) // max(resources.cpus_per_task, 1)))
    if resources.gpus_per_task:
        raise ConfigError('--gpus-per-task needs Ray (--address auto, ray://HOST:PORT or start); the local '
                          'pool has no GPU scheduling')
    pool = futures.ProcessPoolExecutor(max_workers=min(workers, len(jobs)) or 1,
                                       mp_context=multiprocessing.get_context('spawn'),
                                       initializer=_init_local_worker, initargs=(settings,))
    try:
        pending = {pool.submit(_local_derain, job): job for job in jobs}
        for future in futures.as_completed(pending):
            job = pending[future]
            try:
                record = future.result()
            except futures.process.BrokenProcessPool as exc:
                record = {**job.as_record(), 'status': 'failed', 'reason': 'worker died',
                          'error': f'the worker process died: {exc}'}
                on_record(record)
                raise ConfigError(f'a worker process died ({exc}); finished bags are recorded, run again '
                                  'to continue') from exc
            on_record(record)
    except BaseException:
        for future in pending:
            future.cancel()
        for process in list(getattr(pool, '_processes', {}).values()):
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# -- Ray --------------------------------------------------------------------------------------------------
def ray_init(address: str, resources: Resources) -> Any:
    """Connect to Ray (``auto``, ``ray://HOST:PORT``, ``HOST:PORT``) or start a one-machine Ray on loopback
    (``start``); returns the ray module."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--address needs Ray, which is not installed: pip install -e '.[fleet]' (or use "
                          '--address local, a process pool on this machine)') from exc
    if ray.is_initialized():
        return ray
    common = {'log_to_driver': False, 'configure_logging': False}
    if address == 'start':
        cpus = int(max(1, (resources.workers or (os.cpu_count() or 1)) * max(resources.cpus_per_task, 1)))
        ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address='127.0.0.1', **common)
    else:
        ray.init(address=address, **common)
    return ray


def ray_worker_count(ray: Any, resources: Resources) -> int:
    if resources.workers:
        return resources.workers
    available = ray.cluster_resources()
    if resources.gpus_per_task:
        return max(1, int(available.get('GPU', 0) // resources.gpus_per_task))
    return max(1, int(available.get('CPU', 1) // max(resources.cpus_per_task, 1e-3)))


def run_ray(jobs: Sequence[FleetJob], settings: FleetSettings, resources: Resources, on_record: OnRecord,
            address: str) -> None:
    """Derain ``jobs`` on Ray actors (one BagWorker each, engines kept across bags)."""
    ray = ray_init(address, resources)
    from ray.util import ActorPool

    actor_class = ray.remote(num_cpus=resources.cpus_per_task, num_gpus=resources.gpus_per_task)(BagWorker)
    count = min(ray_worker_count(ray, resources), len(jobs)) or 1
    actors = [actor_class.remote(settings) for _ in range(count)]
    try:
        pool = ActorPool(actors)
        for record in pool.map_unordered(lambda actor, job: actor.derain.remote(job), list(jobs)):
            on_record(record)
        for actor in actors:
            ray.get(actor.close.remote())
    finally:
        for actor in actors:
            ray.kill(actor)
        if address == 'start':
            ray.shutdown()
