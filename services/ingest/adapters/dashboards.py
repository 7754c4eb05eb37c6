"""The `dashboards` table. Access rules live in domain/dashboards.py; this reads and writes rows.

It also measures a config as the jsonb column will hold it (`check_config_size`):
the size limit is on those bytes, so it is counted by the encoder that writes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

import asyncpg
import orjson

from services.ingest.domain.dashboards import ConfigNotStorable, ConfigTooLarge, Dashboard, unstorable_json

_COLUMNS: Final = "id, name, description, config, is_public, owner, created_at, updated_at"
# Fields an update may set; the keys name columns, so only these ever reach the SQL text.
UPDATABLE: Final = ("name", "description", "config", "is_public")


def _dashboard(row: asyncpg.Record) -> Dashboard:
    return Dashboard(id=str(row["id"]), name=row["name"], description=row["description"], config=row["config"],
                     is_public=row["is_public"], owner=row["owner"], created_at=row["created_at"],
                     updated_at=row["updated_at"])


def _uuid(dashboard_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(dashboard_id)
    except ValueError:
        return None


def config_size_bytes(config: dict[str, Any]) -> int:
    """Size as compact JSON: what is stored, independent of the client's whitespace."""
    problem = unstorable_json(config)
    if problem is not None:
        raise ConfigNotStorable(problem)
    try:
        encoded = orjson.dumps(config)
    except orjson.JSONEncodeError as exc:
        # The same encoder writes the jsonb column (shared.db.pool), so what it refuses here would fail there.
        raise ConfigNotStorable(str(exc)) from None
    return len(encoded)


def check_config_size(config: dict[str, Any], max_bytes: int) -> None:
    size = config_size_bytes(config)
    if size > max_bytes:
        raise ConfigTooLarge(size, max_bytes)


class DashboardStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, *, name: str, description: str, config: dict[str, Any], is_public: bool,
                     owner: str) -> Dashboard:
        row = await self._pool.fetchrow(
            f"INSERT INTO dashboards (name, description, config, is_public, owner)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            name, description, config, is_public, owner,
        )
        assert row is not None
        return _dashboard(row)

    async def get(self, dashboard_id: str) -> Dashboard | None:
        """None for an unknown id, including one that is not a uuid at all."""
        key = _uuid(dashboard_id)
        if key is None:
            return None
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM dashboards WHERE id = $1", key)
        return _dashboard(row) if row is not None else None

    async def visible(self, owner: str | None, *, limit: int, offset: int) -> list[Dashboard]:
        """The owner's dashboards (when given) and every public one, newest first."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM dashboards WHERE is_public OR owner = $1"
            " ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
            owner, limit, offset,
        )
        return [_dashboard(r) for r in rows]

    async def update(self, dashboard_id: str, owner: str, changes: Mapping[str, Any]) -> Dashboard | None:
        """Apply `changes` if the dashboard still belongs to `owner`; None when it does not (or is gone)."""
        key = _uuid(dashboard_id)
        if key is None:
            return None
        fields = [f for f in UPDATABLE if f in changes]
        if not fields:
            return await self.get(dashboard_id)
        assignments = ", ".join(f"{f} = ${i}" for i, f in enumerate(fields, start=3))
        row = await self._pool.fetchrow(
            f"UPDATE dashboards SET {assignments} WHERE id = $1 AND owner = $2 RETURNING {_COLUMNS}",
            key, owner, *(changes[f] for f in fields),
        )
        return _dashboard(row) if row is not None else None

    async def delete(self, dashboard_id: str, owner: str) -> bool:
        key = _uuid(dashboard_id)
        if key is None:
            return False
        deleted = await self._pool.fetchval(
            "DELETE FROM dashboards WHERE id = $1 AND owner = $2 RETURNING id", key, owner)
        return deleted is not None
