"""The retry policy, the per-channel token bucket (pure), and the dispatcher around them with
hand-written fakes of the delivery log and the senders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notifier.adapters.delivery_log import DueDelivery, Outcome
from services.notifier.adapters.senders import SendResult
from services.notifier.directory import Destination
from services.notifier.dispatch import Dispatcher
from services.notifier.domain.delivery import RetryPolicy, TokenBucket, Verdict, judge
from services.notifier.domain.messages import GroupMessage, message_to_json, test_message
from services.notifier.domain.routing import Route
from services.notifier.telemetry import NotifierTelemetry, reason_of

pytestmark = pytest.mark.unit

POLICY = RetryPolicy(max_attempts=4, initial_s=1.0, max_s=10.0, retry_after_max_s=60.0)


@pytest.mark.parametrize(("ok", "retriable", "attempt", "retry_after_s", "jitter", "expected"), [
    (True, False, 1, None, 0.5, (Verdict.SENT, 0.0)),
    (False, True, 1, None, 0.0, (Verdict.RETRY, 0.5)),  # half of 1 s fixed, no jitter drawn
    (False, True, 1, None, 0.999999, (Verdict.RETRY, pytest.approx(1.0, abs=1e-5))),
    (False, True, 2, None, 0.0, (Verdict.RETRY, 1.0)),  # doubling: 2 s, half fixed
    (False, True, 3, None, 1.0 - 1e-9, (Verdict.RETRY, pytest.approx(4.0))),
    (False, True, 3, 7.0, 0.3, (Verdict.RETRY, 7.0)),  # the destination's Retry-After wins
    (False, True, 3, 600.0, 0.3, (Verdict.RETRY, 60.0)),  # capped
    (False, True, 4, None, 0.0, (Verdict.DEAD, 0.0)),  # the last attempt
    (False, False, 1, 5.0, 0.0, (Verdict.DEAD, 0.0)),  # a 400: not worth another
])
def test_judge(ok: bool, retriable: bool, attempt: int, retry_after_s: float | None, jitter: float,
               expected: tuple[Verdict, float]) -> None:
    assert judge(ok=ok, retriable=retriable, attempt=attempt, retry_after_s=retry_after_s, policy=POLICY,
                 jitter=jitter) == expected


def test_backoff_is_capped_at_max_even_after_many_attempts() -> None:
    policy = RetryPolicy(max_attempts=1000, initial_s=1.0, max_s=10.0, retry_after_max_s=60.0)
    assert policy.delay_s(500, None, 0.0) == 5.0 and policy.delay_s(500, None, 1.0) == 10.0


@pytest.mark.parametrize("bad", [dict(max_attempts=0), dict(initial_s=0.0), dict(max_s=0.5),
                                 dict(retry_after_max_s=0.0)])
def test_a_policy_that_cannot_work_is_refused(bad: dict[str, Any]) -> None:
    values: dict[str, Any] = {"max_attempts": 3, "initial_s": 1.0, "max_s": 10.0, "retry_after_max_s": 60.0}
    with pytest.raises(ValueError):
        RetryPolicy(**{**values, **bad})


def test_the_bucket_allows_a_burst_then_one_per_interval() -> None:
    bucket = TokenBucket.full(60.0, now_ms=0)  # one a second, bursts of 6
    assert [bucket.take(0) for _ in range(6)] == [0.0] * 6
    assert bucket.take(0) == pytest.approx(1.0)  # nothing taken: the wait until one is there
    assert bucket.take(500) == pytest.approx(0.5)
    assert bucket.take(1_000) == 0.0
    assert bucket.take(1_000) == pytest.approx(1.0)
    assert bucket.take(3_600_000) == 0.0 and bucket.tokens == pytest.approx(5.0)  # refills to capacity only


def test_a_slow_bucket_holds_one_token() -> None:
    bucket = TokenBucket.full(2.0, now_ms=0)  # two a minute
    assert bucket.take(0) == 0.0
    assert bucket.take(0) == pytest.approx(30.0)


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"ok": True, "status_code": 200, "refused": False, "retriable": False}, "ok"),
    ({"ok": False, "status_code": None, "refused": True, "retriable": False}, "refused"),
    ({"ok": False, "status_code": 429, "refused": False, "retriable": True}, "http_429"),
    ({"ok": False, "status_code": 503, "refused": False, "retriable": True}, "http_5xx"),
    ({"ok": False, "status_code": 404, "refused": False, "retriable": False}, "http_4xx"),
    ({"ok": False, "status_code": 302, "refused": False, "retriable": False}, "http_3xx"),
    ({"ok": False, "status_code": None, "refused": False, "retriable": True}, "timeout_or_network"),
    ({"ok": False, "status_code": 250, "refused": False, "retriable": False}, "other"),
])
def test_reasons_are_a_bounded_vocabulary(kwargs: dict[str, Any], reason: str) -> None:
    assert reason_of(**kwargs) == reason


# --- the dispatcher, with fakes --------------------------------------------------------------

@dataclass
class FakeLog:
    due: list[DueDelivery]
    recorded: list[Outcome] = field(default_factory=list)
    postponed: list[tuple[int, float]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    marked: list[int] = field(default_factory=list)

    async def claim_due(self, limit: int, lease_s: float) -> list[DueDelivery]:
        taken, self.due = self.due[:limit], self.due[limit:]
        return taken

    async def next_due_s(self) -> float | None:
        return 0.0 if self.due else None

    async def record_attempts(self, outcomes: list[Outcome]) -> None:
        self.recorded.extend(outcomes)

    async def postpone(self, delivery_id: int, wait_s: float) -> None:
        self.postponed.append((delivery_id, wait_s))

    async def undead(self, limit: int) -> list[dict[str, Any]]:
        found, self.dead = self.dead, []
        return found

    async def mark_dead_lettered(self, ids: list[int]) -> None:
        self.marked.extend(ids)


@dataclass
class FakeSender:
    answers: list[SendResult]
    sent: list[tuple[str, str, GroupMessage]] = field(default_factory=list)

    async def send(self, channel_type: str, name: str, config: Mapping[str, Any],
                   message: GroupMessage) -> SendResult:
        self.sent.append((channel_type, name, message))
        return self.answers.pop(0)


def _due(delivery_id: int, channel_id: int = 1, attempts: int = 0) -> DueDelivery:
    return DueDelivery(delivery_id, f"g{delivery_id}:1", channel_id, f"g{delivery_id}",
                       message_to_json(test_message("ops", now=datetime(2026, 12, 1, tzinfo=UTC))), attempts,
                       datetime(2026, 12, 1, tzinfo=UTC))


def _destination(channel_id: int = 1, rate: float | None = None) -> Destination:
    return Destination(channel_id, "ops", "webhook", {"url": "https://example.com/h"}, Route(channel_id, "ops"),
                       rate)


def _dispatcher(log: FakeLog, sender: FakeSender, channels: dict[int, Destination],
                published: list[list[tuple[bytes, bytes]]]) -> Dispatcher:
    async def publish(records: list[tuple[bytes, bytes]]) -> None:
        published.append(records)

    return Dispatcher(log, channels.get, sender, POLICY, NotifierTelemetry(), publish,
                      default_rate_per_minute=6_000.0, concurrency=4, lease_s=30.0)


def _result(ok: bool, code: int | None, retriable: bool = False, retry_after_s: float | None = None) -> SendResult:
    return SendResult(ok=ok, status_code=code, error=None if ok else f"HTTP {code}", retriable=retriable,
                      retry_after_s=retry_after_s, latency_ms=3.0)


async def test_each_claimed_notification_is_sent_once_and_judged() -> None:
    log = FakeLog([_due(1), _due(2), _due(3, attempts=3)])
    sender = FakeSender([_result(True, 200), _result(False, 503, retriable=True, retry_after_s=9.0),
                         _result(False, 503, retriable=True)])
    published: list[list[tuple[bytes, bytes]]] = []
    claimed = await _dispatcher(log, sender, {1: _destination()}, published).run_once()
    assert claimed == 3 and len(sender.sent) == 3
    assert sorted((o.due.id, o.verdict, o.retry_in_s) for o in log.recorded) == [
        (1, Verdict.SENT, 0.0), (2, Verdict.RETRY, 9.0), (3, Verdict.DEAD, 0.0)]
    assert sender.sent[0][2].alerts[0].name == "ChimeraTestNotification"  # the stored message, rebuilt


async def test_a_channel_gone_is_dead_without_a_send() -> None:
    log = FakeLog([_due(1, channel_id=7)])
    sender = FakeSender([])
    await _dispatcher(log, sender, {}, []).run_once()
    assert sender.sent == []
    [outcome] = log.recorded
    assert (outcome.verdict, outcome.attempt.refused, outcome.channel_type) == (Verdict.DEAD, True, "unknown")


async def test_the_rate_limit_postpones_without_counting_an_attempt() -> None:
    log = FakeLog([_due(i) for i in range(1, 5)])
    sender = FakeSender([_result(True, 200)])
    await _dispatcher(log, sender, {1: _destination(rate=6.0)}, []).run_once()  # bursts of 1, one per 10 s
    assert len(sender.sent) == 1 and len(log.recorded) == 1
    assert [d for d, _ in log.postponed] == [2, 3, 4]
    assert all(wait == pytest.approx(10.0, rel=0.05) for _, wait in log.postponed)


async def test_dead_notifications_are_published_then_marked() -> None:
    log = FakeLog([])
    log.dead = [{"id": 5, "idempotency_key": "g:1", "message": {}}, {"id": 6, "idempotency_key": "g:2"}]
    published: list[list[tuple[bytes, bytes]]] = []
    await _dispatcher(log, FakeSender([]), {}, published).run_once()
    assert [key for key, _ in published[0]] == [b"g:1", b"g:2"]
    assert log.marked == [5, 6]


async def test_the_dead_letter_outbox_is_read_again_only_after_a_death() -> None:
    log = FakeLog([])
    reads: list[int] = []
    undead = log.undead

    async def counted(limit: int) -> list[dict[str, Any]]:
        reads.append(limit)
        return await undead(limit)

    log.undead = counted  # type: ignore[method-assign]
    dispatcher = _dispatcher(log, FakeSender([_result(False, 400)]), {1: _destination()}, [])
    await dispatcher.run_once()  # at start: what an earlier process left
    await dispatcher.run_once()  # idle: not read
    assert len(reads) == 1
    log.due = [_due(1)]
    await dispatcher.run_once()  # a 400: dead, so the outbox is read
    assert len(reads) == 2
