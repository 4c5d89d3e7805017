"""What the TensorRT ONNX parser accepts, as data for the compatibility checker (torch-free).

Source: onnx/onnx-tensorrt ``docs/operators.md`` as published for **TensorRT 10.15** ("supports operators
in the inclusive range of opset 9 to opset 24"), read in 2026; release of individual ops within 10.x from
onnx/onnx-tensorrt ``docs/Changelog.md`` (10.1 DeformConv, 10.4 Blackman/Hamming/HannWindow, 10.5 STFT,
10.15 RMSNormalization/RotaryEmbedding/TensorScatter) and from shared/notes/tensorrt-onnx-dds.md §3
(Attention and Gelu: 10.14). The op names are typed in from that table; the per-op restrictions the table
states are enforced in :mod:`nitedr_ros.export.trt_compat`.
"""

from __future__ import annotations

TABLE_SOURCE = 'onnx/onnx-tensorrt docs/operators.md (TensorRT 10.15)'


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The opset range the parser imports (TensorRT 10.15).
MIN_OPSET = 9
MAX_OPSET = 24

# Ops marked "Y" in the table.
SUPPORTED_OPS: frozenset[str] = _names('''
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten
Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
GreaterOrEqual GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax
Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish
Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RMSNormalization RNN RoiAlign RotaryEmbedding Round STFT ScaledTanh Scan Scatter
ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign
SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter ThresholdedRelu Tile TopK Transpose Trilu
Unsqueeze Upsample Where Xor
''')

# Ops marked "N" in the table (anything in neither set is unknown to the parser as well).
UNSUPPORTED_OPS: frozenset[str] = _names('''
AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor CenterCropPad Col2Im Compress
ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear ImageDecoder MatMulInteger MaxRoiPool MaxUnpool
MelWeightMatrix Multinomial NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement
QLinearConv QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty SequenceErase
SequenceInsert SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence StringConcat
StringNormalizer StringSplit TfIdfVectorizer Unique
''')

# Supported ops that arrived during 10.x: older 10.x parsers (JetPack 6 ships TensorRT 10.3) reject them.
SUPPORTED_SINCE: dict[str, str] = {
    'DeformConv': '10.1',
    'BlackmanWindow': '10.4',
    'HammingWindow': '10.4',
    'HannWindow': '10.4',
    'STFT': '10.5',
    'Attention': '10.14',
    'Gelu': '10.14',
    'RMSNormalization': '10.15',
    'RotaryEmbedding': '10.15',
    'TensorScatter': '10.15',
}

# TopK: "`sorted` must be 1. `K` input must be less than 3840."
TOPK_MAX_K = 3839

# Resize restrictions stated in the table.
RESIZE_COORDINATE_MODES = frozenset(
    {'half_pixel', 'pytorch_half_pixel', 'tf_half_pixel_for_nn', 'asymmetric', 'align_corners'})
RESIZE_MODES = frozenset({'nearest', 'linear'})
RESIZE_NEAREST_MODES = frozenset({'floor', 'ceil', 'round_prefer_floor', 'round_prefer_ceil'})

# Ops whose listed inputs must be build-time constants (table: "`axes` must be an initializer",
# "must be resolvable to a constant", "must be a build-time constant"): op -> input indices.
CONSTANT_INPUTS: dict[str, tuple[int, ...]] = {
    **{op: (1,) for op in ('ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax',
                           'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'ReduceSumSquare',
                           'Squeeze', 'Unsqueeze', 'CumSum')},
    'OneHot': (1,),
    'Dropout': (2,),
}

# Ops with data-dependent output shapes: TensorRT needs an output allocator and they stall the hot path.
DATA_DEPENDENT_OPS = frozenset({'NonZero', 'Unique', 'NonMaxSuppression'})
