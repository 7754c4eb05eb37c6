"""Settings of the aggregator (hashrate, efficiency and liveness from the event streams).

Environment names are the field names upper-cased (`AGGREGATOR_GROUP_ID`,
`DEDUP_HORIZON_MS`...). Durations carry their unit in the name.
"""

from typing import Annotated, Any, Final, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.settings import ServiceSettings

Window = Literal["1m", "5m", "15m", "1h", "24h"]
BUILTIN_OUTPUTS: Final = ("exporter", "rollups", "snapshots")


class AggregatorSettings(ServiceSettings):

    # --- consumption --------------------------------------------------------------
    # Base group id; the topic prefix is prepended like for topics.
    aggregator_group_id: str = Field(default="aggregator", min_length=1, max_length=200)
    # Records per batch at most (one PostgreSQL transaction each). Only a backlog fills
    # a batch; there, bigger batches mean fewer rows per event (a worker's shares of one
    # minute become one upsert): 100k sustained 1.4x the events/s of 20k in bench/.
    aggregator_batch_max_records: int = Field(default=100_000, ge=1, le=1_000_000)
    aggregator_poll_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    aggregator_max_partition_fetch_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    aggregator_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    aggregator_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    aggregator_max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    # Kafka's committed offsets only mirror the database's (for lag monitoring).
    aggregator_kafka_commit_interval_s: float = Field(default=1.0, ge=0)

    # How a batch's shares are folded: "records" (one event at a time in Python), "columnar"
    # (decoded into arrays, grouped per worker-minute with numpy: consume/columnar_*.py) or
    # "auto" (columnar when a batch holds at least AGGREGATOR_FOLD_AUTO_SHARES_PER_WORKER
    # shares per distinct worker, records otherwise). Every mode gives the same rows; auto
    # measured 1.10-1.15x records in the live shape and 1.17-1.30x in the backlog shape
    # (bench/aggregator_bench.py --variants, 2 of 9 attempts below 1). The threshold 2 is not tuned yet.
    aggregator_fold: Literal["records", "columnar", "auto"] = "auto"
    aggregator_fold_auto_shares_per_worker: float = Field(default=2.0, gt=0)

    # --- event semantics (contract sections 1 and 2) ---------------------------------
    # A repeated event_id within this horizon counts once.
    dedup_horizon_ms: int = Field(default=10 * 60 * 1000, ge=0)
    # Shares older than the share watermark by more than this are counted and dropped.
    max_lateness_ms: int = Field(default=24 * 3_600_000, ge=60_000)
    # Liveness threshold clamp (see domain/liveness.py).
    liveness_floor_ms: int = Field(default=60_000, ge=1)
    liveness_ceiling_ms: int = Field(default=30 * 60_000, ge=1)

    # --- state rebuild, storage, retries -------------------------------------------
    # Minute history a new partition owner loads into its windows (24 h feeds every
    # window; liveness needs the last 30 minutes, hence the minimum of 31).
    aggregator_restore_windows_minutes: int = Field(default=24 * 60, ge=31, le=25 * 60)
    # Newest blocks per partition a new owner loads into its block ledger.
    aggregator_restore_blocks: int = Field(default=4096, ge=0)
    # One batch transaction (or one rebuild query) longer than this counts as failed.
    aggregator_db_timeout_s: float = Field(default=30.0, gt=0)
    aggregator_retry_initial_s: float = Field(default=0.2, gt=0)
    aggregator_retry_max_s: float = Field(default=5.0, gt=0)
    # Effort, luck and active counts refresh (also right after a batch with blocks).
    aggregator_maintenance_interval_s: float = Field(default=30.0, gt=0)

    # What a durable batch feeds, comma-separated: the built-in outputs by name
    # (BUILTIN_OUTPUTS: the Prometheus exporter, the roll-ups, the snapshot stream) and
    # plugins as "package.module:function", each called with (settings, db pool) and
    # returning an output or a list of them (see bootstrap.py). AGGREGATOR_OUTPUTS=""
    # runs the bare pipeline.
    aggregator_outputs: Annotated[tuple[str, ...], NoDecode] = BUILTIN_OUTPUTS

    # --- the built-in outputs (outputs/) -------------------------------------------------
    # Prometheus /metrics, /healthz, /readyz
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9101, ge=0, le=65535)  # 0: any free port (tests)
    # Snapshot stream
    snapshot_interval_s: float = Field(default=5.0, gt=0)
    snapshot_max_records_per_tick: int = Field(default=5_000, ge=1)
    snapshot_full_sweep_ticks: int = Field(default=60, ge=1)
    # Prometheus exporter: per-miner series for the top N by hashrate plus these miners
    exporter_top_miners: int = Field(default=100, ge=0)
    exporter_miner_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    exporter_rank_window: Window = "1h"
    exporter_refresh_interval_s: float = Field(default=10.0, gt=0)
    exporter_rank_interval_s: float = Field(default=60.0, gt=0)
    exporter_performance_max_age_s: float = Field(default=900.0, gt=0)
    pool_down_after_s: float = Field(default=300.0, gt=0)
    # Roll-ups
    rollup_interval_s: float = Field(default=60.0, gt=0)
    rollup_lookback_hours: int = Field(default=25, ge=2, le=24 * 14)
    rollup_lookback_interval_s: float = Field(default=3600.0, gt=0)

    @field_validator("aggregator_outputs", "exporter_miner_allowlist", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("aggregator_outputs")
    @classmethod
    def _known_outputs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in BUILTIN_OUTPUTS and ":" not in name:
                raise ValueError(f"{name!r} is neither a built-in output ({', '.join(BUILTIN_OUTPUTS)}) "
                                 "nor a plugin 'package.module:function'")
        return value

    @model_validator(mode="after")
    def _liveness_clamp(self) -> Self:
        if self.liveness_floor_ms > self.liveness_ceiling_ms:
            raise ValueError("LIVENESS_FLOOR_MS must not exceed LIVENESS_CEILING_MS")
        return self
