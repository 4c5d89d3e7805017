"""Bag replay: ``ros2 bag play --clock`` + nitedr_node on sim time.

``ros2 launch nitedr_ros bag_replay.launch.py bag:=/data/rainy_drive mode:=nitedr``

The player publishes ``/clock`` and offers the QoS of ``qos_overrides`` (default
``share/nitedr_ros/config/qos_overrides_bag.yaml``: reliable, keep last 10); the node runs with
``use_sim_time:=true`` and reliable input subscriptions, so stale-frame drops, latency and the thermal
timeout follow bag time and nothing is dropped before the first ``/clock``. Playback starts
``play_delay`` seconds after launch; build TensorRT engines first (``nitedr.launch.py build_only:=true``)
so the node is ready by then. Other nitedr.launch.py arguments (topics, namespace, model) pass through.
"""

import os

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    IncludeLaunchDescription,
    OpaqueFunction,
    TimerAction,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

PACKAGE = 'nitedr_ros'
PASS_THROUGH = [
    'mode',
    'params_file',
    'model',
    'backend',
    'namespace',
    'rgb_topic',
    'left_topic',
    'right_topic',
    'thermal_topic',
    'log_level',
]
ARGUMENTS = [
    ('bag', None, 'rosbag2 folder (or file) to play', None),
    ('rate', '1.0', 'playback rate (ros2 bag play --rate)', None),
    ('clock_hz', '100', 'frequency of the /clock the player publishes (ros2 bag play --clock)', None),
    (
        'loop',
        'false',
        'replay in a loop (the node resets its synchronizer when time jumps back)',
        ['true', 'false'],
    ),
    ('play_delay', '5.0', 'seconds between launching the node and starting playback', None),
    (
        'qos_overrides',
        '',
        "rosbag2 QoS override YAML for the player ('' = share/nitedr_ros/config/qos_overrides_bag.yaml)",
        None,
    ),
    (
        'mode',
        'nitedr',
        'pipeline mode: nitedr, stereo, single or full',
        ['nitedr', 'stereo', 'single', 'full'],
    ),
    ('params_file', '', "parameter YAML ('' = share/nitedr_ros/config/<mode>.yaml)", None),
    ('model', '', "model of the mode's main role ('' = from params_file)", None),
    ('backend', '', "inference backend override ('' = from params_file)", None),
    ('namespace', '', 'namespace of the node; the bag topics must resolve to its inputs', None),
    ('rgb_topic', 'rgb/image', 'RGB image topic in the bag', None),
    ('left_topic', 'stereo/left/image', 'left stereo image topic in the bag', None),
    ('right_topic', 'stereo/right/image', 'right stereo image topic in the bag', None),
    ('thermal_topic', 'thermal/image', 'thermal-IR image topic in the bag', None),
    (
        'log_level',
        'info',
        'log level of the node (--ros-args --log-level)',
        ['debug', 'info', 'warn', 'error', 'fatal'],
    ),
]


def _share():
    try:
        from ament_index_python.packages import get_package_share_directory

        return get_package_share_directory(PACKAGE)
    except Exception:  # noqa: BLE001 - run from a checkout
        return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _player(context):
    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    qos_file = value['qos_overrides'] or os.path.join(_share(), 'config', 'qos_overrides_bag.yaml')
    command = [
        'ros2',
        'bag',
        'play',
        value['bag'],
        '--clock',
        value['clock_hz'],
        '--rate',
        value['rate'],
        '--qos-profile-overrides-path',
        qos_file,
    ]
    if value['loop'] == 'true':
        command.append('--loop')
    return [
        TimerAction(
            period=float(value['play_delay']),
            actions=[ExecuteProcess(cmd=command, output='screen', name='bag_player')],
        )
    ]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(
            name,
            description=description,
            **({'default_value': default} if default is not None else {}),
            **({'choices': choices} if choices else {}),
        )
        for name, default, description, choices in ARGUMENTS
    ]
    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            os.path.join(os.path.dirname(os.path.abspath(__file__)), 'nitedr.launch.py')
        ),
        launch_arguments={
            **{name: LaunchConfiguration(name) for name in PASS_THROUGH},
            'use_sim_time': 'true',
            'input_reliability': 'reliable',
        }.items(),
    )
    return LaunchDescription([*arguments, node, OpaqueFunction(function=_player)])
