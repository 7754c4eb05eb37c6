"""Channel configs per type: required keys, defaults, secrets and their masking, and every bad value
refused with the field the API names."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.domain.channel_types import (
    CHANNEL_TYPES,
    MASK,
    ChannelConfigError,
    check_config,
    config_url_keys,
    masked_config,
    split_secrets,
)
from services.notifier.domain.destinations import parse_networks

pytestmark = pytest.mark.unit

LOOPBACK = parse_networks(["127.0.0.0/8", "::1"])
HOOK = "https://hooks.example.com/T0/B0/secretpart"

# The least each type takes, and what check_config makes of it (defaults filled in).
MINIMAL: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "webhook": ({"url": HOOK}, {"url": HOOK, "max_alerts": 0}),
    "slack": ({"webhook_url": HOOK}, {"webhook_url": HOOK, "max_alerts": 20}),
    "discord": ({"webhook_url": HOOK}, {"webhook_url": HOOK, "max_alerts": 10}),
    "telegram": ({"bot_token": "123:abc", "chat_id": -1001234567890},
                 {"bot_token": "123:abc", "chat_id": "-1001234567890", "api_url": "https://api.telegram.org",
                  "max_alerts": 20}),
    "email": ({"to": "ops@example.com", "from": "chimera@example.com", "smarthost": "smtp.example.com"},
              {"to": ["ops@example.com"], "from": "chimera@example.com", "smarthost": "smtp.example.com",
               "port": 587, "starttls": True, "tls": False, "max_alerts": 50}),
    "pagerduty": ({"routing_key": "R0UT1NG"},
                  {"routing_key": "R0UT1NG", "events_url": "https://events.pagerduty.com/v2/enqueue"}),
}
REQUIRED = {"webhook": ["url"], "slack": ["webhook_url"], "discord": ["webhook_url"],
            "telegram": ["bot_token", "chat_id"], "email": ["to", "from", "smarthost"], "pagerduty": ["routing_key"]}
SECRET = {"webhook": {"url", "hmac_secret"}, "slack": {"webhook_url"}, "discord": {"webhook_url"},
          "telegram": {"bot_token"}, "email": {"password"}, "pagerduty": {"routing_key"}}
URL_KEYS = {"webhook": ("url",), "slack": ("webhook_url",), "discord": ("webhook_url",), "telegram": ("api_url",),
            "email": (), "pagerduty": ("events_url",)}


def refusal(channel_type: str, config: dict[str, Any], allowed: Any = ()) -> ChannelConfigError:
    with pytest.raises(ChannelConfigError) as caught:
        check_config(channel_type, config, allowed)
    return caught.value


def test_the_table_covers_the_six_types() -> None:
    assert set(CHANNEL_TYPES) == set(MINIMAL) == {"webhook", "slack", "discord", "telegram", "email", "pagerduty"}


@pytest.mark.parametrize("channel_type", MINIMAL)
def test_the_minimal_config_gets_its_defaults(channel_type: str) -> None:
    given_config, expected = MINIMAL[channel_type]
    assert check_config(channel_type, given_config) == expected


@pytest.mark.parametrize("channel_type", MINIMAL)
def test_a_null_value_takes_the_default(channel_type: str) -> None:
    given_config, expected = MINIMAL[channel_type]
    defaulted = {key.name: None for key in CHANNEL_TYPES[channel_type] if key.default is not None}
    assert check_config(channel_type, {**given_config, **defaulted}) == expected


@pytest.mark.parametrize(("channel_type", "key"), [(t, k) for t, keys in REQUIRED.items() for k in keys])
@pytest.mark.parametrize("absent", ["left out", "null"])
def test_every_required_key_is_required(channel_type: str, key: str, absent: str) -> None:
    config = dict(MINIMAL[channel_type][0])
    if absent == "null":
        config[key] = None
    else:
        del config[key]
    error = refusal(channel_type, config)
    assert (error.field, error.message) == (f"config.{key}", f"required for a {channel_type} channel")


@pytest.mark.parametrize(("channel_type", "stranger"), [
    (channel_type, stranger) for channel_type in MINIMAL
    for stranger in ("nope", "webhook_url", "url", "routing_key", "Url")  # another type's keys too
    if stranger not in {key.name for key in CHANNEL_TYPES[channel_type]}])
def test_keys_of_no_setting_are_refused(channel_type: str, stranger: str) -> None:
    error = refusal(channel_type, {**MINIMAL[channel_type][0], stranger: "x"})
    assert error.field == f"config.{stranger}"
    assert error.message.startswith(f"not a {channel_type} setting")


def test_the_type_and_the_config_object_themselves() -> None:
    assert refusal("sms", {}).field == "type"
    assert refusal("webhook", ["url"]).field == "config"  # type: ignore[arg-type]


@pytest.mark.parametrize("channel_type", MINIMAL)
def test_secrets_are_split_from_what_may_be_shown(channel_type: str) -> None:
    full = {key.name: f"value-of-{key.name}" for key in CHANNEL_TYPES[channel_type]}
    public, secret = split_secrets(channel_type, full)
    assert set(secret) == SECRET[channel_type]
    assert set(public) == set(full) - SECRET[channel_type]
    assert {**public, **secret} == full
    assert {key.name for key in CHANNEL_TYPES[channel_type] if key.secret} == SECRET[channel_type]


@pytest.mark.parametrize("channel_type", MINIMAL)
def test_url_keys_are_the_ones_requested(channel_type: str) -> None:
    assert config_url_keys(channel_type) == URL_KEYS[channel_type]


def test_masking_keeps_a_urls_scheme_and_host_and_nothing_secret() -> None:
    config = check_config("webhook", {"url": HOOK + "?token=abc", "hmac_secret": "whsec"})
    public, secret = split_secrets("webhook", config)
    masked = masked_config("webhook", public, secret)
    assert masked == {"hmac_secret": MASK, "max_alerts": 0, "url": f"https://hooks.example.com/{MASK}"}
    assert list(masked) == sorted(masked)


@pytest.mark.parametrize(("channel_type", "config", "expected"), [
    ("telegram", {"bot_token": "123:abc", "chat_id": "@chimera_ops"},
     {"api_url": "https://api.telegram.org", "bot_token": MASK, "chat_id": "@chimera_ops", "max_alerts": 20}),
    ("email", {"to": ["a@example.com"], "from": "c@example.com", "smarthost": "mx", "username": "u", "password": "p"},
     {"from": "c@example.com", "max_alerts": 50, "password": MASK, "port": 587, "smarthost": "mx", "starttls": True,
      "tls": False, "to": ["a@example.com"], "username": "u"}),
    ("pagerduty", {"routing_key": "R0UT1NG"},
     {"events_url": "https://events.pagerduty.com/v2/enqueue", "routing_key": MASK}),
    ("discord", {"webhook_url": "https://discord.com/api/webhooks/1/tok", "username": "Chimera"},
     {"max_alerts": 10, "username": "Chimera", "webhook_url": f"https://discord.com/{MASK}"}),
])
def test_what_the_api_shows_per_type(channel_type: str, config: dict[str, Any], expected: dict[str, Any]) -> None:
    public, secret = split_secrets(channel_type, check_config(channel_type, config))
    assert masked_config(channel_type, public, secret) == expected


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=8, max_size=40))
def test_no_part_of_a_secret_url_path_survives_masking(token: str) -> None:
    url = f"https://hooks.example.com/services/{token}?key={token}"
    public, secret = split_secrets("slack", check_config("slack", {"webhook_url": url}))
    masked = masked_config("slack", public, secret)
    assert masked["webhook_url"] == f"https://hooks.example.com/{MASK}"
    assert token not in str(masked)


@pytest.mark.parametrize(("channel_type", "changes", "field", "fragment"), [
    ("webhook", {"url": "ftp://hooks.example.com/x"}, "config.url", "http or https"),
    ("webhook", {"url": "https://user:pw@hooks.example.com/"}, "config.url", "credentials"),
    ("webhook", {"url": "http://10.0.0.1/hook"}, "config.url", "private"),
    ("webhook", {"url": "http://localhost:9000/"}, "config.url", "loopback"),
    ("webhook", {"url": "http://169.254.169.254/latest"}, "config.url", "link-local"),
    ("webhook", {"url": "https://"}, "config.url", "no host"),
    ("webhook", {"url": "https://hooks.example.com/a b"}, "config.url", "control characters"),
    ("webhook", {"url": "https://hooks.example.com/\n"}, "config.url", "control characters"),
    ("webhook", {"url": "https://hooks.example.com/" + "a" * 1000}, "config.url", "longer than 1000"),
    ("webhook", {"url": ""}, "config.url", "non-empty string"),
    ("webhook", {"url": 42}, "config.url", "non-empty string"),
    ("webhook", {"hmac_secret": "   "}, "config.hmac_secret", "non-empty string"),
    ("webhook", {"hmac_secret": "a\tb"}, "config.hmac_secret", "control characters"),
    ("webhook", {"hmac_secret": "a\x7fb"}, "config.hmac_secret", "control characters"),
    ("webhook", {"max_alerts": -1}, "config.max_alerts", "whole number"),
    ("webhook", {"max_alerts": 65_536}, "config.max_alerts", "whole number"),
    ("webhook", {"max_alerts": 1.5}, "config.max_alerts", "whole number"),
    ("webhook", {"max_alerts": True}, "config.max_alerts", "whole number"),
    ("webhook", {"max_alerts": "5"}, "config.max_alerts", "whole number"),
    ("slack", {"channel": "#ops\x00"}, "config.channel", "control characters"),
    ("slack", {"username": "x" * 1001}, "config.username", "longer than 1000"),
    ("discord", {"webhook_url": "javascript:alert(1)"}, "config.webhook_url", "http or https"),
    ("telegram", {"chat_id": "general"}, "config.chat_id", "chat number or @channelname"),
    ("telegram", {"chat_id": "@abc"}, "config.chat_id", "chat number or @channelname"),
    ("telegram", {"chat_id": "@bad-name"}, "config.chat_id", "chat number or @channelname"),
    ("telegram", {"chat_id": "1" * 21}, "config.chat_id", "chat number or @channelname"),
    ("telegram", {"chat_id": True}, "config.chat_id", "non-empty string"),
    ("telegram", {"chat_id": 1.5}, "config.chat_id", "non-empty string"),
    ("telegram", {"bot_token": "123:abc\r\n"}, "config.bot_token", "control characters"),
    ("telegram", {"api_url": "http://192.168.1.10/"}, "config.api_url", "private"),
    ("email", {"to": "not-an-address"}, "config.to[0]", "is not an email address"),
    ("email", {"to": ["ops@example.com", "a@x.com, b@y.com"]}, "config.to[1]", "is not an email address"),
    ("email", {"to": ["ops@example.com", 7]}, "config.to[1]", "non-empty string"),
    ("email", {"to": []}, "config.to", "list of 1 to 50"),
    ("email", {"to": [f"u{i}@example.com" for i in range(51)]}, "config.to", "list of 1 to 50"),
    ("email", {"to": 5}, "config.to", "list of 1 to 50"),
    ("email", {"from": "a@b@c"}, "config.from", "is not an email address"),
    ("email", {"from": "Chimera <chimera@example.com>"}, "config.from", "is not an email address"),
    ("email", {"from": "chimera@example.com\nBcc: x@evil.example"}, "config.from", "control characters"),
    ("email", {"smarthost": "smtp example com"}, "config.smarthost", "host name or an address"),
    ("email", {"smarthost": "smtp.example.com/x"}, "config.smarthost", "host name or an address"),
    ("email", {"port": 70_000}, "config.port", "whole number"),
    ("email", {"port": "25"}, "config.port", "whole number"),
    ("email", {"starttls": "yes"}, "config.starttls", "true or false"),
    ("email", {"tls": 1}, "config.tls", "true or false"),
    ("email", {"tls": True, "starttls": True}, "config.starttls", "set starttls to false"),
    ("email", {"password": "p"}, "config.username", "username and password go together"),
    ("email", {"username": "u"}, "config.password", "username and password go together"),
    ("email", {"port": 0}, "config.port", "from 1 to 65535"),
    ("slack", {"username": "bad\u2028name"}, "config.username", "control characters"),
    ("slack", {"username": "bad\x85name"}, "config.username", "control characters"),
    ("pagerduty", {"routing_key": ""}, "config.routing_key", "non-empty string"),
    ("pagerduty", {"events_url": "http://[::1]/v2/enqueue"}, "config.events_url", "loopback"),
])
def test_bad_values_are_refused_naming_the_field(channel_type: str, changes: dict[str, Any], field: str,
                                                 fragment: str) -> None:
    error = refusal(channel_type, {**MINIMAL[channel_type][0], **changes})
    assert error.field == field
    assert fragment in error.message, error.message
    assert str(error) == f"{field}: {error.message}"


@pytest.mark.parametrize(("channel_type", "changes", "key", "checked"), [
    ("webhook", {"url": "http://127.0.0.1:9000/hook"}, "url", "http://127.0.0.1:9000/hook"),
    ("webhook", {"max_alerts": 65_535}, "max_alerts", 65_535),
    ("telegram", {"chat_id": "@chimera_ops"}, "chat_id", "@chimera_ops"),
    ("telegram", {"chat_id": 42}, "chat_id", "42"),
    ("telegram", {"api_url": "http://localhost:8081"}, "api_url", "http://localhost:8081"),
    ("email", {"to": ["a@example.com", "b@example.com"]}, "to", ["a@example.com", "b@example.com"]),
    ("email", {"smarthost": "[::1]"}, "smarthost", "[::1]"),
    ("email", {"tls": True, "starttls": False, "port": 465}, "tls", True),
    ("email", {"username": "alerts", "password": "pw"}, "username", "alerts"),
    ("slack", {"channel": "#ops", "username": "Chimera ✓"}, "username", "Chimera ✓"),
])
def test_good_values_pass_as_given(channel_type: str, changes: dict[str, Any], key: str, checked: Any) -> None:
    assert check_config(channel_type, {**MINIMAL[channel_type][0], **changes}, LOOPBACK)[key] == checked


def test_the_allow_list_is_what_lets_the_local_network_through() -> None:
    config = {"url": "http://127.0.0.1:9000/hook"}
    assert refusal("webhook", config).field == "config.url"
    assert check_config("webhook", config, LOOPBACK)["url"] == config["url"]
    assert check_config("webhook", config, iter(LOOPBACK))["url"] == config["url"]  # any iterable of networks


def test_implicit_tls_alone_turns_starttls_off() -> None:
    config = check_config("email", {"to": "a@example.com", "from": "c@example.com", "smarthost": "mx",
                                    "port": 465, "tls": True})
    assert (config["tls"], config["starttls"]) == (True, False)


def test_a_masked_ipv6_url_keeps_its_brackets() -> None:
    assert masked_config("webhook", {}, {"url": "http://[2001:db8::1]:8080/x?token=t"}) == {
        "url": f"http://[2001:db8::1]/{MASK}"}
