"""GET /live: the console's server-sent events, one stream per open page (services/ingest/domain/live.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import Depends, Query, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.ingest.api.common_params import MINER_PARAM_PATTERN, container, error_responses
from services.ingest.api.stats import PoolName
from services.ingest.domain.live import LiveHub, Subscription, TooManyStreams
from services.ingest.domain.live_records import LiveRecord
from services.ingest.telemetry import IngestTelemetry
from shared.http.auth import Principal, client_address, ensure_miner, require_scope
from shared.http.auth import Scope as KeyScope
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

router = guarded_router(tags=["console"])

RECONNECT_MS: Final = 3_000
_STREAM_RETRY_AFTER_S: Final = 5
MinerQuery = Annotated[str | None, Query(min_length=1, max_length=128, pattern=MINER_PARAM_PATTERN,
                                         description="One miner: its miner and worker records too")]

_DESCRIPTION: Final = f"""\
A `text/event-stream` of the pool's live figures, fed from the aggregator's snapshot stream and the
alerter's alert stream (docs/aggregator.md "Snapshot topic", docs/alerter.md): one stream per open page,
not a poll per panel.

The stream starts with `retry: {RECONNECT_MS}` (a browser's EventSource reconnects by itself that long
after the server goes away), then at once the latest pool record this process knows, and the named
miner's latest summary, so a page has figures without waiting for the next tick. Then, as they
arrive:

- `event: pool`: the pool's snapshot record (every few seconds);
- `event: miner` / `event: worker`: with `miner`, that miner's records and its workers' records;
- `event: alert`: every alert state change (`chimera.alerts` records).

Each event has `id:` (a counter within the stream) and one `data:` line: the record as JSON, the
topic's documented shape (the first miner record carries the list's fields only: hashrate and its
interval, efficiency, workers, last share, online). A comment line (`: heartbeat`) every
`LIVE_HEARTBEAT_S` seconds (15) keeps proxies from closing a quiet stream. Figures are as fresh as
the snapshot stream (seconds); a slow client gets the latest figures of each pool, miner, worker or
alert, never a backlog (older queued ones are replaced, counted in `chimera_live_records_coalesced`).

Read scope, or a `miner:<name>` key: its stream is its own miner's (`miner` defaults to it, another is
403 `query.miner`), without pool records and with only the alerts labelled with its miner. At most
`LIVE_MAX_STREAMS` streams per process and `LIVE_MAX_STREAMS_PER_CLIENT` per client address: 429 beyond.
The stream ends when the client goes away or the server stops. 404 while `CONSOLE_ENABLED` is false."""


class _EventStream(StreamingResponse):
    """A streaming response that gives its subscription back however the response ends:
    the client leaving cancels the body, and a body never started runs no `finally`."""

    def __init__(self, body: AsyncIterator[str], hub: LiveHub, subscription: Subscription) -> None:
        super().__init__(body, media_type="text/event-stream",
                         # no-transform: no proxy may buffer or compress the stream.
                         headers={"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"})
        self._hub = hub
        self._subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._hub.unsubscribe(self._subscription)


def _event(event_id: int, record: LiveRecord) -> str:
    # record.data is one line of JSON (re-encoded by the hub): no line break can end the field early.
    return f"event: {record.kind}\nid: {event_id}\ndata: {record.data}\n\n"


async def _events(subscription: Subscription, telemetry: IngestTelemetry, heartbeat_s: float) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MS}\n\n"
    sent = 0
    while True:
        records = subscription.take()
        if records:
            chunks = []
            for record in records:
                sent += 1
                chunks.append(_event(sent, record))
                telemetry.record_sent(record.kind)
            yield "".join(chunks)
            continue
        if subscription.closed:
            return
        await subscription.wait(heartbeat_s)
        if not subscription.pending and not subscription.closed:
            yield ": heartbeat\n\n"


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 404, 422, 429),
    },
    summary="Live figures as server-sent events (the console's pages)",
    description=_DESCRIPTION,
)
async def live(
    request: Request,
    pool: PoolName = "main",
    miner: MinerQuery = None,
    principal: Principal = Depends(require_scope(KeyScope.READ, miner=True)),
) -> StreamingResponse:
    parts = container(request)
    if not parts.settings.console_enabled:
        raise ApiError(404, "the console is disabled on this server (CONSOLE_ENABLED=false)")
    if principal.miner is not None:
        miner = miner if miner is not None else principal.miner
        ensure_miner(principal, miner, field="query.miner")
    try:
        subscription = parts.live.subscribe(pool=pool, miner=miner, key_miner=principal.miner,
                                            client=client_address(request))
    except TooManyStreams as exc:
        parts.telemetry.stream_refused(exc.limit)
        raise ApiError(429, f"too many open live streams ({exc.limit}); close a page or retry later",
                       [{"field": "query", "message": f"at most {exc.bound} streams per {exc.limit}"}],
                       {"Retry-After": str(_STREAM_RETRY_AFTER_S)}) from None
    return _EventStream(_events(subscription, parts.telemetry, parts.settings.live_heartbeat_s),
                        parts.live, subscription)
