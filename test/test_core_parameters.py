"""Parameter schema, whole-set validation, live changes (all or nothing), YAML loading, pipeline config."""

from __future__ import annotations

import pytest

from nitedr_ros.core.parameters import (
    DYNAMIC_NAMES,
    SCHEMA,
    SCHEMA_BY_NAME,
    apply_choices,
    check_changes,
    defaults,
    exact_groups_for,
    load_parameter_file,
    parse_parameter_document,
    pipeline_config,
    validate,
)
from nitedr_ros.errors import ConfigError

SAFE_LIVE = {
    'sync.slop',
    'max_input_age_ms',
    'enable',
    'diagnostics.latency_warn_ms',
    'diagnostics.latency_error_ms',
    'diagnostics.expected_rate_hz',
    'diagnostics.rate_tolerance',
}
REQUIRED = {
    'mode',
    'configuration',
    'models.derain',
    'backend',
    'engine_cache_dir',
    'precision',
    'force_engine_rebuild',
    'build_only',
    'sync.mode',
    'sync.slop',
    'sync.queue_size',
    'max_input_age_ms',
    'ir_timeout_ms',
    'passthrough_on_error',
    'thermal_range',
    'diagnostics.period',
    'qos.input.reliability',
    'qos.input.depth',
    'qos.output.reliability',
    'qos.output.depth',
    'enable',
}


def test_schema_is_complete_consistent_and_defaults_validate():
    assert len(SCHEMA_BY_NAME) == len(SCHEMA)
    assert set(SCHEMA_BY_NAME) >= REQUIRED
    assert set(DYNAMIC_NAMES) >= SAFE_LIVE
    for spec in SCHEMA:
        assert spec.description, spec.name
        assert spec.read_only == (not spec.dynamic), spec.name
    assert validate({}, strict_types=True) == defaults()


@pytest.mark.parametrize(
    ('values', 'problem'),
    [
        ({'sync.slopp': 0.1}, r"unknown parameter 'sync.slopp' \(did you mean 'sync.slop'\?\)"),
        ({'sync.slop': 'fast'}, 'sync.slop: expected double, got str'),
        ({'sync.slop': -0.1}, r'sync.slop: -0.1 is outside \[0, 10\]'),
        ({'sync.queue_size': 2.5}, 'sync.queue_size: expected integer'),
        ({'enable': 1}, 'enable: expected bool'),
        ({'mode': 'mono'}, "mode: 'mono' is not one of"),
        ({'qos.input.reliability': 'lossy'}, 'qos.input.reliability'),
        ({'thermal_range': [1.0]}, 'thermal_range must be'),
        ({'thermal_range': [5.0, 2.0]}, 'thermal_range must be'),
        ({'diagnostics.latency_warn_ms': 300.0}, 'must not exceed diagnostics.latency_error_ms'),
        ({'sync.exact_groups': ['left,sky']}, "unknown stream 'sky'"),
        ({'sync.exact_groups': ['left']}, 'two or more streams'),
        ({'profile.opt_hw': [64, 1280]}, 'min <= opt <= max'),
        ({'network': 'rainmer'}, 'single-mode derain network'),
        ({'max_input_age_ms': float('nan')}, 'not a finite number'),
    ],
)
def test_invalid_values_are_rejected_with_the_reason(values, problem):
    with pytest.raises(ConfigError, match=problem):
        validate(values)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        validate({'sync.slop': -1.0, 'enable': 'yes', 'bogus': 1})
    assert 'sync.slop' in str(info.value) and 'enable' in str(info.value) and 'bogus' in str(info.value)


def test_strict_types_refuse_integers_for_doubles_like_rclpy():
    assert validate({'sync.slop': 0})['sync.slop'] == 0.0
    with pytest.raises(ConfigError, match='decimal point'):
        validate({'sync.slop': 0}, strict_types=True)


