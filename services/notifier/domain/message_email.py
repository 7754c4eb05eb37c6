"""The email channel's message: subject, plain text body and HTML body (pure).

The subject is Alertmanager's (`[FIRING:3] HighTemperature`,
`[RESOLVED] HighTemperature`), on one line: a name carrying CR or LF must
not add a header. The addresses are checked here for the same reason, before
the adapter writes them into `From` and `To`. In the HTML body every dynamic
string is escaped and links are http(s) only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from typing import Final

from .message_group import AlertView, GroupMessage
from .message_text import alert_names, alert_tag, clip, human_time, label_pairs, one_line, safe_url, status_tag

__all__ = ["SUBJECT_LIMIT", "email_message"]

SUBJECT_LIMIT: Final = 200
_ADDRESS_REFUSED: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FIRING_COLOUR: Final = "#e53935"
_RESOLVED_COLOUR: Final = "#43a047"


def _check_address(address: object, where: str) -> None:
    if not isinstance(address, str) or "@" not in address or _ADDRESS_REFUSED.search(address):
        raise ValueError(f"{where}: {address!r} is not an email address on one line")


def _plural(count: int) -> str:
    return f"{count} more alert{'s' if count != 1 else ''} not shown."


def _text_block(alert: AlertView) -> str:
    head = f"{alert_tag(alert)} {one_line(alert.name) or 'alert'}"
    if alert.severity:
        head += f" ({one_line(alert.severity)})"
    lines = [head]
    if summary := alert.annotations.get("summary", ""):
        lines.append(clip(summary, 1000))
    if description := alert.annotations.get("description", ""):
        lines.append(clip(description, 4000))
    if pairs := label_pairs(alert.labels, skip=("alertname", "severity")):
        lines.append("Labels: " + clip(pairs, 2000))
    lines.append(f"Since: {human_time(alert.starts_at)}")
    if not alert.firing:
        lines.append(f"Ended: {human_time(alert.ends_at)}")
    if url := safe_url(alert.generator_url):
        lines.append(f"Source: {url}")
    return "\n".join(lines)


def _html_block(alert: AlertView) -> str:
    colour = _FIRING_COLOUR if alert.firing else _RESOLVED_COLOUR
    head = f"{escape(alert_tag(alert))} {escape(one_line(alert.name) or 'alert')}"
    if alert.severity:
        head += f" <small>({escape(one_line(alert.severity))})</small>"
    parts = [f'<div style="border-left:4px solid {colour};padding-left:8px;margin:0 0 16px 0">',
             f"<h3 style=\"margin:0 0 4px 0\">{head}</h3>"]
    if summary := alert.annotations.get("summary", ""):
        parts.append(f"<p>{clip(summary, 1000, escape)}</p>")
    if description := alert.annotations.get("description", ""):
        parts.append(f"<p><i>{clip(description, 4000, escape).replace(chr(10), '<br>')}</i></p>")
    rows = "".join(f"<tr><td><b>{escape(name)}</b></td><td>{clip(value, 500, escape)}</td></tr>"
                   for name, value in sorted(alert.labels.items()) if name not in ("alertname", "severity"))
    if rows:
        parts.append(f"<table>{rows}</table>")
    times = f"Since {escape(human_time(alert.starts_at))}"
    if not alert.firing:
        times += f", ended {escape(human_time(alert.ends_at))}"
    parts.append(f"<p>{times}</p>")
    if url := safe_url(alert.generator_url):
        parts.append(f'<p><a href="{escape(url)}">Source</a></p>')
    parts.append("</div>")
    return "\n".join(parts)


def email_message(msg: GroupMessage, *, sender: str, recipients: Sequence[str]) -> tuple[str, str, str]:
    """(subject, plain text, HTML); ValueError when an address would break the headers."""
    _check_address(sender, "sender")
    if isinstance(recipients, str) or not recipients:
        raise ValueError("recipients: a list of one or more addresses")
    for recipient in recipients:
        _check_address(recipient, "recipients")
    subject = clip(one_line(f"{status_tag(msg)} {alert_names(msg.alerts)}"), SUBJECT_LIMIT)
    url = safe_url(msg.external_url)
    footer = f'Chimera Monitor, channel "{one_line(msg.receiver)}"'

    text = [subject, *(_text_block(alert) for alert in msg.alerts)]
    if msg.truncated:
        text.append(_plural(msg.truncated))
    if url:
        text.append(f"Open Chimera: {url}")
    text.append(f"-- \n{footer}")

    colour = _FIRING_COLOUR if msg.status == "firing" else _RESOLVED_COLOUR
    html = ["<!DOCTYPE html>", '<html><body style="font-family:sans-serif">',
            f'<h2 style="color:{colour}">{escape(subject)}</h2>', *(_html_block(alert) for alert in msg.alerts)]
    if msg.truncated:
        html.append(f"<p>{escape(_plural(msg.truncated))}</p>")
    if url:
        html.append(f'<p><a href="{escape(url)}">Open Chimera</a></p>')
    html += [f'<p style="color:#888888">{escape(footer)}</p>', "</body></html>"]
    return subject, "\n\n".join(text) + "\n", "\n".join(html) + "\n"
