"""faust's delivery, as mended in shared/kafka/faust_transport.py, on the real broker:

- a member's table changes reach their changelog before the offsets that made
  them are committed, even when the sends are slow (each buffered change waits
  0.3 s here, so that faust's own flush would give up every time): a member
  that stops hands over everything it stored;
- a seek back to the committed offsets while records are on their way to a
  stream (faust's last step of a rebalance) loses none of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer

from shared.kafka.faust_app import FaustRunner, make_app, own_topics
from shared.kafka.producer import EventProducer, OutgoingRecord
from shared.kafka.topics import TopicSpec, ensure_topics, topic_name
from shared.settings import ServiceSettings
from tests.conftest import Endpoints
from tests.waiting import until

pytestmark = pytest.mark.integration

MARKS = 8
SLOW_SEND_S = 0.3


class Member:
    """One faust app with a table of marks: every input record sets its key's mark."""

    def __init__(self, settings: ServiceSettings, data_dir: Path, *, stream_buffer: int | None = None,
                 mark_s: float = 0.0, commit_interval_s: float | None = None) -> None:
        self.app = make_app(settings, app_id="changelog-check", data_dir=data_dir, session_timeout_s=6)
        if stream_buffer is not None:
            self.app.conf.stream_buffer_maxsize = stream_buffer
        if commit_interval_s is not None:
            self.app.conf.broker_commit_interval = commit_interval_s
        self.mark_s = mark_s
        raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
        self.input = self.app.topic(topic_name(settings, "changelog-check-input"), **raw)
        self.marks = self.app.Table("marks", default=None, partitions=settings.kafka_topic_partitions, **raw)
        self.taken: set[tuple[int, int]] = set()  # (partition, offset) of the records the agent took
        self.app.agent(self.input, name="marker")(self._mark)
        self.runner = FaustRunner(self.app, data_dir, "WARNING", "changelog-check")

    async def _mark(self, stream: Any) -> None:
        async for event in stream.events():
            await asyncio.sleep(self.mark_s)
            self.marks[event.key] = event.value
            self.taken.add((event.message.partition, event.message.offset))

    async def send(self, settings: ServiceSettings, records: list[tuple[bytes, bytes]]) -> None:
        producer = EventProducer(settings)
        await producer.start()
        try:
            await producer.send_batch([OutgoingRecord(self.input.get_topic_name(), key, value)
                                       for key, value in records])
        finally:
            await producer.stop()


async def test_a_member_that_stops_leaves_every_table_change_in_the_changelog(
    endpoints: Endpoints, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    send = ProducerBuffer._send_pending

    async def slow_send(self: ProducerBuffer, fut: Any) -> None:
        await asyncio.sleep(SLOW_SEND_S)
        await send(self, fut)

    monkeypatch.setattr(ProducerBuffer, "_send_pending", slow_send)
    settings = ServiceSettings(kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
                               kafka_topic_prefix=topic_prefix, kafka_topic_partitions=2)
    first = Member(settings, tmp_path / "first")
    await ensure_topics(settings, extra=[*own_topics(first.app, 2), TopicSpec(first.input.get_topic_name(), 2)])
    await first.runner.start()
    try:
        await until(first.runner.ready, 90, "the first member ready")
        await first.send(settings, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(MARKS)])

        async def all_processed() -> bool:
            return len(first.taken) == MARKS

        await until(all_processed, 60, f"all {MARKS} records processed")
    finally:
        await first.runner.stop()  # at once: most changes are still buffered

    second = Member(settings, tmp_path / "second")
    await second.runner.start()
    try:
        await until(second.runner.ready, 90, "the second member to recover its table")
        await asyncio.sleep(2)  # anything its input still held (offsets not committed) is processed again
        marks = {key: second.marks.get(key) for key in (f"k{i}".encode() for i in range(MARKS))}
    finally:
        await second.runner.stop()
    assert marks == {f"k{i}".encode(): f"v{i}".encode() for i in range(MARKS)}


@pytest.mark.parametrize("commit_interval_s", [None, 3600.0], ids=["committing", "nothing-committed"])
async def test_a_seek_while_records_are_on_their_way_to_the_stream_loses_none(
    endpoints: Endpoints, topic_prefix: str, tmp_path: Path, commit_interval_s: float | None,
) -> None:
    # A stream buffer of 4 and a slow agent: the consumer always holds records on their way to
    # the stream when the seek comes, as in a rebalance under load. With nothing committed yet
    # (a partition just taken over, or a member that has not committed yet), the seek has to go
    # back to the start of the log: aiokafka's own seek leaves such a partition where it was.
    settings = ServiceSettings(kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
                               kafka_topic_prefix=topic_prefix, kafka_topic_partitions=1)
    member = Member(settings, tmp_path / "member", stream_buffer=4, mark_s=0.02,
                    commit_interval_s=commit_interval_s)
    await ensure_topics(settings, extra=[*own_topics(member.app, 1), TopicSpec(member.input.get_topic_name(), 1)])
    await member.runner.start()
    try:
        await until(member.runner.ready, 90, "the member ready")
        # one key, one partition: the records in one sequence of offsets
        await member.send(settings, [(b"k", f"v{i}".encode()) for i in range(200)])

        async def under_way() -> bool:
            return len(member.taken) >= 20

        await until(under_way, 60, "the agent under way")
        # faust's last step of a rebalance (tables/recovery.py, on_recovery_completed): the stream
        # partitions back to their committed offsets, then the flow resumed, which clears the
        # streams' queues (what they held is fetched again from the committed offsets).
        consumer, app = member.app.consumer, member.app
        await consumer.perform_seek()
        app.flow_control.resume()
        consumer.resume_flow()

        async def all_seen() -> bool:
            return len(member.taken) == 200

        try:
            await until(all_seen, 60, "every record at the agent")
        except AssertionError:
            missing = sorted(set(range(200)) - {offset for _, offset in member.taken})
            raise AssertionError(f"{len(missing)} records never reached the agent: {missing[:20]}") from None
    finally:
        await member.runner.stop()
