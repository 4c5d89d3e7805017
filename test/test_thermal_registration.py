"""A thermal camera that is not the RGB camera, on synthetic rigs with known geometry: calibration finds
the target in both cameras and recovers the homography / extrinsics to within a pixel; the pipeline with the
registration puts thermal edges on the visible ones (measured) and fuses uncovered pixels as visible only,
without a seam; live parameters, camera_info intrinsics and diagnostics; the misaligned sample bag."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from nitedr_ros.calibration.overlay import edge_alignment, warp_thermal
from nitedr_ros.calibration.synthetic_rig import SyntheticRig, scene_pair, target_views
from nitedr_ros.calibration.thermal_rgb import Intrinsics, TargetSpec, calibrate, find_target, parameter_yaml
from nitedr_ros.cli import main as cli_main
from nitedr_ros.core.clock import NS_PER_MS, ManualClock
from nitedr_ros.core.node_core import NodeCore
from nitedr_ros.core.parameters import load_parameter_file, registration_spec, validate
from nitedr_ros.core.testing import RecordingSink, make_image
from nitedr_ros.errors import ConfigError
from nitedr_ros.pipeline.registration import ThermalRegistrar, homography_from_extrinsics
from nitedr_ros.pipeline.registration_spec import RegistrationSpec

TARGET = TargetSpec('chessboard', 9, 6, 0.1)
POSES = [((5 * i - 10, 8 * ((i % 3) - 1), 3 * i), (-0.4 + 0.1 * i, -0.25 + 0.05 * (i % 3), 2.6 + 0.2 * i))
         for i in range(6)]


def mapped(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), homography).reshape(-1, 2)


def grid_points(hw: tuple[int, int]) -> np.ndarray:
    return np.array([[x, y] for x in np.linspace(10, hw[1] - 10, 8) for y in np.linspace(10, hw[0] - 10, 6)])


def intrinsics(rig: SyntheticRig) -> tuple[Intrinsics, Intrinsics]:
    return (Intrinsics(rig.k_rgb(), np.zeros(5), *rig.rgb_hw),
            Intrinsics(rig.k_thermal(), np.zeros(5), *rig.thermal_hw))


def test_calibration_recovers_the_homography_of_a_rotated_rig_within_a_pixel():
    rig = SyntheticRig()  # different resolution, focal length and orientation; no baseline: one exact H
    views = target_views(rig, TARGET, POSES)
    calibration = calibrate(views, TARGET)
    assert calibration.frames_used == 6 and calibration.homography_inliers == calibration.points == 6 * 54
    assert calibration.homography_rms_px < 1.0
    # against the true mapping, over the part of the thermal frame the targets covered
    corners = np.concatenate([find_target(thermal, TARGET) for _, thermal in views])
    error = np.linalg.norm(mapped(calibration.homography, corners) - mapped(rig.homography(3.0), corners),
                           axis=1)
    assert error.max() < 1.0, error.max()


def test_calibration_with_intrinsics_recovers_the_extrinsics_of_a_rig_with_a_baseline():
    rig = SyntheticRig(translation_m=(0.12, 0.03, 0.0))
    rgb_k, thermal_k = intrinsics(rig)
    calibration = calibrate(target_views(rig, TARGET, POSES), TARGET, rgb_intrinsics=rgb_k,
                            thermal_intrinsics=thermal_k)
    assert calibration.extrinsics_rms_px < 1.0
    measured, true = np.array(calibration.extrinsics), np.array(rig.extrinsics())
    assert np.linalg.norm(measured[:3] - true[:3]) < 0.02  # metres
    angle = np.degrees(2 * np.arccos(min(1.0, abs(float(measured[3:] @ true[3:])))))
    assert angle < 0.3
    text = parameter_yaml(calibration, mode='extrinsics', plane_distance_m=25.0)
    registration = yaml.safe_load(text)['/**']['ros__parameters']['registration']
    assert registration['mode'] == 'extrinsics' and len(registration['extrinsics']) == 7
    assert len(registration['homography']) == 9 and registration['plane_distance_m'] == 25.0


def test_a_target_the_thermal_camera_cannot_see_is_named(tmp_path):
    views = [(rgb, np.full_like(thermal, 7000))
             for rgb, thermal in target_views(SyntheticRig(), TARGET, POSES)]
    with pytest.raises(ConfigError, match=r'found in 6 RGB and 0 thermal frames .* The thermal stream is the '
                                          r'problem'):
        calibrate(views, TARGET)


def test_calibrate_thermal_from_folders_writes_parameters_the_node_loads(tmp_path, capsys):
    rig = SyntheticRig()
    (tmp_path / 'rgb').mkdir()
    (tmp_path / 'ir').mkdir()
    for index, (rgb, thermal) in enumerate(target_views(rig, TARGET, POSES)):
        cv2.imwrite(str(tmp_path / 'rgb' / f'{index:03d}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp_path / 'ir' / f'{index:03d}.png'), thermal)  # 16-bit PNG
    out = tmp_path / 'registration.yaml'
    args = ['calibrate-thermal', '--rgb-dir', str(tmp_path / 'rgb'), '--thermal-dir', str(tmp_path / 'ir'),
            '--columns', '9', '--rows', '6', '--square-size', '0.1', '--out', str(out)]
    assert cli_main(args) == 0
    assert 'homography (thermal -> RGB): RMS error 0.' in capsys.readouterr().out
    params = validate(load_parameter_file(out).given)
    assert params['registration.mode'] == 'homography'
    homography = np.array(params['registration.homography']).reshape(3, 3)
    points = grid_points(rig.thermal_hw)  # the whole frame, beyond the targets: within 2 px
    assert np.abs(mapped(homography, points) - mapped(rig.homography(3.0), points)).max() < 2.0
    assert cli_main(args) == 2  # never overwritten without --force
    assert 'exists' in capsys.readouterr().err


def _fused_alignment(spec: RegistrationSpec) -> tuple[float, np.ndarray, np.ndarray]:
    """A pipeline (tiny 50/50 blend fusion on ONNX Runtime) on a rig's scene pair: the edge alignment of the
    fused image with the visible one, the fused image and the visible one."""
    pytest.importorskip('onnxruntime')
    from nitedr_ros.engines import tiny_models
    from nitedr_ros.engines.options import EngineOptions
    from nitedr_ros.engines.selection import open_engine
    from nitedr_ros.pipeline.derain import DerainPipeline
    from nitedr_ros.pipeline.frames import ImageFrame
    from nitedr_ros.pipeline.thermal import ThermalNormalizer

    rig = SyntheticRig(translation_m=(0.1, 0.02, 0.0))
    visible, thermal, _ = scene_pair(rig, 15.0)
    with tempfile.TemporaryDirectory() as folder:
        options = EngineOptions('onnxruntime-cpu', threads=1)
        engines = {'derain': open_engine(tiny_models.identity_model(Path(folder) / 'd.onnx'), options),
                   'fusion': open_engine(tiny_models.blend_fusion_model(Path(folder) / 'f.onnx', 0.5),
                                         options)}
        pipeline = DerainPipeline('nitedr', engines, thermal=ThermalNormalizer((6000.0, 10000.0)),
                                  registration=spec)
        result = pipeline.process({'rgb': ImageFrame(visible, 'rgb8'),
                                   'thermal': ImageFrame(thermal, 'mono16')})
        fused = result.outputs['fused'].data
        # the thermal part of the fusion: fused minus half the visible, compared with the visible's edges
        thermal_part = np.clip(fused.astype(np.float32) - 0.5 * visible, 0, 255).astype(np.uint8)
        return edge_alignment(visible, thermal_part), fused, visible


def test_the_registered_fusion_puts_thermal_edges_on_the_visible_edges():
    rig = SyntheticRig(translation_m=(0.1, 0.02, 0.0))
    registered = RegistrationSpec('homography', tuple(rig.homography(15.0).ravel()))
    with_registration, _, _ = _fused_alignment(registered)
    without, _, _ = _fused_alignment(RegistrationSpec())
    assert with_registration > 0.8 and without < 0.3, (with_registration, without)


def test_pixels_the_thermal_camera_does_not_see_are_visible_only_without_a_seam():
    rig = SyntheticRig(translation_m=(0.1, 0.02, 0.0))
    registrar = ThermalRegistrar(RegistrationSpec('homography', tuple(rig.homography(15.0).ravel())))
    _, weight = registrar.warp(np.zeros(rig.thermal_hw, np.float32), rig.rgb_hw)
    assert weight is not None and 0.5 < registrar.coverage < 1.0
    _, fused, visible = _fused_alignment(registrar.spec)
    uncovered = weight == 0
    assert uncovered.any()
    # a 0/1 blend fusion's output where the thermal camera sees nothing is the (derained) visible image
    assert np.abs(fused[uncovered].astype(int) - visible[uncovered].astype(int)).max() <= 1
    # no seam: along the feathered edge the weight changes by less than a tenth per pixel
    assert np.abs(np.diff(weight, axis=1)).max() < 0.1 and np.abs(np.diff(weight, axis=0)).max() < 0.1


def test_extrinsics_mode_uses_both_camera_info_and_waits_for_them():
    rig = SyntheticRig(translation_m=(0.1, 0.0, 0.0))
    tx, ty, tz, *quaternion = rig.extrinsics()
    spec = RegistrationSpec('extrinsics', plane_distance_m=12.0, extrinsics=(tx, ty, tz, *quaternion))
    registrar = ThermalRegistrar(spec)
    assert registrar.homography(rig.thermal_hw, rig.rgb_hw) is None
    assert 'waiting for camera_info of rgb, thermal' in registrar.describe()['registration']
    registrar.set_intrinsics('rgb', tuple(rig.k_rgb().ravel()), *rig.rgb_hw)
    registrar.set_intrinsics('thermal', tuple(rig.k_thermal().ravel()), *rig.thermal_hw)
    homography = registrar.homography(rig.thermal_hw, rig.rgb_hw)
    np.testing.assert_allclose(homography, rig.homography(12.0), rtol=1e-9, atol=1e-9)
    # a camera_info for half-size images scales K
    registrar.set_intrinsics('thermal', tuple(rig.k_thermal().ravel()), rig.thermal_hw[0] * 2,
                             rig.thermal_hw[1] * 2)
    half = homography_from_extrinsics(rig.k_rgb(), np.diag([0.5, 0.5, 1.0]) @ rig.k_thermal(), rig.rotation(),
                                      (0.1, 0.0, 0.0), 12.0)
    np.testing.assert_allclose(registrar.homography(rig.thermal_hw, rig.rgb_hw), half, rtol=1e-6, atol=1e-6)


def test_registration_parameters_are_validated_live_and_reported_in_diagnostics():
    rig = SyntheticRig()
    visible, thermal, _ = scene_pair(rig, 15.0)
    sink = RecordingSink()
    clock = ManualClock(1000 * NS_PER_MS)
    core = NodeCore({'backend': 'identity', 'max_input_age_ms': 0.0, 'thermal_range': [6000.0, 10000.0]},
                    sink=sink, clock=clock, synchronous=True)
    core.start()
    try:
        ok, reason = core.set_parameters({'registration.homography': [0.0] * 9})
        assert not ok and 'singular' in reason
        homography = [float(v) for v in rig.homography(15.0).ravel()]
        ok, _ = core.set_parameters({'registration.mode': 'homography',
                                     'registration.homography': homography})
        assert ok
        core.on_image('rgb', make_image(visible, 'rgb8', 1000 * NS_PER_MS, 'camera'))
        core.on_image('thermal', make_image(thermal, 'mono16', 1000 * NS_PER_MS, 'thermal'))
        pipeline_status = next(s for s in core.statuses() if s.name.endswith('pipeline'))
        values = dict(pipeline_status.values)
        assert values['registration'] == 'homography parameter'
        assert 0.5 < float(values['thermal_coverage']) < 1.0
        assert len(sink.outputs('fused')) == 1
    finally:
        core.stop()


def test_the_schema_and_the_pipeline_agree_on_the_registration():
    params = validate({'registration.mode': 'extrinsics', 'registration.plane_distance_m': 7.5,
                       'registration.extrinsics': [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]})
    spec = registration_spec(params)
    assert spec == RegistrationSpec('extrinsics', plane_distance_m=7.5,
                                    extrinsics=(0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    with pytest.raises(ConfigError, match='quaternion'):
        validate({'registration.extrinsics': [0.0] * 7})


def test_the_misaligned_sample_bag_is_registered_by_the_homography_it_reports(tmp_path):
    pytest.importorskip('rosbags')
    from nitedr_ros.core.images import message_to_frame
    from nitedr_ros.transports.bag.reader import open_bag
    from nitedr_ros.transports.bag.sample import SampleSpec, make_sample

    summary = make_sample(tmp_path / 'bag', SampleSpec(duration_s=0.5, width=160, height=120,
                                                       cameras=('rgb', 'thermal'), thermal_offset=(9.0, -5.0),
                                                       thermal_scale=0.8))
    homography = summary['thermal_homography']
    frames = {}
    with open_bag(tmp_path / 'bag') as reader:
        for connection, _, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            if connection.topic.endswith('/image') and connection.topic not in frames:
                frames[connection.topic] = message_to_frame('x', msg).data
            if connection.topic == '/thermal/camera_info':
                assert (msg.height, msg.width) == (96, 128) and msg.k[0] == pytest.approx(0.8 * 0.9 * 160)
    rgb, thermal = frames['/rgb/image'], frames['/thermal/image']
    assert thermal.shape == (96, 128)
    spec = RegistrationSpec('homography', tuple(homography))
    aligned, weight = warp_thermal(thermal, rgb.shape[:2], spec)
    resized, _ = warp_thermal(thermal, rgb.shape[:2], RegistrationSpec())
    assert edge_alignment(rgb, aligned, weight) > edge_alignment(rgb, resized) + 0.05
