"""The whole system end to end, the four services as processes on the real broker and database,
with 100,000 active workers (a benchmark, not a test).

    source .chimera/stack.env && .venv/bin/python bench/e2e_bench.py [--miners 10000]
        [--workers-per-miner 10] [--rate 4000] [--probes 100] [--alert-probes 16] [--quick] [--json]

A fresh topic prefix and schema (migrated, topics made), `python -m services.ingest`,
`.aggregator`, `.alerter` and `.notifier` on free ports, each its own process (so its RSS is its
own), waited for on /readyz. An API key is made in the run's schema; through the ingest's API an
alert rule (`worker_online == 0` for the miner `alertprobe`, by pool/miner/worker, `duration`
5 s) and a webhook channel (to a loopback receiver in this process, group_by worker, `group_wait`
1 s, matchers miner=alertprobe). Everything the services need differs from the defaults only in:
LIVENESS_FLOOR_MS (`--liveness-floor-s`, 10 s instead of 60 s, so an offline worker is declared
sooner and the run stays short), EXPORTER_MINER_ALLOWLIST=latprobe (so the probe miner has
/metrics series), RATE_LIMIT_PER_SECOND on the ingest; snapshot interval (5 s), alerter tick
(1 s), notifier tick (0.2 s) and the rest are the defaults.

Load: W = miners x workers-per-miner workers (`m<i>`/`w<j>`), shares produced straight to
`pool.shares` keyed by miner (as a pool node producing to Kafka does): one share per worker as
fast as the broker takes them (the backfill, timed until the aggregator's
`chimera_aggregator_events_total{status="processed"}` counts them all), then a steady round robin
at `--rate` shares/s for the rest of the run, so every worker shares every W/rate seconds (25 s
at the defaults: all W stay online, their liveness thresholds being 14 share gaps or more).

Measured, all under that load:

(0) baseline: one record produced (EventProducer, acks=all) to a 1-partition topic of the run and
    read back by a plain AIOKafkaConsumer with the aggregator's consumer defaults, one at a time:
    the broker's own round trip, p50/p99;
(a) share -> PostgreSQL: a probe share of a new worker `latprobe`/`p<k>`, POSTed to the ingest's
    `/v1/events` (timed from before the POST), until its worker-minute row is in `miner_metrics`
    (polled every 20 ms), one probe at a time: p50/p99; and the POST's own 202 time;
(b) share -> /metrics: the same probes, until the aggregator's
    `miner_shares_submitted_total{miner="latprobe"}` (the exporter's per-miner counter, raised
    as each durable batch is folded; the probe miner is on the allow-list) counts the probe
    (scraped every 20 ms): p50/p99;
(c) alerting: A workers `alertprobe`/`a<k>` send a share every 0.2 s or so for 20 s (10 s quick),
    then stop one after another 1.3 s apart (so their deadlines meet the snapshot tick at
    different phases). "Condition true" is the moment the aggregator's liveness declares the
    worker offline (its `Liveness.offline_deadline_ms`): the last share's event time + the
    worker's offline threshold (K = 14 share gaps at its estimated rate, clamped to [floor,
    30 min]), computed here with the aggregator's own `Liveness` (same floor and ceiling) fed
    those shares as the aggregator folds them, by minute. The rate is estimated from the start
    of the worker's first minute, so a worker younger than a minute gets more than the floor:
    the thresholds (min, max) are reported. Measured: webhook delivery time - (condition true +
    duration + group_wait), p50/p99, and its split, seen by a plain consumer here: condition ->
    the worker's first offline record on `chimera.snapshots` (the wait for the aggregator's next
    snapshot tick: up to SNAPSHOT_INTERVAL_S = 5 s, plus the tick's own time); that record -> the
    firing record on `chimera.alerts`, beyond `duration` (the alerter's tick, up to 1 s); that
    record -> the webhook, beyond `group_wait` (the notifier's tick, 0.2 s, and the send);
(d) memory: VmRSS and VmHWM of each of the four processes at the end, all W workers active.

What to expect at the defaults (100,000 workers, 4,000 shares/s, 2 cores): the snapshot stream
publishes at most SNAPSHOT_MAX_RECORDS_PER_TICK (5,000) worker records a tick (SNAPSHOT_INTERVAL_S,
5 s), 1,000 a second, and every share makes its worker "changed", so its queue of pending
workers holds nearly all of them (`chimera_aggregator_snapshot_pending`, reported). A worker
that stops jumps that queue when its deadline passes (the deadline of a queued worker is watched
too), so (c) is mostly the wait for the next tick: seconds. Before that was so, a worker never
published yet waited its turn in the queue, about W / 1,000 s (70-90 s here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import defaultdict
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from cryptography.fernet import Fernet
from e2e_support import (  # this folder (it puts the project's root on sys.path)
    Load,
    Stack,
    offline_at_ms,
    parse_sample,
    percentiles,
    progress,
    round_trips,
    until,
)

from services.ingest.adapters.keys import ApiKeyStore
from shared.db.pool import create_pool
from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name
from tests.integration.notifier.receivers import HttpReceiver

RTT_TOPIC = "bench.rtt"
DURATION_S, GROUP_WAIT_S = 5.0, 1.0
POLL_S = 0.02
STAGGER_S = 1.3  # alert probes stop this far apart: their deadlines meet the snapshot tick at many phases


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        key = Fernet.generate_key().decode()
        self.stack = Stack(args.partitions, {
            "all": {"NOTIFIER_SECRET_KEYS": key, "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8,::1"},
            "ingest": {"RATE_LIMIT_PER_SECOND": "100000"},
            "aggregator": {"LIVENESS_FLOOR_MS": str(int(args.liveness_floor_s * 1000)),
                           "EXPORTER_MINER_ALLOWLIST": "latprobe",
                           **({"SNAPSHOT_MAX_RECORDS_PER_TICK": str(args.snapshot_max_records)}
                              if args.snapshot_max_records else {})},
        })
        self.floor_ms = int(args.liveness_floor_s * 1000)
        self.load = Load(self.stack.settings, args.miners, args.workers_per_miner, args.rate)
        self.http: aiohttp.ClientSession | None = None
        self.headers: dict[str, str] = {}
        self.db: Any = None
        self.out: dict[str, Any] = {"workers": self.load.workers, "rate": args.rate, "partitions": args.partitions,
                                    "liveness_floor_s": args.liveness_floor_s}

    # --- set-up ------------------------------------------------------------------------------

    async def api(self, path: str, body: dict[str, Any]) -> None:
        assert self.http is not None
        async with self.http.post(self.stack.url("ingest", path), json=body, headers=self.headers) as resp:
            if resp.status not in (201, 202):
                raise RuntimeError(f"POST {path}: {resp.status} {await resp.text()}")

    async def set_up(self, receiver: HttpReceiver) -> None:
        s, began = self.stack, time.perf_counter()
        await s.prepare([RTT_TOPIC])
        s.start("ingest")
        await s.wait_ready(["ingest"])
        self.db = await create_pool(s.settings)
        _, token = await ApiKeyStore(self.db).create("e2e bench", ["ingest", "read", "admin"])
        self.headers = {"Authorization": f"Bearer {token}"}
        await self.api("/api/alert-rules", {
            "name": "probe worker offline", "metric": "worker_online", "operator": "==", "threshold": 0,
            "duration": f"{DURATION_S:g}s", "labels": {"miner": "alertprobe"}, "severity": "critical",
            "group_by": ["pool", "miner", "worker"]})
        await self.api("/api/alert-channels", {
            "name": "bench hook", "type": "webhook", "config": {"url": receiver.url("/hook")},
            "matchers": {"miner": "alertprobe"}, "group_by": ["worker"], "group_wait": f"{GROUP_WAIT_S:g}s",
            "group_interval": "1h", "repeat_interval": "4h", "rate_limit_per_minute": 100_000})
        for name in ("aggregator", "alerter", "notifier"):
            s.start(name)
        await s.wait_ready(["aggregator", "alerter", "notifier"], timeout_s=180)
        await asyncio.sleep(2.0)  # rules and channels loaded (reloads every 1-2 s)
        self.out["startup_s"] = round(time.perf_counter() - began, 1)
        progress(f"the four services ready ({s.prefix}, schema {s.schema})")

    async def aggregator_metric(self, name: str, labels: dict[str, str]) -> float | None:
        status, text = await self.stack.get("aggregator", "/metrics")
        return parse_sample(text, name, labels) if status == 200 else None

    async def processed(self) -> float:
        return await self.aggregator_metric("chimera_aggregator_events_total",
                                            {"topic": Topic.SHARES, "status": "processed"}) or 0.0

    async def probe_rows(self) -> set[str]:
        rows = await self.db.fetch("SELECT worker FROM miner_metrics WHERE pool = 'main' AND miner = 'latprobe'")
        return {r["worker"] for r in rows}

    # --- load ----------------------------------------------------------------------------------

    async def load_up(self) -> None:
        await self.load.producer.start()
        await self.load.send("latprobe", "warm")  # first, so the exporter's first ranking sees the miner
        await until(lambda: self.db.fetchval("SELECT 1 FROM miner_metrics WHERE miner = 'latprobe'"),
                    "the first probe share in PostgreSQL", 60)
        began = time.perf_counter()
        await self.load.backfill()
        produced = time.perf_counter() - began
        total = self.load.sent

        async def all_in() -> bool:
            return await self.processed() >= total

        await until(all_in, "the backfill folded", 600, 0.25)
        took = time.perf_counter() - began
        self.out["backfill"] = {"shares": self.load.workers, "produce_s": round(produced, 2),
                                "folded_s": round(took, 2), "rate": round(self.load.workers / took)}
        self.load.start_live()

        async def exported() -> bool:
            return await self.aggregator_metric("miner_shares_submitted_total", {"miner": "latprobe"}) is not None

        await until(exported, "the probe miner's /metrics series", 90, 0.5)
        progress(f"backfill folded in {took:.1f} s; the probe miner exported")

    # --- (0) the broker's round trip ----------------------------------------------------------

    async def baseline(self) -> dict[str, float]:
        return await round_trips(self.stack.settings, topic_name(self.stack.settings, RTT_TOPIC), self.args.probes)

    # --- (a), (b) share -> PostgreSQL, share -> /metrics ----------------------------------------

    async def latency_probes(self) -> None:
        assert self.http is not None
        counted = await self.aggregator_metric("miner_shares_submitted_total", {"miner": "latprobe"}) or 0.0
        to_pg, to_metrics, post = [], [], []
        for k in range(self.args.probes):
            worker, ts_ms = f"p{k}", time.time_ns() // 1_000_000
            event = {"event_id": f"{self.load.run}-probe-{k}", "type": "share", "ts": ts_ms, "pool": "main",
                     "node": "n1", "miner": "latprobe", "worker": worker, "difficulty": 1024.0,
                     "status": "accepted"}
            sent = time.perf_counter()
            async with self.http.post(self.stack.url("ingest", "/v1/events"), json=[event],
                                      headers=self.headers) as resp:
                assert resp.status == 202, await resp.text()
            post.append((time.perf_counter() - sent) * 1000)
            pg_at = metrics_at = None
            deadline = sent + 60
            while (pg_at is None or metrics_at is None) and time.perf_counter() < deadline:
                checks = await asyncio.gather(
                    self.probe_rows() if pg_at is None else asyncio.sleep(0, {worker}),
                    self.aggregator_metric("miner_shares_submitted_total", {"miner": "latprobe"})
                    if metrics_at is None else asyncio.sleep(0, counted + 1))
                now = time.perf_counter()
                if pg_at is None and worker in checks[0]:
                    pg_at = now
                if metrics_at is None and (checks[1] or 0) >= counted + 1:
                    metrics_at = now
                await asyncio.sleep(POLL_S)
            if pg_at is None or metrics_at is None:
                raise RuntimeError(f"probe {k} not seen in 60 s (PostgreSQL {pg_at}, /metrics {metrics_at})")
            counted += 1
            to_pg.append((pg_at - sent) * 1000)
            to_metrics.append((metrics_at - sent) * 1000)
            await asyncio.sleep(random.uniform(0.0, 0.3))  # probes at random phases of the batches
        self.out["share_to_postgres_ms"] = percentiles(to_pg)
        self.out["share_to_metrics_ms"] = percentiles(to_metrics)
        self.out["post_202_ms"] = percentiles(post)

    # --- (c) alerting ---------------------------------------------------------------------------

    async def alert_probes(self) -> dict[str, list[int]]:
        """A workers share every 0.2 s for the warm-up, then stop STAGGER_S apart; every share's ts_ms."""
        sent: dict[str, list[int]] = defaultdict(list)
        live = {f"a{k}" for k in range(self.args.alert_probes)}
        stop_at = {f"a{k}": time.monotonic() + self.args.alert_warm_s + STAGGER_S * k for k in range(len(live))}
        while live:
            for worker in sorted(live):
                if time.monotonic() >= stop_at[worker]:
                    live.discard(worker)
                else:
                    sent[worker].append(await self.load.send("alertprobe", worker))
            await asyncio.sleep(0.2)
        return sent

    async def read_outputs(self, offline: dict[str, float], fired: dict[str, float]) -> None:
        """When each alert probe's first offline record reaches `chimera.snapshots`, and its first
        firing record `chimera.alerts` (this process's clock, on arrival)."""
        settings = self.stack.settings
        consumer = AIOKafkaConsumer(topic_name(settings, Topic.SNAPSHOTS), topic_name(settings, Topic.ALERTS),
                                    **client_options(settings), group_id=None, auto_offset_reset="latest")
        await consumer.start()
        alerts = topic_name(settings, Topic.ALERTS)
        try:
            async for message in consumer:
                if message.topic == alerts:
                    alert = json.loads(message.value)
                    if alert["status"] == "firing":
                        fired.setdefault(alert["labels"].get("worker"), time.time())
                elif message.key and message.key.startswith(b"worker:main/alertprobe/"):
                    if json.loads(message.value)["figures"].get("online") is False:
                        offline.setdefault(message.key.decode().rsplit("/", 1)[1], time.time())
        finally:
            await consumer.stop()

    def alert_figures(self, shares: dict[str, list[int]], offline: dict[str, float], fired: dict[str, float],
                      receiver: HttpReceiver, clock_offset: float) -> dict[str, Any]:
        delivered: dict[str, float] = {}
        for request in receiver.on("/hook"):
            body = request.json or {}
            if body.get("status") == "firing":
                for alert in body.get("alerts", []):
                    delivered.setdefault(alert["labels"].get("worker"), request.received_at + clock_offset)
        total, snap, alerter, notifier, thresholds = [], [], [], [], []
        for worker, stamps in shares.items():
            true_s = offline_at_ms(stamps, self.floor_ms) / 1000
            thresholds.append(round(true_s - max(stamps) / 1000, 1))
            if worker in delivered:
                total.append((delivered[worker] - true_s - DURATION_S - GROUP_WAIT_S) * 1000)
            if worker in offline:
                snap.append((offline[worker] - true_s) * 1000)
                if worker in fired:
                    alerter.append((fired[worker] - offline[worker] - DURATION_S) * 1000)
            if worker in fired and worker in delivered:
                notifier.append((delivered[worker] - fired[worker] - GROUP_WAIT_S) * 1000)
        return {"probes": len(shares), "delivered": len(total), "threshold_s": [min(thresholds), max(thresholds)],
                "beyond_duration_group_wait_ms": percentiles(total),
                "condition_to_offline_snapshot_ms": percentiles(snap),
                "snapshot_to_firing_beyond_duration_ms": percentiles(alerter),
                "firing_to_webhook_beyond_group_wait_ms": percentiles(notifier)}

    # --- the run -------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        offline: dict[str, float] = {}
        fired: dict[str, float] = {}
        tasks: list[asyncio.Task[Any]] = []
        clock_offset = time.time() - time.monotonic()  # the receiver stamps time.monotonic()
        async with HttpReceiver() as receiver, aiohttp.ClientSession() as self.http:
            try:
                await self.set_up(receiver)
                await self.load_up()
                tasks.append(asyncio.create_task(self.read_outputs(offline, fired)))
                tasks.append(alerting := asyncio.create_task(self.alert_probes()))
                await self.latency_probes()
                progress("latency probes done")
                self.out["rtt_baseline_ms"] = await self.baseline()
                shares = await alerting
                want = self.args.alert_probes
                self.out["snapshot_pending"] = await self.aggregator_metric("chimera_aggregator_snapshot_pending", {})
                latest = max(offline_at_ms(stamps, self.floor_ms) for stamps in shares.values()) / 1000
                # A saturated snapshot stream publishes a changed worker only when its turn in the
                # queue of pending workers comes: allow one whole queue (every worker) at its pace.
                drain_s = self.load.workers / ((self.args.snapshot_max_records or 5_000) / 5.0)
                settle = max(10.0, latest + DURATION_S + GROUP_WAIT_S + 30 + 1.2 * drain_s - time.time())

                async def delivered() -> bool:
                    return len({a["labels"].get("worker") for r in receiver.on("/hook") if r.json
                                for a in r.json.get("alerts", [])}) >= want

                try:
                    await until(delivered, "every alert probe's webhook", settle, 0.1)
                except RuntimeError as missing:
                    print(f"warning: {missing}", flush=True)
                self.out["alerting"] = self.alert_figures(shares, offline, fired, receiver, clock_offset)
                self.out["live_rate"] = round(self.load.live_sent / max(self.load.live_s, 1e-9))
                self.out["memory"] = {name: self.stack.memory_mib(name) for name in self.stack.processes}
                if died := self.stack.died():
                    raise RuntimeError(f"services exited during the run: {died}")
            finally:
                try:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    await self.load.stop()
                    if self.db is not None:
                        await self.db.close()
                finally:
                    await self.stack.close()
        return self.out


