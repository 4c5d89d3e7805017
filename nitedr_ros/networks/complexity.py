"""Parameter and FLOP counts; FLOPs are counted on meta tensors, so no real compute is spent.

FLOPs follow ``torch.utils.flop_counter`` (2 x multiply-accumulates of convolutions, matmuls and
attention), the convention of the seed-model notes.
"""

from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..modelspec import get_spec


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def example_inputs(network: str, height: int, width: int, device: str | torch.device = 'cpu',
                   batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Inputs in the network's contract order, shaped ``[batch, C, height, width]``, values in [0, 1]."""
    spec = get_spec(network)
    gen = torch.Generator().manual_seed(0)
    tensors = []
    for t in spec.inputs:
        if torch.device(device).type == 'meta':
            tensors.append(torch.empty(batch, t.channels, height, width, device='meta'))
        else:
            tensors.append(torch.rand(batch, t.channels, height, width, generator=gen).to(device))
    return tuple(tensors)


def count_flops(model: torch.nn.Module, network: str, height: int, width: int) -> int:
    """FLOPs of one forward pass at ``height x width``, counted on a meta-device copy of the model."""
    meta_model = copy.deepcopy(model).to('meta').eval()
    inputs = example_inputs(network, height, width, device='meta')
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        meta_model(*inputs)
    return int(counter.get_total_flops())
