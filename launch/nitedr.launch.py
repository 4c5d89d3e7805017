"""Live launch of nitedr_node: ``ros2 launch nitedr_ros nitedr.launch.py mode:=nitedr rgb_topic:=/cam/image``.

Parameters come from ``params_file`` (default ``share/nitedr_ros/config/<mode>.yaml``, ``/**:
ros__parameters:``); launch arguments left empty do not override the file. Input topics are remapped
from the node's relative names (``rgb/image`` ...); each ``camera_info`` follows its image topic
(image_transport convention: ``<parent>/camera_info``). With ``image_transport:=compressed`` the node
subscribes ``<topic>/compressed``. Outputs: ``derained/rgb/image``, ``derained/left/image``,
``derained/right/image``, ``fused/image`` (+ ``camera_info``) in the node's namespace, ``/diagnostics``.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'nitedr_ros'
# node-relative input topic -> launch argument that remaps it
INPUTS = {
    'rgb/image': 'rgb_topic',
    'stereo/left/image': 'left_topic',
    'stereo/right/image': 'right_topic',
    'thermal/image': 'thermal_topic',
}
# launch argument -> node parameter it overrides when not empty
OVERRIDES = {
    'backend': 'backend',
    'precision': 'precision',
    'engine_cache_dir': 'engine_cache_dir',
    'image_transport': 'image_transport',
    'input_reliability': 'qos.input.reliability',
}
MODEL_ROLE = {
    'nitedr': 'models.derain',
    'stereo': 'models.stereo',
    'single': 'models.derain',
    'full': 'models.derain',
}
ARGUMENTS = [
    (
        'mode',
        'nitedr',
        'pipeline mode: nitedr (derain RGB + fuse thermal IR), stereo (derain left/right), '
        'single (derain RGB), full (all four cameras: nitedr + stereo); picks the default params_file',
        ['nitedr', 'stereo', 'single', 'full'],
    ),
    ('params_file', '', "parameter YAML ('' = share/nitedr_ros/config/<mode>.yaml)", None),
    (
        'model',
        '',
        "model of the mode's main role (derain; stereo in stereo mode): ONNX path or name in "
        "models/ ('' = from params_file; other roles: params_file models.*)",
        None,
    ),
    (
        'backend',
        '',
        'inference backend override: auto, tensorrt, onnxruntime-cuda, onnxruntime-cpu, torch, '
        "identity ('' = from params_file)",
        None,
    ),
    ('precision', '', "engine precision override: fp32 or fp16 ('' = from params_file)", None),
    ('engine_cache_dir', '', "TensorRT engine cache folder override ('' = from params_file)", None),
    (
        'build_only',
        '',
        "true: build or load the engines, then exit (provisioning) ('' = from params_file)",
        ['', 'true', 'false'],
    ),
    ('image_transport', '', "raw or compressed input ('' = from params_file)", ['', 'raw', 'compressed']),
    (
        'input_reliability',
        '',
        "input QoS reliability override: best_effort, reliable, system_default ('' = from params_file)",
        ['', 'best_effort', 'reliable', 'system_default'],
    ),
    ('namespace', '', 'namespace of the node (its relative topics resolve inside it)', None),
    ('node_name', 'nitedr_node', 'node name (parameter files may address it by name)', None),
    ('rgb_topic', 'rgb/image', 'RGB camera image topic (remaps rgb/image)', None),
    ('left_topic', 'stereo/left/image', 'left stereo image topic (remaps stereo/left/image)', None),
    ('right_topic', 'stereo/right/image', 'right stereo image topic (remaps stereo/right/image)', None),
    ('thermal_topic', 'thermal/image', 'thermal-IR image topic (remaps thermal/image)', None),
    ('use_sim_time', 'false', 'use /clock (bag replay, simulation)', ['true', 'false']),
    (
        'log_level',
        'info',
        'log level of the node (--ros-args --log-level)',
        ['debug', 'info', 'warn', 'error', 'fatal'],
    ),
]


def _camera_info_topic(image_topic):
    parent = image_topic.rstrip('/').rsplit('/', 1)[0] if '/' in image_topic.strip('/') else ''
    return f'{parent}/camera_info' if parent else 'camera_info'


def _default_params_file(mode):
    try:
        from ament_index_python.packages import get_package_share_directory

        share = get_package_share_directory(PACKAGE)
    except Exception:  # noqa: BLE001 - run from a checkout
        share = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(share, 'config', f'{mode}.yaml')


def _node(context):
    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    mode = value['mode']
    overrides = {'use_sim_time': value['use_sim_time'] == 'true'}
    if value['build_only']:
        overrides['build_only'] = value['build_only'] == 'true'
    for argument, parameter in OVERRIDES.items():
        if value[argument]:
            overrides[parameter] = value[argument]
    if value['model']:
        overrides[MODEL_ROLE[mode]] = value['model']
    compressed = value['image_transport'] == 'compressed'
    remappings = []
    for relative, argument in INPUTS.items():
        target = value[argument]
        if target == relative:
            continue
        if compressed:
            remappings.append((f'{relative}/compressed', f'{target}/compressed'))
        else:
            remappings.append((relative, target))
        remappings.append((_camera_info_topic(relative), _camera_info_topic(target)))
    return [
        Node(
            package=PACKAGE,
            executable='nitedr_node',
            name=value['node_name'],
            namespace=value['namespace'],
            parameters=[value['params_file'] or _default_params_file(mode), overrides],
            remappings=remappings,
            arguments=['--ros-args', '--log-level', value['log_level']],
            output='screen',
            emulate_tty=True,
        )
    ]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(
            name, default_value=default, description=description, **({'choices': choices} if choices else {})
        )
        for name, default, description, choices in ARGUMENTS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_node)])
