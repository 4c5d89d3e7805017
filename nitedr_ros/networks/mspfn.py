"""MSPFN (multi-scale progressive fusion network, CVPR 2020) as in the released M17N1 TensorFlow test graph.

``forward(image) -> derained``: RGB in [0, 1], H and W multiples of 8. Inside, the image becomes BGR in
[-1, 1] (the release's convention), the network predicts the rain layer and the output is
``input - rain`` mapped back to RGB [0, 1] and clamped. :meth:`MSPFN.forward_train` gives the unclamped
output and the rain layer.

Structure (scales 1, 1/2, 1/4; width 64 in the paper configuration):

* Input pyramid: the image and its 2x / 4x box-filter downscales (fixed average pooling).
* Per scale: 3x3 conv -> 64 + PReLU.
* Coarse fusion (residual memory): per scale 3x3 conv -> 32 + PReLU, a ConvLSTM step from the zero state
  (hidden 256 / 128 / 64 at scales 1 / 1/2 / 1/4; with c = h = 0 it reduces to c = sig(i) tanh(j),
  h = tanh(c) sig(o), and only the input half of its kernel is used; the hidden half is kept so the parameter
  shapes are those of the release), 3x3 conv -> 64 + PReLU, plus the scale's initial features. Coarser scales
  are added in through stride-2 transposed convs (1/4 -> 1/2 -> 1 chained, 1/2 -> 1).
* Fine fusion: 17 iterations; at each, for scales 1/4, 1/2, 1 in that order, a BCM: stride-2 conv + PReLU,
  N RCABs (N = 1 at every scale), concat with the stride-2 features, stride-2 transposed conv (128 -> 64) +
  PReLU, added to the scale's state. Before the 1/2 and full-scale BCMs, the coarser states are upsampled by
  transposed convs + PReLU and added to the BCM input (1/4 -> 1/2 -> 1 chained, 1/2 -> 1).
* Reconstruction: per scale concat(state, coarse-fusion output) -> 3x3 conv -> 64 + PReLU; 1/4 is upsampled
  and concatenated with 1/2, that upsampled to full scale and concatenated with scale 1 -> 3x3 conv -> 32 +
  PReLU -> 3x3 conv -> 3 = rain layer (no bias).

TensorFlow 'SAME' semantics: stride-2 convs pad bottom/right by 1 (exact for even sizes, which every scale
has when H, W are multiples of 8); stride-2 transposed convs (k 3) produce 2H + 1 rows and the last row and
column are cropped. Stride-1 layers (transposed convs in TF) are ordinary 3x3 convs here: same function
(flipped kernel), no bias, as in the release. PReLU slopes start at 0 as in TF.

Configurations:

* ``paper``: width 64, LSTM input 32 and hidden (256, 128, 64), 17 iterations, 1 RCAB per BCM, reduction 4,
  reconstruction 32: 15,823,424 params (the TF variable count of M17N1, 859 tensors). 3.85 TFLOPs at
  1280x720 as computed here; the release convolves the zero hidden state too (about 8.5 TFLOPs), which
  changes nothing in the result.
* ``realtime``: width 12, LSTM input 8 and hidden (12, 24, 24) without the unused hidden-state kernel half,
  4 iterations, reconstruction 12: 141,492 params, 52.5 GFLOPs at 1280x720 (1/73 of paper). Cut: width
  64 -> 12 (FLOPs scale with width^2), fine-fusion depth 17 -> 4 (each paper iteration costs 150 GFLOPs),
  and the ConvLSTM hidden widths (the full-resolution coarse fusion with hidden 256 costs 850 GFLOPs,
  22 %). All three scales, the coarse and fine fusion and every cross-scale link are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import build_from_configs

CONFIGS: dict[str, dict[str, Any]] = {
    'paper': {
        'channels': 64,
        'lstm_input': 32,
        'lstm_hidden': (256, 128, 64),
        'iterations': 17,
        'rcabs': (1, 1, 1),
        'reduction': 4,
        'recon_channels': 32,
        'lstm_state_weights': True,
    },
    'realtime': {
        'channels': 12,
        'lstm_input': 8,
        'lstm_hidden': (12, 24, 24),
        'iterations': 4,
        'rcabs': (1, 1, 1),
        'reduction': 4,
        'recon_channels': 12,
        'lstm_state_weights': False,
    },
}


def prelu(channels: int) -> nn.PReLU:
    """Per-channel PReLU with slopes starting at 0 (TensorFlow release)."""
    return nn.PReLU(channels, init=0.0)


class ConvPReLU(nn.Sequential):
    """3x3 conv (stride 1, no bias) + PReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), prelu(out_channels))


