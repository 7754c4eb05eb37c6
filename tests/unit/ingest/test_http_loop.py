"""HTTP_LOOP: which event loop uvicorn serves the ingest on."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from services.ingest.api.app import create_app, server_config
from services.ingest.config import IngestSettings

pytestmark = pytest.mark.unit


def loop_class_for(http_loop: str) -> type[asyncio.AbstractEventLoop]:
    settings = IngestSettings(http_loop=http_loop)
    factory = server_config(create_app(settings), settings).get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        return type(loop)
    finally:
        loop.close()


def test_asyncio_is_the_default_and_auto_is_uvloop_when_importable() -> None:
    assert IngestSettings().http_loop == "asyncio"
    assert issubclass(loop_class_for("auto"), uvloop.Loop)


def test_each_choice_gives_its_loop() -> None:
    assert issubclass(loop_class_for("uvloop"), uvloop.Loop)
    asyncio_loop = loop_class_for("asyncio")
    assert not issubclass(asyncio_loop, uvloop.Loop)
    assert issubclass(asyncio_loop, asyncio.BaseEventLoop)


def test_other_values_are_refused() -> None:
    with pytest.raises(ValueError, match="http_loop"):
        IngestSettings(http_loop="trio")
