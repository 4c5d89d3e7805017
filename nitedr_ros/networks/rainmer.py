"""Rainmer: the DRSformer-style CleanNet backbone guided by rain "knowledge" prompts.

Input ``image`` [1, 3, H, W] RGB in [0, 1] (H, W multiples of 8); output ``derained`` in [0, 1]. The
query image that drives the global prompts (128x128 in ``paper``) is computed inside the graph
(bilinear resize, half-pixel centres, no antialias: what ``cv2.resize`` bilinear does), so the ONNX
file has one input.

Additions to the backbone (:class:`~nitedr_ros.networks.blocks.TransformerUNet`):

* ``encoder_q`` (:class:`QueryEncoder`): conv3x3 3 -> dim, an AgMoE and the "RainAtoms" -- a chromatic
  (illumination) and a degradation branch, each conv3x3 -> prompt_dim + LeakyReLU + a residual block
  with squeeze-excitation, global-average-pooled and L2-normalised: two unit prompt vectors per image.
  The degradation prompt is the one trained against degradation and detail negatives.
* ``cross_fuse`` (:class:`LocalKnowledgeFusion`, the spatial-channel interaction module): the query
  encoder's conv + AgMoE re-run on the full image give a location map that gates the encoder-level-0
  features spatially (sigmoid(mean-map x features)) and by channel (pool -> 1x1 -> sigmoid).
* every decoder block is a :class:`PromptTransformerBlock`: after TSSA, a :class:`PromptInjection`
  per prompt (per-pixel gate sigmoid(1x1(GELU(1x1 x))), then SiLU(1x1_{P->C}(gate * prompt))), the two
  blended with ``alpha = (1 + <normalize(chr_z), z_chromatic>) / 2`` and added to the attention output.

Departures from the published code (parameter count unchanged, 35,825,344 for ``paper``): the TSSA
top-k branches all come from the same logits (the published code applies them cumulatively, which
makes the result depend on how a backend breaks ties among zeros); the prompt projection uses
1x1(gate * p) = gate * (W p) + b, computing W p once per image instead of per pixel.

Training API: :meth:`Rainmer.query_prompts` returns the query prompts (:class:`RainPrompts`) of a batch;
the momentum key encoder is training-only and lives in :class:`RainmerMomentumKeys` (``encoder_k``,
``key_prompts``, ``momentum_update``), so the exported/inference module never contains it.

``realtime`` (1280x720 at camera rate: 56.0 GFLOPs, 0.49 M parameters, 1/129 of ``paper``'s 7.2 TFLOPs)
keeps every component -- query encoder with AgMoE and both RainAtoms, cross_fuse, prompt injection in
every decoder block, TSSA with four top-k branches, mixed-scale FFN -- with CleanNet ``realtime``'s
backbone cuts (width 16, head width 16, encoder 1/1/1/1 blocks (latent 1 instead of 2, to pay for the
prompts), decoder 0/1/1, FFN expansion 1.0, 1x1 resampling convs, 2-step AgMoEs on 4x pooled features)
and: refinement AgMoE on 8x pooled features; prompt width 128 -> 32; cross_fuse convs 3x3 -> 1x1;
the location map's AgMoE on 4x pooled features like the backbone's; query image 128x128 -> 64x64 (the
prompts are global averages; at 128x128 the query path cost 8x the backbone on 64x64 training patches).
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import build_from_configs
from .blocks import (
    AttentionGuidedMoE,
    ChannelLayerNorm,
    MixedScaleFeedForward,
    TopSelectionAttention,
    TransformerUNet,
)

CONFIGS: dict[str, dict[str, Any]] = {
    'paper': dict(dim=48, num_blocks=(4, 6, 6, 8), decoder_blocks=(4, 6, 6), heads=(1, 2, 4, 8),
                  ffn_expansion=2.66, moe_steps=4, moe_scale=1, moe_gate_hidden=64,
                  prompt_dim=128, query_size=128, fuse_kernel=3),
    'realtime': dict(dim=16, num_blocks=(1, 1, 1, 1), decoder_blocks=(0, 1, 1), heads=(1, 2, 4, 8),
                     ffn_expansion=1.0, moe_steps=2, moe_scale=4, refinement_moe_scale=8, moe_gate_hidden=32,
                     resample_kernel=1, prompt_dim=32, query_size=64, fuse_kernel=1),
}


class RainPrompts(NamedTuple):
    """Unit-norm global prompt vectors, each [B, prompt_dim]."""

    chromatic: torch.Tensor
    degradation: torch.Tensor


class SqueezeExcitation(nn.Module):
    """Global pool -> Linear (C -> C/8) -> ReLU -> Linear -> sigmoid channel scale (no biases)."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(),
                                nn.Linear(hidden, channels, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.mean(dim=(2, 3))))[:, :, None, None]


