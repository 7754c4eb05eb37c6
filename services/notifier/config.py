"""Settings of the notifier (alert fan-out to channels)."""

from pydantic import Field

from shared.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9103, ge=1, le=65535)
