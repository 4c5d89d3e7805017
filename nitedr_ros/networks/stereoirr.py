"""StereoIRR (stereo image rain removal with Dual-view Mutual Attention), written from the paper description.

No code or weights were published (arXiv 2211.10104; the repository holds a README and a figure). What is
known: feature extraction with weights shared between the views, a "long-range and cross-view interaction"
(LCI) part made of a chain of BasicBlocks per view with a Dual-view Mutual Attention (DMA) between consecutive
stages plus long skip connections, and residual prediction with ``output = input + residual`` per view.
Everything below that is more specific is our design:

* Both views run through the same modules (batched together), so the network is symmetric: swapping the
  inputs swaps the outputs.
* Feature extraction: 3x3 conv, then per level residual BasicBlocks (conv-ReLU-conv + skip) and a stride-2
  3x3 conv that doubles the width, down to the LCI level (1/4 in ``paper``, 1/8 in ``realtime``).
* LCI at the lowest level: ``stages`` groups of BasicBlocks; between consecutive groups a DMA exchanges
  information between the views; long skips: every stage's output is kept, they are concatenated and merged
  by a 1x1 conv, and the LCI input is added back.
* DMA (:class:`DualViewMutualAttention`): rectified stereo puts corresponding points on the same image row,
  so attention runs along epipolar lines: for each row, every left pixel attends over all pixels of the same
  row in the right view (multi-head W x W softmax attention, queries from one view, keys/values from the
  other, pre-LayerNorm, shared projections) and vice versa; the result is projected and added residually.
  Rows never mix, shapes depend only on H and W (MatMul/Softmax/LayerNormalization in ONNX). Attention runs at
  the LCI level because the W x W maps grow with W^2 H (at 1/4 of 1280x720: 320 x 320 per row).
* Residual prediction: per level a 2x2 stride-2 transposed conv, the encoder features of that level added
  (long skip), BasicBlocks, and a final 3x3 conv to 3 channels; ``output = clamp(input + residual, 0, 1)``
  (:meth:`StereoIRR.forward_train` returns the unclamped sum).

Configurations (H, W multiples of 8):

* ``paper``: widths (48, 96, 192), 2 BasicBlocks per encoder/decoder level, LCI at 1/4 with 8 stages x
  7 BasicBlocks (192 channels) and 7 DMAs (4 heads): 39,648,963 params, sized toward the third-party figure
  of 39.69 M (APANet table; -0.1 %). 10.4 TFLOPs per 1280x720 stereo pair (the third-party 9.26 GFLOPs
  has no stated input size: at our cost per pixel it corresponds to a ~29x29 pair, so it is not comparable).
* ``realtime``: widths (16, 32, 48, 64), LCI at 1/8 with 3 stages x 1 BasicBlock and 2 DMAs (2 heads), one
  BasicBlock at 1/4 in the encoder and in the decoder: 418,275 params, 53 GFLOPs per 1280x720 pair (1/196
  of paper). Cut: the LCI moved from 1/4 to 1/8 resolution (4x fewer pixels), its width 192 -> 64, its
  depth 56 -> 3 BasicBlocks (8 -> 3 stages), and no BasicBlocks at full and half resolution (the
  encoder/decoder keep one at 1/4); the DMA and the long skips are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from . import build_from_configs

CONFIGS: dict[str, dict[str, Any]] = {
    'paper': {
        'channels': (48, 96, 192),
        'encoder_blocks': (2, 2),
        'decoder_blocks': (2, 2),
        'stages': 8,
        'blocks_per_stage': 7,
        'heads': 4,
    },
    'realtime': {
        'channels': (16, 32, 48, 64),
        'encoder_blocks': (0, 0, 1),
        'decoder_blocks': (0, 0, 1),
        'stages': 3,
        'blocks_per_stage': 1,
        'heads': 2,
    },
}


class BasicBlock(nn.Module):
    """Residual block: 3x3 conv -> ReLU -> 3x3 conv, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def basic_blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(BasicBlock(channels) for _ in range(count)))