class RainAtomBranch(nn.Module):
    """conv3x3 -> P + LeakyReLU(0.1), residual block (conv, LeakyReLU, conv, SE), pool, L2-normalise."""

    def __init__(self, dim: int, prompt_dim: int) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(dim, prompt_dim, 3, padding=1), nn.LeakyReLU(0.1))
        self.residual = nn.Sequential(
            nn.Conv2d(prompt_dim, prompt_dim, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(prompt_dim, prompt_dim, 3, padding=1), SqueezeExcitation(prompt_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = x + self.residual(x)
        return F.normalize(x.mean(dim=(2, 3)), dim=1, eps=1e-6)


class RainAtoms(nn.Module):
    """The chromatic (illumination) and degradation prompt branches."""

    def __init__(self, dim: int, prompt_dim: int) -> None:
        super().__init__()
        self.chromatic_enc = RainAtomBranch(dim, prompt_dim)
        self.degra_enc = RainAtomBranch(dim, prompt_dim)

    def forward(self, x: torch.Tensor) -> RainPrompts:
        return RainPrompts(self.chromatic_enc(x), self.degra_enc(x))


class QueryEncoder(nn.Module):
    """conv3x3 3 -> dim (bias) + AgMoE + RainAtoms: image -> :class:`RainPrompts`."""

    def __init__(self, dim: int, prompt_dim: int, moe_steps: int, moe_gate_hidden: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, dim, 3, padding=1)
        self.moe = AttentionGuidedMoE(dim, moe_steps, 1, moe_gate_hidden)
        self.atoms = RainAtoms(dim, prompt_dim)

    def features(self, image: torch.Tensor, moe_scale: int = 1) -> torch.Tensor:
        """conv + AgMoE features of ``image`` (at its own resolution; AgMoE on ``moe_scale``-pooled copy)."""
        return self.moe(self.conv(image), scale=moe_scale)

    def forward(self, query_image: torch.Tensor) -> RainPrompts:
        return self.atoms(self.features(query_image))


class LocalKnowledgeFusion(nn.Module):
    """Spatial-channel interaction of encoder-level-0 features with the full-resolution location map."""

    def __init__(self, dim: int, kernel: int = 3) -> None:
        super().__init__()
        self.location_conv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2)
        self.mix_conv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2)
        self.channel_fc = nn.Conv2d(dim, dim, 1)
        self.project_out = nn.Conv2d(dim, dim, 1)

    def forward(self, features: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        loc = self.location_conv(location)
        spatial_gate = torch.sigmoid(loc.mean(dim=1, keepdim=True) * features)
        channel_gate = torch.sigmoid(self.channel_fc(loc.mean(dim=(2, 3), keepdim=True)))
        mixed = self.mix_conv(features * spatial_gate)
        return features + self.project_out(mixed * channel_gate)


class PromptInjection(nn.Module):
    """Per-pixel gate from features, then SiLU(1x1_{P -> C}(gate * prompt)) computed as gate * (W p) + b."""

    def __init__(self, dim: int, prompt_dim: int) -> None:
        super().__init__()
        self.classifier = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU(), nn.Conv2d(dim, 1, 1))
        self.trans = nn.Conv2d(prompt_dim, dim, 1)

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.classifier(x))                                  # [B, 1, H, W]
        projected = F.conv2d(prompt[:, :, None, None], self.trans.weight)          # [B, C, 1, 1]
        return F.silu(gate * projected + self.trans.bias[None, :, None, None])


class PromptAttention(nn.Module):
    """TSSA plus the two prompt injections blended by the chromatic similarity ``alpha``."""

    def __init__(self, dim: int, heads: int, prompt_dim: int) -> None:
        super().__init__()
        self.attn = TopSelectionAttention(dim, heads)
        self.chr_z = nn.Parameter(torch.randn(prompt_dim))
        self.chr_prompt = PromptInjection(dim, prompt_dim)
        self.degra_prompt = PromptInjection(dim, prompt_dim)

    def forward(self, x: torch.Tensor, prompts: RainPrompts) -> torch.Tensor:
        similarity = (F.normalize(self.chr_z, dim=0, eps=1e-6) * prompts.chromatic).sum(dim=1)
        alpha = ((1.0 + similarity) * 0.5)[:, None, None, None]                   # [B, 1, 1, 1]
        out = self.attn(x)
        guidance = alpha * self.chr_prompt(out, prompts.chromatic)
        guidance = guidance + (1.0 - alpha) * self.degra_prompt(out, prompts.degradation)
        return out + guidance


