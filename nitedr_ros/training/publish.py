"""Checkpoint -> ONNX (fp32 + fp16, uint8 I/O fp32 + fp16) and the weights in ``models/`` with a model card,
evaluated through ONNX Runtime.

``publish_checkpoint`` exports with :func:`nitedr_ros.export.onnx_export.export_network` (parity checked),
then evaluates the exported file on the run's validation split (when one is known) with
:func:`nitedr_ros.evaluation.evaluate.evaluate`, and writes ``<network>_<config>.md`` next to it: training
data, steps, batch, patch, seed, recipe, hardware and time from the checkpoint's metadata, export facts,
and the evaluation tables (backend and precision named). ``u8``: also the uint8-I/O variants
(``<stem>.u8.onnx``, ``.u8.fp16.onnx``: what the node runs); ``weights``: ``<stem>.pt`` (the torch backend
runs the shipped model from it); ``keep_float``: False drops the float ONNX files afterwards (``nitedr export
--checkpoint <stem>.pt`` rebuilds them; the 20 MiB cap on ``models/``). ``generalisation_data``: a shared
data folder, whose validation beyond the training rain (:mod:`nitedr_ros.evaluation.generalisation`) goes in
the card too. A fusionnet is evaluated as the deployed NiteDR
chain, behind a CleanNet ONNX model (``derain_model``), which is therefore required with ``eval_data``:
fusing the clean target instead would report a pipeline that is never deployed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, OutputExistsError
from ..fileio import write_text_atomic
from ..modelspec import default_model_filename, get_spec


@dataclass
class PublishResult:
    onnx: Path
    fp16: Path | None
    card: Path
    evaluation: dict[str, Any] | None
    files: list[Path] | None = None
    generalisation: dict[str, Any] | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _meta_json(meta: dict[str, Any], key: str) -> Any:
    value = meta.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def publish_checkpoint(checkpoint: str | os.PathLike[str], models_dir: str | os.PathLike[str], *,
                       eval_data: str | None = None, split_file: str | None = None,
                       eval_out: str | os.PathLike[str] | None = None, derain_model: str | None = None,
                       force: bool = False, fp16: bool = True, opset: int = 19,
                       skip_fmi: bool = False, notes: str = '',
                       eval_precision: str = 'fp32', u8: bool = False, weights: bool = False,
                       keep_float: bool = True, generalisation_data: str | None = None) -> PublishResult:
    """Export a training checkpoint into ``models_dir`` with a model card (see the module docstring).

    ``eval_data`` + ``split_file``: evaluate the exported ONNX file on the validation part of that data
    (``eval_out`` receives metrics and grids; ``eval_precision`` fp16 evaluates the ``.fp16.onnx`` file).
    For a fusionnet, ``derain_model`` (a cleannet ONNX file) provides the derained visible input and is
    required when evaluating.
    """
    import torch

    from ..export.onnx_export import export_network
    from ..networks.checkpoint import load_checkpoint

    model, payload = load_checkpoint(checkpoint)
    network, config = payload['network'], payload['config']
    require_derain_model(network, eval_data, derain_model)
    spec = get_spec(network)
    out_dir = Path(models_dir)
    onnx_path = out_dir / default_model_filename(network, config)
    card_path = out_dir / f'{network}_{config}.md'
    if card_path.exists() and not force:
        raise OutputExistsError(card_path)
    meta = dict(payload.get('meta', {}))
    export_meta = {'nitedr.trained_steps': str(meta.get('steps', '')),
                   'nitedr.seed': str(meta.get('seed', '')),
                   'nitedr.training_data': ('rain-mix' if meta.get('layout') == 'mix' else
                                             ';'.join(Path(p).name for p in meta.get('data', [])))}
    result = export_network(model, network, config, onnx_path, fp16=fp16, force=force, opset=opset,
                            metadata=export_meta, threads=torch.get_num_threads())
    evaluation = None
    if eval_data:
        from ..evaluation.evaluate import EvalOptions, evaluate

        main, fusion = str(result.path), None
        if network == 'fusionnet' and derain_model:
            main, fusion = derain_model, str(result.path)
        evaluation = evaluate(EvalOptions(
            model=main, fusion_model=fusion, data=eval_data, split='train', split_file=split_file,
            part='val', out=str(eval_out or out_dir / f'{network}_{config}_eval'), force=True,
            skip_fmi=skip_fmi, backend='onnxruntime-cpu', precision=eval_precision))
    files = [result.path] + ([result.fp16_path] if result.fp16_path else [])
    if u8:
        from ..export.u8_export import export_u8

        variant = export_u8(model, network, result.path, fp16=fp16, force=force, opset=opset)
        files += [variant.path] + ([variant.fp16_path] if variant.fp16_path else [])
        fp16_levels = '' if variant.fp16_max_levels is None else f', fp16 within {variant.fp16_max_levels}'
        notes = (f'uint8-I/O variants: parity with the host path within {variant.parity_max_levels} level(s)'
                 f'{fp16_levels}; every op in the TensorRT parser set: {variant.ops_ok}.'
                 + (f'\n\n{notes}' if notes else ''))
    if weights:
        from ..networks.checkpoint import save_checkpoint

        weights_path = onnx_path.with_name(f'{onnx_path.name.split(".", 1)[0]}.pt')
        if weights_path.exists() and not force:
            raise OutputExistsError(weights_path)
        kept = {key: meta[key] for key in ('steps', 'seed', 'data') if key in meta}
        overrides = payload.get('overrides')
        files.append(save_checkpoint(weights_path, model, network, config, overrides, meta=kept))
    generalisation = None
    if generalisation_data and spec.role == 'derain':
        from ..evaluation.generalisation import evaluate_generalisation, generalisation_markdown

        generalisation = evaluate_generalisation(str(files[2] if u8 else result.path), generalisation_data)
        notes = generalisation_markdown(generalisation, '### Beyond the training rain') + (
            f'\n{notes}' if notes else '')
    n_params = sum(p.numel() for p in model.parameters())
    if not keep_float:
        for path in (result.path, result.fp16_path):
            if path is not None and path.exists():
                path.unlink()
        files = [f for f in files if f.exists()]
    card = model_card(network, config, spec.title, n_params, meta, result, evaluation, notes, files=files)
    write_text_atomic(card_path, card)
    return PublishResult(result.path, result.fp16_path, card_path, evaluation, files, generalisation)


def require_derain_model(network: str, eval_data: str | None, derain_model: str | None) -> None:
    """A fusionnet card evaluates the deployed chain (CleanNet -> FusionNet): a derain model must be given
    and exist (checked before any export or training)."""
    if network != 'fusionnet' or not eval_data:
        return
    if not derain_model:
        raise ConfigError('exporting a fusionnet with an evaluation needs --derain-model (the CleanNet ONNX '
                          'file, e.g. models/cleannet_realtime.onnx): the card reports the deployed NiteDR '
                          'chain, not fusion of the clean target')
    from ..paths import resolve_model

    resolve_model(derain_model)


def _hardware(machine: dict[str, Any]) -> str:
    """One line on the training machine (checkpoints from before ``nitedr_ros.machine`` used other keys)."""
    gpu = machine.get('gpu')
    gpu_name = gpu.get('name') if isinstance(gpu, dict) else gpu
    cpu = machine.get('cpu_model', machine.get('processor', '?'))
    cpus = machine.get('logical_cpus', machine.get('cpu_count', '?'))
    torch_version = machine.get('versions', {}).get('torch', machine.get('torch', '?'))
    threads = machine.get('torch_threads', '?')
    gpu_text = f', GPU {gpu_name}' if gpu_name else ''
    return (f'{machine.get("device", "?")} ({cpu}, {cpus} CPUs, {threads} torch threads, '
            f'torch {torch_version}{gpu_text})')

def model_card(network: str, config: str, title: str, n_params: int, meta: dict[str, Any], export: Any,
               evaluation: dict[str, Any] | None, notes: str = '', files: list[Path] | None = None) -> str:
    """Markdown model card from checkpoint metadata, export result and evaluation summary."""
    machine = _meta_json(meta, 'machine') or {}
    recipe = _meta_json(meta, 'recipe') or {}
    val_names = _meta_json(meta, 'val_names') or {}
    if files is None:
        files = [export.path] + ([export.fp16_path] if export.fp16_path else [])
    lines = [f'# {network}_{config}: {title}', '',
             f'Configuration `{config}`, {n_params:,} parameters. Input/output tensors as in '
             '`nitedr_ros/modelspec.py` (float32 NCHW in [0, 1]).', '', '## Files', '']
    for f in files:
        lines.append(f'- `{Path(f).name}`: {Path(f).stat().st_size:,} bytes, sha256 `{_sha256(Path(f))}`')
    m = {key: meta.get(key, '?') for key in ('layout', 'steps', 'total_steps', 'batch', 'patch', 'seed')}
    data = ', '.join(f'`{p}`' for p in meta.get('data', [])) or '?'
    held_out = ', '.join(f'{len(v)} images of `{Path(k).name}`' for k, v in val_names.items()) or 'none'
    hardware = _hardware(machine)
    lines += ['', '## Training', '',
              f'- data: {data} (layout {m["layout"]})',
              f'- validation hold-out: {held_out}',
              f'- steps: {m["steps"]} of {m["total_steps"]}, batch {m["batch"]}, patch {m["patch"]}, '
              f'seed {m["seed"]}',
              f'- recipe: `{json.dumps(recipe, sort_keys=True)}`',
              f'- training time: {float(meta.get("train_seconds", 0.0)) / 60:.1f} min on {hardware}']
    if meta.get('cleannet'):
        lines.append(f'- stage-1 (frozen) CleanNet checkpoint: `{meta["cleannet"]}`')
    lines += ['', '## Export', '',
              f'- exporter {export.exporter}, opset {export.opset}; ONNX Runtime vs torch max |diff| '
              f'{export.parity_max_abs}; fp16 vs fp32 max |diff| {export.fp16_max_abs}']
    if evaluation is not None:
        from ..evaluation.evaluate import markdown_report

        report = markdown_report(evaluation)
        body = report.split('\n## Per sample')[0].split('\n', 1)[1]
        precision = evaluation['model'].get('precision', 'fp32')
        chain = ' behind the CleanNet derain model (NiteDR chain)' if evaluation.get('fusion_model') else ''
        lines += ['', f'## Evaluation (the exported ONNX file{chain}, {evaluation["model"]["backend"]}, '
                      f'{precision})', '', body.strip()]
    if notes:
        lines += ['', '## Notes', '', notes]
    return '\n'.join(lines) + '\n'


def check_models_dir(path: str | os.PathLike[str]) -> Path:
    """A models folder that exists or can be made."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f'{p} is not a folder')
    return p
