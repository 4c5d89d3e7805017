"""Tiny ONNX models with the contract's tensor names, written with ``onnx.helper`` (no torch).

For tests of everything that runs models (engines, pipeline, node core, transports) without the real
networks. Every model has dynamic H and W and carries the ``nitedr.*`` metadata of the contract.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..modelspec import NETWORKS

OPSET = 17


def _save(graph, path: str | os.PathLike[str], network: str, multiple_of: int | None = None) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)])
    model.ir_version = 8
    spec = NETWORKS.get(network)
    props = {'nitedr.network': network, 'nitedr.config': 'tiny', 'nitedr.precision': 'fp32',
             'nitedr.multiple_of': str(multiple_of or (spec.multiple_of if spec else 1))}
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def _tensor(name: str, channels: int):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, 'height', 'width'])


def _const(name: str, values: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, np.float32), name)


def identity_model(path: str | os.PathLike[str], network: str = 'cleannet', *,
                   multiple_of: int | None = None) -> Path:
    """Output ``i`` = input ``i`` (input 0 where there are fewer inputs), in the network's contract."""
    from onnx import helper

    spec = NETWORKS[network]
    nodes = []
    for index, out in enumerate(spec.outputs):
        source = spec.inputs[index if index < len(spec.inputs) else 0].name
        nodes.append(helper.make_node('Identity', [source], [out.name]))
    graph = helper.make_graph(nodes, f'{network}_identity',
                              [_tensor(t.name, t.channels) for t in spec.inputs],
                              [_tensor(t.name, t.channels) for t in spec.outputs])
    return _save(graph, path, network, multiple_of)


def channel_gain_model(path: str | os.PathLike[str], gains: tuple[float, float, float],
                       offset: float = 0.0, *, network: str = 'cleannet') -> Path:
    """``derained = image * gains[c] + offset`` (a single-input derainer; shows channel order and values)."""
    from onnx import helper

    spec = NETWORKS[network]
    gain = np.asarray(gains, np.float32).reshape(1, 3, 1, 1)
    nodes = [helper.make_node('Mul', [spec.inputs[0].name, 'gain'], ['scaled']),
             helper.make_node('Add', ['scaled', 'offset'], [spec.outputs[0].name])]
    graph = helper.make_graph(nodes, f'{network}_gain', [_tensor(spec.inputs[0].name, 3)],
                              [_tensor(spec.outputs[0].name, 3)],
                              initializer=[_const('gain', gain), _const('offset', np.full((1,), offset))])
    return _save(graph, path, network)


def blend_fusion_model(path: str | os.PathLike[str], weight: float = 0.5) -> Path:
    """``fused = (1 - weight) * visible + weight * infrared`` (infrared broadcast over RGB)."""
    from onnx import helper

    nodes = [helper.make_node('Mul', ['visible', 'keep'], ['a']),
             helper.make_node('Mul', ['infrared', 'weight'], ['b']),
             helper.make_node('Add', ['a', 'b'], ['fused'])]
    graph = helper.make_graph(nodes, 'fusionnet_blend', [_tensor('visible', 3), _tensor('infrared', 1)],
                              [_tensor('fused', 3)],
                              initializer=[_const('keep', np.full((1,), 1.0 - weight)),
                                           _const('weight', np.full((1,), weight))])
    return _save(graph, path, 'fusionnet')


def nonfinite_model(path: str | os.PathLike[str], value: float = float('nan'),
                    network: str = 'cleannet') -> Path:
    """A derainer whose output has ``value`` (NaN or Inf) in its first row and column."""
    from onnx import helper

    spec = NETWORKS[network]
    nodes = [helper.make_node('Pad', [spec.inputs[0].name, 'pads', 'value'], ['padded'], mode='constant'),
             helper.make_node('Slice', ['padded', 'starts', 'ends', 'axes'], [spec.outputs[0].name])]
    inits = [
        _const('value', np.asarray(value, np.float32)),
        # one leading row and column of `value`, then drop the last row and column: same shape as the input
        _int64('pads', [0, 0, 1, 1, 0, 0, 0, 0]),
        _int64('starts', [0, 0]), _int64('ends', [-1, -1]), _int64('axes', [2, 3]),
    ]
    graph = helper.make_graph(nodes, f'{network}_nonfinite', [_tensor(spec.inputs[0].name, 3)],
                              [_tensor(spec.outputs[0].name, 3)], initializer=inits)
    return _save(graph, path, network)


def _int64(name: str, values: list[int]):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(values, np.int64), name)
