"""TensorRT compatibility checker: graphs built with onnx.helper that it must reject or accept; CLI codes."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nitedr_ros.cli import main
from nitedr_ros.export import trt_ops
from nitedr_ros.export.trt_compat import check_onnx

IMAGE = [1, 3, 'height', 'width']


def _model(nodes, initializers=(), *, inputs=None, outputs=('y',), opset=19, functions=()):
    inputs = inputs or [helper.make_tensor_value_info('x', TensorProto.FLOAT, IMAGE)]
    graph = helper.make_graph(
        nodes, 'g', inputs, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()])
    opsets = [helper.make_opsetid('', opset)] + [helper.make_opsetid(f.domain, 1) for f in functions]
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def _single_problem(model, node_name, op_type, reason_part):
    report = check_onnx(model)
    assert not report.ok
    assert [(p.node, p.op_type) for p in report.problems] == [(node_name, op_type)], report.format()
    assert reason_part in report.problems[0].reason
    assert node_name in report.format()
    return report


def _conv_relu():
    nodes = [helper.make_node('Conv', ['x', 'w'], ['c'], name='conv', pads=[1, 1, 1, 1]),
             helper.make_node('Relu', ['c'], ['y'], name='relu')]
    return nodes, {'w': np.zeros((3, 3, 3, 3), np.float32)}


def test_accepts_a_plain_supported_graph():
    report = check_onnx(_model(*_conv_relu()))
    assert report.ok and not report.problems and report.op_counts == {'Conv': 1, 'Relu': 1}
    assert report.opset == 19


def test_rejects_unsupported_op():
    nodes, inits = _conv_relu()
    nodes.append(helper.make_node('Det', ['c'], ['d'], name='determinant'))
    model = _model(nodes, inits, outputs=('y', 'd'))
    _single_problem(model, 'determinant', 'Det', 'not supported')


def test_rejects_op_missing_from_the_table():
    model = _model([helper.make_node('BitwiseAnd', ['x', 'x'], ['y'], name='bits')])
    _single_problem(model, 'bits', 'BitwiseAnd', 'not supported')
    assert 'BitwiseAnd' in trt_ops.UNSUPPORTED_OPS and 'Conv' in trt_ops.SUPPORTED_OPS


def test_rejects_topk_with_k_4000():
    nodes = [helper.make_node('Reshape', ['x', 'shape'], ['flat'], name='flatten'),
             helper.make_node('TopK', ['flat', 'k'], ['y', 'idx'], name='topk_4000', axis=-1)]
    model = _model(nodes, {'shape': np.array([1, -1], np.int64), 'k': np.array([4000], np.int64)})
    _single_problem(model, 'topk_4000', 'TopK', 'K = 4000')


def test_accepts_topk_with_k_3839_and_rejects_3840():
    for k, ok in ((3839, True), (3840, False)):
        nodes = [helper.make_node('Reshape', ['x', 'shape'], ['flat'], name='flatten'),
                 helper.make_node('TopK', ['flat', 'k'], ['y', 'idx'], name='topk', axis=-1)]
        model = _model(nodes, {'shape': np.array([1, -1], np.int64), 'k': np.array([k], np.int64)})
        assert check_onnx(model).ok is ok


def _topk_quarter_width():
    """K = W // 4 computed from the input shape at run time."""
    nodes = [helper.make_node('Shape', ['x'], ['s'], name='shape'),
             helper.make_node('Gather', ['s', 'i3'], ['w'], name='width', axis=0),
             helper.make_node('Div', ['w', 'four'], ['q'], name='quarter'),
             helper.make_node('Unsqueeze', ['q', 'axis0'], ['k'], name='k'),
             helper.make_node('TopK', ['x', 'k'], ['y', 'idx'], name='topk_w4')]
    inits = {'i3': np.array(3, np.int64), 'four': np.array(4, np.int64), 'axis0': np.array([0], np.int64)}
    return _model(nodes, inits)


