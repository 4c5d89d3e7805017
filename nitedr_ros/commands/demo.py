"""``nitedr demo``: the whole node path on this machine, no ROS and no GPU needed.

1. makes the night-rain sample bag (``<output-dir>/sample_bag``) unless it exists;
2. starts three processes on a private DDS domain over loopback: a recorder, the node (``nitedr run``,
   ONNX Runtime CPU, sim time) and a player (``nitedr bag play --clock``);
3. replays the bag through the node, records what it publishes, stops everything;
4. writes ``grid.png`` (rainy | derained | fused | IR for a few frames), ``latency.png``, ``report.md`` and
   ``summary.json`` into a new ``<output-dir>/run-<time>/`` folder (nothing earlier is overwritten), and
   prints where they are.

The node uses whatever its parameters point at: the shipped models (``models/*.onnx``) by default,
``--model ROLE=PATH`` or ``--params FILE`` otherwise; ``--backend identity`` needs no model file at all
(outputs = inputs: a check of everything around inference).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import ConfigError, NitedrError
from ..modes import MODES
from .options import parse_models, parse_pairs

HELP = 'replay a night-rain sample bag through the node over DDS (CPU) and write before/after images and ' \
       'a latency report'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--output-dir', default='out/demo', help='where the sample bag and the runs go')
    parser.add_argument('--bag', default='', help='replay this bag instead of the sample')
    parser.add_argument('--topic', action='append', default=[], metavar='STREAM=TOPIC',
                        help='bag topic of a stream (rgb, left, right, thermal); repeatable. Default, as for '
                             "bag derain: the node's topic names, else auto-detected from the names")
    parser.add_argument('--params', default='', help='node parameter YAML (default: the shipped one)')
    parser.add_argument('--mode', choices=MODES, help='pipeline mode (default: from --params, else nitedr)')
    parser.add_argument('--model', action='append', default=[], metavar='ROLE=PATH',
                        help='model of a role (derain, fusion, stereo); default: the shipped models')
    parser.add_argument('--backend', default='onnxruntime-cpu',
                        help='inference backend (default onnxruntime-cpu; auto picks TensorRT on a GPU; '
                             'identity: outputs = inputs, no model files needed)')
    parser.add_argument('--param', action='append', default=[], metavar='NAME=VALUE',
                        help='any other node parameter (repeatable)')
    parser.add_argument('--rate', type=float, default=1.0, help='replay speed (default 1: real time)')
    parser.add_argument('--frames', type=int, default=4, help='rows of the before/after grid (default 4)')
    parser.add_argument('--duration', type=float, default=4.0, help='length of a new sample bag in s')
    parser.add_argument('--domain', type=int, default=None,
                        help='DDS domain (default: a private one in 1..101 derived from the process id)')
    parser.add_argument('--thermal-offset', default='', metavar='DX,DY',
                        help='make the sample\'s thermal camera a separate, misaligned sensor (shifted DX,DY '
                             'thermal pixels); the node registers it (registration.homography) and the grid '
                             'adds the fused output without registration, side by side')
    parser.add_argument('--thermal-scale', type=float, default=1.0,
                        help='with --thermal-offset: thermal resolution relative to RGB (default 1)')
    parser.add_argument('--startup-timeout', type=float, default=300.0,
                        help='seconds the node may take to load its models (default 300)')


class ChildProcess:
    """``python -m nitedr_ros <args>`` with its output collected (and logged to a file); ``env`` adds to
    this process's environment."""

    def __init__(self, name: str, args: list[str], log_path: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.lines: list[str] = []
        self.log_path = log_path
        env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
        self.popen = subprocess.Popen([sys.executable, '-m', 'nitedr_ros', *args], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.log_path.open('w') as log:
            for line in self.popen.stdout:
                self.lines.append(line.rstrip('\n'))
                log.write(line)
                log.flush()

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float, what: str) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if predicate(line):
                    return line
            if self.popen.poll() is not None:
                self._reader.join(timeout=2)
                if not any(predicate(line) for line in self.lines):
                    raise NitedrError(f'{self.name} exited before {what}: {self.last_error()}')
            time.sleep(0.05)
        raise NitedrError(f'{self.name}: no {what} within {timeout_s:g} s (log: {self.log_path})')

    def last_error(self) -> str:
        errors = [line for line in self.lines if 'error' in line.lower()]
        return (errors or self.lines or ['no output'])[-1]

    def wait(self, timeout_s: float) -> int:
        code = self.popen.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code

    def interrupt(self, timeout_s: float = 120.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
        return self.wait(timeout_s)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


def _check_models(args: argparse.Namespace) -> tuple[str, dict[str, Path]]:
    """Validate the parameters the node will get and find its models before starting anything (the
    identity backend needs none: given models are passed on as they are, for their network names)."""
    from ..core.parameters import apply_choices, load_parameter_file, pipeline_config, validate
    from ..pipeline.builders import resolve_models

    given = load_parameter_file(args.params).given if args.params else {}
    models = {role: str(Path(path).expanduser().resolve()) for role, path in parse_models(args.model).items()}
    params = validate(apply_choices(given, mode=args.mode, backend=args.backend, models=models))
    if params['backend'] == 'identity':
        return params['mode'], {role: Path(path) for role, path in models.items()}
    try:
        models = resolve_models(pipeline_config(params))
    except ConfigError as exc:
        raise ConfigError(f'{exc}. The demo needs the models of mode {params["mode"]}: the shipped ones in '
                          'models/ (see README), or give them with --model ROLE=PATH') from None
    return params['mode'], models


def _unregistered_fusion(args: argparse.Namespace, models: Mapping[str, Path]):
    """(title, render) of the grid's extra column: the same models fusing the thermal frame as it is, only
    resized (registration identity), run here on the grid's rows."""
    from ..core.images import message_to_frame
    from ..core.parameters import apply_choices, load_parameter_file, pipeline_config, validate
    from ..pipeline.builders import build_pipeline
    from .options import parse_param_overrides

    given = load_parameter_file(args.params).given if args.params else {}
    given = apply_choices(given, mode=args.mode, backend=args.backend,
                          models={role: str(path) for role, path in models.items()})
    given.update(parse_param_overrides(args.param))
    given['registration.mode'] = 'identity'
    pipeline = build_pipeline(pipeline_config(validate(given)))

    def render(messages: Mapping[str, object]):
        frames = {stream: message_to_frame(stream, msg) for stream, msg in messages.items()}
        return pipeline.process(frames).outputs['fused'].data

    return 'fused WITHOUT registration', render


def bag_streams(bag: Path, mode: str, explicit: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """stream -> bag topic (as ``bag derain`` chooses them) and the node options that subscribe them:
    remaps of the image and camera_info topics, ``image_transport`` for CompressedImage topics."""
    from ..core.topics import STREAM_CAMERA_INFO_TOPICS, STREAM_TOPICS
    from ..transports.bag.derain import camera_info_topic
    from ..transports.bag.reader import assign_streams, image_topics, open_bag

    with open_bag(bag) as reader:
        all_topics = {conn.topic: conn.msgtype for conn in reader.connections}
        chosen, _notes = assign_streams(image_topics(reader), all_topics, mode, explicit)
    kinds = {item.compressed for item in chosen.values()}
    if len(kinds) > 1:
        raise ConfigError('the chosen bag topics mix Image and CompressedImage; the node takes one image '
                          'transport for all streams: choose topics of one kind with --topic')
    compressed = kinds == {True}
    options = ['--param', 'image_transport=compressed'] if compressed else []
    topics = {}
    for stream, item in chosen.items():
        topic = '/' + item.topic.lstrip('/')
        topics[stream] = topic
        own = STREAM_TOPICS[stream] + ('/compressed' if compressed else '')
        if topic != '/' + own:
            options += ['--remap', f'{own}:={topic}',
                        '--remap', f'{STREAM_CAMERA_INFO_TOPICS[stream]}:={camera_info_topic(topic)}']
    return topics, options


def run(args: argparse.Namespace) -> int:
    from ..core.topics import DEBUG_VALUES, OUTPUT_TOPICS, STATUS_VALUES, debug_topic
    from ..modes import MODE_OUTPUTS, MODE_STREAMS
    from ..transports.bag.sample import SampleSpec, make_sample
    from ..transports.dds.participant import private_domain_id

    started = time.monotonic()
    mode, models = _check_models(args)
    output_dir = Path(args.output_dir).expanduser()
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.bag:
        bag = Path(args.bag).expanduser()
        if not bag.exists():
            raise ConfigError(f'bag not found: {bag}')
    registration: list[float] | None = None
    if args.bag:
        if args.thermal_offset:
            raise ConfigError('--thermal-offset makes a misaligned sample bag; with --bag, give the '
                              'registration with --param registration.mode=... instead')
    else:
        spec = SampleSpec(duration_s=args.duration)
        name = 'sample_bag'
        if args.thermal_offset:
            from .bag import _offset

            offset = _offset(args.thermal_offset)
            spec = SampleSpec(duration_s=args.duration, thermal_offset=offset,
                              thermal_scale=args.thermal_scale)
            name = f'sample_bag_thermal_{offset[0]:g}_{offset[1]:g}_{args.thermal_scale:g}'
            registration = spec.thermal_mapping_inverse()
        bag = output_dir / name
        if not (bag / 'metadata.yaml').is_file():
            print(f'making the sample bag {bag} ...', flush=True)
            info = make_sample(bag, spec)
            print(f'  {info["messages"]} messages from {info["sources"]}', flush=True)
    run_dir = output_dir / time.strftime('run-%Y%m%d-%H%M%S')
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = output_dir / time.strftime(f'run-%Y%m%d-%H%M%S-{suffix}')
    run_dir.mkdir(parents=True)
    domain = str(args.domain if args.domain is not None else private_domain_id())
    topics, subscribe_options = bag_streams(bag, mode, parse_pairs(args.topic, '--topic', 'STREAM=TOPIC'))
    inputs = [topics[s] for s in MODE_STREAMS[mode]]
    outputs = [f'/{OUTPUT_TOPICS[o]}' for o in MODE_OUTPUTS[mode]]
    node_name = 'nitedr_node'
    debug = [f'/{node_name}/{debug_topic(name)[2:]}' for name in (*DEBUG_VALUES, *STATUS_VALUES)]
    recorded = run_dir / 'recorded_bag'
    publish_log = run_dir / 'published.csv'

    node_args = ['run', '--domain', domain, '--use-sim-time', '--backend', args.backend,
                 '--param', 'qos.output.depth=10', '--node-name', node_name]
    if args.params:
        node_args += ['--params', args.params]
    if args.mode:
        node_args += ['--mode', args.mode]
    for role, path in models.items():
        node_args += ['--model', f'{role}={path}']
    for item in args.param:
        node_args += ['--param', item]
    node_args += subscribe_options
    if registration is not None:
        node_args += ['--param', 'registration.mode=homography',
                      '--param', f'registration.homography=[{", ".join(repr(v) for v in registration)}]']

    children: list[ChildProcess] = []
    print(f'starting recorder, node ({mode}, {args.backend}) and player on DDS domain {domain} (loopback)',
          flush=True)
    try:
        recorder = ChildProcess('recorder', ['bag', 'record', str(recorded), '--domain', domain, '--topics',
                                             *outputs, '/diagnostics', *debug], run_dir / 'recorder.log')
        children.append(recorder)
        recorder.wait_for(lambda line: line == 'recording', 60, 'start')
        node = ChildProcess('node', node_args, run_dir / 'node.log')
        children.append(node)
        node.wait_for(lambda line: line.startswith('nitedr: ready'), args.startup_timeout, 'ready')
        for topic in outputs:
            recorder.wait_for(lambda line, t=topic: line == f'matched {t}', 30, f'a match on {topic}')
        print('node ready; replaying the bag ...', flush=True)
        player = ChildProcess('player', ['bag', 'play', str(bag), '--clock', '--domain', domain,
                                         '--rate', str(args.rate), '--wait-for', *inputs,
                                         '--publish-log', str(publish_log)], run_dir / 'player.log')
        children.append(player)
        if player.wait(timeout_s=3600) != 0:
            raise NitedrError(f'the player failed: {player.last_error()}')
        time.sleep(2.0)  # the node finishes its last set
        if node.interrupt() != 0:
            raise NitedrError(f'the node failed: {node.last_error()}')
        if recorder.interrupt() != 0:
            raise NitedrError(f'the recorder failed: {recorder.last_error()}')
    finally:
        for child in children:
            child.kill()

    from ..transports.bag.demo_report import write_demo_report

    compare = _unregistered_fusion(args, models) if registration is not None and 'thermal' in topics else None
    report = write_demo_report(bag, recorded, publish_log, run_dir, mode=mode, topics=topics,
                               rows=args.frames, models={role: str(path) for role, path in models.items()},
                               backend=args.backend, rate=args.rate, compare=compare)
    report['wall_s'] = time.monotonic() - started
    (run_dir / 'summary.json').write_text(json.dumps(report, indent=2))
    latency = report['latency_ms'].get('end_to_end', {})
    print(f'done in {report["wall_s"]:.0f} s: {report["sets"]} sets, {report["outputs_recorded"]} outputs '
          f'recorded; end-to-end latency p50 {latency.get("p50", float("nan")):.1f} ms, '
          f'p90 {latency.get("p90", float("nan")):.1f} ms')
    print(f'before/after grid: {run_dir / "grid.png"}')
    print(f'latency plot:      {run_dir / "latency.png"}')
    print(f'report:            {run_dir / "report.md"}')
    print(f'recorded bag:      {recorded}')
    return 0
