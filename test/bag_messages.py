"""Reading a whole bag back in tests: every message deserialized, per topic, in record order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nitedr_ros.transports.bag.reader import iter_raw, open_bag


def messages_by_topic(bag: Path) -> dict[str, list[tuple[int, Any]]]:
    """``{'/topic': [(record_ns, message), ...]}`` for every topic of ``bag`` (topics with a leading '/')."""
    by_topic: dict[str, list[tuple[int, Any]]] = {}
    with open_bag(bag) as reader:
        for connection, record_ns, raw in iter_raw(reader):
            by_topic.setdefault('/' + connection.topic.lstrip('/'), []).append(
                (record_ns, reader.deserialize(raw, connection.msgtype)))
    return by_topic
