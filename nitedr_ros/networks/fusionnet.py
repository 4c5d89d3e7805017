"""NiteDR stage 2: dense visible/infrared luminance fusion plus the cascaded (SCI-style) refinement unit.

Inference (``forward(visible, infrared) -> fused``, all [0, 1], full resolution, any H x W):

1. ``visible`` (the derained RGB) -> full-range BT.601 YCbCr (:mod:`.color`); Y and the infrared frame are
   mapped to [-1, 1] and a DenseNet (conv -> dense layers -> conv head -> tanh) predicts a **luminance
   residual**: fused Y = clamp(visible Y + 0.5 x residual, 0, 1). The head's last convolution starts at zero,
   so an untrained network passes the visible image through unchanged (the first baseline a fusion must
   beat), and training adds what the thermal frame has that the visible one lacks.
2. Fused Y + the visible chroma -> RGB with the exact inverse of the same conversion, clamped to [0, 1]: the
   colour (CbCr) is the derained image's, as in NiteDR.
3. Refinement (test-time part of the self-calibrated illumination unit, :class:`IlluminationBalance`):
   input = fused RGB and the infrared frame as a grey YCbCr triple ``[IR, 0.5, 0.5]`` (6 channels; the
   published code fed the 3 YCrCb channels of a 3-channel IR image, ours has 1 channel, so its chroma is the
   neutral value); illumination = clamp(sigmoid branch + fused RGB, 1e-4, 1); SCI's output fused /
   illumination, **gated**: output = fused + g (fused / illumination - fused), g = tanh(``refine_gate``),
   starting at 0. Ungated, the division brightens a night image towards white (illumination ~ the image
   itself), which is what the first shipped model did; the gate lets training use the refinement only as far
   as it helps the fusion objective. The gate is our one parameter beyond the paper's.

Training (:meth:`FusionNet.forward_train`) also returns the per-image information weights of the two sources
from :class:`InformationMeasure`. The paper weights its intensity/gradient loss terms by an information
measure of each source (VGG16 feature-gradient energy -> softmax); the published code computes those weights
but never uses them, and no VGG16 weights are available offline. Our measure needs no pretrained weights:
the multi-scale gradient energy of each source's luminance, compared through a softmax of its logarithm with
a temperature (temperature 2: weights proportional to the RMS gradient). The training-time calibration of
the cascade (:class:`SelfCalibration`, 5,619 params) is a separate module so the exported network and the
parameter count stay those of the test-time model.

Configurations:

* ``paper``: DenseNet 2 -> 44, 5 dense layers (growth 44, 264 channels), head 264 -> 128 -> 64 -> 32 -> 1, all
  3x3, LeakyReLU(0.2): 659,217 params; refinement 6 -> 6 -> 3 with one BatchNorm: 837 params.
  About 1.2 TFLOPs at 1280x720.
* ``realtime``: stem 16, 3 dense layers of growth 8 (40 channels), a 1x1 reduction to 16 and a 3x3 output
  conv (6,313 params); the refinement unit is unchanged (7,151 params in all, with the gate). 13.1
  GFLOPs at 1280x720 (1/93 of paper). Cut: dense depth 5 -> 3 layers, growth 44 -> 8, and the 3x3 head
  over 264/128/64 channels (60 % of the paper FLOPs) replaced by a 1x1 reduction; receptive field
  21 -> 11 px. Everything stays at full resolution, so ``multiple_of`` stays 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import build_from_configs
from .color import CHROMA_NEUTRAL, rgb_to_ycbcr, ycbcr_to_rgb

CONFIGS: dict[str, dict[str, Any]] = {
    'paper': {
        'stem_channels': 44,
        'growth': 44,
        'dense_layers': 5,
        'head_channels': (128, 64, 32),
        'head_kernels': (3, 3, 3),
        'refine_layers': 1,
    },
    'realtime': {
        'stem_channels': 16,
        'growth': 8,
        'dense_layers': 3,
        'head_channels': (16,),
        'head_kernels': (1,),
        'refine_layers': 1,
    },
}

ILLUMINATION_FLOOR = 1e-4
RESIDUAL_SCALE = 0.5  # the largest change of the visible luminance the fusion can make


class ConvLeaky(nn.Sequential):
    """Convolution (same padding, bias) + LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
                         nn.LeakyReLU(0.2))


class DenseFusion(nn.Module):
    """DenseNet fusing two single-channel images in [-1, 1] into one in [-1, 1] (tanh)."""

    def __init__(self, stem_channels: int, growth: int, dense_layers: int,
                 head_channels: Sequence[int], head_kernels: Sequence[int]) -> None:
        super().__init__()
        if len(head_channels) != len(head_kernels):
            raise ValueError('head_channels and head_kernels must have the same length')
        self.stem = ConvLeaky(2, stem_channels)
        self.dense = nn.ModuleList(
            ConvLeaky(stem_channels + i * growth, growth) for i in range(dense_layers))
        head: list[nn.Module] = []
        channels = stem_channels + dense_layers * growth
        for out_channels, kernel in zip(head_channels, head_kernels):
            head.append(ConvLeaky(channels, out_channels, kernel))
            channels = out_channels
        output = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(output.weight)  # residual 0 at the start: the fused image is the visible one
        nn.init.zeros_(output.bias)
        head.append(output)
        self.head = nn.Sequential(*head)

    def forward(self, visible_y: torch.Tensor, infrared_y: torch.Tensor) -> torch.Tensor:
        features = self.stem(torch.cat([visible_y, infrared_y], dim=1))
        for layer in self.dense:
            features = torch.cat([features, layer(features)], dim=1)
        return torch.tanh(self.head(features))


