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
    # How long SIGTERM waits for in-flight requests before closing.
    shutdown_grace_s: float = Field(default=10.0, ge=0)
