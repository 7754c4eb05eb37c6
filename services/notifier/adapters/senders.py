"""Delivering one notification to one channel, per channel type, over real HTTP and SMTP.

`Senders.send` turns a final `GroupMessage` into the channel type's request
(the bodies come from the pure message builders), sends it through
`http_send` or `smtp_send`, and says what happened in a `SendResult`: never
an exception for what a destination or the network does, so the delivery
loop has one thing to look at. `retriable` is the caller's cue to try
again later, `retry_after_s` how much later the destination asked for.

Secrets (tokens, keys, passwords, URLs carrying them) never reach an error
text: every secret of the channel's config is masked out of it, whatever
the destination echoed back.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote

import orjson

from services.notifier.domain.channel_types import CHANNEL_TYPES, MASK
from services.notifier.domain.destinations import Network
from services.notifier.domain.message_group import GroupMessage
from services.notifier.domain.messages import (
    SIGNATURE_HEADER,
    discord_payload,
    email_message,
    pagerduty_events,
    slack_payload,
    telegram_payload,
    webhook_payload,
    webhook_signature,
)

from .http_send import HttpFailure, HttpPoster, HttpReply
from .smtp_send import SmtpSender, SmtpServer, build_email

__all__ = ["SendResult", "Senders"]

log = logging.getLogger(__name__)

_BODY_CHARS: Final = 200
_JSON: Final = {"Content-Type": "application/json"}
_DELTA_SECONDS: Final = re.compile(r"^\s*(\d{1,10}(?:\.\d{1,6})?)\s*$")
_RATE_LIMITED: Final = 429
_UNAVAILABLE: Final = 503


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    status_code: int | None  # the HTTP status of the last request, or the SMTP reply code
    error: str | None  # short and for people; set on failure (and on an email some recipients refused)
    retriable: bool  # timeouts, connection errors, 5xx, 429 (SMTP: 4xx); never a refused destination
    retry_after_s: float | None  # what the destination asked for on 429/503
    latency_ms: float
    refused: bool = False  # nothing was sent: the destination was refused by the address check


@dataclass(frozen=True, slots=True)
class _Post:
    url: str
    body: bytes
    headers: Mapping[str, str]


class _BadConfig(Exception):
    """The config lacks what its type needs (it was not the output of check_config)."""


def _json_post(url: str, payload: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> _Post:
    return _Post(url, orjson.dumps(payload), {**_JSON, **(extra or {})})


def _setting(config: Mapping[str, Any], name: str) -> Any:
    value = config.get(name)
    if value is None or value == "":
        raise _BadConfig(f"config.{name} is missing")
    return value


def _webhook(config: Mapping[str, Any], msg: GroupMessage) -> list[_Post]:
    body = orjson.dumps(webhook_payload(msg))
    headers = dict(_JSON)
    if secret := config.get("hmac_secret"):
        # Signed over these very bytes: the receiver checks the raw body it reads.
        headers[SIGNATURE_HEADER] = webhook_signature(str(secret).encode(), body)
    return [_Post(_setting(config, "url"), body, headers)]


def _slack(config: Mapping[str, Any], msg: GroupMessage) -> list[_Post]:
    payload = slack_payload(msg)
    for name in ("channel", "username"):
        if value := config.get(name):
            payload[name] = value
    return [_json_post(_setting(config, "webhook_url"), payload)]


def _discord(config: Mapping[str, Any], msg: GroupMessage) -> list[_Post]:
    payload = discord_payload(msg)
    if username := config.get("username"):
        payload["username"] = username
    return [_json_post(_setting(config, "webhook_url"), payload)]


def _telegram(config: Mapping[str, Any], msg: GroupMessage) -> list[_Post]:
    base = str(_setting(config, "api_url")).rstrip("/")
    # Quoted: a token is digits, ':' and [A-Za-z0-9_-], but a '/', '?' or '#' must not reshape the URL.
    token = quote(str(_setting(config, "bot_token")), safe=":")
    return [_json_post(f"{base}/bot{token}/sendMessage", telegram_payload(msg, _setting(config, "chat_id")))]


def _pagerduty(config: Mapping[str, Any], msg: GroupMessage) -> list[_Post]:
    url = _setting(config, "events_url")
    return [_json_post(url, event) for event in pagerduty_events(msg, str(_setting(config, "routing_key")))]


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 10**9:
        return None
    return float(value)


def _telegram_accepts(reply: HttpReply) -> bool:
    answer = _json(reply.body)
    return reply.status == 200 and isinstance(answer, dict) and answer.get("ok") is True


def _telegram_retry_after(answer: Any) -> float | None:
    parameters = answer.get("parameters") if isinstance(answer, dict) else None
    return _seconds(parameters.get("retry_after")) if isinstance(parameters, dict) else None


def _discord_retry_after(answer: Any) -> float | None:
    return _seconds(answer.get("retry_after")) if isinstance(answer, dict) else None


def _accepts_2xx(reply: HttpReply) -> bool:
    return 200 <= reply.status < 300


@dataclass(frozen=True, slots=True)
class _HttpType:
    build: Callable[[Mapping[str, Any], GroupMessage], list[_Post]]
    accepts: Callable[[HttpReply], bool] = _accepts_2xx
    body_retry_after: Callable[[Any], float | None] | None = None  # from the JSON answer of a 429


_HTTP_TYPES: Final[Mapping[str, _HttpType]] = {
    "webhook": _HttpType(_webhook),
    "slack": _HttpType(_slack),
    "discord": _HttpType(_discord, body_retry_after=_discord_retry_after),
    "telegram": _HttpType(_telegram, _telegram_accepts, _telegram_retry_after),
    "pagerduty": _HttpType(_pagerduty),
}


def _retry_after_header(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta seconds or an HTTP date (one in the past: 0)."""
    if value is None:
        return None
    if match := _DELTA_SECONDS.match(value):
        return float(match.group(1))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": RFC 5322's UTC without a claim about local time
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _snippet(body: bytes) -> str:
    text = body[: _BODY_CHARS * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:_BODY_CHARS]