class IlluminationBalance(nn.Module):
    """Test-time refinement (SCI-style illumination estimate): 6 -> 6 -> 3 channels, one BatchNorm.

    ``forward(x)`` takes 6 channels whose first 3 are the image to refine and returns the illumination
    ``clamp(sigmoid(branch(x)) + x[:, :3], 1e-4, 1)``. The residual conv block is one module applied
    ``layers`` times (weights shared), so the parameter count does not depend on ``layers``.
    """

    def __init__(self, channels: int = 6, layers: int = 1) -> None:
        super().__init__()
        self.layers = layers
        self.in_conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
                                   nn.ReLU())
        self.out_conv = nn.Sequential(nn.Conv2d(channels, 3, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.in_conv(x)
        for _ in range(self.layers):
            features = features + self.block(features)
        return torch.clamp(self.out_conv(features) + x[:, :3], ILLUMINATION_FLOOR, 1.0)


class SelfCalibration(nn.Module):
    """Training-only calibration of the cascade (SCI-style): maps a stage's reflectance to the next stage's
    input offset ``r - g(r)``. Conv(3 -> 16) + BN + ReLU, a shared pair of Conv + BN + ReLU blocks applied
    ``layers`` times as residuals, Conv(16 -> 3) + sigmoid: 5,619 params for 16 channels.
    """

    def __init__(self, channels: int = 16, layers: int = 3) -> None:
        super().__init__()
        self.layers = layers
        self.in_conv = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels),
                                     nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.out_conv = nn.Sequential(nn.Conv2d(channels, 3, 3, padding=1), nn.Sigmoid())

    def forward(self, reflectance: torch.Tensor) -> torch.Tensor:
        features = self.in_conv(reflectance)
        for _ in range(self.layers):
            features = features + self.block(features)
        return reflectance - self.out_conv(features)


def gradient_energy(image: torch.Tensor, scales: Sequence[int] = (1, 2, 4)) -> torch.Tensor:
    """Mean squared finite-difference gradient of ``image`` ([N, C, H, W]), averaged over a box-filter
    pyramid (``scales`` are downscale factors); one value per image, shape ``[N]``. Coarse scales measure
    object-level structure, scale 1 fine detail (and noise)."""
    total = image.new_zeros(image.shape[0])
    used = 0
    for scale in scales:
        x = image if scale == 1 else F.avg_pool2d(image, scale)
        if x.shape[-1] < 2 or x.shape[-2] < 2:
            continue
        dx = x[..., :, 1:] - x[..., :, :-1]
        dy = x[..., 1:, :] - x[..., :-1, :]
        total = total + dx.square().mean(dim=(1, 2, 3)) + dy.square().mean(dim=(1, 2, 3))
        used += 1
    if used == 0:
        raise ValueError(f'image {tuple(image.shape)} is too small for an information measure')
    return total / used


class InformationMeasure(nn.Module):
    """Per-image information weights of the visible and infrared sources (no pretrained weights needed).

    ``forward(visible_y, infrared_y) -> (w_visible, w_infrared)``, each ``[N]``, summing to 1:
    ``softmax([log(E_vis + eps), log(E_ir + eps)] / temperature)`` with ``E`` the multi-scale gradient energy
    (:func:`gradient_energy`). Temperature 1 gives weights proportional to the energy, 2 (default)
    proportional to the RMS gradient; larger values pull the weights toward 0.5. The source with more
    structure gets the larger weight (a flat image gets almost none). Computed without gradient: the
    weights are constants of the loss, as in the paper.
    """

    def __init__(self, scales: Sequence[int] = (1, 2, 4), temperature: float = 2.0,
                 eps: float = 1e-8) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError('temperature must be positive')
        self.scales = tuple(scales)
        self.temperature = temperature
        self.eps = eps

    @torch.no_grad()
    def forward(self, visible_y: torch.Tensor, infrared_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        energies = torch.stack([gradient_energy(visible_y.float(), self.scales),
                                gradient_energy(infrared_y.float(), self.scales)], dim=1)
        weights = torch.softmax(torch.log(energies + self.eps) / self.temperature, dim=1)
        return weights[:, 0], weights[:, 1]


class FusionNet(nn.Module):
    """NiteDR fusion network: ``forward(visible [N,3,H,W], infrared [N,1,H,W]) -> fused [N,3,H,W]``."""

    def __init__(self, stem_channels: int = 44, growth: int = 44, dense_layers: int = 5,
                 head_channels: Sequence[int] = (128, 64, 32), head_kernels: Sequence[int] = (3, 3, 3),
                 refine_layers: int = 1, info_scales: Sequence[int] = (1, 2, 4),
                 info_temperature: float = 2.0) -> None:
        super().__init__()
        self.fusion = DenseFusion(stem_channels, growth, dense_layers, head_channels, head_kernels)
        self.refine = IlluminationBalance(6, refine_layers)
        self.refine_gate = nn.Parameter(torch.zeros(1))  # g = tanh(gate): 0 = no refinement
        self.information = InformationMeasure(info_scales, info_temperature)

    def fuse(self, visible: torch.Tensor, infrared: torch.Tensor) -> dict[str, torch.Tensor]:
        """Luminance fusion and chroma recombination: ``visible_y``, ``fused_y`` ([0, 1]) and ``fused`` RGB
        (clamped to [0, 1])."""
        ycbcr = rgb_to_ycbcr(visible)
        visible_y = ycbcr[:, :1]
        residual = self.fusion(visible_y * 2.0 - 1.0, infrared * 2.0 - 1.0)
        fused_y = torch.clamp(visible_y + RESIDUAL_SCALE * residual, 0.0, 1.0)
        fused = torch.clamp(ycbcr_to_rgb(torch.cat([fused_y, ycbcr[:, 1:]], dim=1)), 0.0, 1.0)
        return {'visible_y': visible_y, 'fused_y': fused_y, 'fused': fused}

    @staticmethod
    def infrared_triple(infrared: torch.Tensor) -> torch.Tensor:
        """The 1-channel IR frame as the YCbCr triple of a grey image: ``[IR, 0.5, 0.5]``."""
        neutral = torch.full_like(infrared, CHROMA_NEUTRAL)
        return torch.cat([infrared, neutral, neutral], dim=1)

    def refined(self, fused: torch.Tensor, illumination: torch.Tensor) -> torch.Tensor:
        """The gated SCI output: ``fused + g (fused / illumination - fused)``, clamped to [0, 1]."""
        gate = torch.tanh(self.refine_gate)
        return torch.clamp(fused + gate * (fused / illumination - fused), 0.0, 1.0)

    def forward(self, visible: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        fused = self.fuse(visible, infrared)['fused']
        illumination = self.refine(torch.cat([fused, self.infrared_triple(infrared)], dim=1))
        return self.refined(fused, illumination)

    def forward_train(self, visible: torch.Tensor, infrared: torch.Tensor, stages: int = 1,
                      calibration: SelfCalibration | None = None) -> dict[str, Any]:
        """Everything the fusion and refinement losses need, in one pass.

        ``stages`` > 1 runs the cascade: stage k refines ``fused + offset_k`` (offset_1 = 0, offset_{k+1} =
        ``calibration(reflectance_k)``); every stage divides the *fused* image by its illumination. With
        ``stages == 1`` (no calibration needed) ``refined`` equals :meth:`forward`.

        Returns a dict: ``visible_y`` [N,1,H,W], ``infrared`` [N,1,H,W], ``fused_y`` [N,1,H,W] in [0, 1],
        ``fused`` [N,3,H,W], ``refined`` and ``illumination`` (last stage), ``stage_inputs``,
        ``illuminations``, ``reflectances`` (lists, one per stage, for SCI's fidelity/smoothness losses), and
        ``w_visible``, ``w_infrared`` ([N], detached, summing to 1) from :class:`InformationMeasure`.
        """
        if stages < 1:
            raise ValueError('stages must be >= 1')
        if stages > 1 and calibration is None:
            raise ValueError('a cascade of more than one stage needs a SelfCalibration module')
        out: dict[str, Any] = self.fuse(visible, infrared)
        fused = out['fused']
        ir_triple = self.infrared_triple(infrared)
        stage_input = fused
        stage_inputs, illuminations, reflectances = [], [], []
        for stage in range(stages):
            illumination = self.refine(torch.cat([stage_input, ir_triple], dim=1))
            reflectance = self.refined(fused, illumination)
            stage_inputs.append(stage_input)
            illuminations.append(illumination)
            reflectances.append(reflectance)
            if stage + 1 < stages:
                stage_input = fused + calibration(reflectance)
        w_visible, w_infrared = self.information(out['visible_y'], infrared)
        out.update(infrared=infrared, refined=reflectances[-1], illumination=illuminations[-1],
                   stage_inputs=stage_inputs, illuminations=illuminations, reflectances=reflectances,
                   w_visible=w_visible, w_infrared=w_infrared)
        return out


def build(config: str, **overrides: Any) -> FusionNet:
    """FusionNet in configuration ``paper`` or ``realtime``; keyword overrides replace config entries."""
    return build_from_configs(FusionNet, CONFIGS, config, overrides)


def build_calibration(channels: int = 16, layers: int = 3) -> SelfCalibration:
    """The training-only calibration module of the cascade (not part of the exported network)."""
    return SelfCalibration(channels, layers)
