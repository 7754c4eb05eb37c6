"""What each channel type's `config` holds, which of it is secret, and checking it (pure).

One table (`CHANNEL_TYPES`) says, per type, every config key: whether it is
required, whether it is a secret (tokens, passwords, URLs that carry a key:
encrypted at rest, never returned by the API), its kind and default. The API
checks a body against it (a 422 naming `config.<key>`), the OpenAPI document
describes it, the senders read it. URLs are checked with
`destinations.url_refusal` here and again after DNS at send time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from .destinations import Network, url_refusal

__all__ = [
    "CHANNEL_TYPES",
    "MASK",
    "ChannelConfigError",
    "ConfigKey",
    "check_config",
    "config_url_keys",
    "masked_config",
    "split_secrets",
]

MASK: Final = "********"
MAX_TEXT_CHARS: Final = 1_000
MAX_RECIPIENTS: Final = 50
_EMAIL: Final = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+$")
_CHAT_ID: Final = re.compile(r"^(-?\d{1,20}|@[A-Za-z0-9_]{5,64})$")
_HOST: Final = re.compile(r"^[A-Za-z0-9.:\-\[\]]{1,255}$")


class ChannelConfigError(ValueError):
    """A config that cannot be used; `field` as the API names it (`config.url`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ConfigKey:
    name: str
    kind: str  # url, text, int, port, bool, email, emails, chat_id, host
    description: str
    required: bool = False
    secret: bool = False
    default: Any = None


_MAX_ALERTS = ConfigKey("max_alerts", "int", "Alerts listed per message at most; the rest are counted "
                        "(truncatedAlerts). 0: all.", default=0)

CHANNEL_TYPES: Final[Mapping[str, tuple[ConfigKey, ...]]] = {
    "webhook": (
        ConfigKey("url", "url", "Where the Alertmanager v4 payload is POSTed. Secret (it may carry a token).",
                  required=True, secret=True),
        ConfigKey("hmac_secret", "text", "When set, each request carries X-Chimera-Signature: "
                  "sha256=<HMAC-SHA256 of the body with this secret, hex>.", secret=True),
        _MAX_ALERTS,
    ),
    "slack": (
        ConfigKey("webhook_url", "url", "The Slack incoming webhook URL (carries its key).", required=True,
                  secret=True),
        ConfigKey("channel", "text", "Overrides the webhook's channel (#ops)."),
        ConfigKey("username", "text", "Overrides the webhook's user name."),
        ConfigKey("max_alerts", "int", _MAX_ALERTS.description, default=20),
    ),
    "discord": (
        ConfigKey("webhook_url", "url", "The Discord webhook URL (carries its token).", required=True, secret=True),
        ConfigKey("username", "text", "Overrides the webhook's name."),
        ConfigKey("max_alerts", "int", _MAX_ALERTS.description, default=10),
    ),
    "telegram": (
        ConfigKey("bot_token", "text", "The bot's token from @BotFather.", required=True, secret=True),
        ConfigKey("chat_id", "chat_id", "The chat: a number (groups are negative) or @channelname.",
                  required=True),
        ConfigKey("api_url", "url", "The Bot API's base URL.", default="https://api.telegram.org"),
        ConfigKey("max_alerts", "int", _MAX_ALERTS.description, default=20),
    ),
    "email": (
        ConfigKey("to", "emails", "Recipients: one address or a list.", required=True),
        ConfigKey("from", "email", "The sender address.", required=True),
        ConfigKey("smarthost", "host", "The SMTP server's host name or address.", required=True),
        ConfigKey("port", "port", "The SMTP server's port.", default=587),
        ConfigKey("username", "text", "SMTP AUTH user (with password)."),
        ConfigKey("password", "text", "SMTP AUTH password.", secret=True),
        ConfigKey("starttls", "bool", "Upgrade the connection with STARTTLS (required when true).", default=True),
        ConfigKey("tls", "bool", "Implicit TLS from the first byte (port 465); excludes starttls.", default=False),
        ConfigKey("max_alerts", "int", _MAX_ALERTS.description, default=50),
    ),
    "pagerduty": (
        ConfigKey("routing_key", "text", "The Events API v2 integration (routing) key.", required=True, secret=True),
        ConfigKey("events_url", "url", "The Events API v2 enqueue URL.",
                  default="https://events.pagerduty.com/v2/enqueue"),
    ),
}


def _check_value(key: ConfigKey, value: Any, field: str, allowed: Iterable[Network]) -> Any:
    kind = key.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ChannelConfigError(field, "must be true or false")
        return value
    if kind in ("int", "port"):
        low = 1 if kind == "port" else 0
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 65_535:
            raise ChannelConfigError(field, f"must be a whole number from {low} to 65535")
        return value
    if kind == "emails":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or len(items) > MAX_RECIPIENTS:
            raise ChannelConfigError(field, f"must be an address or a list of 1 to {MAX_RECIPIENTS} addresses")
        return [_check_value(ConfigKey(key.name, "email", ""), item, f"{field}[{i}]", allowed)
                for i, item in enumerate(items)]
    if kind == "chat_id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ChannelConfigError(field, "must be a non-empty string")
    if len(value) > MAX_TEXT_CHARS:
        raise ChannelConfigError(field, f"longer than {MAX_TEXT_CHARS} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in value):
        raise ChannelConfigError(field, "must not contain control characters")
    if kind == "url":
        refusal = url_refusal(value, allowed)
        if refusal is not None:
            raise ChannelConfigError(field, refusal)
    elif kind == "email" and not _EMAIL.match(value):
        raise ChannelConfigError(field, f"{value!r} is not an email address")
    elif kind == "chat_id" and not _CHAT_ID.match(value):
        raise ChannelConfigError(field, "must be a chat number or @channelname")
    elif kind == "host" and not _HOST.match(value):
        raise ChannelConfigError(field, "must be a host name or an address")
    return value


def check_config(channel_type: str, config: Mapping[str, Any], allowed: Iterable[Network] = ()) -> dict[str, Any]:
    """The config with defaults filled in; ChannelConfigError naming the first key that is wrong."""
    keys = CHANNEL_TYPES.get(channel_type)
    if keys is None:
        raise ChannelConfigError("type", f"must be one of {', '.join(CHANNEL_TYPES)}")
    if not isinstance(config, Mapping):
        raise ChannelConfigError("config", "must be an object")
    known = [key.name for key in keys]
    for name in config:
        if name not in known:
            raise ChannelConfigError(f"config.{name}", f"not a {channel_type} setting (known: {', '.join(known)})")
    allowed = tuple(allowed)
    out: dict[str, Any] = {}
    for key in keys:
        value = config.get(key.name)
        if value is None:
            if key.required:
                raise ChannelConfigError(f"config.{key.name}", f"required for a {channel_type} channel")
            if key.name == "starttls" and config.get("tls") is True:
                out[key.name] = False  # implicit TLS: STARTTLS means nothing on it
            elif key.default is not None:
                out[key.name] = key.default
            continue
        out[key.name] = _check_value(key, value, f"config.{key.name}", allowed)
    if channel_type == "email" and out.get("tls") and out.get("starttls"):
        raise ChannelConfigError("config.starttls", "set starttls to false with tls (implicit TLS)")
    if channel_type == "email" and bool(out.get("password")) != bool(out.get("username")):
        missing = "username" if out.get("password") else "password"
        raise ChannelConfigError(f"config.{missing}", "username and password go together (SMTP AUTH)")
    return out


def split_secrets(channel_type: str, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what may be stored and shown as is, what must be encrypted)."""
    secret = {key.name for key in CHANNEL_TYPES[channel_type] if key.secret}
    return ({k: v for k, v in config.items() if k not in secret}, {k: v for k, v in config.items() if k in secret})


def config_url_keys(channel_type: str) -> tuple[str, ...]:
    """The config keys holding URLs a sender requests (checked again after DNS)."""
    return tuple(key.name for key in CHANNEL_TYPES[channel_type] if key.kind == "url")


def _mask(value: Any, kind: str) -> str:
    if kind == "url" and isinstance(value, str):
        parts = urlsplit(value)
        host = parts.hostname or ""
        return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}/{MASK}"
    return MASK


def masked_config(channel_type: str, public: Mapping[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
    """The config as the API shows it: every secret present but masked (a URL keeps its scheme
    and host, so people can tell channels apart)."""
    kinds = {key.name: key.kind for key in CHANNEL_TYPES.get(channel_type, ())}
    out = dict(public)
    out.update({name: _mask(value, kinds.get(name, "text")) for name, value in secrets.items()})
    return {name: out[name] for name in sorted(out)}
