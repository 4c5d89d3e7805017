"""The shipped parameter files: one per mode, each valid against the core schema with rclpy's strict types,
each turning into a PipelineConfig; and the rosbag2 QoS override file for bag playback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nitedr_ros.core.parameters import SCHEMA_BY_NAME, load_parameter_file, pipeline_config
from nitedr_ros.core.topics import STREAM_CAMERA_INFO_TOPICS, STREAM_TOPICS

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'config'
MODE_FILES = {'nitedr': 'nitedr.yaml', 'stereo': 'stereo.yaml', 'single': 'single.yaml', 'full': 'full.yaml'}
QOS_FILE = 'qos_overrides_bag.yaml'
QOS_POLICIES = {
    'reliability': {'reliable', 'best_effort', 'system_default'},
    'history': {'keep_last', 'keep_all', 'system_default'},
    'durability': {'volatile', 'transient_local', 'system_default'},
}


def test_every_yaml_in_config_is_known():
    assert sorted(p.name for p in CONFIG_DIR.glob('*.yaml')) == sorted([*MODE_FILES.values(), QOS_FILE])


@pytest.mark.parametrize(('mode', 'name'), MODE_FILES.items())
def test_mode_file_validates_against_the_schema(mode, name):
    loaded = load_parameter_file(CONFIG_DIR / name, strict_types=True)
    assert loaded.values['mode'] == mode
    assert set(loaded.given) <= set(SCHEMA_BY_NAME)
    assert loaded.ros == {}
    config = pipeline_config(loaded.values)
    assert config.mode == mode


@pytest.mark.parametrize('name', MODE_FILES.values())
def test_mode_file_applies_to_a_namespaced_node(name):
    loaded = load_parameter_file(CONFIG_DIR / name, node_name='nitedr_node', namespace='/perception')
    assert loaded.given  # '/**' matches any node name and namespace


@pytest.mark.parametrize('name', MODE_FILES.values())
def test_mode_files_write_doubles_as_floats(name):
    document = yaml.safe_load((CONFIG_DIR / name).read_text())
    from nitedr_ros.core.parameters import flatten

    for key, value in flatten(document['/**']['ros__parameters']).items():
        if SCHEMA_BY_NAME[key].type == 'double':
            assert isinstance(value, float), key


def test_bag_qos_override_file_is_rosbag2_format_for_every_input_topic():
    document = yaml.safe_load((CONFIG_DIR / QOS_FILE).read_text())
    expected = {'/' + t for t in [*STREAM_TOPICS.values(), *STREAM_CAMERA_INFO_TOPICS.values()]}
    assert set(document) == expected
    for topic, policies in document.items():
        assert set(policies) <= {*QOS_POLICIES, 'depth'}, topic
        for policy, allowed in QOS_POLICIES.items():
            assert policies.get(policy, 'system_default') in allowed, (topic, policy)
        assert isinstance(policies.get('depth', 1), int) and policies.get('depth', 1) >= 1


def test_there_is_one_file_per_mode():
    from nitedr_ros.modes import MODES

    assert sorted(MODE_FILES) == sorted(MODES)
