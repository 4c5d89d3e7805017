"""Export every network/configuration to ONNX (random weights), with parity, fp16 and TensorRT checks.

Writes ``export_networks.{json,md}`` (plus machine info) to a scratch folder, to benchmarks/results with
``--publish``. The ONNX files go to a temporary folder and are deleted. Usage::

    python benchmarks/export_networks.py [--network N ...] [--config C ...] [--height 64 --width 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench_output import TEMP_PREFIX, add_output_arguments, output_dir, write_result


def export_one(network: str, config: str, height: int, width: int, folder: Path) -> dict[str, object]:
    import torch

    from nitedr_ros.export.onnx_export import export_network
    from nitedr_ros.export.trt_compat import check_onnx
    from nitedr_ros.networks import build_network

    torch.manual_seed(0)
    start = time.perf_counter()
    model = build_network(network, config)
    built = time.perf_counter()
    row: dict[str, object] = {'network': network, 'config': config, 'trace_hw': [height, width],
                              'params': sum(p.numel() for p in model.parameters()),
                              'build_s': round(built - start, 2)}
    try:
        result = export_network(model, network, config, folder / f'{network}_{config}.onnx',
                                trace_hw=(height, width), force=True)
    except Exception as exc:  # noqa: BLE001 - recorded; the run goes on with the next network
        row.update(ok=False, error=f'{type(exc).__name__}: {exc}',
                   export_s=round(time.perf_counter() - built, 2))
        return row
    exported = time.perf_counter()
    reports = [check_onnx(result.path), check_onnx(result.fp16_path)]
    row.update(
        ok=all(r.ok for r in reports), export_s=round(exported - built, 2),
        check_s=round(time.perf_counter() - exported, 2), exporter=result.exporter, opset=result.opset,
        fallback_reason=result.fallback_reason, parity_max_abs=result.parity_max_abs,
        fp16_max_abs=result.fp16_max_abs, parity_sizes=[list(s) for s in result.parity_sizes],
        onnx_mb=round(result.path.stat().st_size / 2**20, 2),
        fp16_mb=round(result.fp16_path.stat().st_size / 2**20, 2),
        check_fp32=reports[0].to_dict(), check_fp16=reports[1].to_dict())
    return row


def to_markdown(rows: list[dict[str, object]], info: dict[str, object]) -> str:
    lines = ['# ONNX export of every network/configuration (random weights)', '',
             f'Machine: {info}', '',
             '| network | config | params | exporter | parity max abs (fp32) | fp16 max abs | '
             'TensorRT check (fp32/fp16) | export s | ONNX MB | fp16 MB |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if 'error' in r:
            lines.append(f'| {r["network"]} | {r["config"]} | {r["params"]:,} | failed: {r["error"][:120]} '
                         f'| | | | {r["export_s"]} | | |')
            continue
        check = '/'.join('ok' if c['ok'] else f'{len(c["problems"])} problems'
                         for c in (r['check_fp32'], r['check_fp16']))
        lines.append(f'| {r["network"]} | {r["config"]} | {r["params"]:,} | {r["exporter"]} | '
                     f'{r["parity_max_abs"]:.2e} | {r["fp16_max_abs"]:.2e} | {check} | {r["export_s"]} | '
                     f'{r["onnx_mb"]} | {r["fp16_mb"]} |')
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    import torch

    from nitedr_ros.machine import machine_info
    from nitedr_ros.modelspec import CONFIGS, NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--network', nargs='*', default=list(NETWORKS))
    parser.add_argument('--config', nargs='*', default=list(CONFIGS))
    parser.add_argument('--height', type=int, default=64)
    parser.add_argument('--width', type=int, default=64)
    parser.add_argument('--name', default='export_networks', help='results file stem')
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    results_dir = output_dir(args)
    from nitedr_ros.fileio import scratch_folder

    info = machine_info({'torch_threads': torch.get_num_threads()})
    rows = []
    with scratch_folder(TEMP_PREFIX) as tmp:
        for network in args.network:
            for config in args.config:
                print(f'exporting {network}/{config}', flush=True)
                row = export_one(network, config, args.height, args.width, tmp)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if not k.startswith('check_')}), flush=True)
    print(to_markdown(rows, info))
    write_result(results_dir, f'{args.name}.json', json.dumps({'machine': info, 'rows': rows}, indent=2))
    write_result(results_dir, f'{args.name}.md', to_markdown(rows, info))
    return 0 if all(r.get('ok') for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
