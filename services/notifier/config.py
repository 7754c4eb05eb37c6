"""Settings of the notifier (alert fan-out to channels).

Environment names are the field names upper-cased; durations carry their
unit in the name. `ChannelSettings` is what both the notifier and the API
(the channels routes mounted on the ingest app) need: the secret keys, the
networks a channel may reach, the send limits.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from shared.settings import ServiceSettings

from .domain.destinations import Network, parse_networks


def _default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chimera" / "notifier-secret.key"


class ChannelSettings(ServiceSettings):
    # Fernet keys (urlsafe base64 of 32 bytes), comma-separated: the first encrypts,
    # every one decrypts (key rotation: docs/notifier.md). Unset: a key kept in
    # NOTIFIER_SECRET_KEY_FILE, made on first use (fine for one machine).
    notifier_secret_keys: SecretStr | None = None
    notifier_secret_key_file: Path = Field(default_factory=_default_key_file)
    # Networks channels may reach although not public (loopback for the local stack
    # and the tests): "127.0.0.0/8,::1". Empty: the public internet only.
    notifier_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    notifier_send_timeout_s: float = Field(default=10.0, gt=0, le=300)
    notifier_max_response_bytes: int = Field(default=64 * 1024, ge=1_024, le=16 * 1024 * 1024)
    # The body of one Alertmanager webhook request (a group's alerts) at most.
    notifier_alertmanager_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    # Links in messages point here (the console, or Alertmanager's externalURL).
    notifier_external_url: str = Field(default="", max_length=2_000)

    @field_validator("notifier_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list):
            parse_networks(value)  # a ValueError names the bad one
        return value

    @property
    def allowed_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.notifier_allowed_networks)


class NotifierSettings(ChannelSettings):
    # The faust app's id (prefixed like topics): its consumer group and table names.
    notifier_group_id: str = Field(default="notifier", min_length=1, max_length=200)
    # How often due notification groups are looked at: the lateness of a group_wait.
    notifier_tick_s: float = Field(default=0.2, gt=0, le=60)
    # How often channels, silences and the firing alerts (inhibition) are read back.
    notifier_reload_s: float = Field(default=1.0, gt=0, le=300)
    notifier_db_timeout_s: float = Field(default=10.0, gt=0)
    notifier_session_timeout_s: float = Field(default=10.0, ge=6.0, le=300.0)
    notifier_retry_max_s: float = Field(default=5.0, gt=0)
    # Delivery: attempts per notification, the backoff between them (doubling, with jitter),
    # and the longest Retry-After honoured.
    notifier_max_attempts: int = Field(default=6, ge=1, le=100)
    notifier_backoff_initial_s: float = Field(default=1.0, gt=0)
    notifier_backoff_max_s: float = Field(default=300.0, gt=0)
    notifier_retry_after_max_s: float = Field(default=3_600.0, gt=0)
    # Notifications per minute per channel unless the channel sets its own.
    notifier_rate_limit_per_minute: float = Field(default=60.0, gt=0)
    notifier_send_concurrency: int = Field(default=16, ge=1, le=1_000)
    # Inhibition rules (YAML); unset: none.
    notifier_inhibit_rules_file: Path | None = None
    # Where faust keeps its per-app folder (tables live in memory and their changelogs).
    notifier_data_dir: Path = Path(tempfile.gettempdir()) / "chimera-notifier"
    # Prometheus /metrics, /healthz
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9103, ge=0, le=65535)
