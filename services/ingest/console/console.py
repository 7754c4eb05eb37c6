"""What every console route finds on `app.state.console`: templates, static files, cookie settings."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment

from services.ingest.config import IngestSettings
from services.ingest.console.assets import StaticFiles
from services.ingest.console.templating import load_environment


@dataclass(frozen=True, slots=True)
class Console:
    templates: Environment
    static: StaticFiles
    session_ttl_s: int
    cookie_secure: bool


def load_console(settings: IngestSettings) -> Console:
    """Reads every template and static file: once, when the app is created."""
    static = StaticFiles.load()
    return Console(
        templates=load_environment(static.url),
        static=static,
        session_ttl_s=settings.console_session_ttl_s,
        cookie_secure=settings.console_cookie_secure,
    )