def test_topk_with_shape_derived_k_is_bounded_at_the_largest_input():
    assert check_onnx(_topk_quarter_width(), max_hw=(2160, 3840)).ok  # K = 960
    report = check_onnx(_topk_quarter_width(), max_hw=(2160, 16384))  # K = 4096
    assert [(p.node, p.op_type) for p in report.problems] == [('topk_w4', 'TopK')]
    assert 'reaches 4096' in report.problems[0].reason


def test_topk_without_derivable_bound_is_rejected():
    nodes = [helper.make_node('ReduceMax', ['x'], ['m'], name='max', keepdims=0),
             helper.make_node('Cast', ['m'], ['mi'], name='to_int', to=TensorProto.INT64),
             helper.make_node('Reshape', ['mi', 'one'], ['k'], name='k_vec'),
             helper.make_node('Reshape', ['x', 'shape'], ['flat'], name='flatten'),
             helper.make_node('TopK', ['flat', 'k'], ['y', 'idx'], name='topk_data_k', axis=-1)]
    model = _model(nodes, {'shape': np.array([1, -1], np.int64), 'one': np.array([1], np.int64)})
    report = check_onnx(model, max_hw=(2160, 3840))
    assert [p.node for p in report.problems] == ['topk_data_k']
    assert 'K < 3840 is not guaranteed' in report.problems[0].reason


def test_rejects_scatternd_with_reduction():
    nodes = [helper.make_node('ScatterND', ['x', 'idx', 'upd'], ['y'], name='scatter_add', reduction='add')]
    inits = {'idx': np.zeros((1, 1), np.int64), 'upd': np.zeros((1, 3, 4, 4), np.float32)}
    _single_problem(_model(nodes, inits), 'scatter_add', 'ScatterND', "reduction='add'")
    plain = [helper.make_node('ScatterND', ['x', 'idx', 'upd'], ['y'], name='scatter')]
    assert check_onnx(_model(plain, inits)).ok


def test_rejects_5d_gridsample():
    inputs = [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 4, 'height', 'width'])]
    nodes = [helper.make_node('GridSample', ['x', 'grid'], ['y'], name='grid5d')]
    model = _model(nodes, {'grid': np.zeros((1, 2, 2, 2, 3), np.float32)}, inputs=inputs, opset=20)
    _single_problem(model, 'grid5d', 'GridSample', '5-D')
    nodes4 = [helper.make_node('GridSample', ['x', 'grid'], ['y'], name='grid4d')]
    assert check_onnx(_model(nodes4, {'grid': np.zeros((1, 2, 2, 2), np.float32)})).ok


def test_rejects_deformconv_with_asymmetric_pads():
    inits = {'w': np.zeros((3, 3, 3, 3), np.float32), 'off': np.zeros((1, 18, 4, 4), np.float32)}
    nodes = [helper.make_node('DeformConv', ['x', 'w', 'off'], ['y'], name='dcn', pads=[1, 1, 0, 0])]
    report = _single_problem(_model(nodes, inits), 'dcn', 'DeformConv', 'asymmetric pads')
    assert any('10.1' in w.reason for w in report.warnings)
    symmetric = [helper.make_node('DeformConv', ['x', 'w', 'off'], ['y'], name='dcn', pads=[1, 1, 1, 1])]
    assert check_onnx(_model(symmetric, inits)).ok


def test_flags_nonzero_and_unique():
    nodes = [helper.make_node('NonZero', ['x'], ['nz'], name='nonzero'),
             helper.make_node('Unique', ['x'], ['y'], name='unique')]
    report = check_onnx(_model(nodes, outputs=('y', 'nz')))
    assert {(p.node, p.op_type) for p in report.problems} == {('nonzero', 'NonZero'), ('unique', 'Unique')}
    assert 'data-dependent' in next(p.reason for p in report.problems if p.op_type == 'NonZero')


