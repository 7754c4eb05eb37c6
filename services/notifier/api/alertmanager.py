"""`POST /api/alertmanager/webhook`: an Alertmanager's alerts into the notifier (ingest scope).

Point an Alertmanager receiver at it (`webhook_configs: - url: .../api/alertmanager/webhook`,
`http_config.authorization.credentials: <an ingest key>`): its alerts become
`chimera.alerts` records (domain/alertmanager_in.py) and take the same road
as the alerter's, through routing, silences, grouping and delivery.

The answer is 200 only after Kafka acknowledged every record, so an
Alertmanager that gets anything else retries the payload, and nothing it was
told was taken is lost. Kafka unreachable: 503 with Retry-After, at once
while the broker stays away (a connection is tried again at most every few
seconds, not on every request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, WithJsonSchema

from shared.http.auth import Scope, require_scope
from shared.http.bodies import ErrorOut, error_responses
from shared.http.errors import ApiError
from shared.http.guard import guarded_router
from shared.kafka.producer import EventProducer, OutgoingRecord, ProduceError
from shared.settings import ServiceSettings

from ..domain.alertmanager_in import (
    MAX_ALERTS,
    MAX_FIELDS,
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_URL_CHARS,
    MAX_VALUE_CHARS,
    PayloadError,
    records_from_webhook,
)

__all__ = ["AlertPublisher", "KafkaUnavailable", "alertmanager_router"]

log = logging.getLogger(__name__)

RETRY_AFTER_S: Final = 2
PRODUCE_TIMEOUT_S: Final = 5.0
_FIRST_BACKOFF_S: Final = 0.25
_MAX_BACKOFF_S: Final = 10.0
_INGEST = Depends(require_scope(Scope.INGEST))


class KafkaUnavailable(Exception):
    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class AlertPublisher:
    """One producer for the route, connected on demand; dropped (and later reconnected) when Kafka fails it."""

    def __init__(self, settings: ServiceSettings, *, timeout_s: float = PRODUCE_TIMEOUT_S,
                 retry_after_s: int = RETRY_AFTER_S) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._producer: EventProducer | None = None
        self._lock = asyncio.Lock()
        self._backoff_s = _FIRST_BACKOFF_S
        self._next_try = 0.0  # monotonic: no connection attempt before this
        self._last_error = "not connected to Kafka yet"

    async def start(self) -> None:
        """Try to connect once; the API starts (and answers 503 here) without Kafka."""
        try:
            await self._connected()
        except KafkaUnavailable as exc:
            log.warning("the Alertmanager webhook starts without Kafka: %s", exc.reason)

    async def stop(self) -> None:
        """Safe before start() and when called twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.close(self._timeout_s)

    async def _connected(self) -> EventProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            if time.monotonic() < self._next_try:
                raise KafkaUnavailable(self._last_error, self._retry_after_s)
            producer = EventProducer(self._settings, client_id="chimera-alertmanager-webhook",
                                     delivery_timeout_s=self._timeout_s,
                                     request_timeout_ms=int(self._timeout_s * 1000))
            try:
                await producer.start()
            except ProduceError as exc:
                self._last_error = str(exc)
                self._next_try = time.monotonic() + self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, _MAX_BACKOFF_S)
                raise KafkaUnavailable(self._last_error, self._retry_after_s) from exc
            self._producer, self._backoff_s = producer, _FIRST_BACKOFF_S
            return producer

    async def publish(self, topic: str, records: Sequence[dict[str, Any]]) -> None:
        """Returns once Kafka acknowledged every record (key: the fingerprint); KafkaUnavailable otherwise."""
        if not records:
            return
        producer = await self._connected()
        batch = [OutgoingRecord(topic, r["fingerprint"].encode(), orjson.dumps(r)) for r in records]
        try:
            await producer.send_batch(batch, timeout_s=self._timeout_s)
        except ProduceError as exc:
            self._last_error = str(exc)
            if exc.retriable and self._producer is producer:
                # Dropped with what it still holds: the client was told 503 and sends it again.
                self._producer = None
                await producer.close(0)
            elif not exc.retriable:
                log.error("Kafka refused Alertmanager records: %s", exc)
            raise KafkaUnavailable(self._last_error, self._retry_after_s) from exc


def _strings(max_value_chars: int) -> dict[str, Any]:
    return {"type": "object", "maxProperties": MAX_FIELDS,
            "propertyNames": {"minLength": 1, "maxLength": MAX_NAME_CHARS},
            "additionalProperties": {"type": "string", "maxLength": max_value_chars}}


_TIME: Final = {"type": "string", "format": "date-time"}
_ALERT: Final = {
    "type": "object",
    "required": ["status", "labels", "startsAt"],
    "properties": {
        "status": {"type": "string", "enum": ["firing", "resolved"]},
        "labels": {**_strings(MAX_VALUE_CHARS), "required": ["alertname"],
                   "properties": {"alertname": {"type": "string", "minLength": 1, "maxLength": MAX_VALUE_CHARS}},
                   "description": "`alertname` names the alert; `severity` (info, warning, error, critical; "
                                  "anything else reads as warning) ranks it"},
        "annotations": _strings(MAX_NOTE_CHARS),
        "startsAt": _TIME,
        "endsAt": {**_TIME, "description": "A resolved alert's end (absent or 0001-01-01T00:00:00Z: now)"},
        "generatorURL": {"type": "string", "maxLength": MAX_URL_CHARS},
        "fingerprint": {"type": "string", "pattern": "^[0-9A-Za-z._:-]{1,128}$",
                        "description": "Alertmanager's; the record's fingerprint is am-<this>"},
    },
}
PAYLOAD_SCHEMA: Final = {
    "title": "Alertmanager webhook payload (version 4)",
    "type": "object",
    "required": ["alerts"],
    "properties": {
        "version": {"type": "string", "enum": ["4"]},
        "groupKey": {"type": "string"},
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "status": {"type": "string", "enum": ["firing", "resolved"]},
        "receiver": {"type": "string"},
        "groupLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "commonLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "commonAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "externalURL": {"type": "string"},
        "alerts": {"type": "array", "maxItems": MAX_ALERTS, "items": _ALERT},
    },
}


class AcceptedOut(BaseModel):
    accepted: int


def alertmanager_router(publisher: AlertPublisher, topic: str) -> APIRouter:
    router = guarded_router(tags=["alertmanager"])

    @router.post("/api/alertmanager/webhook", response_model=AcceptedOut,
                 responses={**error_responses(400, 401, 403, 413, 422),
                            503: {"model": ErrorOut,
                                  "description": "Kafka is unreachable: nothing was taken; retry after Retry-After",
                                  "headers": {"Retry-After": {"schema": {"type": "integer"}}}}},
                 summary="Take an Alertmanager's alerts",
                 description="Ingest scope (the key in the receiver's `http_config.authorization`). Each alert "
                             "is published on chimera.alerts for the notifier, and the answer comes once Kafka "
                             "has acknowledged them all. Any field at fault is a 422 naming it "
                             "(`body.alerts[3].labels.alertname`), and then none of the payload is taken.")
    async def alertmanager_webhook(
        payload: Annotated[dict[str, Any], Body(), WithJsonSchema(PAYLOAD_SCHEMA)],
        _: Any = _INGEST,
    ) -> AcceptedOut:
        try:
            records = records_from_webhook(payload, now=datetime.now(UTC))
        except PayloadError as exc:
            raise ApiError(422, "the payload cannot be taken",
                           [{"field": f"body.{p.field}" if p.field != "body" else "body", "message": p.message}
                            for p in exc.problems]) from exc
        try:
            await publisher.publish(topic, records)
        except KafkaUnavailable as exc:
            raise ApiError(503, "Kafka cannot be reached right now; nothing was taken, retry later", [],
                           {"Retry-After": str(exc.retry_after_s)}) from exc
        return AcceptedOut(accepted=len(records))

    return router
