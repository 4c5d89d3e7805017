"""The realtime budget every network's realtime configuration is held to (tests of the five networks)."""

from __future__ import annotations

import torch

from nitedr_ros.networks.complexity import count_flops, count_params

HD = (720, 1280)
REALTIME_FLOPS_FRACTION = 20  # realtime: at most 1/20 of the paper configuration's FLOPs at 1280x720
REALTIME_MAX_PARAMS = 1_000_000


def check_realtime_budget(network: str, paper_model: torch.nn.Module, realtime_model: torch.nn.Module,
                          max_flops: float | None = None) -> None:
    """Assert the budget at 1280x720 (and ``max_flops`` where given); prints both FLOP counts."""
    paper = count_flops(paper_model, network, *HD)
    realtime = count_flops(realtime_model, network, *HD)
    params = count_params(realtime_model)
    print(f'{network} GFLOPs at 1280x720: paper {paper / 1e9:.1f}, realtime {realtime / 1e9:.2f} '
          f'({paper / realtime:.0f}x less); realtime params {params:,}')
    assert realtime * REALTIME_FLOPS_FRACTION <= paper
    if max_flops is not None:
        assert realtime <= max_flops
    assert params <= REALTIME_MAX_PARAMS
