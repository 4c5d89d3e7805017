"""What each network takes and gives: the contract between networks, ONNX files, engines and pipeline.

Torch-free on purpose: the runtime reads these specs without importing torch. Every network takes and
returns float32 NCHW tensors in [0, 1]; RGB images have 3 channels in R, G, B order, infrared has 1.
Tensor names below are the fixed ONNX input/output names. H and W must be multiples of ``multiple_of``;
the pipeline pads (reflect) to that multiple and crops the result back.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

CONFIGS: tuple[str, ...] = ('paper', 'realtime')


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output tensor: ``[1, channels, H, W]`` float32 in [0, 1]."""

    name: str
    channels: int
    description: str


@dataclass(frozen=True)
class NetworkSpec:
    """A network's identity, role, I/O contract and where its torch implementation lives.

    ``role`` is the pipeline role it can fill (``derain``, ``fusion``, ``stereo``; :mod:`nitedr_ros.modes`);
    ``output_layer`` names the residual network's last layer (zeroed for identity initialisation in
    training), None for a network without one.
    """

    name: str
    title: str
    role: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    multiple_of: int
    module: str  # torch implementation, imported only by offline tools
    published_params: int | None  # paper configuration, where code was published
    third_party_params: int | None = None  # paper configuration, a third party's figure (no code published)
    output_layer: str | None = None

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)


# Third-party figure for StereoIRR (no published code): APANet README, Table II.
STEREOIRR_THIRD_PARTY_PARAMS = 39_690_000

_RGB_IN = TensorSpec('image', 3, 'rainy RGB')
_DERAINED = TensorSpec('derained', 3, 'derained RGB')

NETWORKS: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        NetworkSpec('cleannet', 'NiteDR CleanNet (AgMoE + TSSA + mixed-scale FFN U-Net)', 'derain',
                    (_RGB_IN,), (_DERAINED,), 8, 'nitedr_ros.networks.cleannet', 33_655_424,
                    output_layer='output'),
        NetworkSpec('fusionnet', 'NiteDR FusionNet (dense Y/IR fusion + cascaded refinement)', 'fusion',
                    (TensorSpec('visible', 3, 'derained RGB'), TensorSpec('infrared', 1, 'thermal IR')),
                    (TensorSpec('fused', 3, 'fused RGB'),), 1, 'nitedr_ros.networks.fusionnet',
                    659_217 + 837),
        NetworkSpec('stereoirr', 'StereoIRR (shared features + Dual-view Mutual Attention)', 'stereo',
                    (TensorSpec('left', 3, 'rainy left RGB'), TensorSpec('right', 3, 'rainy right RGB')),
                    (TensorSpec('left_derained', 3, 'derained left RGB'),
                     TensorSpec('right_derained', 3, 'derained right RGB')),
                    8, 'nitedr_ros.networks.stereoirr', None, STEREOIRR_THIRD_PARTY_PARAMS,
                    output_layer='residual'),
        NetworkSpec('rainmer', 'Rainmer (DRSformer backbone + detail/degradation/illumination prompts)',
                    'derain', (_RGB_IN,), (_DERAINED,), 8, 'nitedr_ros.networks.rainmer', 35_825_344,
                    output_layer='output'),
        NetworkSpec('mspfn', 'MSPFN (multi-scale progressive fusion, M17N1)', 'derain',
                    (_RGB_IN,), (_DERAINED,), 8, 'nitedr_ros.networks.mspfn', 15_823_424,
                    output_layer='rain_out'),
    )
}


# The uint8-I/O variant of a network (``<name>.u8.onnx``; :mod:`nitedr_ros.networks.io_wrapper`): visible
# inputs and outputs ``<name>_u8`` [1, H, W, 3] uint8, thermal ``infrared_u16`` [1, H, W, 2] uint8 (the
# little-endian bytes of the 16-bit counts: TensorRT has no uint16) with its ``infrared_range`` [2] float32
# (low, high), and ``channel_order`` [3] int64 last.
U8_SUFFIX = '_u8'
THERMAL_INPUT = 'infrared_u16'
THERMAL_RANGE = 'infrared_range'
CHANNEL_ORDER = 'channel_order'


def u8_input_names(spec: NetworkSpec) -> tuple[str, ...]:
    """Input names of the uint8 variant of a network, in forward order."""
    names: list[str] = []
    for tensor in spec.inputs:
        names += [THERMAL_INPUT, THERMAL_RANGE] if tensor.channels == 1 else [tensor.name + U8_SUFFIX]
    return (*names, CHANNEL_ORDER)


def u8_output_names(spec: NetworkSpec) -> tuple[str, ...]:
    """Output names of the uint8 variant of a network."""
    return tuple(t.name + U8_SUFFIX for t in spec.outputs)


def networks_for_role(role: str) -> tuple[str, ...]:
    """Names of the networks that can fill a pipeline role."""
    return tuple(name for name, spec in NETWORKS.items() if spec.role == role)


def get_spec(name: str) -> NetworkSpec:
    """The spec of a network, or a ConfigError listing the known names."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ConfigError(f'unknown network {name!r}; choose one of {", ".join(NETWORKS)}') from None


def check_config(config: str) -> str:
    """Validate a configuration name."""
    if config not in CONFIGS:
        raise ConfigError(f'unknown configuration {config!r}; choose one of {", ".join(CONFIGS)}')
    return config


def default_model_filename(network: str, config: str, fp16: bool = False) -> str:
    """Conventional file name of an exported model inside ``models/``."""
    get_spec(network)
    check_config(config)
    return f'{network}_{config}{".fp16" if fp16 else ""}.onnx'
