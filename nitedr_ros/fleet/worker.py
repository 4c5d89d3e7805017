"""One fleet worker: ``derain_bag`` on bag after bag with one pipeline (its engines built and loaded once).

The same class runs as a Ray actor and in each process of the local pool. Each bag is exactly what
``nitedr bag derain`` does (same options, same code path, same outputs and diagnostics); only the pipeline is
handed in ready, its state reset between bags, so a bag's outputs do not depend on the bags before it. A bag
that fails (corrupt, unknown type, unreadable) is returned as a ``failed`` record naming the error; it never
stops the worker.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import NitedrError
from .jobs import Fingerprint, FleetJob
from .manifest import DONE, FAILED


@dataclass(frozen=True)
class FleetSettings:
    """The ``nitedr bag derain`` options every bag of the run gets (picklable for workers)."""

    params: str = ''
    mode: str | None = None
    topics: dict[str, str] = field(default_factory=dict)
    namespace: str = '/'
    backend: str | None = None
    models: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    storage: str | None = None
    add_latency: bool = False
    strict: bool = False

    def bag_options(self, job: FleetJob, pipeline: Any = None) -> Any:
        from ..transports.bag.derain import BagDerainOptions

        # force: an output not recorded as done in the manifest is a leftover (a bag finished by a worker
        # whose driver was killed before recording it, or from other settings); it is replaced atomically
        return BagDerainOptions(input=job.input, output=job.output, params=self.params, mode=self.mode,
                                topics=dict(self.topics), namespace=self.namespace, backend=self.backend,
                                models=dict(self.models), overrides=dict(self.overrides),
                                storage=self.storage, add_latency=self.add_latency, progress=False,
                                force=True, strict=self.strict, pipeline=pipeline)

    def node_parameters(self) -> dict[str, Any]:
        """The node parameters every bag runs with (checked by the driver before any worker starts)."""
        from ..transports.bag.derain import node_parameters

        return node_parameters(self.bag_options(FleetJob('', '', '', Fingerprint(0, 0))))


class BagWorker:
    """Derains bags one after another; the pipeline is built on the first bag and kept."""

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        self.pipeline: Any = None
        self.load_s = 0.0
        self.name = f'{socket.gethostname()}:{os.getpid()}'

    def _ready_pipeline(self) -> Any:
        if self.pipeline is None:
            from ..core.parameters import pipeline_config
            from ..pipeline.builders import build_pipeline

            started = time.monotonic()
            self.pipeline = build_pipeline(pipeline_config(self.settings.node_parameters()))
            self.load_s = time.monotonic() - started
        else:
            reset = getattr(self.pipeline, 'reset_state', None)
            if reset is not None:
                reset()
        return self.pipeline

    def derain(self, job: FleetJob) -> dict[str, Any]:
        """Derain one bag; returns its manifest record (``status`` done or failed)."""
        from ..transports.bag.derain import derain_bag

        started = time.monotonic()
        record: dict[str, Any] = {**job.as_record(), 'worker': self.name}
        try:
            first = self.pipeline is None
            summary = derain_bag(self.settings.bag_options(job, self._ready_pipeline()))
        except NitedrError as exc:
            record.update(status=FAILED, reason=type(exc).__name__, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one bag's failure never stops the others
            record.update(status=FAILED, reason=f'unexpected {type(exc).__name__}',
                          error=f'{type(exc).__name__}: {exc}')
        else:
            record.update(
                status=DONE, frames_in=sum(summary['frames_in'].values()), sets=summary['sets_made'],
                outputs=summary['outputs_published'], dropped=summary['dropped'],
                undecodable=summary.get('undecodable_skipped', {}), messages=summary['messages_copied'],
                backend=summary['backend'])
            if first:
                record['pipeline_load_s'] = round(self.load_s, 3)
        record['seconds'] = round(time.monotonic() - started, 3)
        return record

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

