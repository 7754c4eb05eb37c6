"""Settings of the alerter (rule evaluation over the figure streams)."""

from pydantic import Field

from shared.settings import ServiceSettings


class AlerterSettings(ServiceSettings):
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9102, ge=1, le=65535)
