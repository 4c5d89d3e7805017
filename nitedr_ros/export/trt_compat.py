"""TensorRT compatibility check of an ONNX file, without TensorRT: op support and the parser's known limits.

Every node is checked, including nodes inside local functions and control-flow subgraphs, against the op
table in :mod:`nitedr_ros.export.trt_ops` and the limits that bite deraining networks: TopK K < 3840 (K a
constant or bounded by the TopK axis length at the largest input checked), ScatterND without reduction,
GridSample on 4-D inputs only, DeformConv 1-D/2-D with symmetric pads at opset >= 19, no data-dependent
shapes (NonZero, Unique) on the hot path, constant ``axes`` inputs. Torch-free.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ConfigError
from . import trt_ops

# Largest input the bounds are evaluated at (dynamic H and W are fixed to this for shape inference).
DEFAULT_MAX_HW = (2160, 3840)
_MAX_FOLD_ELEMENTS = 4096
_DEFAULT_DOMAINS = ('', 'ai.onnx')


class CompatIssue(NamedTuple):
    """One finding: the node (name, or a position label), its op and what is wrong."""

    node: str
    op_type: str
    reason: str


@dataclass
class CompatReport:
    """Result of :func:`check_onnx`; ``ok`` when there is no problem (warnings do not count)."""

    path: str
    opset: int | None
    problems: list[CompatIssue] = field(default_factory=list)
    warnings: list[CompatIssue] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    max_hw: tuple[int, int] = DEFAULT_MAX_HW

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            'path': self.path, 'ok': self.ok, 'opset': self.opset, 'table': trt_ops.TABLE_SOURCE,
            'max_hw': list(self.max_hw),
            'problems': [issue._asdict() for issue in self.problems],
            'warnings': [issue._asdict() for issue in self.warnings],
            'op_counts': dict(sorted(self.op_counts.items())),
        }

    def format(self) -> str:
        """Human-readable summary, one line per finding."""
        verdict = 'OK' if self.ok else f'NOT OK ({len(self.problems)} problem(s))'
        lines = [f'{self.path}: {verdict} for the TensorRT ONNX parser '
                 f'[{trt_ops.TABLE_SOURCE}; opset {self.opset}; '
                 f'{sum(self.op_counts.values())} nodes, {len(self.op_counts)} op types]']
        lines += [f'  problem: node {i.node!r} ({i.op_type}): {i.reason}' for i in self.problems]
        lines += [f'  warning: node {i.node!r} ({i.op_type}): {i.reason}' for i in self.warnings]
        return '\n'.join(lines)


def check_onnx(model: str | os.PathLike[str] | onnx.ModelProto, *,
               max_hw: tuple[int, int] = DEFAULT_MAX_HW) -> CompatReport:
    """Check an ONNX file (or loaded model) against the TensorRT ONNX parser's op table and limits.

    Dynamic input dimensions are fixed to batch 1 and ``max_hw`` (height, width) to derive bounds.
    """
    if isinstance(model, onnx.ModelProto):
        proto, label = model, '<model>'
    else:
        proto, label = _load(Path(model)), str(model)
    opset = next((o.version for o in proto.opset_import if o.domain in _DEFAULT_DOMAINS), None)
    report = CompatReport(path=label, opset=opset, max_hw=tuple(max_hw))
    if opset is None:
        report.problems.append(CompatIssue('<model>', 'opset', 'no default-domain (ai.onnx) opset import'))
    elif not trt_ops.MIN_OPSET <= opset <= trt_ops.MAX_OPSET:
        report.problems.append(CompatIssue(
            '<model>', 'opset', f'opset {opset} is outside the parser range '
                                f'{trt_ops.MIN_OPSET}..{trt_ops.MAX_OPSET}'))
    inferred = _infer_fixed_shapes(proto, max_hw, report)
    checker = _Checker(inferred, opset or 0, report, max_hw)
    checker.run()
    return report


def _load(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ConfigError(f'ONNX file not found: {path}')
    try:
        return onnx.load(str(path))
    except Exception as exc:  # any parse failure means "not an ONNX model"
        raise ConfigError(f'{path} is not a readable ONNX model: {exc}') from exc


def _infer_fixed_shapes(proto: onnx.ModelProto, max_hw: tuple[int, int],
                        report: CompatReport) -> onnx.ModelProto:
    """A copy with dynamic NCHW input dims fixed to (1, ., H, W), shapes and shape values inferred."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    initializer_names = {init.name for init in fixed.graph.initializer}
    for value in fixed.graph.input:
        if value.name in initializer_names or not value.type.HasField('tensor_type'):
            continue
        dims = value.type.tensor_type.shape.dim
        for axis, dim in enumerate(dims):
            if dim.HasField('dim_value'):
                continue
            if axis == 0:
                dim.dim_value = 1
            elif len(dims) == 4 and axis in (2, 3):
                dim.dim_value = max_hw[axis - 2]
    try:
        return onnx.shape_inference.infer_shapes(fixed, strict_mode=False, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - checks still run, with fewer shapes known
        report.warnings.append(CompatIssue('<model>', 'shape-inference',
                                           f'shape inference failed, bounds not derivable: {exc}'))
        return fixed


def _attr(node: onnx.NodeProto, name: str, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Scope:
    """Values and shapes visible in one graph (or function body), with the enclosing graph as parent."""

    def __init__(self, nodes, initializers, value_infos, parent: _Scope | None = None) -> None:
        self.parent = parent
        self.producers = {out: node for node in nodes for out in node.output if out}
        self.initializers = {init.name: init for init in initializers}
        self.shapes: dict[str, tuple[int | None, ...] | None] = {}
        for info in value_infos:
            if info.type.HasField('tensor_type') and info.type.tensor_type.HasField('shape'):
                self.shapes[info.name] = tuple(
                    d.dim_value if d.HasField('dim_value') else None for d in info.type.tensor_type.shape.dim)
        for init in initializers:
            self.shapes[init.name] = tuple(init.dims)
        self._memo: dict[tuple[str, bool], np.ndarray | None] = {}

    def shape(self, name: str) -> tuple[int | None, ...] | None:
        if name in self.shapes:
            return self.shapes[name]
        return self.parent.shape(name) if self.parent else None

    def value(self, name: str, use_shapes: bool) -> np.ndarray | None:
        """The value of a small tensor computable at build time, else None.

        ``use_shapes``: also use inferred shapes of run-time tensors (valid for the fixed input size).
        """
        if not name:
            return None
        key = (name, use_shapes)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # guards against cycles
        try:
            result = self._compute(name, use_shapes)
        except Exception:  # noqa: BLE001 - anything not foldable is "unknown"
            result = None
        self._memo[key] = result
        return result

    def _compute(self, name: str, use_shapes: bool) -> np.ndarray | None:
        if name in self.initializers:
            init = self.initializers[name]
            if int(np.prod(init.dims)) > _MAX_FOLD_ELEMENTS:
                return None
            return numpy_helper.to_array(init)
        node = self.producers.get(name)
        if node is None:
            return self.parent.value(name, use_shapes) if self.parent else None
        if node.domain not in _DEFAULT_DOMAINS:
            return None
        inputs = [self.value(i, use_shapes) if i else None for i in node.input]
        return _fold(node, inputs, self, use_shapes)


def _fold(node: onnx.NodeProto, inputs: list[np.ndarray | None], scope: _Scope,
          use_shapes: bool) -> np.ndarray | None:
    """Evaluate one shape-arithmetic node on known inputs (first output only)."""
    op = node.op_type
    if op == 'Constant':
        for attribute in node.attribute:
            if attribute.name == 'value':
                return numpy_helper.to_array(attribute.t)
            if attribute.name in ('value_int', 'value_float', 'value_ints', 'value_floats'):
                return np.array(onnx.helper.get_attribute_value(attribute))
        return None
    if op in ('Shape', 'Size'):
        if not use_shapes:
            return None
        shape = scope.shape(node.input[0])
        if shape is None or any(d is None for d in shape):
            return None
        if op == 'Size':
            return np.array(int(np.prod(shape)), dtype=np.int64)
        start, end = _attr(node, 'start', 0), _attr(node, 'end', None)
        return np.array(shape[start:end], dtype=np.int64)
    if any(v is None for v, n in zip(inputs, node.input) if n) or not inputs or inputs[0] is None:
        return None
    a = inputs[0]
    if op == 'Identity':
        return a
    if op == 'Cast':
        return a.astype(onnx.helper.tensor_dtype_to_np_dtype(_attr(node, 'to')))
    if op == 'Gather':
        return np.take(a, inputs[1], axis=_attr(node, 'axis', 0))
    if op == 'Concat':
        return np.concatenate([np.atleast_1d(v) for v in inputs], axis=_attr(node, 'axis', 0))
    if op == 'Unsqueeze':
        axes = inputs[1] if len(inputs) > 1 else _attr(node, 'axes')
        return np.expand_dims(a, tuple(int(x) for x in np.atleast_1d(axes)))
    if op == 'Squeeze':
        axes = inputs[1] if len(inputs) > 1 else _attr(node, 'axes')
        return np.squeeze(a, axis=None if axes is None else tuple(int(x) for x in np.atleast_1d(axes)))
    if op == 'Reshape':
        return a.reshape([int(x) for x in inputs[1]])
    if op == 'Slice':
        starts, ends = inputs[1], inputs[2]
        axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
        steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
        index = [slice(None)] * a.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            index[int(ax)] = slice(int(s), int(e), int(st))
        return a[tuple(index)]
    binary = {'Add': np.add, 'Sub': np.subtract, 'Mul': np.multiply, 'Max': np.maximum, 'Min': np.minimum}
    if op in binary and len(inputs) == 2:
        return binary[op](a, inputs[1]).astype(np.result_type(a, inputs[1]))
    if op == 'Div':
        if np.issubdtype(a.dtype, np.integer):
            return np.trunc(a / inputs[1]).astype(a.dtype)
        return a / inputs[1]
    unary = {'Floor': np.floor, 'Ceil': np.ceil, 'Neg': np.negative, 'Abs': np.abs, 'Sqrt': np.sqrt,
             'Round': np.round}
    if op in unary:
        return unary[op](a)
    return None


class _Checker:
    def __init__(self, model: onnx.ModelProto, opset: int, report: CompatReport,
                 max_hw: tuple[int, int]) -> None:
        self.model = model
        self.opset = opset
        self.report = report
        self.max_hw = max_hw
        self.functions = {(f.domain, f.name): f for f in model.functions}
        self.counts: Counter[str] = Counter()

    def run(self) -> None:
        graph = self.model.graph
        top = _Scope(graph.node, graph.initializer,
                     [*graph.input, *graph.output, *graph.value_info], parent=None)
        self._check_graph(graph.node, top, prefix='', graph_outputs={o.name for o in graph.output})
        called = {(node.domain, node.op_type) for node in self._walk_calls(graph.node)}
        for key, function in self.functions.items():
            if key not in called:
                continue  # never called: not part of the network
            scope = _Scope(function.node, [], [], parent=None)
            self._check_graph(function.node, scope, prefix=f'{function.domain}::{function.name}/',
                              graph_outputs=set(function.output))
        self.report.op_counts = dict(self.counts)

    def _walk_calls(self, nodes, seen: frozenset = frozenset()) -> Iterator[onnx.NodeProto]:
        """Calls of local functions anywhere (graph, subgraphs, other functions)."""
        for node in nodes:
            key = (node.domain, node.op_type)
            if key in self.functions:
                yield node
                if key not in seen:
                    yield from self._walk_calls(self.functions[key].node, seen | {key})
            for attribute in node.attribute:
                for sub in _subgraphs(attribute):
                    yield from self._walk_calls(sub.node, seen)

    def _check_graph(self, nodes, scope: _Scope, prefix: str, graph_outputs: set[str]) -> None:
        consumed = {name for node in nodes for name in node.input} | graph_outputs
        for index, node in enumerate(nodes):
            label = prefix + (node.name or f'<{node.op_type} #{index}>')
            if (node.domain, node.op_type) in self.functions:
                continue  # the function body is checked on its own
            self.counts[node.op_type if node.domain in _DEFAULT_DOMAINS
                        else f'{node.domain}::{node.op_type}'] += 1
            self._check_node(node, label, scope, consumed)
            for attribute in node.attribute:
                for number, sub in enumerate(_subgraphs(attribute)):
                    sub_scope = _Scope(sub.node, sub.initializer,
                                       [*sub.input, *sub.output, *sub.value_info], parent=scope)
                    self._check_graph(sub.node, sub_scope, f'{label}/{attribute.name}[{number}]/',
                                      {o.name for o in sub.output})

    def _problem(self, label: str, node: onnx.NodeProto, reason: str) -> None:
        self.report.problems.append(CompatIssue(label, node.op_type, reason))

    def _warning(self, label: str, node: onnx.NodeProto, reason: str) -> None:
        self.report.warnings.append(CompatIssue(label, node.op_type, reason))

    def _check_node(self, node: onnx.NodeProto, label: str, scope: _Scope, consumed: set[str]) -> None:
        op = node.op_type
        if node.domain not in _DEFAULT_DOMAINS:
            self._problem(label, node, f'custom op of domain {node.domain!r} (not a local function): '
                                       f'TensorRT parses it only through a registered plugin')
            return
        if op in trt_ops.DATA_DEPENDENT_OPS and op in trt_ops.SUPPORTED_OPS:
            self._problem(label, node, 'data-dependent output shape (needs an output allocator and a '
                                       'device sync): keep it off the hot path')
        elif op in trt_ops.UNSUPPORTED_OPS:
            self._problem(label, node, 'not supported by the TensorRT ONNX parser')
            return
        elif op not in trt_ops.SUPPORTED_OPS:
            self._problem(label, node, 'not in the TensorRT ONNX parser op table')
            return
        if op in trt_ops.SUPPORTED_SINCE:
            since = trt_ops.SUPPORTED_SINCE[op]
            jetpack = ' (JetPack 6 ships TensorRT 10.3)' if _version(since) > (10, 3) else ''
            self._warning(label, node, f'needs TensorRT >= {since}{jetpack}')
        for position in trt_ops.CONSTANT_INPUTS.get(op, ()):
            name = node.input[position] if len(node.input) > position else ''
            if name and scope.value(name, use_shapes=True) is None:
                self._problem(label, node, f'input {position} ({name!r}) must be a build-time constant')
        limit_check = getattr(self, f'_limits_{op.lower()}', None)
        if limit_check is not None:
            limit_check(node, label, scope, consumed)

    # Per-op limits from the table (method name: _limits_<optype in lower case>).

    def _limits_topk(self, node, label, scope: _Scope, consumed) -> None:
        if _attr(node, 'sorted', 1) != 1:
            self._problem(label, node, 'sorted=0 is not supported (sorted must be 1)')
        k_name = node.input[1] if len(node.input) > 1 else ''
        h, w = self.max_hw
        constant = scope.value(k_name, use_shapes=False)
        if constant is not None:
            k = int(np.max(constant))
            if k > trt_ops.TOPK_MAX_K:
                self._problem(label, node, f'K = {k}; TensorRT needs K < {trt_ops.TOPK_MAX_K + 1}')
            return
        at_size = scope.value(k_name, use_shapes=True)
        if at_size is not None:
            k = int(np.max(at_size))
            if k > trt_ops.TOPK_MAX_K:
                self._problem(label, node, f'K depends on the input size and reaches {k} at a {h}x{w} '
                                           f'input; TensorRT needs K < {trt_ops.TOPK_MAX_K + 1}')
            return
        shape = scope.shape(node.input[0])
        axis = _attr(node, 'axis', -1)
        length = shape[axis] if shape is not None and -len(shape) <= axis < len(shape) else None
        if length is None:
            self._problem(label, node, 'K is computed at run time and no bound could be derived '
                                       f'(TopK axis length unknown); TensorRT needs K < '
                                       f'{trt_ops.TOPK_MAX_K + 1}')
        elif length > trt_ops.TOPK_MAX_K:
            self._problem(label, node, f'K is computed at run time and the TopK axis has {length} '
                                       f'elements at a {h}x{w} input: K < {trt_ops.TOPK_MAX_K + 1} '
                                       f'is not guaranteed')

    def _limits_scatternd(self, node, label, scope, consumed) -> None:
        reduction = _text(_attr(node, 'reduction', 'none'))
        if reduction != 'none':
            self._problem(label, node, f"reduction={reduction!r} is not supported (only 'none')")

    def _limits_scatterelements(self, node, label, scope, consumed) -> None:
        reduction = _text(_attr(node, 'reduction', 'none'))
        if reduction != 'none':
            self._warning(label, node, f'reduction={reduction!r} imports as the ScatterElements plugin '
                                       '(call init_libnvinfer_plugins before loading the engine)')

    def _limits_gridsample(self, node, label, scope: _Scope, consumed) -> None:
        shape = scope.shape(node.input[0])
        if shape is None:
            self._warning(label, node, 'input rank unknown; TensorRT takes 4-D GridSample input only')
        elif len(shape) != 4:
            self._problem(label, node, f'input is {len(shape)}-D; TensorRT takes 4-D GridSample input only')

    def _limits_deformconv(self, node, label, scope: _Scope, consumed) -> None:
        if self.opset < 19:
            self._problem(label, node, f'DeformConv needs opset >= 19 (model has {self.opset})')
        shape = scope.shape(node.input[0])
        if shape is not None and len(shape) not in (3, 4):
            self._problem(label, node, f'{len(shape) - 2}-D deformable convolution; TensorRT supports '
                                       '1-D and 2-D only')
        pads = list(_attr(node, 'pads', []) or [])
        half = len(pads) // 2
        if pads and pads[:half] != pads[half:]:
            self._problem(label, node, f'asymmetric pads {pads}: begin and end pads must be equal per axis')

    def _limits_resize(self, node, label, scope, consumed) -> None:
        coordinate = _text(_attr(node, 'coordinate_transformation_mode', 'half_pixel'))
        mode = _text(_attr(node, 'mode', 'nearest'))
        nearest = _text(_attr(node, 'nearest_mode', 'round_prefer_floor'))
        if coordinate not in trt_ops.RESIZE_COORDINATE_MODES:
            self._problem(label, node, f'coordinate_transformation_mode {coordinate!r} is not supported')
        if mode == 'cubic':
            self._warning(label, node, "mode 'cubic' is not in the parser's documented modes "
                                       '(the importer maps it to kCUBIC)')
        elif mode not in trt_ops.RESIZE_MODES:
            self._problem(label, node, f'mode {mode!r} is not supported')
        if mode == 'nearest' and nearest not in trt_ops.RESIZE_NEAREST_MODES:
            self._problem(label, node, f'nearest_mode {nearest!r} is not supported')
        if _attr(node, 'antialias', 0):
            self._problem(label, node, 'antialiasing is not supported')
        policy = _text(_attr(node, 'keep_aspect_ratio_policy', 'stretch'))
        if policy != 'stretch':
            self._problem(label, node, f'keep_aspect_ratio_policy {policy!r} is not supported')

    def _limits_layernormalization(self, node, label, scope, consumed) -> None:
        if any(out in consumed for out in node.output[1:] if out):
            self._problem(label, node, 'only the first output Y is supported (Mean/InvStdDev are used)')

    def _pool_limits(self, node, label) -> None:
        kernel = _attr(node, 'kernel_shape', [])
        if kernel and len(kernel) not in (2, 3):
            self._problem(label, node, f'{len(kernel)}-D pooling; TensorRT supports 2-D and 3-D only')
        dilations = _attr(node, 'dilations', []) or []
        if any(d != 1 for d in dilations):
            self._problem(label, node, f'dilations {list(dilations)} are not supported (must be all ones)')

    def _limits_averagepool(self, node, label, scope, consumed) -> None:
        self._pool_limits(node, label)

    def _limits_maxpool(self, node, label, scope, consumed) -> None:
        self._pool_limits(node, label)
        if len(node.output) > 1 and node.output[1] in consumed:
            self._problem(label, node, 'the Indices output is not supported')

    def _limits_dropout(self, node, label, scope: _Scope, consumed) -> None:
        if len(node.input) > 2 and node.input[2]:
            training = scope.value(node.input[2], use_shapes=False)
            if training is not None and bool(np.any(training)):
                self._problem(label, node, 'training_mode must be False')


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split('.'))


def _subgraphs(attribute: onnx.AttributeProto) -> list[onnx.GraphProto]:
    if attribute.type == onnx.AttributeProto.GRAPH:
        return [attribute.g]
    if attribute.type == onnx.AttributeProto.GRAPHS:
        return list(attribute.graphs)
    return []
