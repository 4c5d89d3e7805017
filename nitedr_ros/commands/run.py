"""``nitedr run``: start the node without ROS, over Cyclone DDS with ROS 2 wire conventions.

ROS 2 nodes on the same DDS domain (rmw_cyclonedds; Fast DDS usually) see its topics. By default DDS stays on
this host (the shipped loopback config) unless ``CYCLONEDDS_URI`` or ``--dds-config`` says otherwise.
``--transport rclpy`` runs the rclpy node instead (needs a ROS 2 install).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import Any

from ..errors import ConfigError
from ..modes import MODES

HELP = 'run the node over DDS without ROS (ROS 2 topic names, types, QoS); Ctrl-C stops it'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--transport', choices=('dds', 'rclpy'), default='dds',
                        help='dds: Cyclone DDS, no ROS needed (default); rclpy: the ROS 2 node')
    parser.add_argument('--params', default='',
                        help='parameter YAML (/**: ros__parameters:), a path or a name in config/ '
                             '(default: nitedr.yaml, or <mode>.yaml)')
    parser.add_argument('--mode', choices=MODES,
                        help='pipeline mode (overrides params); full = all four cameras')
    parser.add_argument('--param', action='append', default=[], metavar='NAME=VALUE',
                        help='set a parameter, e.g. backend=onnxruntime-cpu (repeatable)')
    parser.add_argument('--model', action='append', default=[], metavar='ROLE=PATH',
                        help='model of a role (derain, fusion, stereo); repeatable')
    parser.add_argument('--backend', help='inference backend (overrides params)')
    parser.add_argument('--remap', action='append', default=[], metavar='FROM:=TO',
                        help='topic remap as in --ros-args -r, e.g. rgb/image:=/camera/image_raw')
    parser.add_argument('--namespace', default='/', help='node namespace (default /)')
    parser.add_argument('--node-name', default='nitedr_node',
                        help='node name: diagnostics, ~/debug topics and parameter-file sections use it')
    parser.add_argument('--domain', type=int, default=None, help='DDS domain (default: $ROS_DOMAIN_ID or 0)')
    parser.add_argument('--dds-config', default=None,
                        help='Cyclone DDS XML (default: $CYCLONEDDS_URI, else the shipped loopback config)')
    sim = parser.add_mutually_exclusive_group()
    sim.add_argument('--use-sim-time', dest='use_sim_time', action='store_const', const=True, default=None,
                     help='node clock from /clock (bag replay). Default: the system clock until a /clock '
                          'publisher appears (nitedr bag play --clock), then /clock')
    sim.add_argument('--no-sim-time', dest='use_sim_time', action='store_const', const=False,
                     help='always the system clock, even when /clock is published')
    parser.add_argument('--duration', type=float, default=0.0, help='stop after this many seconds (0: never)')
    parser.add_argument('--no-flush', action='store_true',
                        help='at exit, drop pending inputs instead of flushing the synchronizer')
    parser.add_argument('--log-level', default='info', choices=('debug', 'info', 'warning', 'error'))


def load_parameters(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(node parameters, ROS's own parameters) from the file, mode, --param, --model and --backend."""
    from ..core.parameters import apply_choices, load_parameter_file, validate
    from .options import parse_models, parse_param_overrides

    params_file = args.params or _shipped_config(args.mode)
    try:
        loaded = load_parameter_file(params_file, node_name=args.node_name, namespace=args.namespace)
        given, ros = dict(loaded.given), dict(loaded.ros)
    except ConfigError:
        if args.params:
            raise
        given, ros = {}, {}  # no shipped config found (pip install without data files): schema defaults
    given = apply_choices(given, mode=args.mode, backend=args.backend, models=parse_models(args.model))
    for name, value in parse_param_overrides(args.param).items():
        if name == 'use_sim_time' or name.startswith('qos_overrides.'):
            ros[name] = value
        else:
            given[name] = value
    if args.use_sim_time is not None:
        ros['use_sim_time'] = args.use_sim_time
    return validate(given), ros


def _shipped_config(mode: str | None) -> Any:
    """The shipped parameter file of a mode (never a same-named file in the working directory)."""
    from ..paths import config_dir

    return config_dir() / f'{mode or "nitedr"}.yaml'


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """The same options as ``--ros-args`` for the rclpy node (``ROS_DOMAIN_ID`` for ``--domain``)."""
    import os

    from ..paths import resolve_config

    ros = ['nitedr_node', '--ros-args', '-r', f'__node:={args.node_name}']
    if args.namespace not in ('', '/'):
        ros += ['-r', f'__ns:=/{args.namespace.strip("/")}']
    if args.params or args.mode:
        ros += ['--params-file', str(resolve_config(args.params or _shipped_config(args.mode)))]
    settings = [f'mode:={args.mode}'] if args.mode else []
    settings += [f'backend:={args.backend}'] if args.backend else []
    settings += [f'models.{item.partition("=")[0]}:={item.partition("=")[2]}' for item in args.model]
    settings += [item.replace('=', ':=', 1) for item in args.param]
    if args.use_sim_time is not None:
        settings += [f'use_sim_time:={str(args.use_sim_time).lower()}']
    for setting in settings:
        ros += ['-p', setting]
    for remap in args.remap:
        ros += ['-r', remap]
    if args.domain is not None:
        os.environ['ROS_DOMAIN_ID'] = str(args.domain)
    return ros


def run(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format='[%(levelname)s] [%(name)s]: %(message)s')
    if args.transport == 'rclpy':
        try:
            from ..transports import rclpy_node
        except ImportError as exc:
            raise ConfigError(f'--transport rclpy needs ROS 2 (rclpy): {exc}; use --transport dds') from None
        return int(rclpy_node.main(ros_arguments(args)) or 0)

    from ..transports.dds.node_runtime import DdsNodeRuntime, run_until

    params, ros = load_parameters(args)
    runtime = DdsNodeRuntime(params, ros_params=ros, node_name=args.node_name, namespace=args.namespace,
                             remaps=args.remap, domain_id=args.domain, dds_config=args.dds_config)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        runtime.start()
        topics = runtime.describe_topics()
        print(f'nitedr: ready on DDS domain {runtime.node.domain_id}, mode {params["mode"]}, '
              f'{runtime.clock_description()}; '
              f'subscribes {", ".join(topics["subscribes"])}; publishes {", ".join(topics["publishes"])}',
              flush=True)
        run_until(runtime, stop, args.duration)
    finally:
        runtime.shutdown(flush=not args.no_flush)
    stats = runtime.core.stats
    drops = {reason: count for reason, count in stats.drops_total().items() if count}
    print('nitedr: stopped; ' + json.dumps({'sets': stats.sets_total, 'outputs': stats.outputs_total,
                                            'drops': drops, 'errors': stats.errors_total}), flush=True)
    return 0
