"""FP16 variant of an fp32 ONNX graph for strongly typed TensorRT builds (torch-free).

TensorRT 11 removed the FP16 builder flag: precision comes from the graph's types. The variant keeps
float32 inputs and outputs (casts at the edges), stores the weights of fp16 nodes in float16 and computes
the image path in float16, with these exceptions that stay float32:

* numerically sensitive ops (``FP32_OPS``): normalisation statistics (reductions, powers, square roots),
  softmax, exp/log, TopK, Resize, min/max clamps;
* element-wise ops whose image-path inputs all come from float32 ops (so a normalisation chain such as
  ``ReduceMean -> Add eps -> Sqrt`` stays float32, and so does pre-processing right after the inputs) --
  except the heavy ops (``FP16_HEAVY_OPS``: convolutions, matrix products), which always run in float16;
* shape arithmetic: float tensors that do not depend on the input images (sizes, scales) stay float32,
  so products such as H*W cannot overflow float16.

Casts are inserted where a tensor changes precision; constants get a converted copy instead.
Written for this project rather than using onnxconverter-common, whose converter produced graphs that
ONNX Runtime rejects on these networks (mixed float/float16 operands after shared-weight Identity nodes).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.inliner
from onnx import TensorProto, helper, numpy_helper

from ..errors import NitedrError

# Ops kept in float32 (inputs cast up, outputs stay float32 until an fp16 consumer casts them down).
FP32_OPS: frozenset[str] = frozenset({
    'LayerNormalization', 'GroupNormalization', 'InstanceNormalization', 'RMSNormalization',
    'BatchNormalization', 'LpNormalization', 'MeanVarianceNormalization',
    'ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
    'ReduceLogSumExp', 'ReduceProd', 'Pow', 'Sqrt', 'Reciprocal',
    'Softmax', 'LogSoftmax', 'Exp', 'Log', 'Erf',
    'TopK', 'Resize', 'Upsample', 'CumSum', 'Range', 'Min', 'Max',
})

# Ops that always run in float16 (the bulk of the arithmetic).
FP16_HEAVY_OPS: frozenset[str] = frozenset({
    'Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'Einsum', 'DeformConv', 'Attention',
})

# Ops reading only their input's shape: they take the tensor in whatever precision it has.
_SHAPE_ONLY_OPS = frozenset({'Shape', 'Size'})
# Inputs that must stay float32 whatever precision the node runs in (op -> input positions).
_FP32_INPUTS: dict[str, frozenset[int]] = {'Resize': frozenset({1, 2}), 'Upsample': frozenset({1})}
_FP16_MAX = 65504.0
FP32, FP16 = TensorProto.FLOAT, TensorProto.FLOAT16


class Fp16ConversionError(NitedrError):
    """A graph the fp16 converter cannot handle (control flow, unknown tensor types)."""


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The fp16 variant of ``model`` (not modified): float32 I/O, float16 image path, see module doc."""
    source = onnx.ModelProto()
    source.CopyFrom(model)
    if source.functions:
        source = onnx.inliner.inline_local_functions(source)
    graph = source.graph
    for node in graph.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise Fp16ConversionError(f'fp16 variant: node {node.name or node.op_type} has a control-flow '
                                      'subgraph, which the converter does not handle')
    types = _tensor_types(source)
    plan = _plan(graph, types)
    _rewrite(graph, types, plan)
    del graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(source, check_type=True, strict_mode=True)
    except Exception as exc:  # surfaced with context
        raise Fp16ConversionError(f'fp16 variant failed type checking: {exc}') from exc
    return inferred


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor (inputs, initializers, node outputs) from ONNX type inference."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    graph = inferred.graph
    types: dict[str, int] = {}
    for info in (*graph.input, *graph.output, *graph.value_info):
        if info.type.HasField('tensor_type') and info.type.tensor_type.elem_type:
            types[info.name] = info.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    for node in graph.node:
        if node.op_type == 'Constant':
            for attribute in node.attribute:
                if attribute.name == 'value':
                    types[node.output[0]] = attribute.t.data_type
    for node in graph.node:
        for name in node.output:
            if name and name not in types:
                raise Fp16ConversionError(f'fp16 variant: type of {name!r} (output of {node.op_type} '
                                          f'{node.name!r}) could not be inferred')
    return types


class _Plan:
    """Per node: the precision it runs in; per tensor: the precision it is produced in."""

    def __init__(self) -> None:
        self.node_precision: dict[int, int] = {}  # node index -> FP16 / FP32 (float-computing nodes)
        self.produced: dict[str, int] = {}  # float tensor -> FP16 / FP32


