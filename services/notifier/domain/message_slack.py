"""The Slack channel's body: an incoming-webhook message with Block Kit blocks (pure).

`text` is the fallback notifications show; `blocks` hold a header (status and
alert names), a section per alert (summary, description, labels, times, a
link to its source) and a context block (alerts not shown, the link to
Chimera). `&`, `<` and `>` are escaped in every text, as Slack asks: names
are hostile input, and an unescaped `<!channel>` in a miner's name would
notify everyone. Sections are `verbatim` so Slack does not turn a bare
`@here` or `#channel` into a mention either. Block Kit's limits hold: 50
blocks, 150 characters in a header, 3000 in a section.
"""

from __future__ import annotations

from typing import Any, Final

from .message_group import AlertView, GroupMessage
from .message_text import alert_names, alert_tag, clip, human_time, label_pairs, one_line, safe_url, status_tag

__all__ = ["slack_escape", "slack_payload"]

MAX_BLOCKS: Final = 50
HEADER_LIMIT: Final = 150
TEXT_LIMIT: Final = 3000
_MAX_SECTIONS: Final = MAX_BLOCKS - 2  # beside the header and the context block
_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def slack_escape(text: str) -> str:
    return text.translate(_ESCAPES)


def _link(url: str, label: str) -> str:
    url = safe_url(url)
    # "|" ends the URL part of Slack's <url|label>.
    return f"<{slack_escape(url.replace('|', '%7C'))}|{slack_escape(label)}>" if url and len(url) <= 400 else ""


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(alert: AlertView) -> dict[str, Any]:
    # The pieces' limits add up to well under the section's 3000.
    head = f"*{alert_tag(alert)} {clip(one_line(alert.name) or 'alert', 200, slack_escape)}*"
    if alert.severity:
        head += f" ({clip(one_line(alert.severity), 40, slack_escape)})"
    lines = [head]
    if summary := alert.annotations.get("summary", ""):
        lines.append(clip(summary, 500, slack_escape))
    if description := alert.annotations.get("description", ""):
        lines.append(clip(description, 1400, slack_escape))
    if pairs := label_pairs(alert.labels, skip=("alertname", "severity")):
        lines.append("*Labels:* " + clip(pairs, 600, slack_escape))
    times = f"*Since:* {clip(human_time(alert.starts_at), 40, slack_escape)}"
    if not alert.firing:
        times += f"  *Ended:* {clip(human_time(alert.ends_at), 40, slack_escape)}"
    lines.append(times)
    if link := _link(alert.generator_url, "Source"):
        lines.append(link)
    return {"type": "section", "text": _mrkdwn("\n".join(lines))}


def slack_payload(msg: GroupMessage) -> dict[str, Any]:
    title = one_line(f"{status_tag(msg)} {alert_names(msg.alerts)}")
    sections = [_section(alert) for alert in msg.alerts[:_MAX_SECTIONS]]
    hidden = msg.truncated + len(msg.alerts) - len(sections)
    notes = []
    if hidden:
        notes.append(_mrkdwn(f"{hidden} more alert{'s' if hidden != 1 else ''} not shown"))
    if link := _link(msg.external_url, "Open Chimera"):
        notes.append(_mrkdwn(link))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, HEADER_LIMIT, slack_escape)}},
        *sections,
    ]
    if notes:
        blocks.append({"type": "context", "elements": notes})
    return {
        "text": clip(title, TEXT_LIMIT, slack_escape),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }
