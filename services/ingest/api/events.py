"""POST /v1/events (docs/contract.md sections 1 and 3): decode the body, hand it to the event sink.

The hot path is one streaming read of the body, one orjson parse, the
proven share checks (api/fast_batch.py: shares become records without
models; other events get one bulk pydantic validation), then one awaited
send of the whole batch; nothing is awaited per event. A body the checks
cannot take whole goes through `decode_batch`, whose errors the 4xx carry.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter
from starlette.requests import ClientDisconnect

from services.ingest.adapters.event_sink import DeliveryFailed, KafkaUnavailable
from services.ingest.api.common_params import container as container_of
from services.ingest.api.fast_batch import check_batch
from services.ingest.domain.batches import census_of, count_by_type, non_finite_numbers
from services.ingest.telemetry import RejectReason
from shared.events import BatchTooLarge, Event, FieldError, InvalidEvent, decode_batch
from shared.http.auth import Principal, Scope, require_scope
from shared.http.errors import ApiError
from shared.http.guard import BodyTooLarge, guarded_router

if TYPE_CHECKING:  # bootstrap imports the routers; importing it back at run time would be circular
    from services.ingest.bootstrap import Container

log = logging.getLogger(__name__)

JSON: Final = "application/json"
NDJSON: Final = "application/x-ndjson"
# Enough to fix a batch; a batch of 10,000 bad events would otherwise answer megabytes.
MAX_DETAILS: Final = 100

router = guarded_router(tags=["events"])
_INGEST = Depends(require_scope(Scope.INGEST))


class EventsAccepted(BaseModel):
    accepted: int


class ErrorDetail(BaseModel):
    index: int | None = None
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    details: list[ErrorDetail]


async def read_body(request: Request) -> bytes:
    """The whole body; the route's guard refuses it (BodyTooLarge) as soon as it passes the limit."""
    chunks: list[bytes] = []
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to read the answer; this only keeps it out of the 500s.
        raise ApiError(400, "the client disconnected before the body was complete") from None
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def census(raw: bytes, *, ndjson: bool) -> Counter[str]:
    """Per-type counts of a body that was refused; best effort, {} when it does not parse.

    Only on the rejection path, so parsing the body a second time is fine.
    """
    items: list[Any] = []
    try:
        if ndjson:
            for line in raw.split(b"\n"):
                if line.strip():
                    try:
                        items.append(orjson.loads(line))
                    except orjson.JSONDecodeError:
                        items.append(None)
        else:
            parsed = orjson.loads(raw)
            items = parsed if isinstance(parsed, list) else []
    except orjson.JSONDecodeError:
        return Counter()
    return census_of(items)


def locate_non_finite(raw: bytes, ndjson: bool, errors: list[FieldError]) -> list[FieldError]:
    """Replace "not valid JSON" errors caused by NaN/Infinity with errors naming the field."""
    unparsable = {e.index for e in errors if e.field == ""}
    if not unparsable:
        return errors
    found = non_finite_numbers(raw, ndjson=ndjson)
    if not found:
        return errors
    located = {index for index, _, _ in found}
    kept = [e for e in errors
            if not (e.field == "" and (e.index is None or e.index in located))]
    kept += [FieldError(index, field, f"{literal} is not a finite number (JSON has no NaN or Infinity)")
             for index, field, literal in found]
    return sorted(kept, key=lambda e: -1 if e.index is None else e.index)


def details_of(errors: Sequence[FieldError]) -> list[dict[str, Any]]:
    return [
        {"index": e.index, "field": e.field or ("body" if e.index is None else ""), "message": e.message}
        for e in errors[:MAX_DETAILS]
    ]


def invalid_message(errors: Sequence[FieldError]) -> str:
    events = len({e.index for e in errors if e.index is not None})
    if events:
        what = "1 event is invalid" if events == 1 else f"{events} events are invalid"
    else:
        what = "the body is invalid"
    shown = f" (first {MAX_DETAILS} of {len(errors)} problems listed)" if len(errors) > MAX_DETAILS else ""
    return f"{what}; no event of the batch was accepted{shown}"


_ERROR_RESPONSE: Final = {"model": ErrorBody}
_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {**_ERROR_RESPONSE, "description": "No API key, or an unknown, revoked or expired one"},
    403: {**_ERROR_RESPONSE, "description": "The key lacks the `ingest` scope"},
    413: {**_ERROR_RESPONSE, "description": "More events or bytes than allowed"},
    415: {**_ERROR_RESPONSE, "description": "Content-Type is neither JSON nor NDJSON"},
    422: {**_ERROR_RESPONSE,
          "description": "At least one event is invalid; none was accepted. "
          "`details` lists `index` (event position), `field` and `message`."},
    429: {**_ERROR_RESPONSE, "description": "Over the key's rate limit; see Retry-After",
          "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    503: {**_ERROR_RESPONSE, "description": "Kafka (or the key store) is unreachable; see Retry-After",
          "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
}


def _request_body(max_events: int) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            JSON: {"schema": {
                "type": "array", "minItems": 1, "maxItems": max_events,
                "items": {"$ref": "#/components/schemas/Event"},
            }},
            NDJSON: {"schema": {
                "type": "string",
                "description": "One event (a JSON object, see Event) per line.",
            }},
        },
    }


def event_component_schemas() -> dict[str, Any]:
    """`Event` and the three event models, as OpenAPI components (the app adds them)."""
    schema = TypeAdapter(Event).json_schema(
        mode="validation", ref_template="#/components/schemas/{model}"
    )
    components: dict[str, Any] = schema.pop("$defs", {})
    schema["title"] = "Event"
    schema["description"] = "Any pool event, told apart by its `type` field (docs/contract.md section 1)."
    components["Event"] = schema
    return components


@router.post(
    "/v1/events",
    status_code=202,
    response_model=EventsAccepted,
    responses=_RESPONSES,
    summary="Send a batch of pool events",
    description=(
        "A JSON array of events (`application/json`) or one event per line "
        "(`application/x-ndjson`); at most 10,000 events and 10 MiB. All or nothing: "
        "202 only once Kafka acknowledged every event. Needs the `ingest` scope."
    ),
    openapi_extra={"requestBody": _request_body(10_000)},
)
async def post_events(request: Request, _: Principal = _INGEST) -> Response:
    container = container_of(request)
    settings = container.settings
    telemetry = container.telemetry
    kind = media_type(request)
    if kind not in (JSON, NDJSON):
        telemetry.rejected(RejectReason.UNSUPPORTED_MEDIA_TYPE, {})
        raise ApiError(415, f"Content-Type must be {JSON} or {NDJSON}", [
            {"index": None, "field": "header.content-type",
             "message": (f"got {kind!r}" if kind else "no Content-Type header")
             + f"; expected {JSON} or {NDJSON}"}
        ])
    ndjson = kind == NDJSON
    try:
        raw = await read_body(request)
    except BodyTooLarge:
        telemetry.rejected(RejectReason.TOO_LARGE, {})
        raise  # the guard answers 413
    telemetry.batch_bytes.observe(len(raw))
    checked = check_batch(raw, ndjson=ndjson, max_events=settings.max_batch_events,
                          now_ms=time.time_ns() // 1_000_000, settings=settings
                          ) if settings.share_fast_checks else None
    if checked is not None:
        telemetry.received(checked.counts)
        telemetry.batch_events.observe(len(checked.records))
        await deliver(container, checked.counts, container.events.send_records(checked.records))
        return Response(orjson.dumps({"accepted": len(checked.records)}), status_code=202, media_type=JSON)
    try:
        events = decode_batch(raw, ndjson=ndjson, max_events=settings.max_batch_events)
    except BatchTooLarge as exc:
        counts = census(raw, ndjson=ndjson)
        telemetry.received(counts)
        telemetry.rejected(RejectReason.TOO_LARGE, counts)
        raise ApiError(413, f"batch of {exc.count} events exceeds the limit of {exc.limit}", [
            {"index": None, "field": "body",
             "message": f"at most {exc.limit} events per request; split the batch"}
        ]) from None
    except InvalidEvent as exc:
        counts = census(raw, ndjson=ndjson)
        telemetry.received(counts)
        telemetry.rejected(RejectReason.INVALID, counts)
        errors = locate_non_finite(raw, ndjson, exc.errors)
        raise ApiError(422, invalid_message(errors), details_of(errors)) from None
    counts = count_by_type(events)
    telemetry.received(counts)
    telemetry.batch_events.observe(len(events))
    await deliver(container, counts, container.events.send(events))
    return Response(orjson.dumps({"accepted": len(events)}), status_code=202, media_type=JSON)


async def deliver(container: Container, counts: Counter[str], sending: Coroutine[Any, Any, None]) -> None:
    """Await the sink's send of a decoded batch; its failures become the route's 503 or 500."""
    telemetry = container.telemetry
    try:
        await sending
    except KafkaUnavailable as exc:
        telemetry.rejected(RejectReason.KAFKA_UNAVAILABLE, counts)
        # The cause (broker addresses, client errors) is logged by the sink, not told to clients.
        raise ApiError(
            503, "Kafka did not acknowledge the batch; treat it as not stored and send it again "
            "after Retry-After (a repeat is counted once, by event_id)",
            [], {"Retry-After": str(exc.retry_after_s)},
        ) from None
    except DeliveryFailed as exc:
        log.error("Kafka refused a batch of %d events: %s", sum(counts.values()), exc.reason)
        telemetry.rejected(RejectReason.DELIVERY_FAILED, counts)
        raise ApiError(500, "Kafka refused the batch; it was not (entirely) stored") from None
    telemetry.accepted(counts)
