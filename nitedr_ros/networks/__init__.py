"""The five networks (torch, offline only): build them by name and configuration.

Each network module defines ``CONFIGS: dict[str, dict]`` (``paper`` and ``realtime`` keyword sets)
and ``build(config: str, **overrides) -> torch.nn.Module``. The module's ``forward`` takes the inputs
named in :mod:`nitedr_ros.modelspec` in that order and returns the outputs in that order (a tensor for
one output, a tuple for several).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..modelspec import NETWORKS, check_config, get_spec

__all__ = ['NETWORKS', 'build_network', 'network_configs']


def network_configs(name: str) -> dict[str, dict[str, Any]]:
    """The ``CONFIGS`` table of a network module."""
    return importlib.import_module(get_spec(name).module).CONFIGS


def build_network(name: str, config: str, **overrides: Any):
    """Instantiate a network in a configuration (``paper`` or ``realtime``), eval mode, float32."""
    spec = get_spec(name)
    check_config(config)
    module = importlib.import_module(spec.module)
    model = module.build(config, **overrides)
    model.eval()
    return model
