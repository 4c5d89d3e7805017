"""Option values the verbs share: ``KEY=VALUE`` pairs (``--model ROLE=PATH``, ``--param NAME=VALUE`` ...)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ConfigError


def parse_pairs(items: Iterable[str], option: str, metavar: str = 'KEY=VALUE', *,
                parse: Callable[[str], Any] = str.strip, value_required: bool = True) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> ``{key: parse(value)}`` (keys stripped); a ConfigError names the option."""
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition('=')
        key = key.strip()
        if not sep or not key or (value_required and not value.strip()):
            raise ConfigError(f'{option} needs {metavar}, got {item!r}')
        pairs[key] = parse(value)
    return pairs


def parse_models(items: Iterable[str]) -> dict[str, str]:
    """``--model ROLE=PATH`` -> ``{role: path}``."""
    return parse_pairs(items, '--model', 'ROLE=PATH')


def parse_param_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``--param NAME=VALUE`` (values are YAML scalars, as in parameter files) -> parameter overrides."""
    import yaml

    return parse_pairs(items, '--param', 'NAME=VALUE', parse=yaml.safe_load, value_required=False)


def json_or_text(value: str) -> Any:
    """A value parsed as JSON where it is JSON (numbers, lists, true), else the text itself."""
    try:
        return json.loads(value)
    except ValueError:
        return value
