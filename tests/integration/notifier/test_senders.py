"""The senders against real loopback receivers: every channel type's request field by field, and what
each kind of failure (slow, closed, refusing, rate-limiting, redirecting, hostile) comes back as."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest

from services.notifier.adapters.http_send import CheckedResolver, DestinationRefused
from services.notifier.adapters.senders import Senders, SendResult
from services.notifier.domain.channel_types import MASK, check_config
from services.notifier.domain.destinations import Network, parse_networks
from services.notifier.domain.messages import (
    ZERO_TIME,
    AlertView,
    GroupMessage,
    build_group_message,
    discord_payload,
    email_message,
    pagerduty_events,
    slack_payload,
    telegram_payload,
)
from tests.integration.notifier.receivers import HttpReceiver, Reply, SmtpReceiver

pytestmark = pytest.mark.integration

LOOPBACK: tuple[Network, ...] = parse_networks(["127.0.0.0/8", "::1"])
TIMEOUT_S = 2.0
MAX_BYTES = 64 * 1024
EXTERNAL = "https://chimera.example/ui"
GROUP_KEY = '{}:{alertname="HashrateDrop"}'
T0, T1, T2, ENDED = "2024-05-01T12:00:00Z", "2024-05-01T12:05:00Z", "2024-05-01T12:10:00Z", "2024-05-01T12:30:00Z"
SECRET = "whsec-0123456789"
TOKEN = "123456789:AAH-tok_en"
ROUTING_KEY = "R0UT1NGKEY0123456789"


def record(fingerprint: str, status: str, starts_at: str, worker: str) -> dict[str, Any]:
    """A `chimera.alerts` value as the alerter publishes it (docs/alerter.md)."""
    return {
        "fingerprint": fingerprint, "status": status, "starts_at": starts_at,
        "fired_at": starts_at, "ends_at": ENDED if status == "resolved" else None,
        "labels": {"alertname": "HashrateDrop", "severity": "warning", "pool": "main", "worker": worker},
        "annotations": {"summary": f"{worker} hashrate dropped", "description": "1h below 70% of 24h"},
        "name": "HashrateDrop", "severity": "warning", "value": 0.5, "threshold": 0.7, "rule_id": 3,
        "alert_id": 9, "reason": "condition cleared" if status == "resolved" else None,
    }


def group(receiver: str = "ops", *, max_alerts: int = 0, alerts: int = 3) -> GroupMessage:
    """Two firing alerts and a resolved one (firing come first, oldest first)."""
    records = [record("aaaa000000000001", "resolved", T0, "rig-1"), record("aaaa000000000002", "firing", T2, "rig-2"),
               record("aaaa000000000003", "firing", T1, "rig-3")][:alerts]
    views = [AlertView.from_record(r, generator_url=f"https://chimera.example/alerts/{r['fingerprint']}")
             for r in records]
    return build_group_message(receiver, GROUP_KEY, {"alertname": "HashrateDrop"}, views,
                               max_alerts=max_alerts, external_url=EXTERNAL)


@asynccontextmanager
async def started(allowed: tuple[Network, ...] = LOOPBACK, **options: Any) -> AsyncIterator[Senders]:
    senders = Senders(allowed=allowed, timeout_s=options.pop("timeout_s", TIMEOUT_S),
                      max_response_bytes=MAX_BYTES, **options)
    await senders.start()
    try:
        yield senders
    finally:
        await senders.stop()


@pytest.fixture
async def senders() -> AsyncIterator[Senders]:
    async with started() as running:
        yield running


@pytest.fixture
async def hooks() -> AsyncIterator[HttpReceiver]:
    async with HttpReceiver() as receiver:
        yield receiver


def delivered(result: SendResult, status: int) -> None:
    assert (result.ok, result.status_code, result.error, result.retriable, result.refused) == (
        True, status, None, False, False), result
    assert 0 < result.latency_ms < TIMEOUT_S * 1000


# --- each type, field by field ------------------------------------------------------------------

async def test_webhook_posts_alertmanager_v4_signed_over_the_exact_bytes(senders: Senders,
                                                                         hooks: HttpReceiver) -> None:
    msg = group(max_alerts=2)
    config = check_config("webhook", {"url": hooks.url("/alertmanager?team=ops"), "hmac_secret": SECRET}, LOOPBACK)
    delivered(await senders.send("webhook", "ops", config, msg), 200)
    [request] = await hooks.wait_for(1)
    assert (request.method, request.path, request.query) == ("POST", "/alertmanager", {"team": "ops"})
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "ChimeraMonitor-Notifier/1"
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Chimera-Signature"], expected)
    body = request.json
    assert set(body) == {"version", "groupKey", "status", "receiver", "groupLabels", "commonLabels",
                         "commonAnnotations", "externalURL", "truncatedAlerts", "alerts"}
    assert body["version"] == "4"
    assert body["groupKey"] == GROUP_KEY
    assert body["status"] == "firing"
    assert body["receiver"] == "ops"
    assert body["groupLabels"] == {"alertname": "HashrateDrop"}
    assert body["commonLabels"] == {"alertname": "HashrateDrop", "pool": "main", "severity": "warning"}
    assert body["commonAnnotations"] == {"description": "1h below 70% of 24h"}
    assert body["externalURL"] == EXTERNAL
    assert body["truncatedAlerts"] == 1  # the resolved one, cut after the two firing
    assert [alert["fingerprint"] for alert in body["alerts"]] == ["aaaa000000000003", "aaaa000000000002"]
    first = body["alerts"][0]
    assert set(first) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert first["status"] == "firing"
    assert first["labels"] == {"alertname": "HashrateDrop", "pool": "main", "severity": "warning", "worker": "rig-3"}
    assert first["annotations"] == {"description": "1h below 70% of 24h", "summary": "rig-3 hashrate dropped"}
    assert (first["startsAt"], first["endsAt"]) == (T1, ZERO_TIME)
    assert first["generatorURL"] == "https://chimera.example/alerts/aaaa000000000003"


async def test_webhook_without_a_secret_sends_no_signature(senders: Senders, hooks: HttpReceiver) -> None:
    msg = group(alerts=1)
    delivered(await senders.send("webhook", "ops", {"url": hooks.url("/h")}, msg), 200)
    [request] = await hooks.wait_for(1)
    assert "X-Chimera-Signature" not in request.headers
    [alert] = request.json["alerts"]
    assert (request.json["status"], alert["status"], alert["endsAt"]) == ("resolved", "resolved", ENDED)


async def test_slack_gets_blocks_and_the_overrides(senders: Senders, hooks: HttpReceiver) -> None:
    msg = group(max_alerts=20)
    config = check_config("slack", {"webhook_url": hooks.url("/services/T0/B0/xyz"), "channel": "#ops",
                                    "username": "chimera"}, LOOPBACK)
    delivered(await senders.send("slack", "ops", config, msg), 200)
    [request] = await hooks.wait_for(1)
    body = request.json
    assert body == {**slack_payload(msg), "channel": "#ops", "username": "chimera"}
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "section", "section", "context"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "[FIRING:2] HashrateDrop"}
    assert body["text"] == "[FIRING:2] HashrateDrop"
    assert "rig-3 hashrate dropped" in body["blocks"][1]["text"]["text"]
    assert "[RESOLVED]" in body["blocks"][3]["text"]["text"]


async def test_discord_gets_embeds_and_its_204_is_success(senders: Senders, hooks: HttpReceiver) -> None:
    hooks.script("/api/webhooks/1/tok", Reply(204))
    msg = group(max_alerts=10)
    config = check_config("discord", {"webhook_url": hooks.url("/api/webhooks/1/tok"), "username": "Chimera"},
                          LOOPBACK)
    delivered(await senders.send("discord", "ops", config, msg), 204)
    [request] = await hooks.wait_for(1)
    body = request.json
    assert body == {**discord_payload(msg), "username": "Chimera"}
    assert body["allowed_mentions"] == {"parse": []}
    assert [embed["color"] for embed in body["embeds"]] == [0xE53935, 0xE53935, 0x43A047]
    assert [embed["title"] for embed in body["embeds"]] == ["[FIRING] HashrateDrop"] * 2 + ["[RESOLVED] HashrateDrop"]
    assert body["embeds"][0]["url"] == "https://chimera.example/alerts/aaaa000000000003"


async def test_telegram_puts_the_token_in_the_path_and_needs_ok_true(senders: Senders, hooks: HttpReceiver) -> None:
    hooks.script(f"/bot{TOKEN}/sendMessage", Reply(json={"ok": True, "result": {"message_id": 7}}))
    msg = group()
    config = check_config("telegram", {"bot_token": TOKEN, "chat_id": -1001234567890, "api_url": hooks.url("/")},
                          LOOPBACK)
    delivered(await senders.send("telegram", "ops", config, msg), 200)
    [request] = await hooks.wait_for(1)
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert request.json["chat_id"] == "-1001234567890"
    assert request.json["parse_mode"] == "HTML"
    assert request.json["text"] == telegram_payload(msg, "-1001234567890")["text"]
    assert request.json["text"].startswith("🔥 <b>[FIRING:2] HashrateDrop</b>")


async def test_pagerduty_sends_one_event_per_alert_in_order(hooks: HttpReceiver) -> None:
    hooks.default_status = 202
    msg = group()
    config = check_config("pagerduty", {"routing_key": ROUTING_KEY, "events_url": hooks.url("/v2/enqueue")},
                          LOOPBACK)
    async with started() as senders:
        delivered(await senders.send("pagerduty", "ops", config, msg), 202)
    requests = await hooks.wait_for(3)
    assert [r.json for r in requests] == pagerduty_events(msg, ROUTING_KEY)
    assert [(r.json["event_action"], r.json["dedup_key"], r.json["routing_key"]) for r in requests] == [
        ("trigger", "aaaa000000000003", ROUTING_KEY), ("trigger", "aaaa000000000002", ROUTING_KEY),
        ("resolve", "aaaa000000000001", ROUTING_KEY)]
    trigger = requests[0].json["payload"]
    assert (trigger["summary"], trigger["source"], trigger["severity"]) == (
        "HashrateDrop: rig-3 hashrate dropped", "rig-3", "warning")
    assert set(requests[2].json) == {"routing_key", "event_action", "dedup_key"}


async def test_pagerduty_stops_at_the_first_refused_event(senders: Senders, hooks: HttpReceiver) -> None:
    hooks.script("/v2/enqueue", Reply(202), Reply(400, json={"status": "invalid event"}))
    config = {"routing_key": ROUTING_KEY, "events_url": hooks.url("/v2/enqueue")}
    result = await senders.send("pagerduty", "ops", config, group())
    assert (result.ok, result.status_code, result.retriable) == (False, 400, False)
    assert result.error == 'HTTP 400: {"status":"invalid event"} (request 2 of 3)'
    assert len(hooks.requests) == 2


# --- what a failure comes back as ---------------------------------------------------------------

def http_date(seconds_ahead: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_ahead), usegmt=True)


@pytest.mark.parametrize(("reply", "status", "error", "retriable", "retry_after"), [
    (lambda: Reply(503, {"Retry-After": "7"}, "down for\nmaintenance"), 503, "HTTP 503: down for maintenance",
     True, (7.0, 7.0)),
    (lambda: Reply(429, {"Retry-After": http_date(30)}), 429, "HTTP 429", True, (28.0, 30.0)),
    (lambda: Reply(500, {"Retry-After": "5"}), 500, "HTTP 500", True, None),
    (lambda: Reply(400, body="no such hook"), 400, "HTTP 400: no such hook", False, None),
    (lambda: Reply(302, {"Location": "/elsewhere"}), 302, "redirect not followed (302)", False, None),
    (lambda: Reply(200, json={"ok": False}), 200, 'HTTP 200: {"ok":false}', False, None),
], ids=["503-retry-after", "429-http-date", "500", "400", "302", "telegram-not-ok"])
async def test_answers_that_are_not_success(senders: Senders, hooks: HttpReceiver, reply: Callable[[], Reply],
                                            status: int, error: str, retriable: bool,
                                            retry_after: tuple[float, float] | None) -> None:
    hooks.script(f"/bot{TOKEN}/sendMessage", reply())
    config = {"bot_token": TOKEN, "chat_id": "@chimera_ops", "api_url": hooks.url("")}
    result = await senders.send("telegram", "ops", config, group())
    assert (result.ok, result.status_code, result.error, result.retriable, result.refused) == (
        False, status, error, retriable, False)
    if retry_after is None:
        assert result.retry_after_s is None
    else:
        assert result.retry_after_s is not None and retry_after[0] <= result.retry_after_s <= retry_after[1]
    assert [r.path for r in hooks.requests] == [f"/bot{TOKEN}/sendMessage"]  # the redirect was not followed


async def test_rate_limits_in_the_body_and_no_token_in_the_error(senders: Senders, hooks: HttpReceiver) -> None:
    hooks.script(f"/bot{TOKEN}/sendMessage", Reply(429, {"Retry-After": "60"}, json={
        "ok": False, "description": f"Too Many Requests for bot{TOKEN}", "parameters": {"retry_after": 3}}))
    hooks.script("/discord", Reply(429, {"Retry-After": "1"}, json={"retry_after": 0.25, "global": False}))
    telegram = await senders.send("telegram", "ops", {"bot_token": TOKEN, "chat_id": "1", "api_url": hooks.url("")},
                                  group())
    assert (telegram.retriable, telegram.retry_after_s) == (True, 3.0)
    assert telegram.error is not None and TOKEN not in telegram.error and f"bot{MASK}" in telegram.error
    discord = await senders.send("discord", "ops", {"webhook_url": hooks.url("/discord")}, group())
    assert (discord.ok, discord.status_code, discord.retriable, discord.retry_after_s) == (False, 429, True, 0.25)


async def test_a_destination_slower_than_the_timeout(hooks: HttpReceiver) -> None:
    hooks.script("/slow", Reply(delay_s=5.0))
    async with started(timeout_s=0.3) as senders:
        result = await senders.send("webhook", "ops", {"url": hooks.url("/slow")}, group())
    assert (result.ok, result.status_code, result.error, result.retriable) == (
        False, None, "timed out after 0.3s", True)
    assert 250 < result.latency_ms < 1_500


@contextmanager
def closed_port() -> Iterator[int]:
    """A port bound but not listening: a connection to it is refused, and no one else takes it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_a_closed_port_is_a_retriable_connection_error(senders: Senders) -> None:
    with closed_port() as port:
        result = await senders.send("slack", "ops", {"webhook_url": f"http://127.0.0.1:{port}/x"}, group())
    assert (result.ok, result.status_code, result.retriable, result.refused) == (False, None, True, False)
    assert result.error is not None and result.error.startswith(f"cannot connect to 127.0.0.1:{port}")