class DownPReLU(nn.Module):
    """3x3 stride-2 conv with TF 'SAME' padding for even sizes (pad bottom/right by 1), no bias, + PReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, bias=False)
        self.act = prelu(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(F.pad(x, (0, 1, 0, 1))))


class UpPReLU(nn.Module):
    """3x3 stride-2 transposed conv with TF 'SAME' output size 2H x 2W (crop the extra last row/column),
    no bias, + PReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, bias=False)
        self.act = prelu(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.deconv(x)[..., :-1, :-1])


class ZeroStateConvLSTM(nn.Module):
    """One ConvLSTM step from the zero state (gates i, j, f, o; 3x3 kernel over [input, hidden]).

    With zero state the hidden-state half of the kernel multiplies zeros and the forget gate multiplies a
    zero cell, so only the input half is convolved; the full kernel is kept for the release's shapes.
    """

    def __init__(self, in_channels: int, hidden: int, state_weights: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        kernel_in = in_channels + (hidden if state_weights else 0)
        self.weight = nn.Parameter(torch.empty(4 * hidden, kernel_in, 3, 3))
        self.bias = nn.Parameter(torch.zeros(4 * hidden))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = F.conv2d(x, self.weight[:, :self.in_channels], self.bias, padding=1)
        i, j, _, o = torch.chunk(gates, 4, dim=1)
        cell = torch.sigmoid(i) * torch.tanh(j)
        return torch.tanh(cell) * torch.sigmoid(o)


class ResidualMemory(nn.Module):
    """Coarse fusion at one scale: conv -> ConvLSTM step -> conv, plus the scale's initial features."""

    def __init__(self, channels: int, lstm_input: int, hidden: int, state_weights: bool = True) -> None:
        super().__init__()
        self.lstm_in = ConvPReLU(channels, lstm_input)
        self.lstm = ZeroStateConvLSTM(lstm_input, hidden, state_weights)
        self.lstm_out = ConvPReLU(hidden, channels)

    def forward(self, fused: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
        return self.lstm_out(self.lstm(self.lstm_in(fused))) + initial


class RCAB(nn.Module):
    """Residual channel-attention block: conv + PReLU, conv, GAP -> 1x1 + PReLU -> 1x1 + sigmoid, scale,
    add the input (convs with bias)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        squeezed = max(1, channels // reduction)
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), prelu(channels),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.attention = nn.Sequential(nn.Conv2d(channels, squeezed, 1), prelu(squeezed),
                                       nn.Conv2d(squeezed, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(x)
        return x + features * self.attention(features.mean(dim=(2, 3), keepdim=True))


class BCM(nn.Module):
    """Fine-fusion block at one scale: work at half resolution, return the update (same size as input)."""

    def __init__(self, channels: int, rcabs: int, reduction: int) -> None:
        super().__init__()
        self.down = DownPReLU(channels)
        self.rcabs = nn.Sequential(*(RCAB(channels, reduction) for _ in range(rcabs)))
        self.up = UpPReLU(2 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.down(x)
        return self.up(torch.cat([low, self.rcabs(low)], dim=1))


class FineFusionStep(nn.Module):
    """One fine-fusion iteration over the scales 1/4, 1/2, 1 with its cross-scale links."""

    def __init__(self, channels: int, rcabs: Sequence[int], reduction: int) -> None:
        super().__init__()
        self.bcm4 = BCM(channels, rcabs[0], reduction)
        self.bcm2 = BCM(channels, rcabs[1], reduction)
        self.bcm1 = BCM(channels, rcabs[2], reduction)
        self.up4to2 = UpPReLU(channels, channels)
        self.up4to1 = UpPReLU(channels, channels)
        self.up2to1 = UpPReLU(channels, channels)

    def forward(self, s4: torch.Tensor, s2: torch.Tensor, s1: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s4 = s4 + self.bcm4(s4)
        from4 = self.up4to2(s4)
        s2 = s2 + self.bcm2(s2 + from4)
        s1 = s1 + self.bcm1(s1 + self.up4to1(from4) + self.up2to1(s2))
        return s4, s2, s1


class MSPFN(nn.Module):
    """Multi-scale progressive fusion network: ``forward(image [N,3,H,W] RGB) -> derained``."""

    def __init__(self, channels: int = 64, lstm_input: int = 32, lstm_hidden: Sequence[int] = (256, 128, 64),
                 iterations: int = 17, rcabs: Sequence[int] = (1, 1, 1), reduction: int = 4,
                 recon_channels: int = 32, lstm_state_weights: bool = True) -> None:
        super().__init__()
        if len(lstm_hidden) != 3 or len(rcabs) != 3:
            raise ValueError('lstm_hidden and rcabs need one entry per scale (1, 1/2, 1/4 and 1/4, 1/2, 1)')
        c = channels
        self.initial1, self.initial2, self.initial4 = ConvPReLU(3, c), ConvPReLU(3, c), ConvPReLU(3, c)
        self.memory4 = ResidualMemory(c, lstm_input, lstm_hidden[2], lstm_state_weights)
        self.memory2 = ResidualMemory(c, lstm_input, lstm_hidden[1], lstm_state_weights)
        self.memory1 = ResidualMemory(c, lstm_input, lstm_hidden[0], lstm_state_weights)
        self.memory_up4to2 = UpPReLU(c, c)
        self.memory_up4to1 = UpPReLU(c, c)
        self.memory_up2to1 = UpPReLU(c, c)
        self.steps = nn.ModuleList(FineFusionStep(c, rcabs, reduction) for _ in range(iterations))
        self.recon4, self.recon2, self.recon1 = ConvPReLU(2 * c, c), ConvPReLU(2 * c, c), ConvPReLU(2 * c, c)
        self.recon_up4to2 = UpPReLU(c, c)
        self.recon_up2to1 = UpPReLU(2 * c, c)
        self.recon_merge = ConvPReLU(2 * c, recon_channels)
        self.rain_out = nn.Conv2d(recon_channels, 3, 3, padding=1, bias=False)

    def rain_layer(self, x: torch.Tensor) -> torch.Tensor:
        """The rain layer of a BGR image in [-1, 1] (same scale)."""
        f1 = self.initial1(x)
        f2 = self.initial2(F.avg_pool2d(x, 2))
        f4 = self.initial4(F.avg_pool2d(x, 4))
        m4 = self.memory4(f4, f4)
        up4to2 = self.memory_up4to2(m4)
        m2 = self.memory2(f2 + up4to2, f2)
        m1 = self.memory1(f1 + self.memory_up2to1(m2) + self.memory_up4to1(up4to2), f1)
        s4, s2, s1 = m4, m2, m1
        for step in self.steps:
            s4, s2, s1 = step(s4, s2, s1)
        r4 = self.recon4(torch.cat([s4, m4], dim=1))
        r2 = self.recon2(torch.cat([s2, m2], dim=1))
        r1 = self.recon1(torch.cat([s1, m1], dim=1))
        r21 = self.recon_up2to1(torch.cat([self.recon_up4to2(r4), r2], dim=1))
        return self.rain_out(self.recon_merge(torch.cat([r1, r21], dim=1)))

    @staticmethod
    def swap_rb(x: torch.Tensor) -> torch.Tensor:
        """RGB <-> BGR."""
        return torch.cat([x[:, 2:3], x[:, 1:2], x[:, 0:1]], dim=1)

    def forward_train(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``derained`` (RGB, not clamped, = image - rain) and ``rain`` (RGB, in [0, 1] units)."""
        x = self.swap_rb(image) * 2.0 - 1.0
        rain = self.rain_layer(x)
        derained = (x - rain + 1.0) * 0.5
        return {'derained': self.swap_rb(derained), 'rain': self.swap_rb(rain) * 0.5}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.forward_train(image)['derained'], 0.0, 1.0)


def build(config: str, **overrides: Any) -> MSPFN:
    """MSPFN in configuration ``paper`` or ``realtime``; keyword overrides replace config entries."""
    return build_from_configs(MSPFN, CONFIGS, config, overrides)
