"""How a derain model does beyond the rain it was trained on: the tables of its model card.

Four groups, each measured through the deployed model file (``ModelRunner``: ONNX Runtime, uint8 or float
I/O as the file has it), PSNR/SSIM on MATLAB-rounded BT.601 Y:

- ``roadscene``: the recorded RoadScene-rain validation split (one synthetic night style, the training
  distribution of the first shipped models);
- ``held_out_pairs``: the shared rain sets' pairs never trained on (Rain100L, Rain200H ``test`` (heavy
  streaks), Rain200L ``test_*``), reported per set;
- ``held_out_styles``: renderer styles never trained on, on clean images never trained on;
- ``clean_night``: rain-free night images: the derained output against the image itself (the no-regression
  check: a model that leaves a clean image alone scores a high PSNR here).

Images are scaled to at most ``max_side`` pixels on the long side (CPU time); the table says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.corpus import clean_night_images, generalisation_pairs, roadscene_split
from ..data.imageio import read_rgb, to_uint8
from . import metrics as M
from .evaluate import ModelRunner

GROUP_TITLES = {'roadscene': 'RoadScene-rain validation (recorded split)',
                'held_out_pairs': 'held-back pairs of the shared rain sets',
                'held_out_styles': 'renderer styles never trained on, unseen clean images',
                'clean_night': 'rain-free night images (output vs the image itself)'}


@dataclass
class GroupResult:
    name: str
    count: int = 0
    input_psnr: list[float] = field(default_factory=list)
    output_psnr: list[float] = field(default_factory=list)
    output_ssim: list[float] = field(default_factory=list)
    subsets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def row(self) -> dict[str, float]:
        return {'count': len(self.output_psnr),
                'input_psnr_y': float(np.mean(self.input_psnr)) if self.input_psnr else float('nan'),
                'output_psnr_y': float(np.mean(self.output_psnr)),
                'output_ssim_y': float(np.mean(self.output_ssim)),
                'gain_db': (float(np.mean(self.output_psnr) - np.mean(self.input_psnr))
                            if self.input_psnr else float('nan'))}


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def evaluate_generalisation(model: str, shared_data: str | Path, *, max_side: int = 480,
                            limit: int = 0, threads: int = 0,
                            progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The four groups (module doc) for ``model``; ``limit`` caps the images per group (0: all)."""
    root = Path(shared_data)
    runner = ModelRunner(model, 'onnxruntime-cpu', threads)
    groups: dict[str, list[tuple[str, Callable[[], tuple[np.ndarray, np.ndarray]], bool]]] = {}
    roadscene, split = roadscene_split(root)
    val = roadscene.subset(split.val)
    groups['roadscene'] = [(name, (lambda i=i: _pair(val, i)), True) for i, name in enumerate(val.names)]
    for pair in generalisation_pairs(root):
        groups.setdefault(pair.group, []).append((pair.name, pair.load, True))
    groups['clean_night'] = [(name, (lambda p=path: (read_rgb(p),) * 2), False)
                             for name, path in clean_night_images(root)]
    if limit:
        groups = {g: items[:limit] for g, items in groups.items()}
    total = sum(len(items) for items in groups.values())
    results: dict[str, GroupResult] = {}
    done = 0
    try:
        for group, items in groups.items():
            result = results[group] = GroupResult(group)
            for name, load, rainy in items:
                rainy_u8, clean_u8 = (_fit(image, max_side) for image in load())
                derained = to_uint8(runner(image=rainy_u8.astype(np.float32) / 255.0)['derained'])
                scores = M.derain_metrics(derained, clean_u8)
                result.output_psnr.append(scores['psnr_y'])
                result.output_ssim.append(scores['ssim_y'])
                if rainy:
                    before = M.derain_metrics(rainy_u8, clean_u8)['psnr_y']
                    result.input_psnr.append(before)
                    subset = name.split('/', 1)[0] if group == 'held_out_pairs' else ''
                    if subset:
                        result.subsets.setdefault(subset, []).append((before, scores['psnr_y']))
                done += 1
                if progress is not None:
                    progress(done, total)
    finally:
        runner.close()
    return {'model': runner.describe(), 'max_side': max_side,
            'groups': {g: r.row() for g, r in results.items()},
            'subsets': {s: {'count': len(v), 'input_psnr_y': float(np.mean([a for a, _ in v])),
                            'output_psnr_y': float(np.mean([b for _, b in v]))}
                        for r in results.values() for s, v in r.subsets.items()}}


def _pair(data: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
    images = data.load(index, ('rainy', 'clean'))
    return images['rainy'], images['clean']


def generalisation_markdown(summary: dict[str, Any], title: str = '') -> str:
    """The tables: one row per group, then the held-back pair sets one by one."""
    lines = [title or '## Beyond the training rain', '',
             f'PSNR/SSIM on MATLAB-rounded BT.601 Y; images at most {summary["max_side"]} px on the long '
             f'side; model `{Path(summary["model"]["model"]).name}` ({summary["model"]["backend"]}).', '',
             '| validation | images | rainy PSNR-Y | output PSNR-Y | gain | output SSIM-Y |',
             '|---|---|---|---|---|---|']
    for group, row in summary['groups'].items():
        rainy = '-' if np.isnan(row['input_psnr_y']) else f'{row["input_psnr_y"]:.2f}'
        gain = '-' if np.isnan(row['gain_db']) else f'{row["gain_db"]:+.2f} dB'
        lines.append(f'| {GROUP_TITLES.get(group, group)} | {row["count"]} | {rainy} | '
                     f'{row["output_psnr_y"]:.2f} | {gain} | {row["output_ssim_y"]:.4f} |')
    if summary['subsets']:
        lines += ['', '| held-back set | images | rainy PSNR-Y | output PSNR-Y | gain |',
                  '|---|---|---|---|---|']
        for name, row in sorted(summary['subsets'].items()):
            gain = row['output_psnr_y'] - row['input_psnr_y']
            lines.append(f'| {name} | {row["count"]} | {row["input_psnr_y"]:.2f} | '
                         f'{row["output_psnr_y"]:.2f} | {gain:+.2f} dB |')
    return '\n'.join(lines) + '\n'


def compare_markdown(summaries: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """Several models side by side, gain per group (for the README and benchmarks)."""
    groups = list(summaries[0][1]['groups'])
    lines = ['| model | ' + ' | '.join(GROUP_TITLES.get(g, g) for g in groups) + ' |',
             '|---|' + '---|' * len(groups)]
    for name, summary in summaries:
        cells = []
        for group in groups:
            row = summary['groups'][group]
            cells.append(f'{row["output_psnr_y"]:.2f}' if np.isnan(row['gain_db'])
                         else f'{row["output_psnr_y"]:.2f} ({row["gain_db"]:+.2f})')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'
