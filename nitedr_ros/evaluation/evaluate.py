"""Evaluation runner: derain and fusion metrics of a checkpoint or a shipped ONNX model, tables and grids.

Models run through the project's inference engines (:func:`nitedr_ros.engines.open_engine`): ``.onnx``
files through ONNX Runtime (or TensorRT where available), so the numbers are those of the deployed model;
checkpoints (``.pt``) through the torch backend. Inputs are reflect-padded to the model's multiple and the
outputs cropped back, as the node's pipeline does. Outputs are quantized to 8 bit before scoring.
``precision='fp16'`` evaluates the exported ``<model>.fp16.onnx`` (the node's default on GPUs): GPU
backends pick it themselves; on the CPU it runs through ONNX Runtime directly (``open_engine`` runs fp32 on
CPU backends). The precision used is named in the summary, the tables and the model card.

What is measured per sample:

* derain (models with an ``image`` input): PSNR/SSIM on Y and RGB of the rainy input and of the output
  against the clean target (:func:`metrics.derain_metrics`);
* fusion (a fusion model and an infrared image): the Table II metrics of the fused image against its two
  sources, the visible image the fusion received (the derained output, or the clean target when only a
  fusion model is evaluated) and the infrared image (:func:`metrics.fusion_metrics`), next to the same
  metrics of the two baselines a fusion must beat: the visible image unchanged, and the plain average of the
  visible and infrared images; and the colour error (mean |CbCr| difference of fused and visible, 8-bit);
* rain-free visible/infrared pairs (``vi_ir``) through a derain + fusion chain: the clean visible image is
  the derain input (the no-regression check: ``clean_input`` = derained vs clean), then the fusion;
* a plain folder of rainy images (``images``, real photos): no metrics, only the outputs (grids, and the
  images with ``save_outputs``);
* stereo (``stereoirr``): derain metrics of both views; without stereo data, night-rain pairs are rendered
  from the clean images (seeded by the sample name) with :mod:`nitedr_ros.data.rain_renderer`.

Written to ``out``: ``metrics.json`` (per sample and mean), ``metrics.md`` (tables),
``grids/<name>.png`` (rainy | derained | fused | IR | clean; stereo: both views) and, with
``save_outputs``, ``outputs/<name>_<derained|fused|left|right>.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.imageio import DatasetError, to_uint8, write_rgb
from ..data.layouts import ImageSet, open_dataset
from ..data.rain_renderer import NightRainRenderer, road_disparity
from ..data.split import read_split
from ..engines.options import EngineOptions
from ..errors import ConfigError, OutputExistsError
from ..fileio import write_text_atomic
from ..paths import portable_path
from . import metrics as M

DERAIN_KEYS = ('psnr_y', 'ssim_y', 'psnr_rgb', 'ssim_rgb')


@dataclass
class EvalOptions:
    """What ``nitedr eval`` takes."""

    model: str                        # checkpoint (.pt) or ONNX file of the derain/stereo/fusion network
    data: str
    out: str
    fusion_model: str | None = None   # NiteDR stage 2 (with a cleannet model)
    network: str | None = None        # expected network (checked against the model's metadata)
    layout: str = 'auto'
    split: str = 'test'               # dataset split folder (RoadScene-rain/GTAV ``train``/``test``)
    split_file: str | None = None     # restrict to the ``part`` names of a recorded split
    part: str = 'val'
    names: list[str] = field(default_factory=list)
    max_images: int = 0
    backend: str = 'auto'
    precision: str = 'fp32'           # fp32 | fp16 (ONNX models: the .fp16.onnx file)
    threads: int = 0
    round_y: bool = True              # Y rounded to integers as MATLAB's rgb2ycbcr (see metrics)
    progress: bool = True
    fusion_metrics: bool = True
    skip_fmi: bool = False
    grid_height: int = 240
    grids: bool = True
    save_outputs: bool = False        # the output images themselves, next to the grids
    force: bool = False


PRECISIONS = ('fp32', 'fp16')


def _fp16_onnx_engine(path: str, threads: int) -> Any:
    """ONNX Runtime (CPU) on the ``.fp16.onnx`` file of an exported model; ConfigError when it is missing."""
    from ..engines.onnxruntime_engine import OnnxRuntimeEngine
    from ..engines.variants import choose_variant
    from ..paths import resolve_model

    chosen = choose_variant(resolve_model(path), 'fp16')
    onnx_path, used = chosen.path, chosen.precision
    if used != 'fp16':
        raise ConfigError(f'--precision fp16: no fp16 file next to {onnx_path} (expected '
                          f'{onnx_path.name[:-5]}.fp16.onnx; nitedr export writes it)')
    options = EngineOptions.make('onnxruntime-cpu', precision='fp16', threads=threads)
    return OnnxRuntimeEngine(onnx_path, 'onnxruntime-cpu', options)


class ModelRunner:
    """A model behind an inference engine, run on HWC float images in [0, 1] with padding and cropping."""

    def __init__(self, path: str, backend: str = 'auto', threads: int = 0, precision: str = 'fp32') -> None:
        from ..engines import open_engine

        if precision not in PRECISIONS:
            raise ConfigError(f'unknown precision {precision!r}; choose one of {", ".join(PRECISIONS)}')
        p = Path(path)
        if p.suffix == '.onnx' or not p.exists():
            self.engine = open_engine(path, EngineOptions.make(backend, precision=precision, threads=threads))
            if precision == 'fp16' and self.engine.backend == 'onnxruntime-cpu':
                self.engine.close()  # CPU backends of open_engine run fp32: run the fp16 file itself
                self.engine = _fp16_onnx_engine(path, threads)
        else:
            if precision != 'fp32':
                raise ConfigError(f'--precision {precision} evaluates an exported ONNX model; {path} is a '
                                  'checkpoint (run with torch in fp32): give --onnx')
            torch_backend = 'torch-cpu' if backend in ('auto', 'onnxruntime-cpu') else backend
            self.engine = open_engine(p, EngineOptions.make(torch_backend, threads=threads, io='float'))
        self.path = str(path)
        self.network = self.engine.metadata.get('nitedr.network', '')
        self.multiple = int(self.engine.multiple_of)
        facts = self.engine.describe()
        self.precision = facts.get('precision') or self.engine.metadata.get('nitedr.precision') or 'fp32'

    def describe(self) -> dict[str, str]:
        return {'model': self.path, 'network': self.network, 'backend': self.engine.backend,
                'precision': self.precision, 'config': self.engine.metadata.get('nitedr.config', '')}

    def __call__(self, **images: np.ndarray) -> dict[str, np.ndarray]:
        if getattr(self.engine, 'io', 'float') == 'uint8':
            return self._bytes(images)
        h, w = next(iter(images.values())).shape[:2]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        feed = {}
        for name, image in images.items():
            x = image.astype(np.float32)
            if ph or pw:
                border = cv2.BORDER_REFLECT_101 if ph < h and pw < w else cv2.BORDER_REPLICATE
                x = cv2.copyMakeBorder(x, 0, ph, 0, pw, border).reshape((h + ph, w + pw, *x.shape[2:]))
            x = x[None, None] if x.ndim == 2 else x.transpose(2, 0, 1)[None]
            feed[name] = np.ascontiguousarray(x)
        outputs = self.engine.infer(feed)
        return {name: np.clip(out[0].transpose(1, 2, 0)[:h, :w], 0.0, 1.0) for name, out in outputs.items()}

    def _bytes(self, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A uint8-I/O model (the shipped ``.u8`` variant): 8-bit RGB in, 8-bit RGB out, as deployed."""
        from ..modelspec import CHANNEL_ORDER, THERMAL_INPUT, THERMAL_RANGE, U8_SUFFIX

        feed: dict[str, np.ndarray] = {CHANNEL_ORDER: np.array([0, 1, 2], np.int64)}
        for name, image in images.items():
            levels = np.clip(np.rint(image.astype(np.float32) * 255.0), 0, 255)
            if image.ndim == 2 or name == 'infrared':
                plane = (levels if levels.ndim == 2 else levels[..., 0]).astype('<u2')
                feed[THERMAL_INPUT] = plane.view(np.uint8).reshape(1, *plane.shape, 2)
                feed[THERMAL_RANGE] = np.array([0.0, 255.0], np.float32)
            else:
                feed[name + U8_SUFFIX] = levels.astype(np.uint8)[None]
        outputs = self.engine.infer(feed)
        return {name[:-len(U8_SUFFIX)]: out[0].astype(np.float32) / 255.0 for name, out in outputs.items()}

    def close(self) -> None:
        self.engine.close()


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def _select(data: ImageSet, options: EvalOptions) -> ImageSet:
    names: list[str] | None = list(options.names) or None
    if options.split_file:
        names = _split_names(Path(options.split_file), options.part, data)
    if names is not None:
        data = data.subset(names)
    if options.max_images:
        data = ImageSet(data.layout, data.root, data.roles, data.samples[:options.max_images])
    if not len(data):
        raise DatasetError(f'no samples to evaluate in {data.root}')
    return data


