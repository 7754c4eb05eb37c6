"""/metrics text from the in-memory models: the seed's names, per-miner caps, and the service's own metrics."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.aggregator.consume.results import BatchResult, PartitionResult, PipelineStats
from services.aggregator.domain.model import PoolAggregate
from services.aggregator.outputs.exporter import MetricsExporter
from shared.kafka.topics import Topic

from .samples import MIN, T0_MS, block, block_hash, share

pytestmark = pytest.mark.unit

T32 = 2.0**32
SEED_NAMES = {
    "pool_total_hashrate", "pool_active_miners", "pool_shares_per_second", "pool_blocks_found",
    "pool_uptime_seconds", "miner_hashrate", "miner_shares_submitted", "miner_shares_accepted",
    "miner_shares_rejected", "miner_online", "pool_cpu_usage", "pool_memory_usage", "pool_disk_usage",
}


def samples(text: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text.decode()):
        out.setdefault(family.name, [])
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def exporter(**kwargs: Any) -> MetricsExporter:
    return MetricsExporter(db_pool=None, clock_ms=lambda: T0_MS + MIN + 1000, **kwargs)


def outcome(model: PoolAggregate, partition: int = 0, **counts: Any) -> BatchResult:
    shares = [share(T0_MS + i * 100, miner=f"m{i % 5}", difficulty=float(1 + i % 5),
                    status="rejected" if i % 10 == 0 else "accepted") for i in range(500)]
    result = model.ingest_shares(shares)
    blocks = model.ingest_blocks([block(T0_MS + 5, block_hash(1), miner="m0")])
    return BatchResult(partitions={partition: PartitionResult(model, shares=result, blocks=blocks)},
                        received={Topic.SHARES: 500, Topic.BLOCKS: 1}, batch_size=501, **counts)


async def test_seed_names_and_the_cap_on_miner_series() -> None:
    exp = exporter(top_miners=2, allowlist=("m0", "nobody"))
    model = PoolAggregate()
    exp.on_batch(outcome(model))
    await exp.rank()
    exp.on_batch(outcome(model))  # counters count from when a miner got its series
    await exp.refresh()
    metrics = samples(exp.render())
    assert SEED_NAMES <= set(metrics)
    # m4 has difficulty 5 per share, m3 4: the top 2; m0 comes from the allow-list
    miners = {labels["miner"] for labels, _ in metrics["miner_hashrate"]}
    assert miners == {"m4", "m3", "m0"}
    assert {labels["window"] for labels, _ in metrics["miner_hashrate"]} == {"1m", "5m", "15m", "1h", "24h"}
    by_miner = {(l["miner"], l["window"]): v for l, v in metrics["miner_hashrate"]}
    # m4: shares i = 4, 9, 14, ... (100 of them) at difficulty 5, all accepted
    assert by_miner["m4", "1m"] == 2 * 100 * 5.0 * T32 / 60
    submitted = {l["miner"]: v for l, v in metrics["miner_shares_submitted_total"]}
    rejected = {l["miner"]: v for l, v in metrics["miner_shares_rejected_total"]}
    accepted = {l["miner"]: v for l, v in metrics["miner_shares_accepted_total"]}
    assert submitted == {"m4": 100.0, "m3": 100.0, "m0": 100.0}
    assert (accepted["m4"], rejected["m4"]) == (100.0, 0.0)
    assert (accepted["m0"], rejected["m0"]) == (50.0, 50.0)  # i % 10 == 0 -> m0
    assert {l["miner"]: v for l, v in metrics["miner_online"]} == {"m4": 1.0, "m3": 1.0, "m0": 1.0}
    pool = {l["window"]: v for l, v in metrics["pool_total_hashrate"] if l["pool"] == "main"}
    assert pool["1m"] == pytest.approx(2 * sum((1 + i % 5) for i in range(500) if i % 10 != 0) * T32 / 60)
    assert metrics["pool_active_miners"] == [({"pool": "main"}, 5.0)]
    assert metrics["pool_active_workers"] == [({"pool": "main"}, 5.0)]
    assert metrics["pool_blocks_found_total"] == [({"pool": "main"}, 1.0)]  # no database: the ledger's (a repeat)
    assert {l["window"]: v for l, v in metrics["pool_shares_per_second"]}["1m"] == 1000 / 60
    assert metrics["pool_uptime_seconds"] == [({"pool": "main"}, 0.0)]  # just seen up


async def test_no_top_miners_means_only_the_allow_list() -> None:
    exp = exporter(top_miners=0, allowlist=("m2",))
    exp.on_batch(outcome(PoolAggregate()))
    await exp.rank()
    metrics = samples(exp.render())
    assert {labels["miner"] for labels, _ in metrics["miner_hashrate"]} == {"m2"}
    assert metrics["chimera_aggregator_exported_miners"] == [({}, 1.0)]


async def test_service_metrics_from_batches() -> None:
    exp = exporter()
    exp.on_batch(outcome(
        PoolAggregate(), duplicates={Topic.SHARES: 7}, dead_lettered={Topic.MINERS: 2}, late=3, too_late=4,
        event_lag_ms=[250, 1500], flush_duration_s=0.04, consumer_lag={(Topic.SHARES, 0): 12, (Topic.SHARES, 1): 0},
    ))
    exp.on_batch(BatchResult(revoked=[1]))
    metrics = samples(exp.render())
    events = {(l["topic"], l["status"]): v for l, v in metrics["chimera_aggregator_events_total"]}
    assert events == {("pool.shares", "processed"): 489.0, ("pool.shares", "duplicate"): 7.0,
                      ("pool.shares", "too_late"): 4.0, ("pool.blocks", "processed"): 1.0,
                      ("pool.miners", "dead_letter"): 2.0}
    assert metrics["chimera_aggregator_duplicate_events_total"] == [({"topic": "pool.shares"}, 7.0)]
    assert metrics["chimera_aggregator_late_events_total"] == [({}, 3.0)]
    dropped = {l["reason"]: v for l, v in metrics["chimera_aggregator_dropped_events_total"]}
    assert dropped == {"too_late": 4.0, "dead_letter": 2.0}
    assert ({}, 2.0) in metrics["chimera_aggregator_event_lag_seconds_count"]
    assert ({}, 1.0) in metrics["chimera_aggregator_flush_duration_seconds_count"]
    assert ({}, 501.0) in metrics["chimera_aggregator_batch_records_sum"]
    # partition 1 was revoked: its lag series is gone
    assert metrics["chimera_aggregator_consumer_lag_records"] == [({"topic": "pool.shares", "partition": "0"}, 12.0)]


async def test_the_pipelines_own_totals_are_exported_on_the_exporters_registry() -> None:
    stats = PipelineStats(store_failures=2, stale_partitions=1, takeovers=3, reuses=4, replayed=500)
    exp = exporter(pipeline_stats=stats)  # what bootstrap hands the exporter
    stats.store_failures += 1  # read at scrape time: the current totals
    got = samples(exp.render())
    assert got["chimera_aggregator_store_failures_total"] == [({}, 3.0)]
    assert got["chimera_aggregator_stale_partitions_total"] == [({}, 1.0)]
    assert sorted(got["chimera_aggregator_partition_takeovers_total"], key=lambda s: s[0]["how"]) == [
        ({"how": "kept"}, 4.0), ({"how": "rebuilt"}, 3.0)]
    assert got["chimera_aggregator_dedup_ids_replayed_total"] == [({}, 500.0)]
