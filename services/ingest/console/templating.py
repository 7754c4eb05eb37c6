"""The console's one Jinja2 Environment: every template from the package, escaped, strict.

The templates are read once, when the app is created (`load_environment`),
from the package folder through importlib.resources, so the console works
from an installed wheel as well as from the source tree, and a page render
never touches the disk. Autoescape is on for every template whatever its
name: everything a person sees may carry a name a miner chose.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Final

from jinja2 import DictLoader, Environment, StrictUndefined

PACKAGE: Final = "services.ingest.console"
TEMPLATES_DIR: Final = "templates"


def _read_templates(folder: Traversable) -> dict[str, str]:
    return {entry.name: entry.read_text(encoding="utf-8")
            for entry in folder.iterdir() if entry.is_file() and entry.name.endswith(".html")}


def load_environment(static_url: Callable[[str], str]) -> Environment:
    """The environment with every template of `templates/`; `static('path')` gives a versioned URL."""
    environment = Environment(
        loader=DictLoader(_read_templates(files(PACKAGE) / TEMPLATES_DIR)),
        autoescape=True,
        # A name missing from a page's context is a bug to see at once, not an empty figure.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["static"] = static_url
    return environment
