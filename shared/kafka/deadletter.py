"""Records that do not decode or validate go to `chimera.deadletter`, and processing goes on.

A dead letter keeps the original key and value bytes untouched, so it can be
inspected or replayed, and says why and where it came from in headers:

- `x-error`: JSON `{"reason": str, "errors": [{"field": str, "message": str}, ...]}`
- `x-source-topic`, `x-source-partition`, `x-source-offset`: ASCII text

`decode_or_dead_letter` is the decode step of a consumer that reads record by
record (the aggregator decodes in bulk: services/aggregator/consume/decoding.py): valid events come
back, bad records are dead-lettered. It returns only after the dead letters
are acknowledged, so committing the batch afterwards never loses a record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import orjson

from shared.events import InvalidEvent
from shared.kafka.consumer import Record
from shared.kafka.producer import EventProducer, OutgoingRecord
from shared.kafka.topics import Topic, topic_name
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

HEADER_ERROR = "x-error"
HEADER_SOURCE_TOPIC = "x-source-topic"
HEADER_SOURCE_PARTITION = "x-source-partition"
HEADER_SOURCE_OFFSET = "x-source-offset"

# What a decoder raises for bad input. Anything else is a bug in the decoder
# and should stop the consumer loudly rather than dead-letter every record.
_BAD_INPUT: tuple[type[Exception], ...] = (InvalidEvent, ValueError)


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be processed, and why."""

    record: Record
    reason: str
    errors: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_exception(cls, record: Record, exc: Exception) -> DeadLetter:
        if isinstance(exc, InvalidEvent):
            errors = [{"field": e.field, "message": e.message} for e in exc.errors]
            return cls(record, "invalid event", errors)
        message = f"{type(exc).__name__}: {exc}"
        return cls(record, "undecodable", [{"field": "", "message": message}])

    def headers(self) -> list[tuple[str, bytes]]:
        error = orjson.dumps({"reason": self.reason, "errors": self.errors})
        return [
            (HEADER_ERROR, error),
            (HEADER_SOURCE_TOPIC, self.record.topic.encode()),
            (HEADER_SOURCE_PARTITION, str(self.record.partition).encode()),
            (HEADER_SOURCE_OFFSET, str(self.record.offset).encode()),
        ]


class DeadLetterProducer:
    """Sends dead letters through a started `EventProducer` (which the caller owns)."""

    def __init__(self, producer: EventProducer, settings: ServiceSettings) -> None:
        self._producer = producer
        self.topic = topic_name(settings, Topic.DEADLETTER)
        # Running total, for the service's metrics.
        self.sent = 0

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Write the letters; return once acknowledged. Raises ProduceError like send_batch."""
        if not letters:
            return
        await self._producer.send_batch(
            [
                OutgoingRecord(
                    self.topic,
                    letter.record.key,
                    letter.record.value or b"",
                    letter.headers(),
                )
                for letter in letters
            ]
        )
        self.sent += len(letters)


async def decode_or_dead_letter(
    records: Sequence[Record],
    decoder: Callable[[bytes], T],
    dead_letters: DeadLetterProducer,
) -> list[T]:
    """Decode `records` in order; dead-letter those that fail and return the rest.

    Bad input never raises. A ProduceError from writing the dead letters does:
    the caller must then not commit the batch.
    """
    decoded: list[T] = []
    letters: list[DeadLetter] = []
    for record in records:
        if record.value is None:
            empty = [{"field": "", "message": "record has no value"}]
            letters.append(DeadLetter(record, "empty record", empty))
            continue
        try:
            decoded.append(decoder(record.value))
        except _BAD_INPUT as exc:
            letters.append(DeadLetter.from_exception(record, exc))
    if letters:
        log.warning(
            "dead-lettering %d of %d record(s); first: %s[%d]@%d %s",
            len(letters),
            len(records),
            letters[0].record.topic,
            letters[0].record.partition,
            letters[0].record.offset,
            letters[0].errors[:1],
        )
        await dead_letters.send(letters)
    return decoded
