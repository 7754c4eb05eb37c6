"""Text pieces every message format shares: clipping to a limit, one-line titles, safe links (pure).

Alert names, labels and annotations are hostile input (a miner names itself,
a rule's author writes its description), so every format escapes them its
own way and clips them to the service's limits. Clipping happens on the
escaped text, cut between source characters, so an escape (`&amp;`, `\\*`)
is never split and the result, ellipsis included, is within the limit.
Lengths are counted in UTF-16 code units: what the strictest of the services
count, and never fewer than code points, so an emoji cannot push a message
past a limit that `len()` said it met.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC
from typing import Final
from urllib.parse import urlsplit

from .message_group import AlertView, GroupMessage, parse_time

__all__ = [
    "ELLIPSIS",
    "alert_names",
    "alert_tag",
    "clip",
    "human_time",
    "iso_time",
    "label_pairs",
    "one_line",
    "safe_url",
    "status_tag",
    "utf16_len",
]

ELLIPSIS: Final = "…"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_URL_REFUSED: Final = re.compile(r"[\x00-\x20\x7f-\x9f\"'<>\\`\u2028\u2029]")


def _same(text: str) -> str:
    return text


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clip(text: str, limit: int, escape: Callable[[str], str] = _same) -> str:
    """`escape(text)`, at most `limit` UTF-16 units long, ending in "…" when it had to be cut.

    `escape` must work character by character (as html.escape and the Slack and
    Discord escapes do): the cut is found by escaping one character at a time."""
    whole = escape(text)
    if utf16_len(whole) <= limit:
        return whole
    if limit < 1:
        return ""
    budget = limit - utf16_len(ELLIPSIS)
    kept: list[str] = []
    used = 0
    for ch in text:
        piece = escape(ch)
        size = utf16_len(piece)
        if used + size > budget:
            break
        kept.append(piece)
        used += size
    return "".join(kept) + ELLIPSIS


def one_line(text: str) -> str:
    """Line breaks and other control characters as single spaces: for titles and subjects."""
    return " ".join(_CONTROL.sub(" ", text).split())


def safe_url(url: str) -> str:
    """`url` when it is an absolute http(s) URL that needs no quoting in any format, else "".

    A generator or external URL is put into links (HTML `href`, Slack `<url|text>`);
    `javascript:` or a quote there would be an injection, so such a URL is left out."""
    if not url or _URL_REFUSED.search(url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme in ("http", "https") and parts.netloc else ""


def status_tag(msg: GroupMessage) -> str:
    """Alertmanager's subject prefix: `[FIRING:<firing alerts shown>]` or `[RESOLVED]`."""
    if msg.status == "firing":
        return f"[FIRING:{sum(1 for alert in msg.alerts if alert.firing)}]"
    return "[RESOLVED]"


def alert_tag(alert: AlertView) -> str:
    return "[FIRING]" if alert.firing else "[RESOLVED]"


def alert_names(alerts: Iterable[AlertView]) -> str:
    """The distinct alert names, in message order, on one line."""
    names = dict.fromkeys(one_line(alert.name) or "alert" for alert in alerts)
    return ", ".join(names) or "alert"


def label_pairs(labels: Mapping[str, str], *, skip: Iterable[str] = ()) -> str:
    """`name=value` pairs by name, on one line, leaving out `skip` (shown elsewhere)."""
    left_out = set(skip)
    return ", ".join(f"{name}={one_line(value)}" for name, value in sorted(labels.items()) if name not in left_out)


def iso_time(text: str | None) -> str:
    """An RFC 3339 time in UTC as services parse it, or "" when `text` is not one."""
    moment = parse_time(text)
    return "" if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def human_time(text: str | None) -> str:
    """`2024-05-01 12:00:00 UTC` for people; `text` itself (one line) when it is not a time."""
    moment = parse_time(text)
    if moment is None:
        return one_line(text or "")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
