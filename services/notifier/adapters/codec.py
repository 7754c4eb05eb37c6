"""Notification groups and routed alerts as bytes: the notifier's internal topic and table.

Compact JSON (orjson): they travel through Kafka (the groups topic, the
table's changelog) and are rebuilt on recovery, so every field is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..domain.grouping import GroupedAlert, NotificationGroup

__all__ = ["RoutedAlert", "decode_group", "decode_routed", "encode_group", "encode_routed"]


@dataclass(frozen=True, slots=True)
class RoutedAlert:
    """An alert record on its way to one channel's group."""

    channel_id: int
    group_labels: Mapping[str, str]
    record: Mapping[str, Any]
    received_ms: int


def encode_routed(item: RoutedAlert) -> bytes:
    return orjson.dumps({"c": item.channel_id, "g": item.group_labels, "r": item.record, "t": item.received_ms})


def decode_routed(raw: bytes) -> RoutedAlert:
    v = orjson.loads(raw)
    return RoutedAlert(v["c"], v["g"], v["r"], v["t"])


def _alert(a: GroupedAlert) -> list[Any]:
    return [a.fingerprint, a.status, a.starts_at, a.labels, a.record, a.received_ms]


def encode_group(group: NotificationGroup, partition: int) -> bytes:
    raw = orjson.dumps({
        "p": partition, "k": group.key, "c": group.channel_id, "l": group.labels, "n": group.next_flush_ms,
        "a": [_alert(a) for a in group.alerts.values()], "t": group.told, "s": group.last_sent_ms,
        "q": group.sequence,
    })
    # A copy of exactly its length: orjson's bytes sit in a buffer of 4 KiB at least, and
    # the table keeps one per open group (ijl/orjson#483).
    return bytes(memoryview(raw))


def decode_group(raw: bytes) -> tuple[NotificationGroup, int]:
    v = orjson.loads(raw)
    alerts = {a[0]: GroupedAlert(a[0], a[1], a[2], a[3], a[4], a[5]) for a in v["a"]}
    return NotificationGroup(v["k"], v["c"], v["l"], v["n"], alerts, v["t"], v["s"], v["q"]), v["p"]
