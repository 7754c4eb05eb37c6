"""The notifier's routes on the public API, mounted through the plugin mechanism
(`API_PLUGINS=...,services.notifier.api:make_plugin`, shared/http/plugins.py):
channels, silences, the attempt log, and Alertmanager's webhook in.

The ingest app hands over its own settings, which carry the connection
settings (Kafka, PostgreSQL, the topic prefix) but none of the notifier's;
those (`ChannelSettings`: the secret keys, the networks channels may reach,
the send limits) are read from the environment here, once, and a bad one
stops the start naming it.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from fastapi import APIRouter

from shared.kafka.topics import Topic, topic_name
from shared.lifecycle import StartedParts
from shared.settings import ConfigError, ServiceSettings, load

from ..adapters.channel_store import ChannelStore
from ..adapters.delivery_log import DeliveryLog
from ..adapters.notification_queries import NotificationQueries
from ..adapters.secrets import SecretBox, SecretKeyError
from ..adapters.senders import Senders
from ..adapters.silence_store import SilenceStore
from ..config import ChannelSettings
from .alertmanager import AlertPublisher, alertmanager_router
from .channels import channels_router
from .notifications import notifications_router
from .silences import silences_router

__all__ = ["NotifierApi", "channel_settings", "make_plugin"]


class NotifierApi:
    name = "notifier"

    def __init__(self, settings: ServiceSettings, channels: ChannelSettings, pool: asyncpg.Pool) -> None:
        try:
            box = SecretBox.from_settings(channels)
        except SecretKeyError as exc:
            raise ConfigError([(exc.setting, exc.message)]) from exc
        self._settings = channels
        self._channels = ChannelStore(pool, box)
        self._silences = SilenceStore(pool)
        self._notifications = NotificationQueries(pool)
        self._deliveries = DeliveryLog(pool)
        self._senders = Senders(allowed=channels.allowed_networks, timeout_s=channels.notifier_send_timeout_s,
                                max_response_bytes=channels.notifier_max_response_bytes)
        self._publisher = AlertPublisher(settings)
        self._alerts_topic = topic_name(settings, Topic.ALERTS)
        self._parts = StartedParts()

    def router(self) -> APIRouter:
        router = APIRouter()
        router.include_router(channels_router(self._channels, self._settings, self._senders, self._deliveries))
        router.include_router(silences_router(self._silences))
        router.include_router(notifications_router(self._notifications))
        router.include_router(alertmanager_router(self._publisher, self._alerts_topic))
        return router

    def body_limits(self) -> Mapping[tuple[str, str], int]:
        # Alertmanager sends a whole group in one request (hundreds of alerts, each with labels
        # and annotations): the default 64 KiB would turn a large outage away.
        return {("POST", "/api/alertmanager/webhook"): self._settings.notifier_alertmanager_max_body_bytes}

    async def start(self) -> None:
        await self._parts.start((self._senders, self._publisher))

    async def stop(self) -> None:
        """Safe before start() and when called twice."""
        await self._parts.stop()


def channel_settings(settings: ServiceSettings) -> ChannelSettings:
    """The notifier's settings from the environment, with the app's connection settings as they are."""
    shared = {name: getattr(settings, name) for name in ServiceSettings.model_fields}
    return load(ChannelSettings, **shared)


def make_plugin(settings: ServiceSettings, pool: asyncpg.Pool) -> NotifierApi:
    return NotifierApi(settings, channel_settings(settings), pool)
