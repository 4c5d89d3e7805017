"""ROS 2 name resolution (namespace, private names, remaps) and the ROS 2 -> DDS topic name mapping."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ...errors import ConfigError

ROS_TOPIC_PREFIX = 'rt'
_TOKEN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


def normalize_namespace(namespace: str) -> str:
    """``''``, ``'/'``, ``'car'``, ``'/car/'`` -> ``'/'``, ``'/'``, ``'/car'``, ``'/car'``."""
    namespace = namespace.strip()
    if namespace in ('', '/'):
        return '/'
    namespace = '/' + namespace.strip('/')
    _check_tokens(namespace, 'namespace')
    return namespace


def _check_tokens(name: str, what: str) -> None:
    for token in name.strip('/').split('/'):
        if token and not _TOKEN.match(token):
            raise ConfigError(f'invalid ROS {what} {name!r}: token {token!r} must be letters, digits and '
                              '_ and must not start with a digit')
    if '//' in name:
        raise ConfigError(f'invalid ROS {what} {name!r}: empty token (//)')


def expand_name(name: str, namespace: str = '/', node_name: str = 'nitedr') -> str:
    """The fully qualified ROS name of ``name`` (relative, absolute or ``~`` private)."""
    name = name.strip()
    if not name:
        raise ConfigError('empty ROS topic name')
    namespace = normalize_namespace(namespace)
    base = '' if namespace == '/' else namespace
    if name.startswith('~'):
        name = f'{base}/{node_name}' + name[1:]
    elif not name.startswith('/'):
        name = f'{base}/{name}'
    if len(name) > 1 and name.endswith('/'):
        name = name.rstrip('/')
    _check_tokens(name, 'topic name')
    return name


@dataclass(frozen=True)
class Remap:
    """One ``from:=to`` rule (optionally ``node:from:=to``, applied only to that node)."""

    source: str
    target: str
    node: str | None = None

    @classmethod
    def parse(cls, rule: str) -> Remap:
        if ':=' not in rule:
            raise ConfigError(f'invalid remap {rule!r}: expected from:=to')
        left, target = rule.split(':=', 1)
        node = None
        if ':' in left:
            node, left = left.split(':', 1)
        if not left.strip() or not target.strip():
            raise ConfigError(f'invalid remap {rule!r}: both sides must be names')
        return cls(left.strip(), target.strip(), node)


@dataclass
class NameResolver:
    """Resolves the node's topic names as rcl would: expand, then apply the first matching remap."""

    namespace: str = '/'
    node_name: str = 'nitedr'
    remaps: list[Remap] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.namespace = normalize_namespace(self.namespace)

    @classmethod
    def from_rules(cls, namespace: str = '/', node_name: str = 'nitedr',
                   rules: Iterable[str] = ()) -> NameResolver:
        return cls(namespace, node_name, [Remap.parse(rule) for rule in rules])

    def resolve(self, name: str) -> str:
        expanded = expand_name(name, self.namespace, self.node_name)
        for remap in self.remaps:
            if remap.node is not None and remap.node != self.node_name:
                continue
            if expand_name(remap.source, self.namespace, self.node_name) == expanded:
                return expand_name(remap.target, self.namespace, self.node_name)
        return expanded


def dds_topic_name(ros_name: str) -> str:
    """ROS 2 topic ``/camera/image_raw`` -> DDS topic ``rt/camera/image_raw``."""
    if not ros_name.startswith('/'):
        raise ConfigError(f'DDS topic mapping needs a fully qualified name, got {ros_name!r}')
    return ROS_TOPIC_PREFIX + ros_name


def ros_topic_name(dds_name: str) -> str | None:
    """DDS topic ``rt/x`` -> ROS topic ``/x``; None for topics that are not ROS topics."""
    prefix = ROS_TOPIC_PREFIX + '/'
    return dds_name[len(ROS_TOPIC_PREFIX):] if dds_name.startswith(prefix) else None
