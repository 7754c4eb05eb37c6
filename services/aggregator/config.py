"""Settings of the aggregator (hashrate, efficiency and liveness from the event streams)."""

from pydantic import Field

from shared.settings import ServiceSettings


class AggregatorSettings(ServiceSettings):
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9101, ge=1, le=65535)
    # Contract section 1: a repeated event_id within this horizon counts once.
    dedup_horizon_ms: int = Field(default=10 * 60 * 1000, ge=0)
