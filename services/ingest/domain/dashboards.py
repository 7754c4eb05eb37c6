"""Who may see and change a dashboard (docs/contract.md section 3).

- The owner is the API key that created it (`Principal.key_id`).
- A public dashboard is readable by anyone, with or without a key, whatever
  the key's scopes: it is public, so asking for `read` would protect nothing.
- A private dashboard exists only for its owner: anyone else gets 404, never
  403, so ids cannot be probed. The owner reads it with the `read` scope like
  every other GET; an owner key without `read` gets 403 (it knows it exists).
- Only the owner changes or deletes a dashboard (with `admin`, as all
  dashboard writes): another key gets 404 for a private one and 403 for a
  public one (which it can see anyway).
- A config is any JSON object; its `panels`, when present, must be panels
  the console can draw (domain/dashboard_panels.py): checked on every save.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from services.ingest.domain.dashboard_panels import parse_panels
from shared.text import unstorable


@dataclass(frozen=True)
class Dashboard:
    id: str
    name: str
    description: str
    config: dict[str, Any]
    is_public: bool
    owner: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Viewer:
    """The caller as far as dashboards care: its key id (None without a key) and whether it holds `read`."""

    key_id: str | None
    can_read: bool


class Access(Enum):
    ALLOWED = "allowed"
    NOT_FOUND = "not_found"  # 404: the caller may not know it exists
    FORBIDDEN = "forbidden"  # 403: the caller sees it but may not do this


class DashboardError(Exception):
    pass


class ConfigTooLarge(DashboardError):
    def __init__(self, size_bytes: int, max_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.max_bytes = max_bytes
        super().__init__(f"dashboard config is {size_bytes} bytes as JSON; the limit is {max_bytes}")


class ConfigNotStorable(DashboardError):
    """JSON that parsed but cannot be stored as jsonb as it is: a string holding NUL or a lone
    surrogate, NaN or Infinity, an integer beyond 64 bits, nesting deeper than 255."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"dashboard config cannot be stored: {reason}")


def read_access(dashboard: Dashboard, viewer: Viewer) -> Access:
    if dashboard.is_public:
        return Access.ALLOWED
    if viewer.key_id is None or viewer.key_id != dashboard.owner:
        return Access.NOT_FOUND
    return Access.ALLOWED if viewer.can_read else Access.FORBIDDEN


def write_access(dashboard: Dashboard, key_id: str) -> Access:
    if dashboard.owner == key_id:
        return Access.ALLOWED
    return Access.FORBIDDEN if dashboard.is_public else Access.NOT_FOUND


def check_panels(config: dict[str, Any]) -> None:
    """`PanelInvalid` (naming the field inside the config) unless its `panels`, if any, can be drawn.

    A config without `panels` is valid, as every config was before panels had a model."""
    parse_panels(config)


def unstorable_json(value: Any) -> str | None:
    """Why a parsed JSON document cannot be stored as it is (a message for the client), or None.

    Any string, key or value, at any depth, holding U+0000 (jsonb cannot) or a
    lone surrogate (no UTF-8 encoder can); any NaN or Infinity, which Python's
    `json` parses but JSON has no spelling for (orjson would write null, silently
    changing the document). Iterative, so nesting depth costs no recursion.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = unstorable(item)
            if problem is not None:
                return f"strings {problem}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "numbers must be finite: JSON has no NaN or Infinity"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None
