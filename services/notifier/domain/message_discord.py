"""The Discord channel's body: an execute-webhook request with one embed per alert (pure).

`content` is the short line (status, names, alerts not shown, the link to
Chimera); `embeds` one per alert, red while firing, green once resolved, its
labels as fields. Discord refuses a message over its limits, so every text
is cut to them with "…": 10 embeds, a title of 256, a description of 4096,
25 fields, a field name of 256 and value of 1024, 6000 over all embeds
together, 2000 in `content`. Alerts past the 10th are counted in `content`.

Text is hostile input: Markdown in it is escaped (a name cannot turn into
a masked link), and `allowed_mentions` with nothing to parse means an
`@everyone` in a name pings nobody.
"""

from __future__ import annotations

from typing import Any, Final

from .message_group import AlertView, GroupMessage
from .message_text import (
    alert_names,
    alert_tag,
    clip,
    iso_time,
    one_line,
    safe_url,
    status_tag,
    utf16_len,
)

__all__ = ["FIRING_COLOUR", "MAX_EMBEDS", "RESOLVED_COLOUR", "discord_escape", "discord_payload"]

MAX_EMBEDS: Final = 10
CONTENT_LIMIT: Final = 2000
TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4096
MAX_FIELDS: Final = 25
FIELD_NAME_LIMIT: Final = 256
FIELD_VALUE_LIMIT: Final = 1024
EMBEDS_TOTAL_LIMIT: Final = 6000  # titles, descriptions, field names and values of all embeds
URL_LIMIT: Final = 2048
FIRING_COLOUR: Final = 0xE53935
RESOLVED_COLOUR: Final = 0x43A047
_MARKDOWN: Final = str.maketrans({ch: "\\" + ch for ch in "\\*_~`|<>[]()#"})
_MIN_FIELD_VALUE: Final = 8  # a value cut shorter than this says nothing


def discord_escape(text: str) -> str:
    """Markdown characters backslashed: Discord shows them as they are."""
    return text.translate(_MARKDOWN)


def _embed(alert: AlertView, budget: int) -> dict[str, Any]:
    """The alert's embed, its counted text within `budget` (its share of the 6000)."""
    title = clip(one_line(f"{alert_tag(alert)} {alert.name or 'alert'}"), min(TITLE_LIMIT, budget // 4))
    left = budget - utf16_len(title)
    labels = [(name, value) for name, value in sorted(alert.labels.items()) if name != "alertname"]
    text = "\n".join(part for part in (alert.annotations.get("summary", ""),
                                       alert.annotations.get("description", "")) if part)
    # What the alert says comes before its labels: they get what the description leaves.
    description = clip(text, min(DESCRIPTION_LIMIT, left * 2 // 3 if labels else left), discord_escape)
    left -= utf16_len(description)
    fields = []
    for name, value in labels[:MAX_FIELDS]:
        field_name = clip(one_line(name), min(FIELD_NAME_LIMIT, 64)) or "label"
        room = min(FIELD_VALUE_LIMIT, left - utf16_len(field_name))
        if room < _MIN_FIELD_VALUE:
            break
        field_value = clip(value, room, discord_escape) or "—"  # Discord refuses an empty value
        fields.append({"name": field_name, "value": field_value, "inline": True})
        left -= utf16_len(field_name) + utf16_len(field_value)
    embed: dict[str, Any] = {"title": title, "color": FIRING_COLOUR if alert.firing else RESOLVED_COLOUR}
    if description:
        embed["description"] = description
    if fields:
        embed["fields"] = fields
    if timestamp := iso_time(alert.starts_at):
        embed["timestamp"] = timestamp
    url = safe_url(alert.generator_url)
    if url and len(url) <= URL_LIMIT:
        embed["url"] = url
    return embed


def discord_payload(msg: GroupMessage) -> dict[str, Any]:
    shown = msg.alerts[:MAX_EMBEDS]
    budget = EMBEDS_TOTAL_LIMIT // max(len(shown), 1)
    hidden = msg.truncated + len(msg.alerts) - len(shown)
    lines = [f"**{status_tag(msg)} {clip(alert_names(msg.alerts), 1500, discord_escape)}**"]
    if hidden:
        lines.append(f"{hidden} more alert{'s' if hidden != 1 else ''} not shown")
    url = safe_url(msg.external_url)
    if url and len(url) <= 400:
        lines.append(f"<{url}>")  # in angle brackets: a link without a preview
    return {
        "content": "\n".join(lines),
        "embeds": [_embed(alert, budget) for alert in shown],
        "allowed_mentions": {"parse": []},
    }