async def test_a_private_address_is_refused_before_connecting(senders: Senders, hooks: HttpReceiver) -> None:
    result = await senders.send("webhook", "ops", {"url": "http://10.0.0.1/hook"}, group())
    assert (result.ok, result.error, result.retriable, result.refused) == (
        False, "refused: 10.0.0.1 is a private address", False, True)
    assert result.latency_ms < 100  # no connection was tried (10.0.0.1 would not answer in time)
    async with started(allowed=()) as strict:
        loopback = await strict.send("webhook", "ops", {"url": hooks.url("/h")}, group())
    assert (loopback.refused, loopback.retriable) == (True, False)
    assert hooks.requests == []


async def test_a_legacy_numeric_address_is_refused_before_any_dns(hooks: HttpReceiver) -> None:
    # 0x7f.0.0.1 is 127.0.0.1 to a resolver: refused as written, whatever the allow-list.
    async with started(allowed=LOOPBACK) as lenient:
        refused = await lenient.send("webhook", "ops", {"url": f"http://0x7f.0.0.1:{hooks.port}/x"}, group())
    assert (refused.ok, refused.refused, refused.retriable) == (False, True, False)
    assert refused.error is not None and "dotted decimal" in refused.error
    assert hooks.requests == []


@pytest.mark.parametrize("host", ["localhost"])
async def test_names_are_checked_on_every_address_they_resolve_to(hooks: HttpReceiver, host: str) -> None:
    url = f"http://{host}:{hooks.port}/named"
    async with started(allowed=()) as strict:
        refused = await strict.send("webhook", "ops", {"url": url}, group())
    assert (refused.ok, refused.refused, refused.retriable) == (False, True, False)
    assert refused.error is not None and "127.0.0.1 is a loopback address" in refused.error
    assert hooks.requests == []
    async with started(allowed=LOOPBACK) as lenient:
        delivered(await lenient.send("webhook", "ops", {"url": url}, group()), 200)
    assert [r.path for r in await hooks.wait_for(1)] == ["/named"]