def _judge(kind: _HttpType, reply: HttpReply) -> tuple[bool, str | None, bool, float | None]:
    """(ok, error, retriable, retry_after_s) for a destination's answer."""
    if kind.accepts(reply):
        return True, None, False, None
    status = reply.status
    if 300 <= status < 400:
        return False, f"redirect not followed ({status})", False, None
    snippet = _snippet(reply.body)
    error = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
    retry_after = None
    if status in (_RATE_LIMITED, _UNAVAILABLE):
        if status == _RATE_LIMITED and kind.body_retry_after is not None:
            retry_after = kind.body_retry_after(_json(reply.body))
        if retry_after is None:
            retry_after = _retry_after_header(reply.headers.get("Retry-After"))
    return False, error, status == _RATE_LIMITED or status >= 500, retry_after


def _secrets(channel_type: str, config: Mapping[str, Any]) -> list[str]:
    names = [key.name for key in CHANNEL_TYPES.get(channel_type, ()) if key.secret]
    values = [str(config[name]) for name in names if config.get(name)]
    values += [quote(value, safe=":") for value in values]
    return sorted(set(values), key=len, reverse=True)  # a longer secret first: it may contain a shorter one


def _masked(text: str | None, secrets: list[str]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _defaults(channel_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    out = {key.name: key.default for key in CHANNEL_TYPES[channel_type] if key.default is not None}
    out.update({name: value for name, value in config.items() if value is not None})
    return out


class Senders:
    def __init__(self, *, allowed: tuple[Network, ...], timeout_s: float, max_response_bytes: int,
                 user_agent: str = "ChimeraMonitor-Notifier/1",
                 smtp_ssl_context: ssl.SSLContext | None = None) -> None:
        self._http = HttpPoster(allowed=allowed, timeout_s=timeout_s, max_response_bytes=max_response_bytes,
                                user_agent=user_agent)
        # None: the system's trust store, hostnames checked (a test passes one trusting its own CA).
        self._smtp = SmtpSender(allowed=allowed, timeout_s=timeout_s, ssl_context=smtp_ssl_context)
        self._senders: Mapping[str, Callable[[str, dict[str, Any], GroupMessage], Awaitable[SendResult]]] = {
            **{name: self._send_http for name in _HTTP_TYPES},
            "email": self._send_email,
        }

    async def start(self) -> None:
        await self._http.start()
        await self._smtp.start()

    async def stop(self) -> None:
        await self._http.stop()

    async def send(self, channel_type: str, name: str, config: Mapping[str, Any],
                   message: GroupMessage) -> SendResult:
        sender = self._senders.get(channel_type)
        if sender is None or channel_type not in CHANNEL_TYPES:
            raise ValueError(f"unknown channel type {channel_type!r}")
        result = await sender(channel_type, _defaults(channel_type, config), message)
        masked = _masked(result.error, _secrets(channel_type, config))
        if masked != result.error:
            result = replace(result, error=masked)
        if not result.ok:
            log.debug("%s channel %r not delivered: %s", channel_type, name, result.error)
        return result

    async def _send_http(self, channel_type: str, config: dict[str, Any], message: GroupMessage) -> SendResult:
        kind = _HTTP_TYPES[channel_type]
        started = time.perf_counter()
        try:
            posts = kind.build(config, message)
        except (_BadConfig, ValueError) as exc:
            return _bad_config(exc, started)
        status: int | None = None
        for index, post in enumerate(posts):
            reply = await self._http.post(post.url, post.body, post.headers)
            if isinstance(reply, HttpFailure):
                return SendResult(False, None, _nth(reply.error, index, len(posts)), reply.retriable, None,
                                  _ms(started), reply.refused)
            ok, error, retriable, retry_after = _judge(kind, reply)
            status = reply.status
            if not ok:
                # The events before it are in; PagerDuty folds their re-sending on a retry into the same incidents.
                return SendResult(False, status, _nth(error, index, len(posts)), retriable, retry_after, _ms(started))
        return SendResult(True, status, None, False, None, _ms(started))

    async def _send_email(self, channel_type: str, config: dict[str, Any], message: GroupMessage) -> SendResult:
        started = time.perf_counter()
        try:
            recipients = _setting(config, "to")
            recipients = [recipients] if isinstance(recipients, str) else [str(r) for r in recipients]
            sender = str(_setting(config, "from"))
            subject, text, html = email_message(message, sender=sender, recipients=recipients)
            mail = build_email(subject=subject, text=text, html=html, sender=sender, recipients=recipients)
            server = SmtpServer(host=str(_setting(config, "smarthost")), port=int(_setting(config, "port")),
                                tls=bool(config.get("tls")), starttls=bool(config.get("starttls")),
                                username=config.get("username") or None, password=config.get("password") or None)
        except (_BadConfig, ValueError) as exc:
            return _bad_config(exc, started)
        outcome = await self._smtp.send(server, mail, sender=sender, recipients=recipients)
        return SendResult(outcome.ok, outcome.code, outcome.error, outcome.retriable, None, _ms(started),
                          outcome.refused)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _nth(error: str | None, index: int, count: int) -> str | None:
    return f"{error} (request {index + 1} of {count})" if error is not None and count > 1 else error


def _bad_config(exc: Exception, started: float) -> SendResult:
    return SendResult(False, None, f"bad config: {exc}", False, None, _ms(started))
