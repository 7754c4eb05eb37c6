"""Settings of the alerter (rule evaluation over the figure streams).

Environment names are the field names upper-cased. Durations carry their
unit in the name.
"""

import tempfile
from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings


class AlerterSettings(ServiceSettings):
    # The faust app's id (prefixed like topics): its consumer group and table names.
    alerter_group_id: str = Field(default="alerter", min_length=1, max_length=200)
    # A series with no new record for this long leaves its group ("data stopped"). Worker
    # records come at least once per snapshot sweep (SNAPSHOT_FULL_SWEEP_TICKS x
    # SNAPSHOT_INTERVAL_S = 5 min by default): keep this well above it.
    alerter_stale_after_s: float = Field(default=900.0, gt=0)
    # How often time alone moves alerts (durations completing, stale series, keep_firing_for).
    alerter_tick_s: float = Field(default=1.0, gt=0)
    # How often the rules are read back from PostgreSQL (when they changed).
    alerter_rules_reload_s: float = Field(default=2.0, gt=0)
    alerter_db_timeout_s: float = Field(default=10.0, gt=0)
    # A member silent this long leaves the group: its groups move to the others.
    alerter_session_timeout_s: float = Field(default=10.0, ge=6.0, le=300.0)
    alerter_retry_max_s: float = Field(default=5.0, gt=0)
    # Where faust keeps its per-app folder (the tables live in memory and in their changelogs:
    # nothing there needs keeping), instead of the working directory.
    alerter_data_dir: Path = Path(tempfile.gettempdir()) / "chimera-alerter"
    # Prometheus /metrics, /healthz
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9102, ge=0, le=65535)