async def test_the_resolver_refuses_a_name_of_the_local_network() -> None:
    strict = CheckedResolver(())
    with pytest.raises(DestinationRefused, match="localhost resolves to 127.0.0.1"):
        await strict.resolve("localhost", 80)
    lenient = CheckedResolver(LOOPBACK)
    assert {r["host"] for r in await lenient.resolve("localhost", 80)} <= {"127.0.0.1", "::1"}
    await strict.close()
    await lenient.close()


async def test_a_huge_answer_is_read_only_up_to_the_limit(senders: Senders, hooks: HttpReceiver) -> None:
    hooks.script("/big", Reply(503, stream_bytes=20 * 1024 * 1024))
    began = time.monotonic()
    result = await senders.send("webhook", "ops", {"url": hooks.url("/big")}, group())
    assert time.monotonic() - began < 2.0
    assert (result.ok, result.status_code, result.retriable) == (False, 503, True)
    assert result.error == "HTTP 503: " + "x" * 200
    [stream] = await hooks.wait_for_streams(1)
    assert not stream.complete and stream.sent < 20 * 1024 * 1024


async def test_config_missing_what_its_type_needs_is_not_retried(senders: Senders) -> None:
    result = await senders.send("webhook", "ops", {"hmac_secret": SECRET}, group())
    assert (result.ok, result.error, result.retriable, result.refused) == (
        False, "bad config: config.url is missing", False, False)
    with pytest.raises(ValueError, match="unknown channel type 'sms'"):
        await senders.send("sms", "ops", {}, group())