class DualViewMutualAttention(nn.Module):
    """Row-wise (epipolar) cross-view attention in both directions with shared weights.

    :meth:`attend` returns what each view reads from the other (before the residual add):
    ``left_from_right[b, :, y, x]`` depends only on row ``y`` of both views. :meth:`forward` adds it.
    """

    def __init__(self, channels: int, heads: int = 1) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f'{channels} channels cannot be split into {heads} heads')
        self.heads = heads
        self.head_dim = channels // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.norm = nn.LayerNorm(channels)
        self.query = nn.Linear(channels, channels)
        self.key = nn.Linear(channels, channels)
        self.value = nn.Linear(channels, channels)
        self.proj = nn.Linear(channels, channels)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """[B, H, W, C] -> [B, H, heads, W, C/heads]."""
        batch, height, width, _ = x.shape
        return x.reshape(batch, height, width, self.heads, self.head_dim).transpose(2, 3)

    def _read(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(torch.matmul(query, key.transpose(-1, -2)) * self.scale, dim=-1)
        return self.proj(torch.matmul(weights, value).transpose(2, 3).flatten(3))

    def attend(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NCHW features of both views -> (left_from_right, right_from_left), NCHW."""
        nl = self.norm(left.permute(0, 2, 3, 1))
        nr = self.norm(right.permute(0, 2, 3, 1))
        ql, kl, vl = self._split(self.query(nl)), self._split(self.key(nl)), self._split(self.value(nl))
        qr, kr, vr = self._split(self.query(nr)), self._split(self.key(nr)), self._split(self.value(nr))
        left_from_right = self._read(ql, kr, vr).permute(0, 3, 1, 2)
        right_from_left = self._read(qr, kl, vl).permute(0, 3, 1, 2)
        return left_from_right, right_from_left

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        left_from_right, right_from_left = self.attend(left, right)
        return left + left_from_right, right + right_from_left


class LongRangeCrossViewInteraction(nn.Module):
    """LCI: stages of BasicBlocks per view, a DMA between consecutive stages, long skip connections.

    Input and output are both views stacked on the batch axis (left first).
    """

    def __init__(self, channels: int, stages: int, blocks_per_stage: int, heads: int) -> None:
        super().__init__()
        if stages < 2:
            raise ValueError('the LCI needs at least 2 stages (a DMA sits between consecutive stages)')
        self.stages = nn.ModuleList(basic_blocks(channels, blocks_per_stage) for _ in range(stages))
        self.attention = nn.ModuleList(DualViewMutualAttention(channels, heads) for _ in range(stages - 1))
        self.merge = nn.Conv2d(stages * channels, channels, 1)

    def forward(self, both: torch.Tensor) -> torch.Tensor:
        x = both
        outputs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            outputs.append(x)
            if index < len(self.attention):
                left, right = torch.chunk(x, 2, dim=0)
                x = torch.cat(self.attention[index](left, right), dim=0)
        return both + self.merge(torch.cat(outputs, dim=1))


class StereoIRR(nn.Module):
    """Stereo deraining: ``forward(left, right) -> (left_derained, right_derained)``, all RGB [0, 1]."""

    def __init__(self, channels: Sequence[int] = (48, 96, 192), encoder_blocks: Sequence[int] = (2, 2),
                 decoder_blocks: Sequence[int] = (2, 2), stages: int = 8, blocks_per_stage: int = 7,
                 heads: int = 4) -> None:
        super().__init__()
        levels = len(channels)
        if not 1 <= levels <= 4:
            raise ValueError('channels must list 1 to 4 levels (at most 3 halvings for multiples of 8)')
        if len(encoder_blocks) != levels - 1 or len(decoder_blocks) != levels - 1:
            raise ValueError('encoder_blocks and decoder_blocks need one entry per level above the LCI')
        self.embed = nn.Conv2d(3, channels[0], 3, padding=1)
        self.encoder = nn.ModuleList(basic_blocks(channels[i], encoder_blocks[i]) for i in range(levels - 1))
        self.down = nn.ModuleList(nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1)
                                  for i in range(levels - 1))
        self.lci = LongRangeCrossViewInteraction(channels[-1], stages, blocks_per_stage, heads)
        self.up = nn.ModuleList(nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2)
                                for i in range(levels - 1))
        self.decoder = nn.ModuleList(basic_blocks(channels[i], decoder_blocks[i]) for i in range(levels - 1))
        self.residual = nn.Conv2d(channels[0], 3, 3, padding=1)

    def residuals(self, both: torch.Tensor) -> torch.Tensor:
        """Residuals of both views stacked on the batch axis (left first)."""
        x = self.embed(both)
        skips = []
        for encode, down in zip(self.encoder, self.down):
            x = encode(x)
            skips.append(x)
            x = down(x)
        x = self.lci(x)
        for level in reversed(range(len(self.up))):
            x = self.decoder[level](self.up[level](x) + skips[level])
        return self.residual(x)

    def forward_train(self, left: torch.Tensor, right: torch.Tensor) -> dict[str, torch.Tensor]:
        """``left``/``right``: input + residual (not clamped); ``left_residual``/``right_residual``."""
        both = torch.cat([left, right], dim=0)
        left_residual, right_residual = torch.chunk(self.residuals(both), 2, dim=0)
        return {'left': left + left_residual, 'right': right + right_residual,
                'left_residual': left_residual, 'right_residual': right_residual}

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.forward_train(left, right)
        return torch.clamp(out['left'], 0.0, 1.0), torch.clamp(out['right'], 0.0, 1.0)


def build(config: str, **overrides: Any) -> StereoIRR:
    """StereoIRR in configuration ``paper`` or ``realtime``; keyword overrides replace config entries."""
    return build_from_configs(StereoIRR, CONFIGS, config, overrides)
