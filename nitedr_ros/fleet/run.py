"""``derain_fleet``: plan the bags, skip those an earlier run finished, derain the rest on the chosen
runner with one progress bar, record every bag in the manifest as it finishes, write the report."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .jobs import plan_jobs, settings_digest
from .manifest import FAILED, Manifest
from .report import summarize, write_report
from .runners import Resources, run_local, run_ray
from .worker import FleetSettings

LOCAL = 'local'


@dataclass
class FleetOptions:
    """What ``nitedr fleet derain`` was asked to do."""

    input: str
    output_dir: str
    settings: FleetSettings = field(default_factory=FleetSettings)
    address: str = LOCAL  # local | start | auto | ray://HOST:PORT | HOST:PORT
    resources: Resources = field(default_factory=Resources)
    checksum: bool = False
    progress: bool = True


def check_settings(settings: FleetSettings) -> tuple[dict[str, Any], list[str]]:
    """The node parameters (validated) and the model files, before any worker starts: a missing model is
    one error now, not one per bag."""
    from ..core.parameters import pipeline_config
    from ..pipeline.builders import resolve_models

    params = settings.node_parameters()
    if params['backend'] == 'identity':
        return params, []
    return params, [str(path) for path in resolve_models(pipeline_config(params)).values()]


def derain_fleet(options: FleetOptions) -> dict[str, Any]:
    """Run the fleet; returns the summary (``interrupted`` True after Ctrl-C, finished bags recorded)."""
    started = time.monotonic()
    out = Path(options.output_dir).expanduser()
    params, models = check_settings(options.settings)
    jobs = plan_jobs(options.input, out, checksum=options.checksum)
    out.mkdir(parents=True, exist_ok=True)
    described = asdict(options.settings)
    if options.settings.params:
        described['params_text'] = Path(options.settings.params).read_text()
    digest = settings_digest(described, models)
    manifest = Manifest(out)
    todo = [job for job in jobs if not manifest.is_done(job, digest)]
    skipped = len(jobs) - len(todo)
    records: list[dict[str, Any]] = []
    bar = _progress(len(todo), options.progress, skipped)

    def on_record(record: dict[str, Any]) -> None:
        record.update(settings=digest, mode=params['mode'], finished=time.strftime('%Y-%m-%d %H:%M:%S'))
        manifest.append(record)
        records.append(record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(frames=sum(int(r.get('frames_in', 0)) for r in records),
                            failed=sum(r.get('status') == FAILED for r in records))

    interrupted = False
    try:
        if not todo:
            pass
        elif options.address == LOCAL:
            run_local(todo, options.settings, options.resources, on_record)
        else:
            run_ray(todo, options.settings, options.resources, on_record, options.address)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    workers = len({r.get('worker') for r in records})
    summary = summarize(records, skipped, time.monotonic() - started, address=options.address,
                        workers=workers, interrupted=interrupted, planned=len(jobs))
    summary['report'] = str(write_report(out, summary, records))
    summary['manifest'] = str(manifest.path)
    if manifest.unreadable_lines:
        summary['manifest_lines_ignored'] = manifest.unreadable_lines
    return summary


def _progress(total: int, enabled: bool, skipped: int) -> Any:
    if not enabled or total == 0:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit='bag', desc=f'fleet derain ({skipped} done before)' if skipped
                else 'fleet derain')


def validate_address(address: str) -> str:
    if address in (LOCAL, 'start', 'auto') or address.startswith('ray://') or ':' in address:
        return address
    raise ConfigError(f'--address {address!r}: use local (a process pool here, no Ray), start (a Ray on '
                      'this machine), auto (the Ray cluster this machine belongs to), ray://HOST:PORT (Ray '
                      'client) or HOST:PORT (the cluster head)')