def _split_names(path: Path, part: str, data: ImageSet) -> list[str]:
    """Names of ``part`` from a split record, or from a training run's split.json (one entry per dataset)."""
    if part not in ('train', 'val'):
        raise ConfigError(f'--part must be train or val, not {part!r}')
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f'split file not found: {path}') from None
    except ValueError as exc:
        raise ConfigError(f'{path} is not JSON: {exc}') from exc
    if isinstance(payload, dict) and 'val' in payload:
        return list(getattr(read_split(path), part))
    if isinstance(payload, dict):  # a run's split.json: {dataset path: split}
        for key, value in payload.items():
            if Path(key).resolve() in (data.root.resolve(), data.root.parent.resolve()):
                return list(value[part])
        if len(payload) == 1:
            return list(next(iter(payload.values()))[part])
    raise ConfigError(f'{path} has no split for {data.root}')


def _sample_seed(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def evaluate(options: EvalOptions) -> dict[str, Any]:
    """Run the evaluation and write the tables and grids; returns the JSON summary."""
    out = Path(options.out)
    if (out / 'metrics.json').exists() and not options.force:
        raise OutputExistsError(out / 'metrics.json')
    data = _select(open_dataset(options.data, options.layout, options.split), options)
    main = ModelRunner(options.model, options.backend, options.threads, options.precision)
    fusion = None
    if options.fusion_model:
        fusion = ModelRunner(options.fusion_model, options.backend, options.threads, options.precision)
    try:
        if options.network and main.network and options.network != main.network:
            raise ConfigError(f'{options.model} is a {main.network} model, not {options.network}')
        network = main.network or options.network or 'cleannet'
        if fusion is not None and fusion.network not in ('', 'fusionnet'):
            raise ConfigError(f'--fusion-model {options.fusion_model} is a {fusion.network} model, '
                              'not fusionnet')
        samples = []
        for index in _progress(range(len(data)), options.progress, f'eval {network}'):
            name = data.samples[index].name
            if network == 'stereoirr':
                record, panels = _stereo_sample(main, data, index, options.round_y)
            elif network == 'fusionnet':
                record, panels = _fusion_only_sample(main, data, index, options)
            else:
                record, panels = _derain_sample(main, fusion, data, index, options)
            record['name'] = name
            samples.append(record)
            if options.grids:
                write_grid(out / 'grids' / f'{_safe(name)}.png', panels, options.grid_height)
            if options.save_outputs:
                _save_outputs(out / 'outputs', name, panels)
        y_rule = 'rounded as MATLAB rgb2ycbcr' if options.round_y else 'not rounded'
        summary = {
            'network': network, 'model': _portable_model(main.describe()),
            'fusion_model': _portable_model(fusion.describe()) if fusion else None,
            'data': portable_path(options.data), 'layout': data.layout, 'samples': samples,
            'count': len(samples), 'mean': _means(samples), 'options': _portable_options(options),
            'conventions': f'derain: BT.601 studio-swing Y ({y_rule}), 8-bit, SSIM Gaussian 11/1.5; fusion: '
                           'see nitedr_ros/evaluation/metrics.py (MI summed over sources, others averaged)',
        }
    finally:
        main.close()
        if fusion is not None:
            fusion.close()
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / 'metrics.json', json.dumps(summary, indent=1, default=_json_default) + '\n')
    write_text_atomic(out / 'metrics.md', markdown_report(summary))
    return summary