def test_live_change_set_is_all_or_nothing():
    current = defaults()
    new, reason = check_changes(current, {'sync.slop': 0.02, 'max_input_age_ms': 150.0})
    assert reason == '' and new['sync.slop'] == 0.02 and new['max_input_age_ms'] == 150.0
    assert current['sync.slop'] == 0.015  # the current set is never modified

    new, reason = check_changes(current, {'sync.slop': 0.02, 'max_input_age_ms': -5.0})
    assert new is None and 'max_input_age_ms' in reason

    new, reason = check_changes(current, {'sync.slop': 0.02, 'backend': 'tensorrt'})
    assert new is None and 'read-only' in reason and 'backend' in reason

    new, reason = check_changes(current, {'backend': 'auto', 'enable': False})  # unchanged read-only value
    assert reason == '' and new['enable'] is False

    new, reason = check_changes(current, {'diagnostics.latency_warn_ms': 500.0})
    assert new is None and 'latency_error_ms' in reason
    new, _ = check_changes(
        current, {'diagnostics.latency_warn_ms': 500.0, 'diagnostics.latency_error_ms': 900.0}
    )
    assert new is not None


def test_yaml_sections_nested_names_and_node_override(tmp_path):
    path = tmp_path / 'params.yaml'
    path.write_text(
        '/**:\n'
        '  ros__parameters:\n'
        '    use_sim_time: true\n'
        '    sync: {slop: 0.02, queue_size: 7}\n'
        '    qos_overrides:\n'
        '      /rgb/image: {subscription: {reliability: reliable}}\n'
        '/perception/nitedr_node:\n'
        '  ros__parameters:\n'
        '    sync: {slop: 0.03}\n'
        'other_node:\n'
        '  ros__parameters: {unrelated: 1}\n'
    )
    loaded = load_parameter_file(path, namespace='perception')
    assert loaded.values['sync.slop'] == 0.03 and loaded.values['sync.queue_size'] == 7
    assert loaded.given == {'sync.slop': 0.03, 'sync.queue_size': 7}
    assert loaded.ros == {
        'use_sim_time': True,
        'qos_overrides./rgb/image.subscription.reliability': 'reliable',
    }
    plain = load_parameter_file(path)  # no namespace: only '/**' applies
    assert plain.values['sync.slop'] == 0.02


