"""Request and response bodies of the channels, silences and notifications API (docs/contract.md section 4).

Durations are written as for alert rules (`30s`, `5m`, `1h`, `2d`, `250ms`
or `0`). The grammar is the alerter's (`services/alerter/domain/rules.py`);
it is repeated here rather than imported from another service's internals,
and belongs in `shared/` for both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

from shared.durations import DURATION_PATTERN, format_duration
from shared.durations import parse_duration_ms as parse_shared_duration_ms
from shared.events import MINER_PATTERN
from shared.http.bodies import Text

from ..domain.channel_types import CHANNEL_TYPES, MASK, MAX_RECIPIENTS, MAX_TEXT_CHARS, ConfigKey
from ..domain.matchers import OPERATORS

__all__ = [
    "MAX_DURATION_MS",
    "ChannelIn",
    "ChannelOut",
    "ChannelTestOut",
    "ChannelsOut",
    "MatcherIn",
    "MatcherOut",
    "NotificationOut",
    "NotificationsOut",
    "SilenceIn",
    "SilenceOut",
    "SilencesOut",
    "format_duration",
    "parse_duration_ms",
]

MAX_MATCHERS: Final = 20
MAX_GROUP_BY: Final = 20
MAX_DURATION_MS: Final = 30 * 86_400_000

ChannelType = Literal["webhook", "slack", "discord", "telegram", "email", "pagerduty"]
Severity = Literal["info", "warning", "error", "critical"]
DurationText = Annotated[str, Field(max_length=16, pattern=DURATION_PATTERN,
                                    description="30s, 5m, 1h, 2d, 250ms or 0")]
LabelName = Annotated[Text, Field(min_length=1, max_length=128)]
LabelValue = Annotated[Text, Field(max_length=1_024)]
Miner = Annotated[str, Field(min_length=1, max_length=128, pattern=MINER_PATTERN)]


def parse_duration_ms(text: str) -> int:
    """A duration (shared/durations.py) of at most 30d; ValueError otherwise."""
    ms = parse_shared_duration_ms(text)
    if ms > MAX_DURATION_MS:
        raise ValueError("at most 30d")
    return ms


# --- a channel's config, per type, as the OpenAPI document shows it ------------------------------

_SECRET_NOTE: Final = (f" Secret: stored encrypted, shown masked (`{MASK}`, a URL as `https://host/{MASK}`); "
                       "a PUT giving the masked value back keeps the stored one.")


def _key_schema(key: ConfigKey) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS}
    kinds: dict[str, dict[str, Any]] = {
        "bool": {"type": "boolean"},
        "int": {"type": "integer", "minimum": 0, "maximum": 65_535},
        "emails": {"anyOf": [text, {"type": "array", "items": text, "minItems": 1, "maxItems": MAX_RECIPIENTS}]},
        "chat_id": {"anyOf": [text, {"type": "integer"}]},
        "url": {**text, "format": "uri", "pattern": "^https?://"},
    }
    schema = dict(kinds.get(key.kind, text))
    schema["description"] = key.description + (_SECRET_NOTE if key.secret else "")
    if key.default is not None:
        schema["default"] = key.default
    return schema


def _config_schema() -> dict[str, Any]:
    variants = [
        {"title": f"{name} config", "type": "object", "additionalProperties": False,
         "properties": {key.name: _key_schema(key) for key in keys},
         "required": [key.name for key in keys if key.required]}
        for name, keys in CHANNEL_TYPES.items()
    ]
    rows = "\n".join(f"| {name} | `{key.name}` | {'yes' if key.required else ''} | {'yes' if key.secret else ''} "
                     f"| {key.description} |" for name, keys in CHANNEL_TYPES.items() for key in keys)
    table = f"| type | key | required | secret | meaning |\n|---|---|---|---|---|\n{rows}"
    return {"anyOf": variants, "description": "The settings of the channel's `type`: an unknown key is a 422 "
                                              f"naming it (`body.config.<key>`).\n\n{table}"}


ChannelConfig = Annotated[dict[str, Any], WithJsonSchema(_config_schema())]


class MatcherIn(BaseModel):
    """One Alertmanager matcher; regexes are anchored at both ends (`=~ "w.*"` matches w1, not rw1)."""

    model_config = ConfigDict(extra="forbid")

    name: LabelName
    # Checked by the route (a 422 naming `body.matchers[0].op`); the enum is for the document.
    op: Annotated[str, Field(max_length=2, json_schema_extra={"enum": list(OPERATORS)})] = "="
    value: LabelValue


class MatcherOut(BaseModel):
    name: str
    op: str
    value: str


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    type: ChannelType
    config: ChannelConfig
    matchers: Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_MATCHERS)] = Field(
        default_factory=dict, description="Label -> exact value: the channel hears only alerts with all of them")
    label_matchers: Annotated[list[MatcherIn], Field(max_length=MAX_MATCHERS)] = Field(
        default_factory=list, description="Beyond the contract: Alertmanager matchers, all of which must hold too")
    min_severity: Severity = "info"
    send_resolved: bool = True
    group_by: Annotated[list[LabelName], Field(max_length=MAX_GROUP_BY)] = Field(
        default_factory=list, description="Label names: one notification group per distinct value set")
    group_wait: DurationText = Field(default="30s", description="How long a new group gathers alerts first")
    group_interval: DurationText = Field(default="5m", description="Between notifications of a changed group")
    repeat_interval: DurationText = Field(default="4h", description="Before a still-firing group is told again")
    enabled: bool = True
    rate_limit_per_minute: float | None = Field(
        default=None, gt=0, le=1_000_000, allow_inf_nan=False,
        description="Notifications a minute at most (beyond: they wait); default NOTIFIER_RATE_LIMIT_PER_MINUTE")
    miner: Miner | None = Field(
        default=None, description="The channel hears only this miner's alerts. Set by the key for a "
                                  "`miner:<name>` key (which may not name another: 403).")


class ChannelOut(BaseModel):
    id: int
    name: str
    type: str
    config: dict[str, Any] = Field(description="Secrets masked")
    matchers: dict[str, str]
    label_matchers: list[MatcherOut]
    min_severity: str
    send_resolved: bool
    group_by: list[str]
    group_wait: str
    group_interval: str
    repeat_interval: str
    enabled: bool
    rate_limit_per_minute: float | None
    miner: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    secrets_readable: bool = Field(description="false: no key of NOTIFIER_SECRET_KEYS opens the stored secrets; "
                                               "the channel cannot send until they are given anew")


class ChannelsOut(BaseModel):
    channels: list[ChannelOut]


class ChannelTestOut(BaseModel):
    """A delivery that failed is still a 200: the request did what it was asked."""

    ok: bool
    status_code: int | None = Field(description="The destination's HTTP status (or SMTP reply code)")
    error: str | None
    latency_ms: float
    delivery_id: int = Field(description="In GET /api/notifications?channel=...")


# --- silences -----------------------------------------------------------------------------------

class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: Annotated[list[MatcherIn], Field(min_length=1, max_length=MAX_MATCHERS)]
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now")
    ends_at: AwareDatetime | None = Field(default=None, description="After starts_at; or give `duration`")
    duration: DurationText | None = Field(default=None, description="From starts_at, instead of ends_at (2h)")
    created_by: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Default: the API key's name")
    comment: Annotated[Text, Field(max_length=2_000)] = ""


class SilenceOut(BaseModel):
    id: str
    matchers: list[MatcherOut]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    state: Literal["active", "pending", "expired"]


class SilencesOut(BaseModel):
    silences: list[SilenceOut]


# --- the attempt log ----------------------------------------------------------------------------

class NotificationOut(BaseModel):
    id: int = Field(description="The attempt's id (page with before=)")
    delivery_id: int
    idempotency_key: str
    kind: str = Field(description="group, or test (POST /api/alert-channels/{channelId}/test)")
    channel_id: int | None = Field(description="null once the channel is deleted")
    channel_name: str | None
    channel_type: str
    attempt: int
    status: str = Field(description="sent, failed (to be retried), dead (given up) or refused (never sent)")
    response_code: int | None
    error: str | None
    latency_ms: float
    at: datetime
    fingerprints: list[str]
    alert_ids: list[int]
    group_key: str


class NotificationsOut(BaseModel):
    notifications: list[NotificationOut]
    next_before: int | None = Field(description="`before` for the next page; null on the last one")