class PromptTransformerBlock(nn.Module):
    """Decoder block: x + PromptAttention(LN(x), prompts), then x + FFN(LN(x))."""

    def __init__(self, dim: int, heads: int, ffn_expansion: float, prompt_dim: int = 128) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = PromptAttention(dim, heads, prompt_dim)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = MixedScaleFeedForward(dim, ffn_expansion)

    def forward(self, x: torch.Tensor, prompts: RainPrompts) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), prompts)
        return x + self.ffn(self.norm2(x))


class Rainmer(TransformerUNet):
    """Rainmer inference network; ``forward(image) -> derained``.

    ``prompt_dim`` -- width of the prompt vectors; ``query_size`` -- side of the square query image;
    ``fuse_kernel`` -- kernel of cross_fuse's convs; other keywords as in :class:`TransformerUNet`.
    """

    def __init__(self, *, prompt_dim: int = 128, query_size: int = 128, fuse_kernel: int = 3,
                 **backbone: Any) -> None:
        if 'decoder_block' in backbone:
            raise TypeError('Rainmer sets its own decoder_block')
        super().__init__(decoder_block=partial(PromptTransformerBlock, prompt_dim=prompt_dim), **backbone)
        dim = self.patch_embed.proj.out_channels
        self.query_size = int(query_size)
        self.location_moe_scale = self.encoder_level0.scale
        self.encoder_q = QueryEncoder(dim, prompt_dim, len(self.encoder_level0.steps),
                                      self.encoder_level0.gate.fc[0].out_features)
        self.cross_fuse = LocalKnowledgeFusion(dim, fuse_kernel)

    def query_image(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` resized to query_size x query_size (bilinear, half-pixel centres, no antialias)."""
        return F.interpolate(image, size=(self.query_size, self.query_size), mode='bilinear',
                             align_corners=False, antialias=False)

    def query_prompts(self, image: torch.Tensor) -> RainPrompts:
        """Unit-norm (chromatic, degradation) query prompts [B, prompt_dim] of an image batch (any size)."""
        return self.encoder_q(self.query_image(image))

    def context(self, image: torch.Tensor) -> RainPrompts:
        return self.query_prompts(image)

    def fuse_level0(self, features: torch.Tensor, image: torch.Tensor, context: object) -> torch.Tensor:
        location = self.encoder_q.features(image, self.location_moe_scale)
        return self.cross_fuse(features, location)

    def run_decoder(self, blocks: nn.ModuleList, x: torch.Tensor, context: object) -> torch.Tensor:
        for block in blocks:
            x = block(x, context)
        return x


class RainmerMomentumKeys(nn.Module):
    """Training wrapper: a Rainmer plus its momentum key encoder ``encoder_k`` (MoCo style).

    ``forward(image)`` derains with ``model``; ``query_prompts(image)`` gives the query prompts (with
    gradient); ``key_prompts(image)`` gives key prompts of positives/negatives from ``encoder_k``
    (no gradient); call ``momentum_update()`` after each optimiser step
    (``k <- m k + (1 - m) q``, m = 0.999). Save/export ``model`` (the inference network) only.
    """

    def __init__(self, model: Rainmer, momentum: float = 0.999) -> None:
        super().__init__()
        self.model = model
        self.momentum = float(momentum)
        self.encoder_k = copy.deepcopy(model.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image)

    def query_prompts(self, image: torch.Tensor) -> RainPrompts:
        return self.model.query_prompts(image)

    @torch.no_grad()
    def key_prompts(self, image: torch.Tensor) -> RainPrompts:
        return self.encoder_k(self.model.query_image(image))

    @torch.no_grad()
    def momentum_update(self) -> None:
        for pk, pq in zip(self.encoder_k.parameters(), self.model.encoder_q.parameters(), strict=True):
            pk.mul_(self.momentum).add_(pq.detach(), alpha=1.0 - self.momentum)
        for bk, bq in zip(self.encoder_k.buffers(), self.model.encoder_q.buffers(), strict=True):
            bk.copy_(bq)


def build(config: str, **overrides: Any) -> Rainmer:
    """Rainmer (inference network) in configuration ``paper`` or ``realtime``, with keyword overrides."""
    return build_from_configs(Rainmer, CONFIGS, config, overrides)
