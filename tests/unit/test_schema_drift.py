"""schemas/ must be exactly what the models generate (contract: generated from the code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.schemas import drifted, render_schemas, write_schemas

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "schemas"
FILES = {"share.schema.json", "block.schema.json", "miner.schema.json", "event.schema.json"}


def test_committed_schemas_match_the_models() -> None:
    assert drifted(SCHEMA_DIR) == [], "run `chimera schemas` and commit schemas/"


def test_rendering_is_deterministic_and_formatted() -> None:
    first, second = render_schemas(), render_schemas()
    assert first == second
    assert set(first) == FILES
    for text in first.values():
        assert text.endswith("}\n")
        canonical = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
        assert text == canonical + "\n"


def test_ts_schema_accepts_string_or_integer() -> None:
    share = json.loads(render_schemas()["share.schema.json"])
    assert share["properties"]["ts"]["anyOf"] == [
        {"type": "string", "format": "date-time"},
        {"type": "integer"},
    ]
    assert "ts" in share["required"] and "type" in share["required"]


def test_union_schema_discriminates_on_type() -> None:
    union = json.loads(render_schemas()["event.schema.json"])
    assert union["discriminator"]["propertyName"] == "type"
    assert set(union["discriminator"]["mapping"]) == {"share", "block", "miner"}
    assert len(union["oneOf"]) == 3


def test_write_then_no_drift(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path / "out")
    assert {p.name for p in paths} == FILES
    assert drifted(tmp_path / "out") == []


@pytest.mark.parametrize("name", sorted(FILES))
def test_modified_file_is_reported(tmp_path: Path, name: str) -> None:
    write_schemas(tmp_path)
    path = tmp_path / name
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["title"] = "Edited by hand"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert drifted(tmp_path) == [name]


def test_missing_file_is_reported(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    (tmp_path / "block.schema.json").unlink()
    assert drifted(tmp_path) == ["block.schema.json"]


def test_empty_directory_reports_everything(tmp_path: Path) -> None:
    assert sorted(drifted(tmp_path)) == sorted(FILES)
