"""`python -m services.<name>`: settings read once (a bad one exits 2 naming it), logging
set up, the service's coroutine run until it returns; Ctrl-C exits 130."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from shared.settings import ConfigError, ServiceSettings, load

__all__ = ["run_service"]

S = TypeVar("S", bound=ServiceSettings)


def run_service(name: str, settings_class: type[S], serve: Callable[[S], Coroutine[Any, Any, int]]) -> int:
    try:
        settings = load(settings_class)
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130