@pytest.mark.parametrize(
    ('document', 'problem'),
    [
        ({'some_other_node': {'ros__parameters': {}}}, 'no section for this node'),
        ({'/**': {'parameters': {}}}, 'has no "ros__parameters:"'),
        ({'nitedr_node': {'ros__parameters': {'sync': {'slope': 0.1}}}}, "did you mean 'sync.slop'"),
        ({'nitedr_node': {'ros__parameters': {'max_input_age_ms': 100}}}, 'decimal point'),
        (['not', 'a', 'mapping'], 'expected a mapping'),
    ],
)
def test_bad_parameter_documents(document, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_parameter_document(document, source='x.yaml')


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match='not found'):
        load_parameter_file(tmp_path / 'missing.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('/**: [unclosed\n')
    with pytest.raises(ConfigError, match='not valid YAML'):
        load_parameter_file(bad)


def test_exact_groups_follow_the_active_streams_and_sync_mode():
    values = defaults()
    assert exact_groups_for(values, ('rgb', 'thermal')) == []
    assert exact_groups_for(values, ('left', 'right')) == [('left', 'right')]
    values['sync.mode'] = 'exact'
    assert exact_groups_for(values, ('rgb', 'thermal')) == [('rgb', 'thermal')]
    assert exact_groups_for(values, ('rgb',)) == []


def test_pipeline_config_from_parameters():
    values = validate(
        {
            'mode': 'nitedr',
            'thermal_range': [100.0, 4000.0],
            'models.fusion': 'my_fusion.onnx',
            'backend': 'onnxruntime-cpu',
            'precision': 'fp32',
            'threads': 2,
        }
    )
    config = pipeline_config(values)
    assert config.models == {'fusion': 'my_fusion.onnx'}  # derain: shipped default
    engine = config.engine
    assert (engine.backend, engine.precision, engine.threads) == ('onnxruntime-cpu', 'fp32', 2)
    assert config.thermal_range == (100.0, 4000.0)
    assert pipeline_config(defaults()).thermal_range is None

    paper = pipeline_config(validate({'mode': 'stereo', 'configuration': 'paper'}))
    assert paper.models == {'stereo': 'stereoirr_paper.onnx'}
    single = pipeline_config(validate({'mode': 'single', 'network': 'rainmer'}))
    assert single.models == {'derain': 'rainmer_realtime.onnx'}


def test_run_choices_override_the_file_and_a_new_mode_drops_its_models():
    given = {'mode': 'nitedr', 'models.derain': 'a.onnx', 'backend': 'auto', 'threads': 2}
    assert apply_choices(given) == given
    same = apply_choices(given, mode='nitedr', backend='onnxruntime-cpu', models={'fusion': 'f.onnx'})
    assert same == {**given, 'backend': 'onnxruntime-cpu', 'models.fusion': 'f.onnx'}
    switched = apply_choices(given, mode='stereo', models={'stereo': 's.onnx'})
    assert switched == {'mode': 'stereo', 'backend': 'auto', 'threads': 2, 'models.stereo': 's.onnx'}
    assert given['models.derain'] == 'a.onnx'  # the input is not changed


def test_engine_parameters_map_into_the_pipeline_config():
    from nitedr_ros.pipeline.config import PipelineConfig

    assert pipeline_config(defaults()) == PipelineConfig(mode='nitedr', latency_window=100)  # defaults agree
    values = validate({
        'mode': 'full',
        'workspace_mb': 4096,
        'optimization_level': 5,
        'gpu_id': 1,
        'engine_files.derain': '/plans/derain.plan',
        'engine_files.stereo': '/plans/stereo.plan',
    })
    config = pipeline_config(values)
    engine = config.engine
    assert (config.mode, engine.build.workspace_mb, engine.build.optimization_level, engine.device_index) == (
        'full', 4096, 5, 1)
    assert config.options_for('stereo').engine_file == '/plans/stereo.plan'
    assert config.engine_files == {'derain': '/plans/derain.plan', 'stereo': '/plans/stereo.plan'}
    # a plan for a role the mode does not have is ignored, as models.* of other modes are
    nitedr = pipeline_config(validate({'mode': 'nitedr', 'engine_files.stereo': '/plans/stereo.plan'}))
    assert nitedr.engine_files == {}
    for name, value in (('optimization_level', 6), ('gpu_id', 16), ('workspace_mb', 8)):
        with pytest.raises(ConfigError, match=name):
            validate({name: value})
    for name in ('workspace_mb', 'optimization_level', 'gpu_id', 'engine_files.derain'):
        assert SCHEMA_BY_NAME[name].read_only


def test_full_mode_is_a_mode_of_the_schema_and_the_pipeline():
    from nitedr_ros.modes import MODE_OUTPUTS, MODE_ROLES, MODE_STREAMS, MODES

    assert SCHEMA_BY_NAME['mode'].choices == MODES
    assert MODE_STREAMS['full'] == ('rgb', 'left', 'right', 'thermal')
    assert set(MODE_OUTPUTS['full']) == {'derained_rgb', 'fused', 'derained_left', 'derained_right'}
    assert set(MODE_ROLES['full']) == {'derain', 'fusion', 'stereo'}
    config = pipeline_config(validate({'mode': 'full', 'configuration': 'paper'}))
    assert config.models == {'derain': 'cleannet_paper.onnx', 'fusion': 'fusionnet_paper.onnx',
                             'stereo': 'stereoirr_paper.onnx'}


def test_a_new_mode_or_model_drops_the_engine_files_built_for_the_old_ones():
    given = {'mode': 'nitedr', 'engine_files.derain': 'd.plan', 'engine_files.fusion': 'f.plan'}
    assert apply_choices(given, mode='nitedr') == given
    assert apply_choices(given, models={'derain': 'mine.onnx'}) == {
        'mode': 'nitedr', 'engine_files.fusion': 'f.plan', 'models.derain': 'mine.onnx'}
    assert apply_choices(given, mode='full') == {'mode': 'full'}
