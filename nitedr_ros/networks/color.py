"""One colour conversion for the whole project: full-range BT.601 YCbCr and its exact inverse.

Full range (JPEG/JFIF): Y, Cb, Cr all span [0, 1] for RGB in [0, 1]; the chroma channels are centred on 0.5.

    Y  =  0.299 R + 0.587 G + 0.114 B
    Cb = -0.168736 R - 0.331264 G + 0.5 B + 0.5
    Cr =  0.5 R - 0.418688 G - 0.081312 B + 0.5

The inverse matrix is computed in float64 from the forward one (not the rounded 1.402 / 1.772 textbook
coefficients), so ``ycbcr_to_rgb(rgb_to_ycbcr(x))`` reproduces ``x`` to float32 rounding (~1e-7). The
published NiteDR code mixed cv2's full-range forward conversion with a studio-swing (16..235) inverse, which
shifts contrast and colour; here both directions are the same transform.

Tensors are NCHW with the colour channels on dim 1, in the order ``[Y, Cb, Cr]``. The functions are plain
tensor arithmetic (a 1x1 convolution), so they export to ONNX as one Conv each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Rows: Y, Cb, Cr; columns: R, G, B.
RGB_TO_YCBCR: tuple[tuple[float, float, float], ...] = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
YCBCR_OFFSET: tuple[float, float, float] = (0.0, 0.5, 0.5)
CHROMA_NEUTRAL = 0.5

_FORWARD64 = torch.tensor(RGB_TO_YCBCR, dtype=torch.float64)
_INVERSE64 = torch.linalg.inv(_FORWARD64)
_OFFSET64 = torch.tensor(YCBCR_OFFSET, dtype=torch.float64)
# rgb = inv @ (ycc - offset) = inv @ ycc - inv @ offset
_INVERSE_BIAS64 = -(_INVERSE64 @ _OFFSET64)


def _affine(x: torch.Tensor, matrix: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f'expected an NCHW tensor with 3 channels, got shape {tuple(x.shape)}')
    weight = matrix.to(device=x.device, dtype=x.dtype).reshape(3, 3, 1, 1)
    return F.conv2d(x, weight, bias.to(device=x.device, dtype=x.dtype))


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> full-range BT.601 ``[Y, Cb, Cr]`` in [0, 1] (chroma centred on 0.5)."""
    return _affine(rgb, _FORWARD64, _OFFSET64)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`rgb_to_ycbcr`; no clamping (out-of-gamut values stay out of [0, 1])."""
    return _affine(ycbcr, _INVERSE64, _INVERSE_BIAS64)


def rgb_to_luma(rgb: torch.Tensor) -> torch.Tensor:
    """The Y channel of :func:`rgb_to_ycbcr`, shape ``[N, 1, H, W]``."""
    return rgb_to_ycbcr(rgb)[:, :1]
