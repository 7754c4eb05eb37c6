"""The alerter's routes on the public API, mounted through the plugin mechanism
(`API_PLUGINS=services.alerter.api:make_plugin`, shared/http/plugins.py)."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from fastapi import APIRouter

from shared.settings import ServiceSettings

from ..adapters.alert_queries import AlertQueries
from ..adapters.rule_store import RuleStore
from .alerts import alerts_router
from .rules import rules_router

__all__ = ["AlertingApi", "make_plugin"]


class AlertingApi:
    name = "alerting"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._rules = RuleStore(pool)
        self._alerts = AlertQueries(pool)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.include_router(rules_router(self._rules, self._alerts))
        router.include_router(alerts_router(self._alerts))
        return router

    def body_limits(self) -> Mapping[tuple[str, str], int]:
        return {}  # the app's default fits rules and alerts

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def make_plugin(settings: ServiceSettings, pool: asyncpg.Pool) -> AlertingApi:
    del settings  # nothing to configure yet
    return AlertingApi(pool)
