"""JSON Schemas of the events, generated from the models in `shared.events`.

The files in `schemas/` are published to pool-node developers; they are never
edited by hand. `drifted()` lets a test (and CI) catch a model change that
was not followed by `chimera schemas`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter

from shared.events import BlockEvent, Event, MinerEvent, ShareEvent

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_MODELS: Final[dict[str, type[BaseModel]]] = {
    "share.schema.json": ShareEvent,
    "block.schema.json": BlockEvent,
    "miner.schema.json": MinerEvent,
}
UNION_FILE: Final = "event.schema.json"


def _documents() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {
        name: model.model_json_schema(mode="validation") for name, model in _MODELS.items()
    }
    union = TypeAdapter(Event).json_schema(mode="validation")
    union["title"] = "Event"
    union["description"] = "Any pool event, told apart by its `type` field."
    docs[UNION_FILE] = union
    for doc in docs.values():
        doc["$schema"] = _DIALECT
    return docs


def _render(doc: dict[str, Any]) -> str:
    # Sorted keys and a fixed indent make the output byte-stable across runs,
    # so a drift check can compare text.
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """File name -> schema text, for every event type and for their union."""
    return {name: _render(doc) for name, doc in sorted(_documents().items())}


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema file into `directory` (created if needed); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drifted(directory: Path) -> list[str]:
    """Names of schema files that are missing from `directory` or differ from the models."""
    stale: list[str] = []
    for name, text in render_schemas().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale
