"""Notification messages in each service's format, built from hostile alerts and held to each service's limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser
from typing import Any

import pytest

from services.notifier.domain import messages
from services.notifier.domain.message_text import clip, utf16_len
from services.notifier.domain.messages import (
    SIGNATURE_HEADER,
    ZERO_TIME,
    AlertView,
    GroupMessage,
    build_group_message,
    common_annotations,
    common_labels,
    discord_payload,
    email_message,
    pagerduty_events,
    slack_payload,
    telegram_payload,
    webhook_payload,
    webhook_signature,
)

pytestmark = pytest.mark.unit

T0 = "2024-05-01T12:00:00Z"
T1 = "2024-05-01T12:05:00Z"
ENDED = "2024-05-01T12:30:00Z"
HOSTILE = '<!channel> & <@everyone> [click](http://evil.example) <script>alert("x")</script> **bold**'


def alert(fingerprint: str = "fp1", status: str = "firing", *, starts_at: str = T0,
          labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
          generator_url: str = "") -> AlertView:
    return AlertView(
        fingerprint=fingerprint,
        status=status,
        labels={"alertname": "HighTemperature", "severity": "critical", **(labels or {})},
        annotations=dict(annotations or {"summary": "rig-1 is hot", "description": "92 °C, limit 85 °C"}),
        starts_at=starts_at,
        ends_at=None if status == "firing" else ENDED,
        generator_url=generator_url,
    )


def group(*alerts: AlertView, max_alerts: int = 0, external_url: str = "https://chimera.example/ui") -> GroupMessage:
    return build_group_message("ops", '{}:{alertname="HighTemperature"}', {"alertname": "HighTemperature"},
                               alerts, max_alerts=max_alerts, external_url=external_url)


def record(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "fingerprint": "0123456789abcdef", "status": "firing", "starts_at": T0, "fired_at": T1, "ends_at": None,
        "labels": {"alertname": "HashrateDrop", "severity": "warning", "pool": "main"},
        "annotations": {"summary": "hashrate dropped", "description": "1h below 70% of 24h"},
        "name": "HashrateDrop", "severity": "warning", "value": 0.5, "threshold": 0.7, "rule_id": 3,
        "alert_id": 9, "reason": None,
    }
    value.update(changes)
    return value


# --- AlertView.from_record -----------------------------------------------------------------

def test_a_firing_record_becomes_an_alert_without_an_end() -> None:
    view = AlertView.from_record(record(ends_at=ENDED), generator_url="https://chimera.example/alerts/9")
    assert view == AlertView("0123456789abcdef", "firing",
                             {"alertname": "HashrateDrop", "severity": "warning", "pool": "main"},
                             {"summary": "hashrate dropped", "description": "1h below 70% of 24h"},
                             T0, None, "https://chimera.example/alerts/9")


def test_a_resolved_record_keeps_its_end_and_names_come_from_the_record() -> None:
    view = AlertView.from_record(record(status="resolved", ends_at=ENDED, labels={"pool": "main"},
                                        annotations=None, reason="condition cleared"))
    assert (view.status, view.ends_at, view.annotations) == ("resolved", ENDED, {})
    assert view.labels == {"pool": "main", "alertname": "HashrateDrop", "severity": "warning"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fingerprint": ""}, "fingerprint"),
        ({"fingerprint": 7}, "fingerprint"),
        ({"status": "pending"}, "status"),
        ({"starts_at": None}, "starts_at"),
        ({"starts_at": "2024-05-01T12:00:00"}, "starts_at"),  # no offset: not RFC 3339
        ({"status": "resolved", "ends_at": None}, "ends_at"),
        ({"labels": ["pool"]}, "labels"),
        ({"labels": {"pool": 1}}, "labels"),
        ({"annotations": {"summary": None}}, "annotations"),
    ],
)
def test_a_record_off_the_schema_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AlertView.from_record(record(**changes))


# --- ordering, truncation, common pairs ----------------------------------------------------

def test_alerts_are_ordered_firing_first_then_oldest_then_by_fingerprint() -> None:
    alerts = [
        alert("r-old", "resolved", starts_at="2024-05-01T10:00:00Z"),
        alert("f-late", starts_at="2024-05-01T12:00:00.5+00:00"),
        alert("f-b", starts_at=T0),
        alert("f-a", starts_at=T0),
        alert("f-early", starts_at="2024-05-01T13:00:00+02:00"),  # 11:00 UTC: compared as times, not as text
    ]
    assert [a.fingerprint for a in group(*alerts).alerts] == ["f-early", "f-a", "f-b", "f-late", "r-old"]


@pytest.mark.parametrize(("max_alerts", "shown", "truncated"), [(0, 5, 0), (2, 2, 3), (5, 5, 0), (7, 5, 0), (1, 1, 4)])
def test_max_alerts_cuts_and_counts(max_alerts: int, shown: int, truncated: int) -> None:
    msg = group(*(alert(f"fp{i}", starts_at=f"2024-05-01T12:0{i}:00Z") for i in range(5)), max_alerts=max_alerts)
    assert (len(msg.alerts), msg.truncated) == (shown, truncated)
    assert [a.fingerprint for a in msg.alerts] == [f"fp{i}" for i in range(shown)]


@pytest.mark.parametrize(
    ("statuses", "status"),
    [(("resolved", "firing"), "firing"), (("resolved", "resolved"), "resolved"), (("firing",), "firing")],
)
def test_the_group_fires_while_any_alert_fires_even_one_cut(statuses: tuple[str, ...], status: str) -> None:
    msg = group(*(alert(f"fp{i}", s) for i, s in enumerate(statuses)), max_alerts=1)
    assert msg.status == status


def test_a_negative_limit_or_no_alerts_is_refused() -> None:
    with pytest.raises(ValueError, match="max_alerts"):
        group(alert(), max_alerts=-1)
    with pytest.raises(ValueError, match="at least one alert"):
        group()


@pytest.mark.parametrize(
    ("label_sets", "common"),
    [
        ([{"pool": "main", "worker": "a"}, {"pool": "main", "worker": "b"}], {"pool": "main"}),
        ([{"pool": "main"}, {"pool": "main", "worker": "b"}], {"pool": "main"}),
        ([{"pool": "main", "worker": "a"}], {"pool": "main", "worker": "a"}),
        ([{"pool": "main"}, {"pool": "side"}], {}),
        ([], {}),
    ],
)
def test_common_pairs_are_those_every_alert_shares(label_sets: list[dict[str, str]], common: dict[str, str]) -> None:
    alerts = [AlertView(f"fp{i}", "firing", labels, labels, T0, None) for i, labels in enumerate(label_sets)]
    assert common_labels(alerts) == common
    assert common_annotations(alerts) == common


# --- webhook (Alertmanager v4) -------------------------------------------------------------

# The contract, section 4: the payload's and each alert's fields, no more, no fewer.
V4_FIELDS = {"version", "groupKey", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations",
             "externalURL", "truncatedAlerts", "alerts"}
V4_ALERT_FIELDS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}


def test_the_webhook_payload_is_alertmanager_v4_field_by_field() -> None:
    firing = alert("fp-f", labels={"pool": "main", "worker": "a"}, generator_url="https://chimera.example/r/1")
    resolved = alert("fp-r", "resolved", starts_at="2024-05-01T11:00:00Z", labels={"pool": "main", "worker": "b"})
    cut = alert("fp-cut", "resolved", starts_at="2024-05-01T11:30:00Z", labels={"pool": "side"})
    payload = webhook_payload(group(resolved, cut, firing, max_alerts=2))

    assert set(payload) == V4_FIELDS
    assert payload["version"] == "4"
    assert payload["groupKey"] == '{}:{alertname="HighTemperature"}'
    assert payload["status"] == "firing"
    assert payload["receiver"] == "ops"
    assert payload["groupLabels"] == {"alertname": "HighTemperature"}
    # Over the alerts sent, as Alertmanager computes them after the cut: "side" is not among them.
    assert payload["commonLabels"] == {"alertname": "HighTemperature", "pool": "main", "severity": "critical"}
    assert payload["commonAnnotations"] == {"summary": "rig-1 is hot", "description": "92 °C, limit 85 °C"}
    assert payload["externalURL"] == "https://chimera.example/ui"
    assert payload["truncatedAlerts"] == 1
    assert [set(a) for a in payload["alerts"]] == [V4_ALERT_FIELDS, V4_ALERT_FIELDS]
    assert payload["alerts"][0] == {
        "status": "firing",
        "labels": {"alertname": "HighTemperature", "pool": "main", "severity": "critical", "worker": "a"},
        "annotations": {"description": "92 °C, limit 85 °C", "summary": "rig-1 is hot"},
        "startsAt": T0,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://chimera.example/r/1",
        "fingerprint": "fp-f",
    }
    assert ZERO_TIME == "0001-01-01T00:00:00Z"
    assert (payload["alerts"][1]["status"], payload["alerts"][1]["endsAt"]) == ("resolved", ENDED)
    assert json.loads(json.dumps(payload)) == payload


def test_the_signature_is_hmac_sha256_hex_of_the_body() -> None:
    # RFC 4231, test case 2.
    assert webhook_signature(b"Jefe", b"what do ya want for nothing?") == \
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert SIGNATURE_HEADER == "X-Chimera-Signature"
    body = json.dumps(webhook_payload(group(alert()))).encode()
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(webhook_signature(b"s3cret", body), expected)
    with pytest.raises(ValueError, match="secret"):
        webhook_signature(b"", body)


# --- Slack ---------------------------------------------------------------------------------

def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [t for key, value in node.items() for t in ([value] if key == "text" and isinstance(value, str)
                                                           else _texts(value))]
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


def test_slack_escapes_every_text() -> None:
    hostile = alert(labels={"alertname": "<!channel> & co", "miner": "<!here>"},
                    annotations={"summary": HOSTILE, "description": "a > b & c < d"})
    payload = slack_payload(group(hostile))
    texts = _texts(payload)
    assert payload["text"].startswith("[FIRING:1] &lt;!channel&gt; &amp; co")
    assert payload["blocks"][0]["text"]["text"] == "[FIRING:1] &lt;!channel&gt; &amp; co"
    assert "a &gt; b &amp; c &lt; d" in payload["blocks"][1]["text"]["text"]
    for text in texts:
        assert "<!" not in text and "<@" not in text and "<script" not in text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text
    assert all(block["text"]["verbatim"] for block in payload["blocks"][1:-1])


def test_slack_keeps_to_block_kit_limits_and_counts_what_it_left_out() -> None:
    long_name = {"alertname": "A" * 400}
    alerts = [alert(f"fp{i:02}", labels=long_name, annotations={"description": "&" * 5000}) for i in range(60)]
    payload = slack_payload(group(*alerts, max_alerts=55))
    blocks = payload["blocks"]
    assert len(blocks) == 50
    assert len(blocks[0]["text"]["text"]) <= 150 and blocks[0]["text"]["text"].endswith("…")
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert blocks[-1]["type"] == "context"
    assert blocks[-1]["elements"][0]["text"] == "12 more alerts not shown"  # 5 cut, 7 past the 48 sections
    assert blocks[-1]["elements"][1]["text"] == "<https://chimera.example/ui|Open Chimera>"


# --- Discord -------------------------------------------------------------------------------

def _embed_chars(embed: dict[str, Any]) -> int:
    fields = sum(utf16_len(f["name"]) + utf16_len(f["value"]) for f in embed.get("fields", []))
    return utf16_len(embed.get("title", "")) + utf16_len(embed.get("description", "")) + fields


def test_discord_sends_ten_embeds_and_counts_the_rest() -> None:
    alerts = [alert(f"fp{i:02}") for i in range(11)]
    payload = discord_payload(group(*alerts))
    assert len(payload["embeds"]) == 10
    assert "1 more alert not shown" in payload["content"]
    cut = discord_payload(group(*alerts, alert("x1"), alert("x2"), alert("x3"), max_alerts=11))
    assert "4 more alerts not shown" in cut["content"]  # 3 cut, 1 past the 10 embeds
    assert payload["allowed_mentions"] == {"parse": []}


def test_discord_colours_firing_red_and_resolved_green() -> None:
    payload = discord_payload(group(alert("a"), alert("b", "resolved")))
    assert [e["color"] for e in payload["embeds"]] == [0xE53935, 0x43A047]


@pytest.mark.parametrize(
    ("labels", "annotations", "check"),
    [
        ({"alertname": "N" * 300}, None, lambda e: len(e["title"]) <= 256 and e["title"].endswith("…")),
        ({}, {"description": "d" * 5000},
         lambda e: len(e["description"]) <= 4096 and e["description"].endswith("…")),
        ({f"label{i:02}": "v" for i in range(30)}, None, lambda e: len(e["fields"]) <= 25),
        ({"pool": "p" * 2000}, None, lambda e: all(len(f["value"]) <= 1024 for f in e["fields"])),
        ({"pool": ""}, None, lambda e: all(f["value"] for f in e["fields"])),
    ],
)
def test_discord_cuts_every_text_to_its_limit(labels: dict[str, str], annotations: dict[str, str] | None,
                                              check: Any) -> None:
    embed = discord_payload(group(alert(labels=labels, annotations=annotations)))["embeds"][0]
    assert check(embed), embed


def test_discord_keeps_all_embeds_within_6000_and_escapes_markdown() -> None:
    alerts = [alert(f"fp{i}", labels={"miner": HOSTILE}, annotations={"summary": HOSTILE, "description": "x" * 5000})
              for i in range(10)]
    payload = discord_payload(group(*alerts))
    assert sum(_embed_chars(e) for e in payload["embeds"]) <= 6000
    description = payload["embeds"][0]["description"]
    assert "\\[click\\]\\(http://evil.example\\)" in description and "\\<@everyone\\>" in description
    assert len(payload["content"]) <= 2000


# --- Telegram ------------------------------------------------------------------------------

class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.seen: set[str] = set()
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(tag)
        self.seen.add(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"</{tag}> closes nothing"

    def handle_data(self, data: str) -> None:
        self.text += data


def _parse(html_text: str) -> _Tags:
    parser = _Tags()
    parser.feed(html_text)
    parser.close()
    assert parser.open == []
    return parser


def test_telegram_escapes_every_dynamic_string() -> None:
    hostile = alert(labels={"alertname": "<b>Bold</b> & co", "miner": '"><a href="x">'},
                    annotations={"summary": HOSTILE, "description": "a < b"},
                    generator_url='javascript:alert("x")')
    payload = telegram_payload(group(hostile), chat_id=-100123)
    assert (payload["chat_id"], payload["parse_mode"], payload["disable_web_page_preview"]) == (-100123, "HTML", True)
    parsed = _parse(payload["text"])
    assert parsed.seen <= {"b", "i", "code", "a"}
    assert escape("<b>Bold</b> & co") in payload["text"]
    assert HOSTILE in parsed.text and "javascript:" not in payload["text"]


def test_telegram_stays_within_4096_and_says_what_it_left_out() -> None:
    alerts = [alert(f"fp{i:02}", labels={"miner": "<&>" * 400},
                    annotations={"summary": "😀" * 1000, "description": '"' * 3000}) for i in range(40)]
    text = telegram_payload(group(*alerts, max_alerts=30), chat_id="@ops")["text"]
    assert utf16_len(text) <= 4096
    shown = text.count("<b>[FIRING]")
    assert shown >= 1
    assert f"… and {40 - shown} more alerts not shown" in text
    _parse(text)


# --- PagerDuty -----------------------------------------------------------------------------

def test_pagerduty_triggers_firing_and_resolves_resolved_under_the_fingerprint() -> None:
    firing = alert("fp-f", labels={"worker": "rig-1", "pool": "main"}, generator_url="https://chimera.example/r/1")
    resolved = alert("fp-r", "resolved")
    trigger, resolve = pagerduty_events(group(resolved, firing), routing_key="R" * 32)
    assert resolve == {"routing_key": "R" * 32, "event_action": "resolve", "dedup_key": "fp-r"}
    assert (trigger["event_action"], trigger["dedup_key"], trigger["routing_key"]) == ("trigger", "fp-f", "R" * 32)
    assert trigger["payload"]["summary"] == "HighTemperature: rig-1 is hot"
    assert trigger["payload"]["source"] == "rig-1"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["timestamp"] == T0
    assert trigger["payload"]["custom_details"] == {
        "labels": {"alertname": "HighTemperature", "pool": "main", "severity": "critical", "worker": "rig-1"},
        "annotations": {"description": "92 °C, limit 85 °C", "summary": "rig-1 is hot"},
    }
    assert trigger["links"] == [{"href": "https://chimera.example/r/1", "text": "Source"}]
    assert trigger["client_url"] == "https://chimera.example/ui"


@pytest.mark.parametrize(
    ("severity", "mapped"),
    [("critical", "critical"), ("error", "error"), ("warning", "warning"), ("info", "info"),
     ("Warning", "warning"), ("page-me", "error"), ("", "error")],
)
def test_pagerduty_maps_severities(severity: str, mapped: str) -> None:
    (event,) = pagerduty_events(group(alert(labels={"severity": severity})), routing_key="k")
    assert event["payload"]["severity"] == mapped


@pytest.mark.parametrize(
    ("labels", "source"),
    [
        ({"pool": "main", "miner": "m1", "worker": "w1", "host": "h1", "instance": "i1"}, "i1"),
        ({"pool": "main", "miner": "m1", "worker": "w1", "host": "h1"}, "h1"),
        ({"pool": "main", "miner": "m1", "worker": "w1"}, "w1"),
        ({"pool": "main", "miner": "m1"}, "m1"),
        ({"pool": "main"}, "main"),
        ({"worker": "", "pool": "main"}, "main"),
        ({}, "chimera"),
    ],
)
def test_pagerduty_source_is_the_most_specific_label(labels: dict[str, str], source: str) -> None:
    (event,) = pagerduty_events(group(alert(labels=labels)), routing_key="k")
    assert event["payload"]["source"] == source


def test_pagerduty_summary_is_cut_and_a_routing_key_is_required() -> None:
    (event,) = pagerduty_events(group(alert(annotations={"summary": "s" * 2000})), routing_key="k")
    assert len(event["payload"]["summary"]) <= 1024
    with pytest.raises(ValueError, match="routing key"):
        pagerduty_events(group(alert()), routing_key="")


# --- email ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("statuses", "subject"),
    [
        (("firing", "firing", "firing"), "[FIRING:3] HighTemperature"),
        (("firing", "resolved"), "[FIRING:1] HighTemperature"),
        (("resolved",), "[RESOLVED] HighTemperature"),
    ],
)
def test_email_subject_is_alertmanagers(statuses: tuple[str, ...], subject: str) -> None:
    msg = group(*(alert(f"fp{i}", s) for i, s in enumerate(statuses)))
    assert email_message(msg, sender="chimera@example.com", recipients=["ops@example.com"])[0] == subject


def test_email_subject_is_one_line_and_html_is_escaped() -> None:
    hostile = alert(labels={"alertname": "Bad\r\nBcc: victim@example.com\u2028X"},
                    annotations={"summary": "<script>alert(1)</script>", "description": "line 1\nline 2 & more"},
                    generator_url="javascript:alert(1)")
    subject, text, html_body = email_message(group(hostile), sender="chimera@example.com",
                                             recipients=["ops@example.com"])
    assert subject == "[FIRING:1] Bad Bcc: victim@example.com X"
    assert not set(subject) & {"\r", "\n", "\u2028"}
    assert "<script>" not in html_body and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_body
    assert "line 1<br>line 2 &amp; more" in html_body
    assert "javascript:" not in html_body and "javascript:" not in text
    assert "<script>alert(1)</script>" in text  # plain text is shown as it is
    _parse(html_body.replace("<!DOCTYPE html>", "").replace("<br>", ""))


@pytest.mark.parametrize(
    ("sender", "recipients"),
    [
        ("chimera@example.com\r\nBcc: x@example.com", ["ops@example.com"]),
        ("chimera@example.com", ["ops@example.com\nBcc: x@example.com"]),
        ("chimera@example.com", []),
        ("chimera@example.com", "ops@example.com"),
        ("not an address", ["ops@example.com"]),
    ],
)
def test_email_refuses_addresses_that_would_break_headers(sender: str, recipients: Any) -> None:
    with pytest.raises(ValueError):
        email_message(group(alert()), sender=sender, recipients=recipients)


# --- every format --------------------------------------------------------------------------

def _every_format(msg: GroupMessage) -> list[str]:
    return [
        json.dumps(webhook_payload(msg)), json.dumps(slack_payload(msg)), json.dumps(discord_payload(msg)),
        json.dumps(telegram_payload(msg, 1)), json.dumps(pagerduty_events(msg, "k")),
        *email_message(msg, sender="a@example.com", recipients=["b@example.com"])[1:],
    ]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://x.example/\"onmouseover=\"x", "ftp://x.example/",
                                 "https:///nohost", "/relative/path"])
def test_no_format_links_an_unsafe_url(url: str) -> None:
    msg = group(alert(generator_url=url), external_url=url)
    for rendered in _every_format(msg)[1:]:  # the webhook carries the URLs as data, as Alertmanager does
        assert "javascript:" not in rendered and "onmouseover" not in rendered and "ftp:" not in rendered
        assert "nohost" not in rendered and "/relative/path" not in rendered


def test_the_test_message_is_one_firing_alert_every_format_takes() -> None:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    msg = messages.test_message("ops", now=at, external_url="https://chimera.example/ui")
    assert (msg.receiver, msg.status, msg.truncated, len(msg.alerts)) == ("ops", "firing", 0, 1)
    (only,) = msg.alerts
    assert (only.name, only.severity, only.starts_at, only.ends_at) == (messages.TEST_ALERTNAME, "info", T0, None)
    assert messages.test_message("ops", now=at) == messages.test_message("ops", now=at)
    assert messages.test_message("ops", now=at).alerts[0].fingerprint != \
        messages.test_message("dev", now=at).alerts[0].fingerprint
    assert all(_every_format(msg))
    with pytest.raises(ValueError, match="time zone"):
        messages.test_message("ops", now=datetime(2024, 5, 1))


# --- clipping ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "limit", "escaped", "expected"),
    [
        ("abc", 3, False, "abc"),
        ("abcd", 3, False, "ab…"),
        ("a&b", 5, True, "a…"),  # "&amp;" would not fit whole: it is left out, never split
        ("a&b", 7, True, "a&amp;b"),
        ("😀😀😀", 4, False, "😀…"),  # an emoji counts 2, as UTF-16 counts it
        ("abc", 0, False, ""),
    ],
)
def test_clip_cuts_between_characters_within_the_limit(text: str, limit: int, escaped: bool, expected: str) -> None:
    result = clip(text, limit, escape if escaped else (lambda s: s))
    assert result == expected
    assert utf16_len(result) <= limit
