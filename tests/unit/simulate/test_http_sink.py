"""HttpSink and its retry policy, against a scripted transport (httpx.MockTransport) and a fake sleep."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from chimera.simulate import (
    DeliveryError,
    HttpSink,
    MetricSample,
    PerformanceSample,
    RetryPolicy,
)
from chimera.simulate.retry import Outcome, classify, retry_after_s

pytestmark = pytest.mark.unit

URL = "http://pool.test"


class Script:
    """Answers requests from a list of (status, headers, json) or exceptions; records what came."""

    def __init__(self, *answers: tuple[int, dict[str, str], object] | Exception) -> None:
        self.answers = deque(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.popleft() if self.answers else (202, {}, {"accepted": 0})
        if isinstance(answer, Exception):
            raise answer
        status, headers, body = answer
        return httpx.Response(status, headers=headers, json=body)

    def bodies(self) -> list[object]:
        return [orjson.loads(r.content) for r in self.requests]

    def ids(self) -> list[list[object]]:
        return [[e["event_id"] for e in body] for body in self.bodies() if isinstance(body, list)]


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def events(n: int) -> list[dict[str, object]]:
    return [{"event_id": f"e{i}", "type": "share", "miner": "m1"} for i in range(n)]


def sink(script: Script, sleeps: Sleeps, *, max_batch_events: int = 5_000,
         max_batch_bytes: int = 4 * 1024 * 1024) -> HttpSink:
    return HttpSink(URL, "k3y", transport=httpx.MockTransport(script), sleep=sleeps,
                    policy=RetryPolicy(max_attempts=4, initial_s=0.5, max_s=4.0),
                    max_batch_events=max_batch_events, max_batch_bytes=max_batch_bytes)


async def test_events_go_in_batches_with_the_key() -> None:
    script, sleeps = Script(), Sleeps()
    async with sink(script, sleeps, max_batch_events=5) as http:
        await http.send_events(events(12))
    assert script.ids() == [[f"e{i}" for i in range(5)], [f"e{i}" for i in range(5, 10)], ["e10", "e11"]]
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/events")
    assert request.headers["authorization"] == "Bearer k3y"
    assert request.headers["content-type"] == "application/json"
    assert http.stats.events == 12 and http.stats.retries == 0 and sleeps.delays == []


async def test_batches_stay_under_the_byte_limit() -> None:
    script, sleeps = Script(), Sleeps()
    big: list[dict[str, object]] = [{"event_id": f"e{i}", "pad": "x" * 400} for i in range(10)]
    async with sink(script, sleeps, max_batch_bytes=1024) as http:
        await http.send_events(big)
    assert all(len(r.content) <= 1024 for r in script.requests)
    assert [i for ids in script.ids() for i in ids] == [f"e{i}" for i in range(10)]


@pytest.mark.parametrize(("first", "delay"), [
    ((503, {"Retry-After": "7"}, {"error": "Kafka"}), 7.0),
    ((429, {"Retry-After": "2"}, {"error": "slow down"}), 2.0),
    ((429, {}, {"error": "slow down"}), 0.5),  # no Retry-After: the back-off's first step
    ((503, {"Retry-After": "9999"}, {"error": "Kafka"}), 300.0),  # capped
    ((500, {}, {"error": "Kafka refused"}), 0.5),
    (httpx.ConnectError("refused"), 0.5),
    (httpx.ReadTimeout("slow"), 0.5),
])
async def test_a_retry_resends_the_same_events_after_the_asked_delay(
    first: tuple[int, dict[str, str], object] | Exception, delay: float,
) -> None:
    script, sleeps = Script(first, (202, {}, {"accepted": 3})), Sleeps()
    async with sink(script, sleeps) as http:
        await http.send_events(events(3))
    assert script.ids() == [["e0", "e1", "e2"]] * 2
    assert script.requests[0].content == script.requests[1].content
    assert sleeps.delays == [delay]
    assert http.stats.retries == 1 and http.stats.events == 3


async def test_back_off_doubles_until_the_attempts_run_out() -> None:
    script, sleeps = Script(*[(503, {}, {"error": "down"})] * 4), Sleeps()
    async with sink(script, sleeps) as http:
        with pytest.raises(DeliveryError, match="gave up after 4 attempts"):
            await http.send_events(events(2))
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0]
    assert len(script.requests) == 4 and http.stats.events == 0


@pytest.mark.parametrize("status", [400, 401, 403, 413, 422])
async def test_a_refusal_is_not_retried(status: int) -> None:
    script, sleeps = Script((status, {}, {"error": "no", "details": []})), Sleeps()
    async with sink(script, sleeps) as http:
        with pytest.raises(DeliveryError, match=f"refused with {status}") as raised:
            await http.send_events(events(2))
    assert raised.value.status == status and len(script.requests) == 1 and sleeps.delays == []


async def test_a_partial_answer_resends_only_the_events_it_names() -> None:
    partial: tuple[int, dict[str, str], object] = (
        207, {"Retry-After": "1"}, {"accepted": 2, "details": [{"index": 1, "field": "", "message": "later"}]})
    script, sleeps = Script(partial, (202, {}, {"accepted": 1})), Sleeps()
    async with sink(script, sleeps) as http:
        await http.send_events(events(3))
    assert script.ids() == [["e0", "e1", "e2"], ["e1"]]
    assert sleeps.delays == [1.0] and http.stats.events == 3


async def test_a_partial_answer_naming_an_event_that_will_never_pass_is_a_refusal() -> None:
    partial: tuple[int, dict[str, str], object] = (
        207, {}, {"accepted": 2, "details": [{"index": 0, "retriable": False, "message": "invalid"}]})
    script, sleeps = Script(partial), Sleeps()
    async with sink(script, sleeps) as http:
        with pytest.raises(DeliveryError, match="refused with 207"):
            await http.send_events(events(3))


async def test_metrics_and_host_usage_go_one_sample_a_request_with_retries() -> None:
    script = Script((429, {"Retry-After": "3"}, {"error": "slow"}), (202, {}, {"accepted": 1, "id": "x"}))
    sleeps = Sleeps()
    metric = MetricSample(1_767_225_600_000, "team_activity", 3.0, {"team": "alpha"})
    perf = PerformanceSample(1_767_225_600_000, "sim-node-1", "stratum", 12.5, 40.0, 55.0, 1000, 2000, 0.5)
    async with sink(script, sleeps) as http:
        await http.send_metrics([metric])
        await http.send_performance([perf])
    assert [r.url.path for r in script.requests] == ["/api/metrics", "/api/metrics", "/api/metrics/performance"]
    assert script.bodies()[0] == script.bodies()[1] == {
        "name": "team_activity", "type": "gauge", "value": 3.0, "labels": {"team": "alpha"},
        "timestamp": "2026-01-01T00:00:00.000Z"}
    assert sleeps.delays == [3.0] and http.stats.metrics == 1 and http.stats.performance == 1


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.DONE), (202, Outcome.DONE), (207, Outcome.PARTIAL), (408, Outcome.RETRY),
    (429, Outcome.RETRY), (500, Outcome.RETRY), (503, Outcome.RETRY), (504, Outcome.RETRY),
    (400, Outcome.REFUSED), (404, Outcome.REFUSED), (409, Outcome.REFUSED), (422, Outcome.REFUSED),
])
def test_answers_are_classified(status: int, outcome: Outcome) -> None:
    assert classify(status) is outcome


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), (" 2 ", 2.0), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0), (None, None), ("", None),
    ("soon", None), ("nan", None),
    ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0), ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
])
def test_retry_after_is_read_as_seconds_or_a_date(header: str | None, seconds: float | None) -> None:
    assert retry_after_s(header, NOW) == seconds
