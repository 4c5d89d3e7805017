"""The five networks (torch, offline only): build them by name and configuration.

Each network module defines ``CONFIGS: dict[str, dict]`` (``paper`` and ``realtime`` keyword sets)
and ``build(config: str, **overrides) -> torch.nn.Module`` (through :func:`build_from_configs`). The
module's ``forward`` takes the inputs named in :mod:`nitedr_ros.modelspec` in that order and returns the
outputs in that order (a tensor for one output, a tuple for several).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

from ..errors import ConfigError
from ..modelspec import NETWORKS, check_config, get_spec

__all__ = ['NETWORKS', 'NetworkOptionError', 'build_from_configs', 'build_network', 'network_configs']

NetworkT = TypeVar('NetworkT')


class NetworkOptionError(ConfigError, ValueError):
    """An option value a network's constructor rejects (a ConfigError that is also the ValueError it was)."""


def build_from_configs(cls: type[NetworkT], configs: Mapping[str, Mapping[str, Any]], config: str,
                       overrides: Mapping[str, Any]) -> NetworkT:
    """``cls(**configs[config], **overrides)``; ConfigErrors name the network for an unknown configuration,
    unknown option names and option values the constructor rejects (:class:`NetworkOptionError`)."""
    name = cls.__name__
    if config not in configs:
        raise ConfigError(f'unknown {name} configuration {config!r}; choose one of {", ".join(configs)}')
    parameters = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = set(overrides) - set(parameters)
        if unknown:
            raise ConfigError(f'unknown {name} option(s): {", ".join(sorted(unknown))}')
    try:
        return cls(**{**configs[config], **overrides})
    except (TypeError, ValueError) as exc:
        raise NetworkOptionError(f'cannot build {name} {config!r} with {dict(overrides)}: {exc}') from exc


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
