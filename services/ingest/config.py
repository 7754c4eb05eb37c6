"""Settings of the ingest service (the HTTP door and the REST API)."""

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from shared.settings import KafkaProducerImpl, ServiceSettings


class IngestSettings(ServiceSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    # docs/contract.md section 3: POST /v1/events limits.
    max_batch_events: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Token bucket per API key: sustained requests per second and burst length
    # (the bucket holds rate * burst_s tokens); a key's own limit overrides the rate.
    rate_limit_per_second: float = Field(default=100.0, gt=0)
    rate_limit_burst_s: float = Field(default=2.0, gt=0)
    # Distinct custom metric series exported on /metrics; past it, POSTs of new series get 4xx.
    custom_metrics_max_series: int = Field(default=10_000, ge=1)
    max_dashboard_config_bytes: int = Field(default=256 * 1024, ge=1)
    # Routers of other services mounted on this app: "package.module:factory". The alerter's
    # rules and alerts API and the notifier's channels, silences and notifications API are
    # two (API_PLUGINS="" leaves them out).
    api_plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["services.alerter.api:make_plugin", "services.notifier.api:make_plugin"])
    # Largest request line plus headers the server reads. uvicorn's default
    # (16 KiB) is below what the API documents: a 16,384-character PromQL
    # query is up to 192 KiB once URL-encoded (12 bytes per 4-byte character).
    # Past this the server answers 400 and closes the connection.
    http_max_request_head_bytes: int = Field(default=256 * 1024, ge=16 * 1024)
    # Event loop uvicorn serves on: "auto" is uvloop when importable, "uvloop" insists on it.
    # asyncio by default: uvloop did not measurably win POST /v1/events (issue 15: +5 to +25%
    # in 5 alternated pairs, -7 to -20% in 5 others, on the shared 2-core bench machine).
    http_loop: Literal["auto", "asyncio", "uvloop"] = "asyncio"
    # POST /v1/events checks shares with shared/share_checks.py (proven never looser than
    # the models, which still decide every other event and word every error) and encodes
    # them without building models: see services/ingest/api/fast_batch.py.
    share_fast_checks: bool = True
    # How long SIGTERM waits for in-flight requests before closing.
    shutdown_grace_s: float = Field(default=10.0, ge=0)

    # How long one batch may wait for Kafka's acknowledgments before the
    # client gets a 503: short enough that a pool node retries (or buffers)
    # promptly when the broker is away, long enough for a leader election.
    kafka_produce_timeout_s: float = Field(default=5.0, gt=0)
    # How batches reach Kafka (shared/kafka/producer_choice.py): aiokafka's batch API (one
    # delivery future per partition) produced 2.8-3.3x what a future per record did, and took
    # POST /v1/events from 26-31k to 58-66k events/s (bench/produce_bench.py, issue 15).
    kafka_producer_impl: KafkaProducerImpl = "aiokafka-batch"
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

    # --- hostile clients (docs/ingest-security.md) --------------------------
    # Body limit of every route that does not have its own (POST /v1/events
    # uses MAX_BODY_BYTES, dashboard writes MAX_DASHBOARD_BODY_BYTES); a body
    # past it gets 413 as soon as the limit is passed, before it is buffered.
    http_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Dashboard writes: the config (MAX_DASHBOARD_CONFIG_BYTES as compact
    # JSON) plus name, description, whitespace and escapes.
    max_dashboard_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # The request line and headers must arrive within this many seconds of
    # the request's first byte; else the connection is closed.
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    # The whole body must arrive within this many seconds of the headers;
    # else 408 and the connection is closed.
    http_body_timeout_s: float = Field(default=30.0, gt=0)
    # Open connections one client address may hold; more are closed at once.
    http_max_connections_per_client: int = Field(default=64, ge=1)
    # Open connections for the whole server; past it uvicorn answers 503.
    http_max_connections: int = Field(default=4096, ge=1)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses
    # or CIDR networks, comma-separated); empty: nobody's.
    http_trusted_proxies: str = Field(default="", pattern=r"^[0-9A-Fa-f.:/, ]*$")
    # Failed authentications (unknown, revoked or malformed keys) per client
    # address: this many per second on average, bursts of `_burst`; past it
    # the address gets 429 for any key until its bucket refills.
    auth_failures_per_second: float = Field(default=1.0, gt=0)
    auth_failures_burst: int = Field(default=20, ge=1)
    # /metrics on its own listener (the monitoring network), off the public
    # port, when METRICS_PORT is set; the public port then answers 404 there.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # A rendered /metrics is reused this long, so scrape loops cost one render.
    metrics_cache_s: float = Field(default=5.0, ge=0)
    # Custom metric series one API key may create, and how long a series
    # nobody updates stays exported.
    custom_metrics_max_series_per_key: int = Field(default=1_000, ge=1)
    custom_metrics_series_ttl_s: float = Field(default=3600.0, gt=0)
    # Interactive API docs at /docs: "local" serves Swagger UI's assets from
    # this service (no outside script), "off" turns /docs off.
    api_docs: Literal["local", "off"] = "local"

    # --- the web console (docs/console.md) -----------------------------------
    # Pages at / and below, and their files at /static; false serves the API alone.
    console_enabled: bool = True
    # How long a console sign-in lasts (the cookie's Max-Age and the session's expiry).
    console_session_ttl_s: int = Field(default=43_200, ge=60, le=30 * 86_400)
    # The session cookie's Secure flag: set it whenever the console is reached
    # over TLS. Off by default because the stack serves plain http on loopback,
    # where a browser would never send a Secure cookie back.
    console_cookie_secure: bool = False

    # --- the console's live feed: /live and /api/miners (services/ingest/domain/live.py) ---
    # Open /live streams per process and per client address; 429 beyond.
    live_max_streams: int = Field(default=1_000, ge=1)
    live_max_streams_per_client: int = Field(default=16, ge=1)
    # Records one stream may hold unsent; newer figures of a queued key replace it in place.
    live_queue_records: int = Field(default=256, ge=8, le=100_000)
    # A comment line this often keeps proxies from closing a quiet stream.
    live_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    # Miner summaries kept for the miners list (about 0.6 KiB each: 20,000 miners take 12 MB), and pools.
    live_max_miners: int = Field(default=100_000, ge=1)
    live_max_pools: int = Field(default=64, ge=1)
    # A miner not re-published for this long (the aggregator sweeps every 5 minutes and
    # stops publishing a miner without workers for 24 h) leaves the miners list.
    live_miner_stale_s: float = Field(default=900.0, ge=360)
    # How often the feed asks the broker for partitions added to its topics (scale-out).
    live_partitions_check_s: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("api_plugins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value