# grid panels that are outputs of the models (saved with save_outputs)
OUTPUT_PANELS = ('derained', 'fused', 'left derained', 'right derained')


def _save_outputs(folder: Path, name: str, panels: Sequence[tuple[str, np.ndarray | None]]) -> None:
    for label, image in panels:
        if image is not None and label in OUTPUT_PANELS:
            write_rgb(folder / f'{_safe(name)}_{label.replace(" ", "_")}.png', to_uint8(image))


def _progress(items: range, enabled: bool, description: str) -> Any:
    """A tqdm progress bar over the samples (on stderr), or the plain range."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, unit='image', dynamic_ncols=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def _safe(name: str) -> str:
    return name.replace('/', '_').replace('\\', '_')


FMI_NAMES = ('FMI_pixel', 'FMI_dct', 'FMI_w')


def _fusion_scores(visible: np.ndarray, infrared: np.ndarray, fused: np.ndarray,
                   options: EvalOptions) -> dict[str, float]:
    if not options.fusion_metrics:
        return {}
    return M.fusion_metrics(to_uint8(visible), to_uint8(infrared), to_uint8(fused),
                            skip=FMI_NAMES if options.skip_fmi else ())


FUSION_BASELINES = ('baseline_visible', 'baseline_average')


def colour_error(visible: np.ndarray, fused: np.ndarray) -> float:
    """Mean |CbCr(fused) - CbCr(visible)| in 8-bit levels (full-range BT.601): 0 = the visible colour kept."""
    def chroma(image: np.ndarray) -> np.ndarray:
        rgb = to_uint8(image).astype(np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        return np.stack([-0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b])
    return float(np.abs(chroma(fused) - chroma(visible)).mean())


def _fusion_records(visible: np.ndarray, infrared: np.ndarray, fused: np.ndarray,
                    options: EvalOptions) -> dict[str, Any]:
    """The fusion's metrics and the two baselines' (visible unchanged; average of visible and IR), and the
    colour error of each."""
    grey = infrared if infrared.ndim == 3 else np.repeat(infrared[..., None], 3, axis=2)
    average = 0.5 * visible + 0.5 * grey[..., :3]
    records = {}
    for name, image in (('fusion', fused), ('baseline_visible', visible), ('baseline_average', average)):
        scores = _fusion_scores(visible, infrared, image, options)
        if scores:
            scores['colour_error'] = colour_error(visible, image)
            records[name] = scores
    return records


def _derain_sample(main: ModelRunner, fusion: ModelRunner | None, data: ImageSet, index: int,
                   options: EvalOptions) -> tuple[dict[str, Any], list[tuple[str, np.ndarray | None]]]:
    roles = [r for r in ('rainy', 'clean', 'infrared') if r in data.samples[index].files]
    if 'rainy' not in roles and 'clean' not in roles:
        raise DatasetError(f'{data.root} ({data.layout}) has no images to derain')
    images = data.load(index, roles)
    record: dict[str, Any] = {}
    clean = images.get('clean')
    if 'rainy' in images:
        rainy = _float(images['rainy'])
        derained = main(image=rainy)['derained']
        if clean is not None:
            record['input'] = M.derain_metrics(images['rainy'], clean, options.round_y)
            record['derained'] = M.derain_metrics(to_uint8(derained), clean, options.round_y)
    else:  # rain-free pairs: the clean image goes through the chain (what it must not spoil)
        rainy = _float(clean)
        derained = main(image=rainy)['derained']
        record['clean_input'] = M.derain_metrics(to_uint8(derained), clean, options.round_y)
    fused = None
    infrared = images.get('infrared')
    if fusion is not None and infrared is not None:
        fused = fusion(visible=derained, infrared=_float(infrared))['fused']
        record.update(_fusion_records(derained, _float(infrared), fused, options))
    panels = [('rainy', rainy), ('derained', derained), ('fused', fused),
              ('IR', None if infrared is None else _float(infrared)),
              ('clean', None if clean is None else _float(clean))]
    return record, panels


def _fusion_only_sample(main: ModelRunner, data: ImageSet, index: int,
                        options: EvalOptions) -> tuple[dict[str, Any], list[tuple[str, np.ndarray | None]]]:
    images = data.load(index, ('clean', 'infrared'))
    visible, infrared = _float(images['clean']), _float(images['infrared'])
    fused = main(visible=visible, infrared=infrared)['fused']
    record = _fusion_records(visible, infrared, fused, options)
    return record, [('visible', visible), ('fused', fused), ('IR', infrared)]


def _stereo_sample(main: ModelRunner, data: ImageSet, index: int,
                   round_y: bool = True) -> tuple[dict[str, Any], list]:
    sample = data.samples[index]
    if {'rainy', 'rainy_right', 'clean', 'clean_right'} <= set(sample.files):
        images = data.load(index, ('rainy', 'rainy_right', 'clean', 'clean_right'))
        left, right = _float(images['rainy']), _float(images['rainy_right'])
        clean_l, clean_r = images['clean'], images['clean_right']
    else:  # render stereo night rain from the clean image (deterministic per sample name)
        clean = _float(data.load(index, ('clean',))['clean'])
        h, w = clean.shape[:2]
        pair = NightRainRenderer().render_stereo(clean, None, _sample_seed(sample.name),
                                                 scene_disparity=road_disparity(h, w, 0.06 * w))
        left, right = pair.left.rainy, pair.right.rainy
        clean_l, clean_r = to_uint8(pair.left.clean), to_uint8(pair.right.clean)
    out = main(left=left, right=right)
    record = {'input': M.derain_metrics(to_uint8(left), clean_l, round_y),
              'derained': M.derain_metrics(to_uint8(out['left_derained']), clean_l, round_y),
              'input_right': M.derain_metrics(to_uint8(right), clean_r, round_y),
              'derained_right': M.derain_metrics(to_uint8(out['right_derained']), clean_r, round_y)}
    panels = [('left rainy', left), ('left derained', out['left_derained']), ('left clean', _float(clean_l)),
              ('right rainy', right), ('right derained', out['right_derained']),
              ('right clean', _float(clean_r))]
    return record, panels


def _means(samples: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, list[float]]] = {}
    for record in samples:
        for group, values in record.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    groups.setdefault(group, {}).setdefault(key, []).append(float(value))
    means: dict[str, dict[str, float]] = {}
    for group, values in groups.items():
        means[group] = {}
        for key, vals in values.items():
            finite = [v for v in vals if math.isfinite(v)]
            means[group][key] = float(np.mean(finite)) if finite else float('nan')
    return means


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    if math.isinf(value):
        return 'inf'
    return f'{value:.4f}'


# options that hold paths: recorded without this machine's folders (portable_path)
PATH_OPTIONS = ('model', 'data', 'out', 'fusion_model', 'split_file')


def _portable_options(options: EvalOptions) -> dict[str, Any]:
    values = asdict(options)
    for name in PATH_OPTIONS:
        if values.get(name):
            values[name] = portable_path(values[name])
    return values


def _portable_model(description: dict[str, Any]) -> dict[str, Any]:
    if description.get('model'):
        description = {**description, 'model': portable_path(description['model'])}
    return description


def markdown_report(summary: dict[str, Any]) -> str:
    """The summary as markdown: derain table, fusion table (Table II order + EN/SD/SF), per-sample rows."""
    mean = summary['mean']
    model = summary['model']
    lines = [f'# Evaluation: {summary["network"]}', '',
             f'- model: `{model["model"]}` ({model["backend"]}, precision {model.get("precision", "fp32")}, '
             f'config {model["config"] or "?"})']
    if summary.get('fusion_model'):
        fusion = summary['fusion_model']
        lines.append(f'- fusion model: `{fusion["model"]}` ({fusion["backend"]}, precision '
                     f'{fusion.get("precision", "fp32")})')
    lines += [f'- data: `{summary["data"]}` ({summary["layout"]}), {summary["count"]} samples',
              f'- conventions: {summary["conventions"]}', '']
    derain_rows = [(label, key) for label, key in (
        ('rainy input', 'input'), ('derained', 'derained'), ('rainy input (right)', 'input_right'),
        ('derained (right)', 'derained_right')) if key in mean]
    if derain_rows:
        lines += ['## Deraining (mean)', '', '| | PSNR-Y | SSIM-Y | PSNR-RGB | SSIM-RGB |',
                  '|---|---|---|---|---|']
        for label, key in derain_rows:
            lines.append(f'| {label} | ' + ' | '.join(_fmt(mean[key].get(k)) for k in DERAIN_KEYS) + ' |')
        if 'input' in mean and 'derained' in mean:
            gain = mean['derained']['psnr_y'] - mean['input']['psnr_y']
            lines += ['', f'PSNR-Y gain over the rainy input: {gain:+.2f} dB']
        lines.append('')
    if 'clean_input' in mean:
        values = mean['clean_input']
        lines += ['## Rain-free input (no regression: derained vs the clean image itself)', '',
                  '| PSNR-Y | SSIM-Y | PSNR-RGB | SSIM-RGB |', '|---|---|---|---|',
                  '| ' + ' | '.join(_fmt(values.get(k)) for k in DERAIN_KEYS) + ' |', '']
    if mean.get('fusion'):
        keys = [k for k in (*M.FUSION_METRICS, 'colour_error') if k in mean['fusion']]
        rows = [('fused', 'fusion'), ('baseline: visible unchanged', 'baseline_visible'),
                ('baseline: average of visible and IR', 'baseline_average')]
        lines += ['## Fusion and its baselines (mean; NiteDR Table II columns, EN, SD, SF, colour error)',
                  '', '| | ' + ' | '.join(keys) + ' |', '|---|' + '---|' * len(keys)]
        for label, key in rows:
            if key in mean:
                lines.append(f'| {label} | ' + ' | '.join(_fmt(mean[key].get(k)) for k in keys) + ' |')
        beats = [k for k in ('Qabf', 'VIF') if k in mean['fusion'] and all(
            mean['fusion'][k] > mean[b].get(k, math.inf) for b in FUSION_BASELINES if b in mean)]
        lines += ['', f'Above both baselines on: {", ".join(beats) or "none of Qabf, VIF"}.', '']
    lines += ['## Per sample', '']
    header = ['name']
    if 'derained' in mean:
        header += ['input PSNR-Y', 'derained PSNR-Y', 'derained SSIM-Y']
    if mean.get('fusion'):
        header += ['fusion SSIM', 'fusion Qabf']
    lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for record in summary['samples']:
        row = [record['name']]
        if 'derained' in mean:
            row += [_fmt(record.get('input', {}).get('psnr_y')),
                    _fmt(record.get('derained', {}).get('psnr_y')),
                    _fmt(record.get('derained', {}).get('ssim_y'))]
        if mean.get('fusion'):
            row += [_fmt(record.get('fusion', {}).get('SSIM')), _fmt(record.get('fusion', {}).get('Qabf'))]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines) + '\n'


def write_grid(path: Path, panels: Sequence[tuple[str, np.ndarray | None]], height: int = 240) -> Path:
    """One row of labelled panels, each scaled to ``height`` pixels; missing ones (``None``: no IR in the
    dataset, no fusion model) are left out."""
    tiles = []
    for label, image in panels:
        if image is None:
            continue
        rgb = _float(image) if image.dtype == np.uint8 else image.astype(np.float32)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        h, w = rgb.shape[:2]
        scale = height / h if height else 1.0
        tile = to_uint8(cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                   interpolation=cv2.INTER_AREA))
        tile = np.ascontiguousarray(tile)
        cv2.rectangle(tile, (0, 0), (min(tile.shape[1] - 1, 8 + 9 * len(label)), 20), (0, 0, 0), -1)
        cv2.putText(tile, label, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    row = np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1)
    return write_rgb(path, row)
