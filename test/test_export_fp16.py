"""The fp16 converter: float32 I/O, float16 weights, sensitive ops and shape arithmetic kept in float32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nitedr_ros.export.fp16 import Fp16ConversionError, convert_to_fp16
from nitedr_ros.export.parity import ort_session, run_session


def _graph_with_shape_arithmetic() -> onnx.ModelProto:
    """conv -> softmax-weighted -> minus the image mean computed as sum / float(H*W) -> conv."""
    rng = np.random.default_rng(0)
    inits = {
        'w1': (rng.standard_normal((3, 3, 3, 3)) * 0.2).astype(np.float32),
        'b1': np.zeros(3, np.float32),
        'w2': (rng.standard_normal((3, 3, 1, 1)) * 0.5).astype(np.float32),
        'axes': np.array([2, 3], np.int64), 'i2': np.array(2, np.int64), 'i3': np.array(3, np.int64),
    }
    nodes = [
        helper.make_node('Conv', ['image', 'w1', 'b1'], ['c'], name='conv1', pads=[1, 1, 1, 1]),
        helper.make_node('Softmax', ['c'], ['s'], name='softmax', axis=1),
        helper.make_node('Mul', ['c', 's'], ['m'], name='weight'),
        helper.make_node('ReduceSum', ['image', 'axes'], ['total'], name='sum', keepdims=1),
        helper.make_node('Shape', ['image'], ['shape'], name='shape'),
        helper.make_node('Gather', ['shape', 'i2'], ['h'], name='h', axis=0),
        helper.make_node('Gather', ['shape', 'i3'], ['w'], name='w', axis=0),
        helper.make_node('Mul', ['h', 'w'], ['hw'], name='hw'),
        helper.make_node('Cast', ['hw'], ['hw_f'], name='hw_float', to=TensorProto.FLOAT),
        helper.make_node('Div', ['total', 'hw_f'], ['mean'], name='mean'),
        helper.make_node('Sub', ['m', 'mean'], ['d'], name='centre'),
        helper.make_node('Conv', ['d', 'w2'], ['derained'], name='conv2'),
    ]
    graph = helper.make_graph(
        nodes, 'g', [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, 'height', 'width'])],
        [helper.make_tensor_value_info('derained', TensorProto.FLOAT, [1, 3, 'height', 'width'])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 19)], ir_version=10)


def _types(model: onnx.ModelProto) -> dict[str, int]:
    values = (*model.graph.input, *model.graph.output, *model.graph.value_info)
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    return types


def test_fp16_types_where_intended():
    fp32 = _graph_with_shape_arithmetic()
    fp16 = convert_to_fp16(fp32)
    onnx.checker.check_model(fp16)
    types = _types(fp16)
    assert types['image'] == types['derained'] == TensorProto.FLOAT  # float32 I/O
    nodes = {n.name: n for n in fp16.graph.node}
    for conv in ('conv1', 'conv2'):
        assert types[nodes[conv].input[1]] == TensorProto.FLOAT16  # weights stored in float16
        assert types[nodes[conv].output[0]] == TensorProto.FLOAT16 or nodes[conv].output[0] != 'derained'
    assert types['s'] == TensorProto.FLOAT  # softmax stays float32
    assert types['hw_f'] == TensorProto.FLOAT  # shape arithmetic stays float32
    assert types['m'] == TensorProto.FLOAT16
    assert fp32.graph.initializer[0].data_type == TensorProto.FLOAT  # the input model is untouched


def test_fp16_close_to_fp32_beyond_the_float16_range_of_h_times_w():
    fp32 = _graph_with_shape_arithmetic()
    fp16 = convert_to_fp16(fp32)
    image = np.random.default_rng(1).random((1, 3, 256, 256), dtype=np.float32)  # H*W = 65536 > 65504
    reference = run_session(ort_session(fp32.SerializeToString(), threads=1), {'image': image})['derained']
    got = run_session(ort_session(fp16.SerializeToString(), threads=1), {'image': image})['derained']
    assert got.dtype == np.float32
    error = np.abs(got - reference).max()
    assert np.isfinite(got).all() and 0 < error < 2e-2


def test_fp16_refuses_control_flow():
    branch = helper.make_graph([helper.make_node('Relu', ['x'], ['o'])], 'b', [],
                               [helper.make_tensor_value_info('o', TensorProto.FLOAT, None)])
    nodes = [helper.make_node('ReduceMax', ['x'], ['m'], keepdims=0),
             helper.make_node('Greater', ['m', 'half'], ['cond']),
             helper.make_node('If', ['cond'], ['y'], name='branch', then_branch=branch, else_branch=branch)]
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 4, 4])
    graph = helper.make_graph(nodes, 'g', [x],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(np.array(0.5, np.float32), 'half')])
    with pytest.raises(Fp16ConversionError, match='branch'):
        convert_to_fp16(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 19)]))
