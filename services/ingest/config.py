"""Settings of the ingest service (the HTTP door and the REST API)."""

from pydantic import Field

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    # CONTRACT.md section 3: POST /v1/events limits.
    max_batch_events: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Token bucket per API key: sustained requests per second and burst length
    # (the bucket holds rate * burst_s tokens); a key's own limit overrides the rate.
    rate_limit_per_second: float = Field(default=100.0, gt=0)
    rate_limit_burst_s: float = Field(default=2.0, gt=0)
    # Distinct custom metric series exported on /metrics; past it, POSTs of new series get 4xx.
    custom_metrics_max_series: int = Field(default=10_000, ge=1)
    max_dashboard_config_bytes: int = Field(default=256 * 1024, ge=1)
    # Routers of other services mounted on this app: "package.module:factory".
    api_plugins: list[str] = Field(default_factory=list)
    # Largest request line plus headers the server reads. uvicorn's default
    # (16 KiB) is below what the API documents: a 16,384-character PromQL
    # query is up to 192 KiB once URL-encoded (12 bytes per 4-byte character).
    # Past this the server answers 400 and closes the connection.
    http_max_request_head_bytes: int = Field(default=256 * 1024, ge=16 * 1024)
    # How long SIGTERM waits for in-flight requests before closing.
    shutdown_grace_s: float = Field(default=10.0, ge=0)

    # How long one batch may wait for Kafka's acknowledgments before the
    # client gets a 503: short enough that a pool node retries (or buffers)
    # promptly when the broker is away, long enough for a leader election.
    kafka_produce_timeout_s: float = Field(default=5.0, gt=0)
    # Retry-After sent with a 503 when Kafka is unreachable.
    kafka_retry_after_s: int = Field(default=2, ge=1, le=300)
    # Reconnection to an unreachable broker backs off exponentially up to this.
    kafka_reconnect_max_backoff_s: float = Field(default=10.0, gt=0)
    # Authenticated keys (and unknown ones) are remembered this long, so a
    # revocation takes effect on every instance within this many seconds.
    api_key_cache_ttl_s: float = Field(default=5.0, ge=0)
    # last_used_at is written in batches this often, not on every request.
    api_key_touch_interval_s: float = Field(default=10.0, gt=0)
    # /readyz gives each dependency this long to answer.
    readiness_timeout_s: float = Field(default=2.0, gt=0)