def test_checks_inside_local_functions_and_names_custom_ops():
    body = [helper.make_node('Relu', ['a'], ['r'], name='relu'),
            helper.make_node('Unique', ['r'], ['b'], name='unique_in_fn')]
    function = helper.make_function('nitedr.test', 'Block', ['a'], ['b'], body, [helper.make_opsetid('', 19)])
    nodes = [helper.make_node('Block', ['x'], ['t'], domain='nitedr.test', name='call_block'),
             helper.make_node('FancyOp', ['t'], ['y'], domain='com.example', name='fancy')]
    report = check_onnx(_model(nodes, functions=[function]))
    found = {(p.node, p.op_type) for p in report.problems}
    assert found == {('nitedr.test::Block/unique_in_fn', 'Unique'), ('fancy', 'FancyOp')}
    assert 'plugin' in next(p.reason for p in report.problems if p.op_type == 'FancyOp')


def test_checks_inside_control_flow_subgraphs():
    unique = helper.make_node('Unique', ['x'], ['t_out'], name='unique_then')
    then_branch = helper.make_graph([unique], 'then', [],
                                    [helper.make_tensor_value_info('t_out', TensorProto.FLOAT, None)])
    else_branch = helper.make_graph([helper.make_node('Relu', ['x'], ['e_out'], name='relu_else')], 'else',
                                    [], [helper.make_tensor_value_info('e_out', TensorProto.FLOAT, None)])
    nodes = [helper.make_node('ReduceMax', ['x'], ['m'], name='max', keepdims=0),
             helper.make_node('Greater', ['m', 'half'], ['cond'], name='test'),
             helper.make_node('If', ['cond'], ['y'], name='branch', then_branch=then_branch,
                              else_branch=else_branch)]
    report = check_onnx(_model(nodes, {'half': np.array(0.5, np.float32)}))
    assert [(p.node, p.op_type) for p in report.problems] == [('branch/then_branch[0]/unique_then', 'Unique')]


def test_rejects_runtime_reduce_axes_and_out_of_range_opset():
    nodes = [helper.make_node('Shape', ['x'], ['s'], name='shape'),
             helper.make_node('Slice', ['s', 'zero', 'one'], ['ax'], name='axes_from_shape'),
             helper.make_node('Sub', ['ax', 'ax'], ['axes'], name='axes_zero'),
             helper.make_node('ReduceMean', ['x', 'axes'], ['y'], name='mean')]
    inits = {'zero': np.array([0], np.int64), 'one': np.array([1], np.int64)}
    assert check_onnx(_model(nodes, inits)).ok  # axes derivable from a static dim: constant
    dynamic = [helper.make_node('ArgMax', ['x'], ['am'], name='argmax', axis=1, keepdims=0),
               helper.make_node('ReduceMin', ['am'], ['axes'], name='axes_from_data', keepdims=0),
               helper.make_node('Reshape', ['axes', 'one'], ['axes1'], name='axes_vec'),
               helper.make_node('ReduceMean', ['x', 'axes1'], ['y'], name='mean')]
    _single_problem(_model(dynamic, inits), 'mean', 'ReduceMean', 'build-time constant')
    report = check_onnx(_model(*_conv_relu(), opset=8))
    assert not report.ok and report.problems[0].op_type == 'opset'


def test_cli_exit_codes_and_json(tmp_path, capsys):
    good = tmp_path / 'good.onnx'
    bad = tmp_path / 'bad.onnx'
    onnx.save(_model(*_conv_relu()), str(good))
    nodes = [helper.make_node('ScatterND', ['x', 'idx', 'upd'], ['y'], name='scatter_add', reduction='add')]
    onnx.save(_model(nodes, {'idx': np.zeros((1, 1), np.int64), 'upd': np.zeros((1, 3, 4, 4), np.float32)}),
              str(bad))
    assert main(['check-onnx', str(good)]) == 0
    assert 'OK' in capsys.readouterr().out
    assert main(['check-onnx', str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert 'scatter_add' in out and 'ScatterND' in out
    assert main(['check-onnx', '--json', str(bad)]) == 1
    reports = json.loads(capsys.readouterr().out)
    assert reports[0]['ok'] is False and reports[0]['problems'][0]['node'] == 'scatter_add'
    assert main(['check-onnx', str(tmp_path / 'missing.onnx')]) == 2
    assert 'not found' in capsys.readouterr().err
    (tmp_path / 'junk.onnx').write_bytes(b'\x00not a model')
    assert main(['check-onnx', str(tmp_path / 'junk.onnx')]) == 2
