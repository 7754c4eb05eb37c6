"""The webhook channel's body: Alertmanager's webhook payload, version 4, and its signature (pure).

Field for field what Alertmanager posts (contract, section 4), so any
Alertmanager webhook receiver takes it. `commonLabels` and
`commonAnnotations` are computed over the alerts sent, after truncation, as
Alertmanager computes them.

Signature: when the channel has a secret, the request carries
`X-Chimera-Signature: sha256=<hex>`, the HMAC-SHA256 of the exact body bytes
under the secret, hex in lower case. A receiver computes it over the raw body
as read (before any JSON parsing: a re-encoded body differs) and compares
with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final

from .message_group import AlertView, GroupMessage, common_annotations, common_labels

__all__ = ["SIGNATURE_HEADER", "WEBHOOK_VERSION", "ZERO_TIME", "webhook_payload", "webhook_signature"]

WEBHOOK_VERSION: Final = "4"
SIGNATURE_HEADER: Final = "X-Chimera-Signature"
# Go's zero time.Time, which Alertmanager writes as endsAt while an alert has not ended.
ZERO_TIME: Final = "0001-01-01T00:00:00Z"


def _alert(alert: AlertView) -> dict[str, Any]:
    return {
        "status": alert.status,
        "labels": dict(sorted(alert.labels.items())),
        "annotations": dict(sorted(alert.annotations.items())),
        "startsAt": alert.starts_at,
        "endsAt": ZERO_TIME if alert.firing or alert.ends_at is None else alert.ends_at,
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def webhook_payload(msg: GroupMessage) -> dict[str, Any]:
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": msg.group_key,
        "truncatedAlerts": msg.truncated,
        "status": msg.status,
        "receiver": msg.receiver,
        "groupLabels": dict(sorted(msg.group_labels.items())),
        "commonLabels": common_labels(msg.alerts),
        "commonAnnotations": common_annotations(msg.alerts),
        "externalURL": msg.external_url,
        "alerts": [_alert(alert) for alert in msg.alerts],
    }


def webhook_signature(secret: bytes, body: bytes) -> str:
    """The `X-Chimera-Signature` value for `body`: `sha256=` and the hex HMAC-SHA256 under `secret`."""
    if not secret:
        # An empty key signs, but proves nothing: a channel without a secret sends no signature.
        raise ValueError("a webhook signature needs a non-empty secret")
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