async def test_stop_is_safe_before_start_and_twice() -> None:
    senders = Senders(allowed=LOOPBACK, timeout_s=1.0, max_response_bytes=MAX_BYTES)
    await senders.stop()
    await senders.start()
    await senders.stop()
    await senders.stop()


# --- email --------------------------------------------------------------------------------------

def email_config(smtp: SmtpReceiver, **changes: Any) -> dict[str, Any]:
    raw = {"to": ["ops@example.com", "oncall@example.com"], "from": "chimera@alerts.example",
           "smarthost": "localhost", "port": smtp.port, **changes}
    return check_config("email", raw)


async def test_email_through_starttls_and_auth() -> None:
    msg = group()
    async with SmtpReceiver(starttls=True, user="alerts", password="s3cret") as smtp:
        async with started(smtp_ssl_context=smtp.client_ssl_context()) as senders:
            config = email_config(smtp, username="alerts", password="s3cret")
            delivered(await senders.send("email", "ops", config, msg), 250)
        [mail] = await smtp.wait_for(1)
    assert (mail.mail_from, mail.rcpt_tos, mail.tls, mail.user) == (
        "chimera@alerts.example", ("ops@example.com", "oncall@example.com"), True, "alerts")
    subject, text, html = email_message(msg, sender="chimera@alerts.example", recipients=config["to"])
    message = mail.message
    assert (message["From"], message["To"], message["Subject"]) == (
        "chimera@alerts.example", "ops@example.com, oncall@example.com", "[FIRING:2] HashrateDrop")
    assert subject == "[FIRING:2] HashrateDrop"
    assert abs((parsedate_to_datetime(message["Date"]) - datetime.now(UTC)).total_seconds()) < 60
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith("@alerts.example>")
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert [part.get_content() for part in parts] == [text, html]


