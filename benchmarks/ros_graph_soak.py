#!/usr/bin/env python3
"""Soak run of the node on a real ROS 2 graph: ``ros2 launch nitedr_ros nitedr.launch.py`` for minutes under
10 Hz RGB + thermal input with thermal pauses, a live ``ros2 param set`` half way, then Ctrl-C.

Needs ROS 2 sourced and this package in a sourced colcon workspace (``scripts/test.sh`` builds it into
``build/ros_install``). Reports the output rates, the latency percentiles the node publishes on
``/diagnostics``, the drops by reason, what ``ros2 node list`` / ``ros2 param get`` said, and whether the node
shut down cleanly; writes ``soak_<backend>.md`` and ``.json`` to a scratch folder (benchmarks/results/ros2
with ``--publish``).

    python benchmarks/ros_graph_soak.py --minutes 3 --backend identity --publish
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'test'))

from bench_output import add_output_arguments, output_dir, write_result  # noqa: E402
from ros_graph import Launched, Probe, diagnostic_values, graph_env, private_domain, ros_image  # noqa: E402

from nitedr_ros.core.testing import pattern_image  # noqa: E402
from nitedr_ros.machine import machine_info  # noqa: E402


def ros2(env: dict[str, str], *args: str, timeout: float = 30.0) -> str:
    result = subprocess.run(['ros2', *args], env=env, capture_output=True, text=True, timeout=timeout)
    return (result.stdout + result.stderr).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--minutes', type=float, default=3.0)
    parser.add_argument('--backend', default='identity')
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--rate', type=float, default=10.0)
    add_output_arguments(parser, 'ros2')
    args = parser.parse_args()
    out = output_dir(args)
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    domain = private_domain()
    env = graph_env(domain)
    log = out / f'soak_{args.backend}.launch.log'
    probe = Probe(domain, 'nitedr_soak_probe')
    for topic in ('/rgb/image', '/thermal/image'):
        probe.publisher(Image, topic)
    for topic in ('/derained/rgb/image', '/fused/image'):
        probe.subscribe(Image, topic, depth=10)
    probe.subscribe(DiagnosticArray, '/diagnostics')
    launch = Launched(['ros2', 'launch', 'nitedr_ros', 'nitedr.launch.py', f'backend:={args.backend}',
                       'input_reliability:=reliable'], env, log)
    rgb = pattern_image(args.height, args.width, 'rgb8', seed=1)
    thermal = pattern_image(args.height, args.width, 'mono16', seed=2)
    report: dict = {'minutes': args.minutes, 'backend': args.backend, 'size': f'{args.width}x{args.height}',
                    'rate_hz': args.rate, 'domain': domain}
    try:
        probe.wait_for_subscribers('/rgb/image', timeout=120)
        report['node_list'] = ros2(env, 'node', 'list')
        total = int(args.minutes * 60 * args.rate)
        period = 1.0 / args.rate
        pauses = [(int(total * f), int(total * f + 2.5 * args.rate)) for f in (0.2, 0.45, 0.7)]
        sent = 0
        started = time.monotonic()
        for k in range(total):
            stamp = time.time_ns()
            probe.publisher_of('/rgb/image').publish(ros_image(rgb, 'rgb8', stamp, 'camera'))
            if not any(a <= k < b for a, b in pauses):
                probe.publisher_of('/thermal/image').publish(ros_image(thermal, 'mono16', stamp, 'thermal'))
            sent += 1
            if k == total // 2:
                report['param_set'] = ros2(env, 'param', 'set', '/nitedr_node', 'sync.slop', '0.02')
                report['param_refused'] = ros2(env, 'param', 'set', '/nitedr_node', 'sync.slop', '20.0')
                report['param_get'] = ros2(env, 'param', 'get', '/nitedr_node', 'sync.slop')
            sleep = started + (k + 1) * period - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)
            if k % int(args.rate * 30) == 0:
                print(f'{k}/{total} sets sent, {len(probe.messages("/derained/rgb/image"))} derained, '
                      f'{len(probe.messages("/fused/image"))} fused', flush=True)
        time.sleep(2.0)
        seconds = time.monotonic() - started
        report['alive_at_end'] = launch.alive() and 'nitedr_node' in probe.node.get_node_names()
        derained = len(probe.messages('/derained/rgb/image'))
        fused = len(probe.messages('/fused/image'))
        report.update(sets_sent=sent, derained=derained, fused=fused, seconds=round(seconds, 1),
                      derained_hz=round(derained / seconds, 2), fused_hz=round(fused / seconds, 2),
                      thermal_pauses_s=[round((b - a) / args.rate, 1) for a, b in pauses])
        diags = probe.messages('/diagnostics')
        latest = {task: diagnostic_values(diags[-1], task) for task in ('latency', 'pipeline', 'input rgb',
                                                                          'input thermal')} if diags else {}
        report['diagnostics_last'] = latest
        report['degraded_reports'] = sum(1 for m in diags if (v := diagnostic_values(m, 'pipeline'))
                                         and v.get('degraded') == 'true')
    finally:
        code = launch.stop()
        probe.close()
    output = launch.output()
    report['shutdown_exit_code'] = code
    report['errors_in_output'] = [m for m in ('Traceback', 'context is invalid', 'process has died',
                                              'Logger severity') if m in output]
    report['machine'] = machine_info()
    lat = report.get('diagnostics_last', {}).get('latency') or {}
    rgb_in = report.get('diagnostics_last', {}).get('input rgb') or {}
    drops = {key[len('dropped_'):]: value for key, value in rgb_in.items()
             if key.startswith('dropped_') and value not in ('0', '-')}
    text = '\n'.join([
        f'# Soak run on a real ROS 2 graph ({args.backend} backend, {args.minutes:g} min)', '',
        f'`ros2 launch nitedr_ros nitedr.launch.py backend:={args.backend}`; a real rclpy peer publishes '
        f'{args.width}x{args.height} rgb8 + mono16 thermal at {args.rate:g} Hz with three 2.5 s thermal '
        'pauses and records the outputs; `ros2 param set` half way; Ctrl-C at the end.', '',
        f'- sets sent: {report.get("sets_sent")}; derained: {report.get("derained")} '
        f'({report.get("derained_hz")} Hz); fused: {report.get("fused")} ({report.get("fused_hz")} Hz)',
        f'- rgb frames: {report.get("sets_sent")} sent, {rgb_in.get("frames_total")} reached the node, '
        f'{rgb_in.get("frames_published")} published by it, dropped (counted): {drops or "none"}; '
        f'{report.get("derained")} reached the peer',
        f'- end-to-end latency (node clock, /diagnostics): p50 {lat.get("end_to_end_ms_p50")} ms, p95 '
        f'{lat.get("end_to_end_ms_p95")} ms, p99 {lat.get("end_to_end_ms_p99")} ms; processing p50 '
        f'{lat.get("processing_ms_p50")} ms',
        f'- degraded (thermal paused) in {report.get("degraded_reports")} diagnostics reports',
        f'- `ros2 node list`: {report.get("node_list")!r}',
        f'- `ros2 param set sync.slop 0.02`: {report.get("param_set")!r}; 20.0: '
        f'{report.get("param_refused")!r}; get: {report.get("param_get")!r}',
        f'- node alive at the end: {report.get("alive_at_end")}; Ctrl-C exit code {code}; errors in the '
        f'output: {report["errors_in_output"] or "none"}', ''])
    print(text)
    write_result(out, f'soak_{args.backend}.md', text)
    write_result(out, f'soak_{args.backend}.json', json.dumps(report, indent=1, default=str))
    return 0 if code == 0 and not report['errors_in_output'] and report.get('alive_at_end') else 1


if __name__ == '__main__':
    sys.exit(main())
