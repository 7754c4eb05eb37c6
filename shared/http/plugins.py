"""Routers of other services, mounted on the one public API app.

The API is reachable at one base URL (docs/contract.md section 3), but alert
rules belong to the alerter and channels to the notifier. Each of those
services exposes a factory `make_plugin(settings, pool) -> ApiPlugin` in its
own `api` module; the ingest app imports the factories named in its
settings (`API_PLUGINS`, "module:function"), so it never reaches into
another service's internals.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Protocol

import asyncpg
from fastapi import APIRouter

from shared.settings import ServiceSettings


class ApiPlugin(Protocol):
    name: str

    def router(self) -> APIRouter: ...

    def body_limits(self) -> Mapping[tuple[str, str], int]:
        """Body limits of its routes that differ from the app's default, by (method, route template)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


PluginFactory = Callable[[ServiceSettings, asyncpg.Pool], ApiPlugin]


class PluginLoadError(Exception):
    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        self.reason = reason
        super().__init__(f"API plugin {spec!r}: {reason}")


def load_factory(spec: str) -> PluginFactory:
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise PluginLoadError(spec, "expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginLoadError(spec, f"cannot import {module_name}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise PluginLoadError(spec, f"{module_name} has no callable {attribute}")
    return factory  # type: ignore[no-any-return]