def report(r: dict[str, Any]) -> None:
    b, base = r["backfill"], r["rtt_baseline_ms"]
    print(f"{r['workers']:,} workers, {r['partitions']} partitions, liveness floor {r['liveness_floor_s']:g} s; "
          f"services ready in {r['startup_s']:.0f} s")
    print(f"backfill: one share per worker produced in {b['produce_s']:.1f} s, folded by the aggregator in "
          f"{b['folded_s']:.1f} s ({b['rate']:,} shares/s); then live at {r['live_rate']:,} shares/s "
          f"(asked {r['rate']:,.0f})")
    print(f"(0) bare produce -> consume round trip: p50 {base['p50']:.1f} ms, p99 {base['p99']:.1f} ms")
    for key, what in (("share_to_postgres_ms", "(a) share POSTed -> minute row in PostgreSQL"),
                      ("share_to_metrics_ms", "(b) share POSTed -> aggregator /metrics counter"),
                      ("post_202_ms", "    POST /v1/events -> 202")):
        p = r[key]
        print(f"{what}: p50 {p['p50']:.0f} ms, p99 {p['p99']:.0f} ms, max {p['max']:.0f} ms ({p['n']} probes)")
    a = r["alerting"]
    t, sn, al, no = (a["beyond_duration_group_wait_ms"], a["condition_to_offline_snapshot_ms"],
                     a["snapshot_to_firing_beyond_duration_ms"], a["firing_to_webhook_beyond_group_wait_ms"])
    print(f"(c) offline -> webhook beyond duration {DURATION_S:g} s + group_wait {GROUP_WAIT_S:g} s "
          f"({a['delivered']}/{a['probes']} delivered, offline thresholds {a['threshold_s']} s): "
          f"p50 {t['p50']:.0f} ms, p99 {t['p99']:.0f} ms, max {t['max']:.0f} ms")
    print(f"    of which condition -> offline record on chimera.snapshots p50 {sn['p50']:.0f} / "
          f"p99 {sn['p99']:.0f} ms; -> firing record on chimera.alerts beyond duration p50 {al['p50']:.0f} / "
          f"p99 {al['p99']:.0f} ms; "
          f"-> webhook beyond group_wait p50 {no['p50']:.0f} / p99 {no['p99']:.0f} ms")
    print(f"    the aggregator's snapshot queue (chimera_aggregator_snapshot_pending) after the probes: "
          f"{r['snapshot_pending']:,.0f} workers")
    for name, m in r["memory"].items():
        print(f"(d) {name}: VmRSS {m['vm_rss_mib']:.0f} MiB, VmHWM {m['vm_hwm_mib']:.0f} MiB")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--miners", type=int, default=10_000)
    parser.add_argument("--workers-per-miner", type=int, default=10)
    parser.add_argument("--rate", type=float, default=4_000, help="live shares/s after the backfill")
    parser.add_argument("--probes", type=int, default=100, help="latency probes (and baseline round trips)")
    parser.add_argument("--alert-probes", type=int, default=16, help="workers taken offline for (c)")
    parser.add_argument("--alert-warm-s", type=float, default=20.0, help="how long they share before")
    parser.add_argument("--liveness-floor-s", type=float, default=10.0, help="LIVENESS_FLOOR_MS / 1000")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--snapshot-max-records", type=int, default=None,
                        help="SNAPSHOT_MAX_RECORDS_PER_TICK of the aggregator (default: the service's, 5,000)")
    parser.add_argument("--quick", action="store_true", help="2,000 workers, 20 probes, 6 alert probes")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    args = parser.parse_args(argv)
    if args.quick:
        args.miners, args.workers_per_miner, args.rate = 200, 10, 500
        args.probes, args.alert_probes, args.alert_warm_s = 20, 6, 10.0
    return args


if __name__ == "__main__":
    arguments = parse_args()
    result = asyncio.run(Run(arguments).run())
    report(result)
    if arguments.json:
        print(json.dumps(result), flush=True)
