"""Launch files without ROS: they parse, declare the documented arguments with descriptions, and their
OpaqueFunctions build the node / player as intended when run against minimal stand-ins of the launch API
(``launch`` is not installable here; this checks our logic, not launch itself)."""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest

from nitedr_ros.paths import config_dir

ROOT = Path(__file__).resolve().parents[1]
LIVE = ROOT / 'launch' / 'nitedr.launch.py'
BAG = ROOT / 'launch' / 'bag_replay.launch.py'
LIVE_ARGUMENTS = {
    'mode',
    'params_file',
    'model',
    'namespace',
    'use_sim_time',
    'log_level',
    'rgb_topic',
    'left_topic',
    'right_topic',
    'thermal_topic',
    'build_only',
    'backend',
    'image_transport',
}
BAG_ARGUMENTS = {'bag', 'rate', 'loop', 'qos_overrides', 'mode', 'params_file', 'namespace'}


def _declared(path: Path) -> dict[str, dict[str, object]]:
    """Argument name -> literal fields, from the ARGUMENTS table each launch file declares from."""
    tree = ast.parse(path.read_text(), filename=str(path))
    table = next(
        n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == 'ARGUMENTS'
    )
    rows = ast.literal_eval(table.value)
    return {
        name: {'default': default, 'description': description, 'choices': choices}
        for name, default, description, choices in rows
    }


@pytest.mark.parametrize(('path', 'expected'), [(LIVE, LIVE_ARGUMENTS), (BAG, BAG_ARGUMENTS)])
def test_launch_files_declare_documented_arguments(path, expected):
    declared = _declared(path)
    assert expected <= set(declared)
    for name, fields in declared.items():
        assert len(str(fields['description'])) > 15, name
        if fields['choices'] and fields['default'] is not None:
            assert fields['default'] in fields['choices'], name
    assert 'generate_launch_description' in path.read_text()


def test_every_mode_choice_has_a_shipped_params_file():
    for mode in _declared(LIVE)['mode']['choices']:
        assert (ROOT / 'config' / f'{mode}.yaml').is_file()


def test_node_executable_is_a_console_script():
    assert "'nitedr_node = nitedr_ros.transports.rclpy_node:main'" in (ROOT / 'setup.py').read_text()
    assert "executable='nitedr_node'" in LIVE.read_text()


# -- executing the launch files against stand-ins ---------------------------------------------------------
class _Action:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context.launch_configurations[self.name]


@pytest.fixture
def launch_stubs(monkeypatch):
    names = [
        'launch',
        'launch.actions',
        'launch.substitutions',
        'launch.launch_description_sources',
        'launch_ros',
        'launch_ros.actions',
    ]
    mods = {name: types.ModuleType(name) for name in names}
    mods['launch'].LaunchDescription = lambda entities: list(entities)
    for action in (
        'DeclareLaunchArgument',
        'OpaqueFunction',
        'ExecuteProcess',
        'IncludeLaunchDescription',
        'TimerAction',
    ):
        setattr(mods['launch.actions'], action, type(action, (_Action,), {}))
    mods['launch.substitutions'].LaunchConfiguration = _LaunchConfiguration
    mods['launch.launch_description_sources'].PythonLaunchDescriptionSource = type('Source', (_Action,), {})
    mods['launch_ros.actions'].Node = type('Node', (_Action,), {})
    for name, module in mods.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, 'ament_index_python', None)  # not installed: checkout fallback


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(path: Path, **values):
    module = _load(path)
    entities = module.generate_launch_description()
    declared = {e.args[0]: e.kwargs for e in entities if type(e).__name__ == 'DeclareLaunchArgument'}
    config = {name: kwargs.get('default_value') for name, kwargs in declared.items()}
    config.update(values)
    context = types.SimpleNamespace(launch_configurations=config)
    opaque = [e for e in entities if type(e).__name__ == 'OpaqueFunction']
    produced = [a for e in opaque for a in e.kwargs['function'](context)]
    return entities, declared, produced


def test_live_launch_builds_the_node_without_overriding_the_file_by_default(launch_stubs):
    _, declared, (node,) = _run(LIVE)
    assert all(kwargs['description'] for kwargs in declared.values())
    assert node.kwargs['executable'] == 'nitedr_node' and node.kwargs['name'] == 'nitedr_node'
    params_file, overrides = node.kwargs['parameters']
    assert Path(params_file) == config_dir() / 'nitedr.yaml'  # the installed share/ under ROS, else config/
    assert overrides == {'use_sim_time': False}
    assert node.kwargs['remappings'] == []
    assert node.kwargs['arguments'] == ['--ros-args', '--log-level', 'info']


def test_live_launch_overrides_remaps_and_compressed_topics(launch_stubs):
    _, _, (node,) = _run(
        LIVE,
        mode='stereo',
        model='/models/my_stereo.onnx',
        use_sim_time='true',
        image_transport='compressed',
        left_topic='/cam/left/image_raw',
        namespace='car',
        build_only='true',
    )
    params_file, overrides = node.kwargs['parameters']
    assert Path(params_file).name == 'stereo.yaml'
    assert overrides == {
        'use_sim_time': True,
        'build_only': True,
        'image_transport': 'compressed',
        'models.stereo': '/models/my_stereo.onnx',
    }
    assert node.kwargs['remappings'] == [
        ('stereo/left/image/compressed', '/cam/left/image_raw/compressed'),
        ('stereo/left/camera_info', '/cam/left/camera_info'),
    ]
    assert node.kwargs['namespace'] == 'car'


def test_bag_replay_plays_with_clock_and_qos_overrides_and_runs_the_node_on_sim_time(launch_stubs):
    entities, declared, (timer,) = _run(BAG, bag='/data/drive', loop='true', rate='0.5')
    assert 'default_value' not in declared['bag']  # required
    (include,) = [e for e in entities if type(e).__name__ == 'IncludeLaunchDescription']
    arguments = dict(include.kwargs['launch_arguments'])
    assert arguments['use_sim_time'] == 'true' and arguments['input_reliability'] == 'reliable'
    assert Path(include.args[0].args[0]) == LIVE
    (player,) = timer.kwargs['actions']
    command = player.kwargs['cmd']
    assert command[:4] == ['ros2', 'bag', 'play', '/data/drive']
    assert '--clock' in command and command[command.index('--rate') + 1] == '0.5' and '--loop' in command
    qos_file = Path(command[command.index('--qos-profile-overrides-path') + 1])
    assert qos_file == config_dir() / 'qos_overrides_bag.yaml' and qos_file.is_file()


@pytest.mark.parametrize('path', [LIVE, BAG])
def test_launch_mode_choices_are_the_node_modes(path):
    from nitedr_ros.core.parameters import SCHEMA_BY_NAME

    assert _declared(path)['mode']['choices'] == list(SCHEMA_BY_NAME['mode'].choices)


def test_live_launch_in_full_mode_uses_full_yaml_and_the_derain_model(launch_stubs):
    _, _, (node,) = _run(LIVE, mode='full', model='/models/cleannet_mine.onnx', thermal_topic='/ir/image')
    params_file, overrides = node.kwargs['parameters']
    assert Path(params_file) == config_dir() / 'full.yaml'
    assert overrides == {'use_sim_time': False, 'models.derain': '/models/cleannet_mine.onnx'}
    assert node.kwargs['remappings'] == [
        ('thermal/image', '/ir/image'),
        ('thermal/camera_info', '/ir/camera_info'),
    ]
