"""uint8 in, uint8 out: the sensor-side conversions of the pipeline as part of the network graph.

:class:`UInt8IO` wraps a float network (NCHW float32 RGB in [0, 1], :mod:`nitedr_ros.modelspec`) so that
the engine takes the camera's own bytes and gives bytes back; only uint8 (uint16 thermal) crosses between
host and GPU, and TensorRT fuses the conversions. The same module is exported to ONNX (the ``.u8.onnx``
variant) and run by the torch-cuda backend, so both do exactly this:

1. every visible input ``<name>_u8`` [1, H, W, 3] uint8 in the camera's channel order; ``channel_order``
   [3] int64 picks R, G, B from it (``[0, 1, 2]`` for rgb8, ``[2, 1, 0]`` for bgr8) with a Gather of whole
   planes after NHWC -> NCHW;
2. cast to float, / 255, reflect-pad bottom/right to ``multiple_of`` (OpenCV's
   ``BORDER_REFLECT_101`` = ONNX Pad ``reflect``; the host path pads the same way);
3. the network (fusion: ``infrared_u16`` [1, H, W, 2] uint8, the little-endian bytes of the 16-bit counts
   (TensorRT has no uint16 tensors; the pair is a zero-copy view of the host's uint16 image), recombined
   as ``low + 256 high`` and mapped by ``infrared_range`` [2] float32 ``(low, high)`` to [0, 1] and clipped,
   as :class:`nitedr_ros.pipeline.thermal.ThermalNormalizer` does on the host; the automatic range is
   computed on the host and passed in);
4. crop to H x W, clip to [0, 1], x 255, round half to even, cast to uint8, the same Gather back to the
   camera's order, NCHW -> NHWC: outputs ``<name>_u8``.

Parity with the host path is exact up to the rounding of the float arithmetic (tested: at most one level).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modelspec import NetworkSpec, u8_input_names, u8_output_names  # noqa: F401 (re-exported)

RGB_ORDER = (0, 1, 2)
BGR_ORDER = (2, 1, 0)


def _pad_amount(size: torch.Tensor | int, multiple: int) -> torch.Tensor | int:
    return (multiple - size % multiple) % multiple


class UInt8IO(nn.Module):
    """A float network with the uint8 conversions of the module docstring around it."""

    def __init__(self, network: nn.Module, spec: NetworkSpec, *, compute_dtype: torch.dtype = torch.float32,
                 channels_last: bool = False) -> None:
        super().__init__()
        self.network = network
        self.spec = spec
        self.multiple = int(spec.multiple_of)
        self.compute_dtype = compute_dtype
        self.channels_last = channels_last

    def _visible(self, image: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        # NHWC -> NCHW first: the Gather then copies whole planes (per pixel: ~20 ms at 720p on a CPU)
        rgb = torch.index_select(image.permute(0, 3, 1, 2), 1, order)
        return self._pad(rgb.to(self.compute_dtype) / 255.0)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.multiple > 1:
            pad_h = _pad_amount(x.shape[2], self.multiple)
            pad_w = _pad_amount(x.shape[3], self.multiple)
            x = F.pad(x, (0, pad_w, 0, pad_h), mode='reflect')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _thermal(self, byte_pairs: torch.Tensor, value_range: torch.Tensor) -> torch.Tensor:
        pairs = byte_pairs.to(torch.float32)
        counts = pairs[..., 0] + 256.0 * pairs[..., 1]
        low, high = value_range[0], value_range[1]
        span = torch.clamp(high - low, min=1e-6)
        x = ((counts - low) / span).clamp(0.0, 1.0)
        return self._pad(x[:, None].to(self.compute_dtype))

    def _to_u8(self, y: torch.Tensor, height: int | torch.Tensor, width: int | torch.Tensor,
               order: torch.Tensor) -> torch.Tensor:
        y = y[:, :, :height, :width].float().clamp(0.0, 1.0)
        u8 = torch.round(y * 255.0).to(torch.uint8)
        return torch.index_select(u8, 1, order).permute(0, 2, 3, 1).contiguous()

    def forward(self, *args: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Inputs in :func:`u8_input_names` order; outputs in :func:`u8_output_names` order."""
        order = args[-1]
        feed = []
        rest = list(args[:-1])
        height = width = None
        for tensor in self.spec.inputs:
            if tensor.channels == 1:
                counts, value_range = rest.pop(0), rest.pop(0)
                feed.append(self._thermal(counts, value_range))
            else:
                image = rest.pop(0)
                if height is None:
                    height, width = image.shape[1], image.shape[2]
                feed.append(self._visible(image, order))
        result = self.network(*feed)
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        converted = tuple(self._to_u8(out, height, width, order) for out in outputs)
        return converted if len(converted) > 1 else converted[0]