def _plan(graph: onnx.GraphProto, types: dict[str, int]) -> _Plan:
    plan = _Plan()
    image_path: set[str] = {v.name for v in graph.input}  # tensors that depend on input values
    for value in graph.input:
        if types.get(value.name) == FP32:
            plan.produced[value.name] = FP32
    for init in graph.initializer:
        if init.data_type == FP32:
            plan.produced[init.name] = FP32
    for index, node in enumerate(graph.node):
        on_path = node.op_type not in _SHAPE_ONLY_OPS and any(i in image_path for i in node.input if i)
        if on_path:
            image_path.update(o for o in node.output if o)
        float_outputs = [o for o in node.output if o and types.get(o) == FP32]
        if not on_path:
            for name in float_outputs:
                plan.produced[name] = FP32  # constants and shape arithmetic: unchanged
            continue
        path_float_inputs = [i for i in node.input if i in image_path and types.get(i) == FP32]
        if node.op_type in FP32_OPS:
            precision = FP32
        elif node.op_type in FP16_HEAVY_OPS or node.op_type in _SHAPE_ONLY_OPS:
            precision = FP16
        elif path_float_inputs and all(plan.produced.get(i) == FP32 for i in path_float_inputs):
            precision = FP32
        else:
            precision = FP16
        plan.node_precision[index] = precision
        for name in float_outputs:
            plan.produced[name] = precision
    return plan


def _rewrite(graph: onnx.GraphProto, types: dict[str, int], plan: _Plan) -> None:
    """Insert casts / converted constants, retype fp16 nodes, keep float32 graph outputs."""
    initializers = {init.name: init for init in graph.initializer}
    constant_nodes = {n.output[0]: n for n in graph.node if n.op_type == 'Constant' and n.output}
    identity_of = {n.output[0]: n.input[0] for n in graph.node
                   if n.op_type == 'Identity' and n.input[0] in initializers}
    used_names = {n for node in graph.node for n in (*node.input, *node.output)} | set(initializers)
    converted: dict[tuple[str, int], str] = {}
    new_initializers: list[TensorProto] = []
    new_nodes: list[onnx.NodeProto] = []

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in used_names:
            k += 1
            name = f'{base}_{k}'
        used_names.add(name)
        return name

    def constant_array(name: str) -> np.ndarray | None:
        source = identity_of.get(name, name)
        if source in initializers:
            return numpy_helper.to_array(initializers[source])
        node = constant_nodes.get(name)
        if node is not None:
            for attribute in node.attribute:
                if attribute.name == 'value':
                    return numpy_helper.to_array(attribute.t)
        return None

    def as_type(name: str, want: int) -> str:
        """``name`` in precision ``want`` (a converted constant or a Cast output)."""
        have = plan.produced.get(name)
        if have is None or have == want:
            return name
        key = (name, want)
        if key not in converted:
            suffix = 'fp16' if want == FP16 else 'fp32'
            value = constant_array(name)
            if value is not None:
                dtype = np.float16 if want == FP16 else np.float32
                if want == FP16:
                    value = np.clip(value, -_FP16_MAX, _FP16_MAX)
                new = fresh(f'{name}__{suffix}')
                new_initializers.append(numpy_helper.from_array(value.astype(dtype), new))
            else:
                new = fresh(f'{name}__{suffix}')
                new_nodes.append(helper.make_node('Cast', [name], [new], to=want,
                                                  name=fresh(f'cast_{suffix}/{name}')))
            converted[key] = new
        return converted[key]

    # Graph outputs produced in fp16 are renamed inside the graph and cast to float32 under their name.
    renamed_outputs = {o.name: fresh(f'{o.name}__fp16') for o in graph.output
                       if plan.produced.get(o.name) == FP16}
    for node in graph.node:
        for field in (node.input, node.output):
            for position, name in enumerate(field):
                if name in renamed_outputs:
                    field[position] = renamed_outputs[name]
    for internal in renamed_outputs.values():
        plan.produced[internal] = FP16
    for index, node in enumerate(graph.node):
        precision = plan.node_precision.get(index)
        if precision is not None:
            for position, name in enumerate(node.input):
                if not name or plan.produced.get(name) is None or node.op_type in _SHAPE_ONLY_OPS:
                    continue
                want = FP32 if position in _FP32_INPUTS.get(node.op_type, ()) else precision
                node.input[position] = as_type(name, want)
            if precision == FP16:
                _retype_attributes(node)
        new_nodes.append(node)
    for name, internal in renamed_outputs.items():
        new_nodes.append(helper.make_node('Cast', [internal], [name], to=FP32,
                                          name=fresh(f'cast_out/{name}')))
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_initializers)
    _drop_unused_initializers(graph)


def _retype_attributes(node: onnx.NodeProto) -> None:
    """Float32-producing attributes of a node that now runs in float16."""
    type_attribute = {'Cast': 'to', 'EyeLike': 'dtype', 'RandomNormalLike': 'dtype',
                      'RandomUniformLike': 'dtype'}.get(node.op_type)
    for attribute in node.attribute:
        if attribute.name == type_attribute and attribute.i == FP32:
            attribute.i = FP16


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    removed = {init.name for init in graph.initializer if init.name not in used}
    keep = [init for init in graph.initializer if init.name not in removed]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    inputs = [v for v in graph.input if v.name not in removed]
    del graph.input[:]
    graph.input.extend(inputs)
