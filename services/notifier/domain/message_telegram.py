"""The Telegram channel's body: a Bot API `sendMessage` request in HTML parse mode (pure).

Every dynamic string is HTML-escaped (Telegram refuses a message whose
markup does not parse, and a name must not become a tag or a link). The
text is at most 4096 long, Telegram's limit: counted in UTF-16 units over
the whole HTML, tags and entities included, which is never less than what
Telegram counts. Each alert's block is bounded well under the limit, so the
first always fits; the blocks that do not are left out whole (a cut tag
would not parse) and counted in a note at the end.
"""

from __future__ import annotations

from html import escape
from typing import Any, Final

from .message_group import AlertView, GroupMessage
from .message_text import (
    alert_names,
    alert_tag,
    clip,
    human_time,
    label_pairs,
    one_line,
    safe_url,
    status_tag,
    utf16_len,
)

__all__ = ["TEXT_LIMIT", "telegram_payload"]

TEXT_LIMIT: Final = 4096
_URL_LIMIT: Final = 500
_NOTE_ROOM: Final = 100 + _URL_LIMIT  # the closing note and the link to Chimera


def _link(url: str, label: str) -> str:
    href = escape(safe_url(url))
    return f'<a href="{href}">{escape(label)}</a>' if href and utf16_len(href) <= _URL_LIMIT else ""


def _block(alert: AlertView) -> str:
    # At most about 3300: 200 + 40 + 400 + 1000 + 800 + 100 + a link of 500 and the tags.
    head = f"<b>{escape(alert_tag(alert))} {clip(one_line(alert.name) or 'alert', 200, escape)}</b>"
    if alert.severity:
        head += f" · {clip(one_line(alert.severity), 40, escape)}"
    lines = [head]
    if summary := alert.annotations.get("summary", ""):
        lines.append(clip(summary, 400, escape))
    if description := alert.annotations.get("description", ""):
        lines.append(f"<i>{clip(description, 1000, escape)}</i>")
    if pairs := label_pairs(alert.labels, skip=("alertname", "severity")):
        lines.append(f"<code>{clip(pairs, 800, escape)}</code>")
    times = f"Since {clip(human_time(alert.starts_at), 40, escape)}"
    if not alert.firing:
        times += f", ended {clip(human_time(alert.ends_at), 40, escape)}"
    lines.append(times)
    if link := _link(alert.generator_url, "Source"):
        lines.append(link)
    return "\n".join(lines)


def telegram_payload(msg: GroupMessage, chat_id: int | str) -> dict[str, Any]:
    icon = "🔥" if msg.status == "firing" else "✅"
    header = f"{icon} <b>{escape(status_tag(msg))} {clip(alert_names(msg.alerts), 200, escape)}</b>"
    parts = [header]
    used = utf16_len(header)
    shown = 0
    for alert in msg.alerts:
        block = "\n\n" + _block(alert)
        if used + utf16_len(block) > TEXT_LIMIT - _NOTE_ROOM:
            break
        parts.append(block)
        used += utf16_len(block)
        shown += 1
    hidden = msg.truncated + len(msg.alerts) - shown
    if hidden:
        parts.append(f"\n\n<i>… and {hidden} more alert{'s' if hidden != 1 else ''} not shown</i>")
    if link := _link(msg.external_url, "Open Chimera"):
        parts.append("\n" + link)
    return {
        "chat_id": chat_id,
        "text": "".join(parts),
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }
