"""`/api/alert-channels`: where notifications go (docs/contract.md section 4).

Writes take the admin scope, reads the read scope (the contract's "read:
every GET"); a `miner:<name>` key does both for the channels of its miner
only: what it creates hears that miner's alerts alone, and every other
channel is a 404 to it, whether it exists or not.

Secrets (tokens, passwords, URLs carrying a key) are encrypted at rest and
never answered: responses show them masked, and a PUT giving a masked value
back keeps the stored secret, so a client can PUT back what it GOT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Path, Response

from shared.http.auth import Principal, Scope, require_scope
from shared.http.bodies import error_responses
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

from ..adapters.channel_store import Channel, ChannelExists, ChannelSpec, ChannelStore
from ..adapters.delivery_log import Attempt, DeliveryLog
from ..config import ChannelSettings
from ..domain.channel_types import CHANNEL_TYPES, MASK, ChannelConfigError, check_config, masked_config, split_secrets
from ..domain.matchers import Matcher, MatcherError
from ..domain.message_group import GroupMessage, message_to_json, test_message
from .bodies import (
    ChannelIn,
    ChannelOut,
    ChannelsOut,
    ChannelTestOut,
    MatcherOut,
    format_duration,
    parse_duration_ms,
)

__all__ = ["TestSender", "channels_router"]

_WRITE = Depends(require_scope(Scope.ADMIN, miner=True))
_READ = Depends(require_scope(Scope.READ, miner=True))
ChannelId = Annotated[int, Path(alias="channelId", ge=1, le=2**63 - 1, description="The channel's id")]
_MINER_NOTE = (" A `miner:<name>` key works on its own miner's channels only (any other is a 404); "
               "what it makes hears that miner's alerts alone.")


class TestSender(Protocol):
    """What the test route needs of the notifier's senders (`senders.Senders`)."""

    async def send(self, channel_type: str, name: str, config: Mapping[str, Any], message: GroupMessage,
                   /) -> Attempt: ...


def _not_found(channel_id: int) -> ApiError:
    return ApiError(404, f"no channel {channel_id}", [{"field": "path.channelId", "message": "not found"}])


def _exists(exc: ChannelExists) -> ApiError:
    return ApiError(409, str(exc), [{"field": "body.name", "message": "taken"}])


def channel_out(channel: Channel) -> ChannelOut:
    return ChannelOut(
        id=channel.id, name=channel.name, type=channel.type,
        config=masked_config(channel.type, channel.config, channel.secrets), matchers=dict(channel.matchers),
        label_matchers=[MatcherOut(**m) for m in channel.label_matchers], min_severity=channel.min_severity,
        send_resolved=channel.send_resolved, group_by=list(channel.group_by),
        group_wait=format_duration(channel.group_wait_ms), group_interval=format_duration(channel.group_interval_ms),
        repeat_interval=format_duration(channel.repeat_interval_ms), enabled=channel.enabled,
        rate_limit_per_minute=channel.rate_limit_per_minute, miner=channel.miner, created_by=channel.created_by,
        created_at=channel.created_at, updated_at=channel.updated_at, secrets_readable=channel.secrets_error is None,
    )


def unmasked(channel_type: str, config: Mapping[str, Any], stored: Channel | None) -> dict[str, Any]:
    """The config with every masked secret replaced by the stored one it stands for.

    ChannelConfigError for a mask that stands for nothing (no stored secret of
    that key and type): stored as it is, it would be a secret of `********`."""
    out = dict(config)
    secret_keys = {key.name for key in CHANNEL_TYPES.get(channel_type, ()) if key.secret}
    for name in secret_keys & out.keys():
        value = out[name]
        if not isinstance(value, str) or not (value == MASK or value.endswith("/" + MASK)):
            continue
        if stored is not None and stored.type == channel_type and name in stored.secrets:
            secret = stored.secrets[name]
            if value in (MASK, masked_config(channel_type, {}, {name: secret})[name]):
                out[name] = secret
                continue
        why = ("the stored secrets cannot be opened" if stored is not None and stored.secrets_error
               else "there is no stored secret it stands for")
        raise ChannelConfigError(f"config.{name}", f"a masked value, and {why}: give the value itself")
    return out


def _durations(body: ChannelIn, details: list[dict[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, least_ms in (("group_wait", 0), ("group_interval", 1), ("repeat_interval", 1)):
        try:
            out[name] = parse_duration_ms(getattr(body, name))
        except ValueError as exc:
            details.append({"field": f"body.{name}", "message": str(exc)})
            continue
        if out[name] < least_ms:
            details.append({"field": f"body.{name}", "message": "must be more than 0"})
    return out


def _matchers(body: ChannelIn, details: list[dict[str, str]]) -> None:
    for name, value in body.matchers.items():
        try:
            Matcher.of(name, value, "=", f"body.matchers.{name}")
        except MatcherError as exc:
            details.append({"field": exc.field, "message": exc.message})
    for i, m in enumerate(body.label_matchers):
        try:
            Matcher.of(m.name, m.value, m.op, f"body.label_matchers[{i}]")
        except MatcherError as exc:
            details.append({"field": exc.field, "message": exc.message})


def _miner(body: ChannelIn, principal: Principal, stored: Channel | None) -> str | None:
    if principal.miner is None:
        # A replacement leaving `miner` out keeps it (null clears it): forgetting the field must
        # not make a miner's channel hear every miner's alerts.
        if stored is not None and "miner" not in body.model_fields_set:
            return stored.miner
        return body.miner
    if body.miner not in (None, principal.miner):
        raise ApiError(403, f"this API key manages miner {principal.miner}'s channels only",
                       [{"field": "body.miner", "message": f"this API key is limited to miner {principal.miner}"}])
    return principal.miner


def channel_spec(body: ChannelIn, principal: Principal, settings: ChannelSettings,
                 stored: Channel | None) -> ChannelSpec:
    """The body as a channel to store, or a 422 naming every field that is wrong (the config's first)."""
    details: list[dict[str, str]] = []
    miner = _miner(body, principal, stored)
    durations = _durations(body, details)
    _matchers(body, details)
    public: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    try:
        config = check_config(body.type, unmasked(body.type, body.config, stored), settings.allowed_networks)
        public, secrets = split_secrets(body.type, config)
    except ChannelConfigError as exc:
        details.append({"field": f"body.{exc.field}", "message": exc.message})
    if details:
        raise ApiError(422, "the channel cannot be used", details)
    return ChannelSpec(
        name=body.name, type=body.type, config=public, secrets=secrets, matchers=dict(body.matchers),
        label_matchers=[m.model_dump() for m in body.label_matchers], min_severity=body.min_severity,
        send_resolved=body.send_resolved, group_by=tuple(body.group_by), group_wait_ms=durations["group_wait"],
        group_interval_ms=durations["group_interval"], repeat_interval_ms=durations["repeat_interval"],
        enabled=body.enabled, miner=miner, rate_limit_per_minute=body.rate_limit_per_minute,
        created_by=principal.name,
    )


def channels_router(store: ChannelStore, settings: ChannelSettings, senders: TestSender,
                    deliveries: DeliveryLog) -> APIRouter:
    router = guarded_router(tags=["alert channels"])

    @router.post("/api/alert-channels", status_code=201, response_model=ChannelOut,
                 responses=error_responses(400, 401, 403, 409, 413, 422), summary="Create an alert channel",
                 description="Admin scope. Names are unique (409). The config is checked against the type's "
                             "keys and the networks channels may reach (NOTIFIER_ALLOWED_NETWORKS): a 422 names "
                             "the key (`body.config.url`)." + _MINER_NOTE)
    async def create_channel(body: ChannelIn, principal: Principal = _WRITE) -> ChannelOut:
        spec = channel_spec(body, principal, settings, None)
        try:
            return channel_out(await store.create(spec))
        except ChannelExists as exc:
            raise _exists(exc) from exc

    @router.get("/api/alert-channels", response_model=ChannelsOut, responses=error_responses(401, 403),
                summary="List alert channels", description="Read scope; secrets masked." + _MINER_NOTE)
    async def list_channels(principal: Principal = _READ) -> ChannelsOut:
        return ChannelsOut(channels=[channel_out(c) for c in await store.channels(owner=principal.miner)])

    @router.get("/api/alert-channels/{channelId}", response_model=ChannelOut,
                responses=error_responses(401, 403, 404), summary="Get an alert channel",
                description="Read scope; secrets masked." + _MINER_NOTE)
    async def get_channel(channel_id: ChannelId, principal: Principal = _READ) -> ChannelOut:
        channel = await store.get(channel_id, owner=principal.miner)
        if channel is None:
            raise _not_found(channel_id)
        return channel_out(channel)

    @router.put("/api/alert-channels/{channelId}", response_model=ChannelOut,
                responses=error_responses(400, 401, 403, 404, 409, 413, 422), summary="Replace an alert channel",
                description="Admin scope. Fields left out take their defaults, except `miner`, which stays "
                            "unless given (null: none); a secret given as its masked value (as GET shows it) "
                            "keeps the stored secret." + _MINER_NOTE)
    async def replace_channel(channel_id: ChannelId, body: ChannelIn, principal: Principal = _WRITE) -> ChannelOut:
        stored = await store.get(channel_id, owner=principal.miner)
        if stored is None:
            raise _not_found(channel_id)
        spec = channel_spec(body, principal, settings, stored)
        try:
            updated = await store.update(channel_id, spec, owner=principal.miner)
        except ChannelExists as exc:
            raise _exists(exc) from exc
        if updated is None:  # deleted meanwhile
            raise _not_found(channel_id)
        return channel_out(updated)

    @router.delete("/api/alert-channels/{channelId}", status_code=204, response_class=Response,
                   responses=error_responses(401, 403, 404), summary="Delete an alert channel",
                   description="Admin scope. Its pending notifications go with it." + _MINER_NOTE)
    async def delete_channel(channel_id: ChannelId, principal: Principal = _WRITE) -> Response:
        if not await store.delete(channel_id, owner=principal.miner):
            raise _not_found(channel_id)
        return Response(status_code=204)

    @router.post("/api/alert-channels/{channelId}/test", response_model=ChannelTestOut,
                 responses=error_responses(401, 403, 404, 409), summary="Send a test notification",
                 description="Admin scope. One firing test alert (`ChimeraTestNotification`), sent at once "
                             "and logged (GET /api/notifications). A delivery that failed is still a 200, "
                             "with `ok` false and the reason: the request itself worked. 409 when the stored "
                             "secrets cannot be opened." + _MINER_NOTE)
    async def test_channel(channel_id: ChannelId, principal: Principal = _WRITE) -> ChannelTestOut:
        channel = await store.get(channel_id, owner=principal.miner)
        if channel is None:
            raise _not_found(channel_id)
        if channel.secrets_error is not None:
            raise ApiError(409, "the channel's secrets cannot be opened; PUT them anew",
                           [{"field": "config", "message": channel.secrets_error}])
        message = test_message(channel.name, external_url=settings.notifier_external_url)
        result = await senders.send(channel.type, channel.name, channel.full_config(), message)
        delivery_id = await deliveries.record_test(channel.id, channel.type, message_to_json(message), result)
        return ChannelTestOut(ok=result.ok, status_code=result.status_code, error=result.error,
                              latency_ms=result.latency_ms, delivery_id=delivery_id)

    return router
