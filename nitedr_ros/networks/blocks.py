"""Building blocks shared by CleanNet and Rainmer (torch): TSSA, mixed-scale FFN, AgMoE, the U-Net skeleton.

Everything here is written to export to ONNX (opset 19) with dynamic H and W and to import into
TensorRT: no Python arithmetic on tensor shapes, one static-K ``TopK`` per attention, comparison masks
instead of scatters, no -inf, no deformable convolution.

* :class:`ChannelLayerNorm` -- the 'WithBias' LayerNorm over channels of an NCHW tensor.
* :class:`TopSelectionAttention` (TSSA) -- channel ("transposed") attention whose softmax is restricted
  to the top-k logits of each row, for k = C/2, 2C/3, 3C/4, 4C/5 of the head width, every branch
  taken from the *same* logits and the branches summed with learnable weights.
* :class:`MixedScaleFeedForward` -- the "mutual" FFN: depthwise 3x3 and 5x5 branches whose channel
  halves are interleaved pairwise (one 3x3 and one 5x5 channel per group) into grouped 3x3 / 5x5 convs.
* :class:`AttentionGuidedMoE` (AgMoE) -- a gate (global pooling -> MLP -> softmax over 8 experts for
  each of ``steps`` steps) weighting 8 dense experts (separable convs 1/3/5/7, dilated depthwise
  3/5/7, 3x3 average pool) per step; optionally run on an average-pooled copy of the features.
* :class:`TransformerUNet` -- patch embed -> AgMoE -> 4-level encoder/decoder of transformer blocks
  -> AgMoE refinement -> conv out + global residual; CleanNet is this skeleton, Rainmer extends it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Fractions of the head width kept by the four TSSA branches.
TOP_SELECTION_RATIOS: tuple[tuple[int, int], ...] = ((1, 2), (2, 3), (3, 4), (4, 5))
# Expert list of one AgMoE step: ('sep', k) separable conv, ('dil', k) dilated depthwise, ('pool', 3).
MOE_EXPERTS: tuple[tuple[str, int], ...] = (
    ('sep', 1), ('sep', 3), ('sep', 5), ('sep', 7), ('dil', 3), ('dil', 5), ('dil', 7), ('pool', 3))


def top_selection_counts(head_channels: int) -> tuple[int, ...]:
    """How many logits each TSSA branch keeps per row: C/2, 2C/3, 3C/4, 4C/5 (at least 1)."""
    return tuple(max(1, head_channels * num // den) for num, den in TOP_SELECTION_RATIOS)


def top_selection_softmax(logits: torch.Tensor, keep_counts: Sequence[int],
                          branch_weights: torch.Tensor) -> torch.Tensor:
    """Weighted sum of softmaxes over the top-k entries of each row of ``logits`` (last dim).

    All branches come from the same ``logits``: one TopK with the largest k gives the sorted row
    values; branch i keeps every entry ``>=`` its k_i-th largest value -- a comparison, so the result
    does not depend on how a backend orders tied entries. Each branch softmax is written as
    ``keep * exp(l - max) / sum(keep * exp(l - max))``: no -inf, safe in fp16. ``branch_weights``
    has one scalar per branch.
    """
    top_values = logits.topk(max(keep_counts), dim=-1, largest=True, sorted=True).values
    shifted = torch.exp(logits - top_values[..., :1])
    combined = None
    for i, k in enumerate(keep_counts):
        keep = (logits >= top_values[..., k - 1:k]).to(logits.dtype)
        kept = keep * shifted
        term = branch_weights[i] * (kept / kept.sum(dim=-1, keepdim=True))
        combined = term if combined is None else combined + term
    return combined


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel of an NCHW tensor ('WithBias': weight and bias)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dim=1, keepdim=True)
        normed = centred / torch.sqrt(var + self.eps)
        return normed * self.weight[None, :, None, None] + self.bias[None, :, None, None]


class TopSelectionAttention(nn.Module):
    """TSSA: multi-head channel attention (C_head x C_head maps) with four top-k softmax branches.

    q, k, v come from a 1x1 conv and a depthwise 3x3; q and k are L2-normalised over the pixels;
    logits = q k^T times a learnable per-head temperature. Because the branch sum is linear in the
    softmax maps, the maps are summed before the single multiplication with v.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f'attention width {dim} is not divisible by {heads} heads')
        self.heads = heads
        self.head_channels = dim // heads
        self.keep_counts = top_selection_counts(self.head_channels)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.branch_weights = nn.Parameter(torch.full((len(TOP_SELECTION_RATIOS),), 0.2))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        # [B, C, H, W] -> [B, heads, C_head, H*W] without Python arithmetic on H or W
        return t.reshape(t.shape[0], self.heads, self.head_channels, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q = F.normalize(self._heads(q), dim=-1, eps=1e-6)
        k = F.normalize(self._heads(k), dim=-1, eps=1e-6)
        logits = (q @ k.transpose(-2, -1)) * self.temperature
        attn = top_selection_softmax(logits, self.keep_counts, self.branch_weights)
        out = (attn @ self._heads(v)).flatten(1, 2).reshape_as(x)
        return self.project_out(out)


def interleave_channels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[a0, b0, a1, b1, ...] along channels (a and b have the same shape)."""
    return torch.stack((a, b), dim=2).flatten(1, 2)


class MixedScaleFeedForward(nn.Module):
    """Mixed-scale "mutual" FFN (no deformable conv).

    1x1 in (C -> 2h), depthwise 3x3 and 5x5 + ReLU in parallel; the first halves of both branches are
    interleaved so every group of the grouped 3x3 conv (2h -> h, groups h) sees one 3x3 and one 5x5
    channel, the second halves likewise feed a grouped 5x5 conv; ReLU, concat, 1x1 out (2h -> C).
    """

    def __init__(self, dim: int, expansion: float) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dwconv3x3 = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.dwconv5x5 = nn.Conv2d(hidden * 2, hidden * 2, 5, padding=2, groups=hidden * 2, bias=False)
        self.mix3x3 = nn.Conv2d(hidden * 2, hidden, 3, padding=1, groups=hidden, bias=False)
        self.mix5x5 = nn.Conv2d(hidden * 2, hidden, 5, padding=2, groups=hidden, bias=False)
        self.project_out = nn.Conv2d(hidden * 2, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project_in(x)
        s3_a, s3_b = F.relu(self.dwconv3x3(x)).chunk(2, dim=1)
        s5_a, s5_b = F.relu(self.dwconv5x5(x)).chunk(2, dim=1)
        m3 = F.relu(self.mix3x3(interleave_channels(s3_a, s5_a)))
        m5 = F.relu(self.mix5x5(interleave_channels(s3_b, s5_b)))
        return self.project_out(torch.cat((m3, m5), dim=1))


class TransformerBlock(nn.Module):
    """x + TSSA(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, dim: int, heads: int, ffn_expansion: float) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = TopSelectionAttention(dim, heads)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = MixedScaleFeedForward(dim, ffn_expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class SeparableConv(nn.Sequential):
    """Depthwise kxk, pointwise, ReLU, depthwise kxk, pointwise (no bias)."""

    def __init__(self, dim: int, kernel: int) -> None:
        pad = kernel // 2
        super().__init__(
            nn.Conv2d(dim, dim, kernel, padding=pad, groups=dim, bias=False),
            nn.Conv2d(dim, dim, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(dim, dim, kernel, padding=pad, groups=dim, bias=False),
            nn.Conv2d(dim, dim, 1, bias=False),
        )


class DilatedConv(nn.Sequential):
    """Depthwise kxk with dilation 2, then pointwise (no bias)."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(dim, dim, kernel, padding=kernel - 1, dilation=2, groups=dim, bias=False),
            nn.Conv2d(dim, dim, 1, bias=False),
        )


def make_expert(kind: str, dim: int, kernel: int) -> nn.Module:
    """One AgMoE expert from :data:`MOE_EXPERTS`."""
    if kind == 'sep':
        return SeparableConv(dim, kernel)
    if kind == 'dil':
        return DilatedConv(dim, kernel)
    if kind == 'pool':
        return nn.AvgPool2d(kernel, stride=1, padding=kernel // 2, count_include_pad=False)
    raise ValueError(f'unknown expert kind {kind!r}')


class ExpertGate(nn.Module):
    """Global average pool -> Linear -> ReLU -> Linear -> softmax over experts: [B, steps, experts]."""

    def __init__(self, dim: int, steps: int, experts: int, hidden: int = 64) -> None:
        super().__init__()
        self.steps, self.experts = steps, experts
        self.fc = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, steps * experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(x.mean(dim=(2, 3))).reshape(-1, self.steps, self.experts)
        return torch.softmax(logits, dim=-1)


class ExpertStep(nn.Module):
    """All experts evaluated densely, each scaled by its gate weight, concat -> 1x1 -> ReLU."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.experts = nn.ModuleList(make_expert(kind, dim, k) for kind, k in MOE_EXPERTS)
        self.fuse = nn.Conv2d(dim * len(MOE_EXPERTS), dim, 1, bias=False)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # weights: [B, experts]
        outs = [expert(x) * weights[:, e, None, None, None] for e, expert in enumerate(self.experts)]
        return F.relu(self.fuse(torch.cat(outs, dim=1)))


class AttentionGuidedMoE(nn.Module):
    """AgMoE: gate from the input, 1x1 + ReLU, then ``steps`` residual expert steps.

    ``scale`` > 1 runs the experts on a ``scale``-times average-pooled copy and adds the bilinearly
    upsampled result to the input (``x + up(moe(pool(x)))``), so full-resolution detail passes through
    unchanged; ``scale`` = 1 is the published form (``moe(x)``).
    """

    def __init__(self, dim: int, steps: int = 4, scale: int = 1, gate_hidden: int = 64) -> None:
        super().__init__()
        self.scale = int(scale)
        self.gate = ExpertGate(dim, steps, len(MOE_EXPERTS), gate_hidden)
        self.preprocess = nn.Sequential(nn.Conv2d(dim, dim, 1, bias=False), nn.ReLU())
        self.steps = nn.ModuleList(ExpertStep(dim) for _ in range(steps))

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """The expert mixture at the resolution of ``x``."""
        weights = self.gate(x)
        s = self.preprocess(x)
        for i, step in enumerate(self.steps):
            s = s + step(s, weights[:, i])
        return s

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """``scale`` overrides the module's resolution reduction for this call."""
        scale = self.scale if scale is None else int(scale)
        if scale == 1:
            return self.mix(x)
        low = self.mix(F.avg_pool2d(x, scale))
        return x + F.interpolate(low, scale_factor=float(scale), mode='bilinear', align_corners=False)


class Downsample(nn.Sequential):
    """conv kxk (3x3 published) C -> C/2, PixelUnshuffle(2): half resolution, twice the channels."""

    def __init__(self, dim: int, kernel: int = 3) -> None:
        conv = nn.Conv2d(dim, dim // 2, kernel, padding=kernel // 2, bias=False)
        super().__init__(conv, nn.PixelUnshuffle(2))


class Upsample(nn.Sequential):
    """conv kxk (3x3 published) C -> 2C, PixelShuffle(2): double resolution, half the channels."""

    def __init__(self, dim: int, kernel: int = 3) -> None:
        conv = nn.Conv2d(dim, dim * 2, kernel, padding=kernel // 2, bias=False)
        super().__init__(conv, nn.PixelShuffle(2))


class PatchEmbed(nn.Module):
    """conv3x3 in_channels -> dim (no bias)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _level_widths(dim: int) -> tuple[int, int, int, int]:
    return dim, dim * 2, dim * 4, dim * 8


class TransformerUNet(nn.Module):
    """The DRSformer-style skeleton CleanNet and Rainmer share.

    image -> patch_embed (3x3) -> encoder_level0 (AgMoE, dim) -> encoder levels 1..3 and latent
    (widths dim, 2dim, 4dim, 8dim; downsampling by conv + PixelUnshuffle) -> decoder levels 3..1
    (upsampling by conv + PixelShuffle, concat skip, 1x1 reduction at levels 3 and 2; level 1 stays at
    2dim) -> refinement (AgMoE, 2dim) -> output conv3x3 -> + image, clamped to [0, 1].

    ``num_blocks`` = blocks of encoder levels 1..3 and latent; ``decoder_blocks`` = blocks of decoder
    levels 1..3; ``heads`` per level (decoder level 1 uses ``heads[0]``). A level may have 0 blocks.
    ``resample_kernel`` is the kernel of the convs before PixelUnshuffle/PixelShuffle (3 published).
    Subclasses hook in through ``decoder_block`` (a factory ``(dim, heads, ffn_expansion) -> module``),
    :meth:`context`, :meth:`fuse_level0` and :meth:`run_decoder`. Set ``clamp_output = False`` to
    train without the final clamp (its gradient is zero outside [0, 1]).
    """

    clamp_output: bool = True

    def __init__(self, dim: int = 48, num_blocks: Sequence[int] = (4, 6, 6, 8),
                 decoder_blocks: Sequence[int] = (4, 6, 6), heads: Sequence[int] = (1, 2, 4, 8),
                 ffn_expansion: float = 2.66, moe_steps: int = 4, moe_scale: int = 1,
                 refinement_moe_scale: int | None = None, moe_gate_hidden: int = 64,
                 resample_kernel: int = 3, in_channels: int = 3,
                 decoder_block: Callable[[int, int, float], nn.Module] | None = None) -> None:
        super().__init__()
        if len(num_blocks) != 4 or len(decoder_blocks) != 3 or len(heads) != 4:
            raise ValueError('num_blocks needs 4 entries, decoder_blocks 3, heads 4')
        if dim % 2:
            raise ValueError(f'dim must be even (downsampling halves it), got {dim}')
        w1, w2, w3, w4 = _level_widths(dim)
        refine_scale = moe_scale if refinement_moe_scale is None else refinement_moe_scale
        make_decoder_block = decoder_block or TransformerBlock

        def stage(width: int, count: int, n_heads: int) -> nn.ModuleList:
            return nn.ModuleList(TransformerBlock(width, n_heads, ffn_expansion) for _ in range(count))

        def decoder_stage(width: int, count: int, n_heads: int) -> nn.ModuleList:
            return nn.ModuleList(make_decoder_block(width, n_heads, ffn_expansion) for _ in range(count))

        self.patch_embed = PatchEmbed(in_channels, w1)
        self.encoder_level0 = AttentionGuidedMoE(w1, moe_steps, moe_scale, moe_gate_hidden)
        self.encoder_level1 = stage(w1, num_blocks[0], heads[0])
        self.down1_2 = Downsample(w1, resample_kernel)
        self.encoder_level2 = stage(w2, num_blocks[1], heads[1])
        self.down2_3 = Downsample(w2, resample_kernel)
        self.encoder_level3 = stage(w3, num_blocks[2], heads[2])
        self.down3_4 = Downsample(w3, resample_kernel)
        self.latent = stage(w4, num_blocks[3], heads[3])
        self.up4_3 = Upsample(w4, resample_kernel)
        self.reduce_chan_level3 = nn.Conv2d(w4, w3, 1, bias=False)
        self.decoder_level3 = decoder_stage(w3, decoder_blocks[2], heads[2])
        self.up3_2 = Upsample(w3, resample_kernel)
        self.reduce_chan_level2 = nn.Conv2d(w3, w2, 1, bias=False)
        self.decoder_level2 = decoder_stage(w2, decoder_blocks[1], heads[1])
        self.up2_1 = Upsample(w2, resample_kernel)
        self.decoder_level1 = decoder_stage(w2, decoder_blocks[0], heads[0])
        self.refinement = AttentionGuidedMoE(w2, moe_steps, refine_scale, moe_gate_hidden)
        self.output = nn.Conv2d(w2, 3, 3, padding=1, bias=False)

    # hooks -------------------------------------------------------------------------------------
    def context(self, image: torch.Tensor) -> object:
        """Whatever the decoder blocks and :meth:`fuse_level0` need besides features (None here)."""
        return None

    def fuse_level0(self, features: torch.Tensor, image: torch.Tensor, context: object) -> torch.Tensor:
        """Hook after encoder_level0 (identity here)."""
        return features

    def run_decoder(self, blocks: nn.ModuleList, x: torch.Tensor, context: object) -> torch.Tensor:
        """Run one decoder level (plain blocks here; Rainmer passes its prompts)."""
        for block in blocks:
            x = block(x)
        return x

    # forward ------------------------------------------------------------------------------------
    @staticmethod
    def run_encoder(blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            x = block(x)
        return x

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        context = self.context(image)
        x0 = self.fuse_level0(self.encoder_level0(self.patch_embed(image)), image, context)
        e1 = self.run_encoder(self.encoder_level1, x0)
        e2 = self.run_encoder(self.encoder_level2, self.down1_2(e1))
        e3 = self.run_encoder(self.encoder_level3, self.down2_3(e2))
        lat = self.run_encoder(self.latent, self.down3_4(e3))
        d3 = self.reduce_chan_level3(torch.cat((self.up4_3(lat), e3), dim=1))
        d3 = self.run_decoder(self.decoder_level3, d3, context)
        d2 = self.reduce_chan_level2(torch.cat((self.up3_2(d3), e2), dim=1))
        d2 = self.run_decoder(self.decoder_level2, d2, context)
        d1 = torch.cat((self.up2_1(d2), e1), dim=1)
        d1 = self.run_decoder(self.decoder_level1, d1, context)
        out = self.output(self.refinement(d1)) + image
        return out.clamp(0.0, 1.0) if self.clamp_output else out