async def test_email_over_implicit_tls() -> None:
    async with SmtpReceiver(implicit_tls=True, user="alerts", password="pw") as smtp:
        async with started(smtp_ssl_context=smtp.client_ssl_context()) as senders:
            config = email_config(smtp, smarthost="127.0.0.1", tls=True, starttls=False, username="alerts",
                                  password="pw")
            delivered(await senders.send("email", "ops", config, group()), 250)
        [mail] = await smtp.wait_for(1)
    assert (mail.tls, mail.user) == (True, "alerts")


async def test_smtp_refusals_and_their_retry() -> None:
    async with SmtpReceiver(starttls=True, user="alerts", password="s3cret") as smtp:
        smtp.script_data("451 4.3.0 try again later", "554 5.6.0 message refused")
        async with started(smtp_ssl_context=smtp.client_ssl_context()) as senders:
            wrong = await senders.send("email", "ops", email_config(smtp, username="alerts", password="guess"),
                                       group())
            config = email_config(smtp, username="alerts", password="s3cret")
            later = await senders.send("email", "ops", config, group())
            never = await senders.send("email", "ops", config, group())
        assert smtp.auth_attempts[0] == ("alerts", False)
        assert smtp.mails == []
    assert (wrong.ok, wrong.status_code, wrong.retriable, wrong.refused) == (False, 535, False, False)
    assert wrong.error is not None and wrong.error.startswith("SMTP 535") and "guess" not in wrong.error
    assert (later.ok, later.status_code, later.error, later.retriable) == (
        False, 451, "SMTP 451: 4.3.0 try again later", True)
    assert (never.ok, never.status_code, never.retriable) == (False, 554, False)


