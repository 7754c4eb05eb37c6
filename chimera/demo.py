"""`chimera demo`: a simulated pool streaming into Kafka, with live figures, until Ctrl-C.

Two owned tasks in one TaskGroup: the pool, which every second sends the
events its nodes saw in that second (through the shared idempotent
producer), and the view, a consumer group member on the event topics that
decodes what arrives (bad records would go to the dead-letter topic) and
prints what it counted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson

from chimera.simulator import JsonEvent, SimulatedPool
from shared.events import Event, decode_event
from shared.kafka.consumer import BatchConsumer
from shared.kafka.deadletter import DeadLetterProducer, decode_records
from shared.kafka.producer import EventProducer, OutgoingRecord
from shared.kafka.topics import Topic, topic_name
from shared.settings import ServiceSettings

TICK_MS = 1000
REPORT_EVERY_S = 2.0
_TOPIC_BY_TYPE = {"share": Topic.SHARES, "block": Topic.BLOCKS, "miner": Topic.MINERS}


@dataclass
class Tally:
    sent: int = 0
    consumed: Counter[str] = field(default_factory=Counter)

    def count(self, events: list[Event]) -> None:
        for event in events:
            self.consumed[event.type] += 1
            if event.type == "share":
                self.consumed[f"share:{event.status}"] += 1


def _records(settings: ServiceSettings, events: list[JsonEvent]) -> list[OutgoingRecord]:
    return [
        OutgoingRecord(
            topic_name(settings, _TOPIC_BY_TYPE[str(event["type"])]),
            str(event["miner"]).encode(),
            orjson.dumps(event),
        )
        for event in events
    ]


async def _simulate(settings: ServiceSettings, pool: SimulatedPool, producer: EventProducer,
                    consumer: BatchConsumer, tally: Tally) -> None:
    # The view reads from "latest": let it join its group first so it sees the connects.
    while not consumer.assignment():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # and resolve its "latest" positions, done on its first fetch
    now_ms = int(time.time() * 1000)
    connects = pool.connect_events(now_ms)
    await producer.send_batch(_records(settings, connects))
    tally.sent += len(connects)
    next_ms = now_ms
    while True:
        events = pool.tick(next_ms, TICK_MS)
        await producer.send_batch(_records(settings, events))
        tally.sent += len(events)
        next_ms += TICK_MS
        await asyncio.sleep(max(0.0, next_ms / 1000 - time.time()))


async def _view(consumer: BatchConsumer, dead_letters: DeadLetterProducer, tally: Tally) -> None:
    async for batch in consumer.batches():
        tally.count(await decode_records(batch, decode_event, dead_letters))
        await consumer.commit(batch)


async def _report(pool: SimulatedPool, tally: Tally, dead_letters: DeadLetterProducer) -> None:
    miners = len({w.miner for w in pool.workers})
    print(
        f"simulated pool: {miners} miners, {len(pool.workers)} workers, "
        f"{pool.pool_hashrate_hs / 1e15:.2f} PH/s; Ctrl-C to stop",
        flush=True,
    )
    previous = Counter[str]()
    while True:
        await asyncio.sleep(REPORT_EVERY_S)
        now, delta = Counter(tally.consumed), Counter(tally.consumed)
        delta.subtract(previous)
        previous = now
        shares = max(1, now["share"])
        print(
            f"{time.strftime('%H:%M:%S')}  sent {tally.sent:>7}  consumed "
            f"shares {now['share']:>7} ({delta['share'] / REPORT_EVERY_S:5.1f}/s, "
            f"accepted {100 * now['share:accepted'] / shares:5.1f}%, "
            f"rejected {100 * now['share:rejected'] / shares:4.1f}%, "
            f"stale {100 * now['share:stale'] / shares:4.1f}%)  "
            f"blocks {now['block']}  miner events {now['miner']}  dead letters {dead_letters.sent}",
            flush=True,
        )


async def run_demo(settings: ServiceSettings) -> None:
    pool = SimulatedPool(seed=int(time.time()))
    tally = Tally()
    producer = EventProducer(settings, client_id="chimera-demo")
    consumer = BatchConsumer(
        settings, [Topic.SHARES, Topic.BLOCKS, Topic.MINERS],
        group_id=f"chimera-demo-view-{uuid.uuid4().hex[:8]}", auto_offset_reset="latest",
    )
    await producer.start()
    try:
        await consumer.start()
        dead_letters = DeadLetterProducer(producer, settings)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_simulate(settings, pool, producer, consumer, tally), name="simulated-pool")
            tasks.create_task(_view(consumer, dead_letters, tally), name="live-view")
            tasks.create_task(_report(pool, tally, dead_letters), name="report")
    finally:
        await consumer.stop()
        await producer.stop()
