"""The notification messages, one import away: the group and every format built from it (pure).

A `GroupMessage` (message_group) is what one channel is told about one
notification group; each channel type turns it into its service's own body:
Alertmanager's webhook payload v4 (message_webhook), Slack (message_slack),
Discord (message_discord), Telegram (message_telegram), PagerDuty Events v2
(message_pagerduty) and email (message_email). Each lives in its own module;
this one gathers their public names for the notifier's adapters.
"""

from __future__ import annotations

from .message_discord import discord_payload
from .message_email import email_message
from .message_group import (
    FIRING,
    RESOLVED,
    TEST_ALERTNAME,
    AlertView,
    GroupMessage,
    build_group_message,
    common_annotations,
    common_labels,
    message_from_json,
    message_to_json,
    test_message,
)
from .message_pagerduty import pagerduty_events
from .message_slack import slack_payload
from .message_telegram import telegram_payload
from .message_webhook import SIGNATURE_HEADER, ZERO_TIME, webhook_payload, webhook_signature

__all__ = [
    "FIRING",
    "RESOLVED",
    "SIGNATURE_HEADER",
    "TEST_ALERTNAME",
    "ZERO_TIME",
    "AlertView",
    "GroupMessage",
    "build_group_message",
    "common_annotations",
    "common_labels",
    "discord_payload",
    "message_from_json",
    "message_to_json",
    "email_message",
    "pagerduty_events",
    "slack_payload",
    "telegram_payload",
    "test_message",
    "webhook_payload",
    "webhook_signature",
]
