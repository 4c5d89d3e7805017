"""``nitedr bag derain`` end to end on the sample bag and on every real bag in the shared data."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rosbags')
pytest.importorskip('onnxruntime')

from bag_messages import messages_by_topic
from nitedr_ros.cli import main as cli_main
from nitedr_ros.core.clock import header_stamp_ns
from nitedr_ros.engines import tiny_models
from nitedr_ros.errors import OutputExistsError
from nitedr_ros.transports.bag.derain import (
    BagDerainOptions,
    camera_info_topic,
    derain_bag,
    format_summary,
    node_parameters,
)
from nitedr_ros.transports.bag.reader import BagError
from nitedr_ros.transports.bag.sample import SampleSpec, make_sample

SAMPLE = SampleSpec(duration_s=1.5, width=64, height=48)


@pytest.fixture(scope='module')
def models(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp('derain_models')
    return {
        'derain': str(tiny_models.channel_gain_model(folder / 'cleannet_gain.onnx', (1.0, 0.5, 0.25))),
        'fusion': str(tiny_models.blend_fusion_model(folder / 'fusionnet_blend.onnx', 0.5)),
        'stereo': str(tiny_models.identity_model(folder / 'stereoirr_identity.onnx', 'stereoirr')),
        'single': str(tiny_models.identity_model(folder / 'mspfn_identity.onnx', 'mspfn')),
    }


@pytest.fixture(scope='module')
def sample_bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('derain_sample') / 'night'
    make_sample(out, SAMPLE)
    return out


def _options(bag, out, models, mode='nitedr', **kwargs) -> BagDerainOptions:
    roles = {'nitedr': {'derain': models['derain'], 'fusion': models['fusion']},
             'stereo': {'stereo': models['stereo']}, 'single': {'derain': models['single']}}[mode]
    kwargs.setdefault('overrides', {'threads': 1})
    return BagDerainOptions(input=bag, output=out, mode=mode, backend='onnxruntime-cpu', models=roles,
                            progress=False, **kwargs)


def _digest(path: Path) -> str:
    files = [path] if path.is_file() else sorted(p for p in path.rglob('*') if p.is_file())
    sha = hashlib.sha256()
    for file in files:
        sha.update(file.read_bytes())
    return sha.hexdigest()


def test_nitedr_mode_on_the_sample_bag(sample_bag, models, tmp_path):
    before = _digest(sample_bag)
    out = tmp_path / 'derained'
    summary = derain_bag(_options(sample_bag, out, models))
    assert _digest(sample_bag) == before  # input untouched
    inputs, outputs = messages_by_topic(sample_bag), messages_by_topic(out)

    # every original topic is there with every message, then the node's topics
    for topic, messages in inputs.items():
        assert [t for t, _ in outputs[topic]] == [t for t, _ in messages], topic
    new_topics = set(outputs) - set(inputs)
    assert {'/derained/rgb/image', '/fused/image', '/derained/rgb/camera_info', '/fused/camera_info',
            '/diagnostics'} <= new_topics

    # counts: every rgb frame is in a set or counted as dropped; every set gives both outputs
    frames_in = summary['frames_in']
    assert frames_in == {'rgb': len(inputs['/rgb/image']), 'thermal': len(inputs['/thermal/image'])}
    sets = summary['sets_made']
    assert sets > 0
    assert frames_in['rgb'] == sets + sum(summary['dropped'].values())
    assert len(outputs['/derained/rgb/image']) == len(outputs['/fused/image']) == sets
    assert summary['outputs_published'] == 2 * sets

    # outputs keep the input header verbatim and are recorded at the newest input's record time
    rgb_by_stamp = {header_stamp_ns(m): (t, m) for t, m in inputs['/rgb/image']}
    thermal_records = {t for t, _ in inputs['/thermal/image']}
    for (record, derained), (_, fused), (_, info) in zip(outputs['/derained/rgb/image'],
                                                          outputs['/fused/image'],
                                                          outputs['/derained/rgb/camera_info']):
        rgb_record, rgb = rgb_by_stamp[header_stamp_ns(derained)]
        assert derained.header.frame_id == rgb.header.frame_id == fused.header.frame_id
        assert header_stamp_ns(fused) == header_stamp_ns(derained) == header_stamp_ns(info)
        assert (derained.encoding, derained.height, derained.width) == ('rgb8', 48, 64)
        assert record >= rgb_record and (record == rgb_record or record in thermal_records)
        # the tiny derain model keeps R, halves G, quarters B
        pixels = np.asarray(derained.data).reshape(48, 64, 3).astype(int)
        source = np.asarray(rgb.data).reshape(48, 64, 3).astype(int)
        np.testing.assert_array_equal(pixels[..., 0], source[..., 0])
        assert np.abs(pixels[..., 1] - source[..., 1] / 2).max() <= 1

    # diagnostics follow bag time and carry the latency fields
    diagnostics = outputs['/diagnostics']
    assert len(diagnostics) >= 2
    names = {status.name for _, array in diagnostics for status in array.status}
    assert any('latency' in name for name in names)
    keys = {kv.key for _, array in diagnostics for status in array.status for kv in status.values}
    assert any(key.startswith('end_to_end') for key in keys) and any('inference' in key for key in keys)
    first_record = min(t for messages in inputs.values() for t, _ in messages)
    last_record = max(t for messages in inputs.values() for t, _ in messages)
    for record, array in diagnostics:
        assert first_record <= record <= last_record and header_stamp_ns(array) == record
    assert 'sets made' in format_summary(summary)


def test_stereo_mode_pairs_left_and_right_exactly(sample_bag, models, tmp_path):
    summary = derain_bag(_options(sample_bag, tmp_path / 'stereo', models, mode='stereo'))
    outputs = messages_by_topic(tmp_path / 'stereo')
    left, right = outputs['/derained/left/image'], outputs['/derained/right/image']
    assert len(left) == len(right) == summary['sets_made'] == summary['frames_in']['left']
    assert [header_stamp_ns(m) for _, m in left] == [header_stamp_ns(m) for _, m in right]
    assert {m.header.frame_id for _, m in left} == {'stereo_left_optical_frame'}


def test_full_mode_derains_all_four_cameras_in_one_set(sample_bag, models, tmp_path):
    roles = {'derain': models['derain'], 'fusion': models['fusion'], 'stereo': models['stereo']}
    summary = derain_bag(BagDerainOptions(input=sample_bag, output=tmp_path / 'full', mode='full',
                                          backend='onnxruntime-cpu', models=roles, overrides={'threads': 1},
                                          progress=False))
    assert set(summary['streams']) == {'rgb', 'left', 'right', 'thermal'} and summary['sets_made'] > 0
    outputs = messages_by_topic(tmp_path / 'full')
    for topic in ('/derained/rgb/image', '/fused/image', '/derained/left/image', '/derained/right/image'):
        assert len(outputs[topic]) == summary['sets_made'], topic


def test_latency_percentiles_are_in_the_summary_without_debug_topics(sample_bag, models, tmp_path):
    summary = derain_bag(_options(sample_bag, tmp_path / 'quiet', models, mode='single',
                                  overrides={'threads': 1, 'debug.publish_timing': False}))
    assert not any('/debug/' in topic for topic in messages_by_topic(tmp_path / 'quiet'))
    latency = summary['latency_ms']
    assert set(latency) == {'processing_time_ms', 'inference_time_ms', 'pipeline_latency_ms'}
    assert all(values['count'] == summary['sets_made'] > 0 for values in latency.values())
    text = format_summary(summary)
    assert 'processing_time_ms (wall clock, this machine): p50' in text
    assert 'pipeline_latency_ms (bag clock: record time of the set minus its header stamp): p50' in text


def test_default_parameters_are_the_shipped_mode_file_with_the_bag_defaults(tmp_path, monkeypatch):
    shipped = tmp_path / 'config'
    shipped.mkdir()
    (shipped / 'stereo.yaml').write_text('/**:\n  ros__parameters:\n    mode: stereo\n    sync:\n'
                                         '      slop: 0.02\n    max_input_age_ms: 200.0\n')
    monkeypatch.setenv('NITEDR_CONFIG_DIR', str(shipped))
    params = node_parameters(BagDerainOptions(input='in', output='out', mode='stereo'))
    assert params['sync.slop'] == 0.02 and params['max_input_age_ms'] == 0.0  # shipped file, bag default
    own = tmp_path / 'mine.yaml'
    own.write_text('/**:\n  ros__parameters:\n    mode: single\n    max_input_age_ms: 150.0\n')
    mine = node_parameters(BagDerainOptions(input='in', output='out', params=own))
    assert mine['max_input_age_ms'] == 150.0  # the user's own file is taken as it is
    given = BagDerainOptions(input='in', output='out', mode='stereo', overrides={'max_input_age_ms': 50.0})
    assert node_parameters(given)['max_input_age_ms'] == 50.0
    monkeypatch.setenv('NITEDR_CONFIG_DIR', str(tmp_path / 'none'))  # no config folder: schema defaults
    assert node_parameters(BagDerainOptions(input='in', output='out', mode='stereo'))['sync.slop'] == 0.015


def test_add_latency_records_outputs_after_their_inputs(sample_bag, models, tmp_path):
    derain_bag(_options(sample_bag, tmp_path / 'late', models, mode='single', add_latency=True,
                        topics={'rgb': '/rgb/image'}))
    inputs, outputs = messages_by_topic(sample_bag), messages_by_topic(tmp_path / 'late')
    records = {header_stamp_ns(m): t for t, m in inputs['/rgb/image']}
    assert all(t > records[header_stamp_ns(m)] for t, m in outputs['/derained/rgb/image'])


def test_output_is_never_overwritten_without_force(sample_bag, models, tmp_path):
    out = tmp_path / 'exists'
    out.mkdir()
    with pytest.raises(OutputExistsError):
        derain_bag(_options(sample_bag, out, models, mode='single'))
    derain_bag(_options(sample_bag, out, models, mode='single', force=True))
    assert (out / 'metadata.yaml').is_file()
    with pytest.raises(BagError, match='is the input'):
        derain_bag(_options(sample_bag, sample_bag, models, mode='single', force=True))


def test_force_never_touches_the_input_bag(sample_bag, models, tmp_path, capsys):
    inbag = tmp_path / 'par' / 'inbag'
    shutil.copytree(sample_bag, inbag)
    before = _digest(inbag)
    # the reviewer's case: OUT is the folder that holds IN
    assert cli_main(['bag', 'derain', str(inbag), str(tmp_path / 'par'), '--force', '--no-progress']) == 2
    assert 'contains the input' in capsys.readouterr().err
    with pytest.raises(BagError, match='inside the input'):
        derain_bag(_options(inbag, inbag / 'sub', models, mode='single', force=True))
    assert _digest(inbag) == before and sorted(p.name for p in inbag.iterdir()) == sorted(
        p.name for p in sample_bag.iterdir())


class _InterruptingPipeline:
    """Stands in for the pipeline and interrupts the run (as Ctrl-C would) at the third set."""

    def __init__(self) -> None:
        self.calls = 0

    def process(self, frames, *, fuse=True):
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt
        raise AssertionError('not reached')


def test_interrupted_run_leaves_no_output(sample_bag, models, tmp_path):
    out = tmp_path / 'interrupted'
    with pytest.raises(KeyboardInterrupt):
        derain_bag(_options(sample_bag, out, models, mode='single', pipeline=_InterruptingPipeline()))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_topic_errors_name_the_topic(sample_bag, models, tmp_path):
    with pytest.raises(BagError, match='/nothing'):
        derain_bag(_options(sample_bag, tmp_path / 'a', models, mode='single', topics={'rgb': '/nothing'}))
    with pytest.raises(BagError, match='CameraInfo'):
        derain_bag(_options(sample_bag, tmp_path / 'b', models, mode='single',
                            topics={'rgb': '/rgb/camera_info'}))
    rgb_only = tmp_path / 'rgb_only'
    make_sample(rgb_only, SampleSpec(duration_s=0.3, width=32, height=32, cameras=('rgb',)))
    with pytest.raises(BagError, match=r'thermal stream.*--mode single'):
        derain_bag(_options(rgb_only, tmp_path / 'c', models, mode='nitedr'))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['rgb_only']


def test_a_type_without_definition_is_named(models, tmp_path):
    import sqlite3

    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg('int32 value', 'my_pkg/msg/Custom'))
    types = store.types
    bag = tmp_path / 'custom'
    with Writer(bag, version=8) as writer:
        custom = writer.add_connection('/custom', 'my_pkg/msg/Custom', typestore=store)
        image = writer.add_connection('/cam/image', 'sensor_msgs/msg/Image', typestore=store)
        writer.write(custom, 1, store.serialize_cdr(types['my_pkg/msg/Custom'](3), 'my_pkg/msg/Custom'))
        header = types['std_msgs/msg/Header'](types['builtin_interfaces/msg/Time'](0, 2), 'cam')
        writer.write(image, 2, store.serialize_cdr(types['sensor_msgs/msg/Image'](
            header, 2, 2, 'mono8', 0, 2, np.zeros(4, np.uint8)), 'sensor_msgs/msg/Image'))
    with sqlite3.connect(next(bag.glob('*.db3'))) as db:  # as an old bag without stored definitions
        db.execute("DELETE FROM message_definitions WHERE topic_type = 'my_pkg/msg/Custom'")
    with pytest.raises(BagError, match='my_pkg/msg/Custom'):
        derain_bag(_options(bag, tmp_path / 'out', models, mode='single'))
    assert not (tmp_path / 'out').exists()


def test_camera_info_topic_names():
    assert camera_info_topic('/cam/image_raw') == '/cam/camera_info'
    assert camera_info_topic('/raspicam_node/image/compressed') == '/raspicam_node/camera_info'
    assert camera_info_topic('cam/image') == 'cam/camera_info'


def _shared_bags(shared_data: Path) -> list[Path]:
    return sorted(p for p in (shared_data / 'bags').glob('*/*') if not p.name.endswith('.txt'))


@pytest.mark.slow
def test_every_shared_bag(shared_data, models, tmp_path):
    """sqlite3 and mcap rosbag2, ROS 1, Image and CompressedImage bags derain; talker bags: clear error."""
    bags = _shared_bags(shared_data)
    assert len(bags) >= 11
    seen_formats = set()
    for index, bag in enumerate(bags):
        out = tmp_path / f'out{index}'
        if bag.name == 'talker':
            with pytest.raises(BagError, match='no image topics'):
                derain_bag(_options(bag, out, models, mode='single'))
            assert not out.exists()
            continue
        summary = derain_bag(_options(bag, out, models, mode='single'))
        inputs, outputs = messages_by_topic(bag), messages_by_topic(out)
        image_topic = '/' + summary['streams']['rgb'].lstrip('/')
        images = inputs[image_topic]
        seen_formats.add((bag.suffix or 'dir', type(images[0][1]).__name__.rsplit('__', 1)[-1]))
        assert summary['frames_in']['rgb'] == len(images) == summary['sets_made']
        derained = outputs['/derained/rgb/image']
        assert len(derained) == len(images)
        for (_, got), (_, source) in zip(derained, images):
            assert header_stamp_ns(got) == header_stamp_ns(source)
            assert got.header.frame_id == source.header.frame_id
            assert got.height > 0 and len(got.data) == got.step * got.height
        for topic, messages in inputs.items():
            assert len(outputs[topic]) == len(messages), (bag, topic)
        assert outputs['/diagnostics']
    assert {kind for _, kind in seen_formats} == {'Image', 'CompressedImage'}
    assert '.bag' in {fmt for fmt, _ in seen_formats}


def test_cli_reports_errors_on_one_line(shared_data, models, tmp_path, capsys):
    talker = shared_data / 'bags' / 'rosbag2_mcap_talker_no_images' / 'talker'
    code = cli_main(['bag', 'derain', str(talker), str(tmp_path / 'x'), '--mode', 'single', '--no-progress'])
    err = capsys.readouterr().err
    assert code == 2 and 'no image topics' in err and err.count('\n') == 1
    assert not (tmp_path / 'x').exists()