async def test_starttls_required_but_not_offered() -> None:
    async with SmtpReceiver() as smtp, started() as senders:
        result = await senders.send("email", "ops", email_config(smtp), group())
        assert smtp.mails == []
    assert (result.ok, result.retriable, result.refused) == (False, False, False)
    assert result.error == "the server does not offer STARTTLS, which the channel requires"


async def test_a_certificate_the_system_does_not_trust_is_refused() -> None:
    async with SmtpReceiver(starttls=True) as smtp, started() as senders:
        result = await senders.send("email", "ops", email_config(smtp), group())
        assert smtp.mails == []
    assert (result.ok, result.retriable) == (False, False)
    assert result.error is not None and result.error.startswith("TLS certificate not accepted")


async def test_the_smarthost_is_checked_and_a_closed_one_retried() -> None:
    async with SmtpReceiver(starttls=True) as smtp:
        async with started(allowed=(), smtp_ssl_context=smtp.client_ssl_context()) as strict:
            by_name = await strict.send("email", "ops", email_config(smtp), group())
            by_address = await strict.send("email", "ops", email_config(smtp, smarthost="127.0.0.1"), group())
        assert smtp.mails == []
    assert (by_name.refused, by_name.retriable) == (True, False)
    assert by_name.error == "refused: localhost resolves to 127.0.0.1: 127.0.0.1 is a loopback address"
    assert (by_address.refused, by_address.error) == (True, "refused: 127.0.0.1 is a loopback address")
    with closed_port() as port:
        async with started() as senders:
            closed = await senders.send("email", "ops", {**email_config(smtp), "port": port}, group())
    assert (closed.ok, closed.retriable, closed.refused, closed.status_code) == (False, True, False, None)
