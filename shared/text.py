"""Strings a client may send that this service could not store or encode.

JSON can spell both of these, and Python's `json` (which FastAPI parses
bodies with) decodes them, so they get past parsing:

- U+0000: PostgreSQL `text` and `jsonb` cannot hold it;
- a lone UTF-16 surrogate (U+D800 to U+DFFF, JSON "\\ud800"): not a
  character at all, so no UTF-8 encoder (orjson, asyncpg: the way to Kafka
  and to PostgreSQL) can write it.

Refused where the request is validated, with a 422 naming the field; past
that point they would be a 500, or a sample acknowledged and never stored.
"""

from __future__ import annotations

import re
from typing import Final

NUL_MESSAGE: Final = "must not contain the NUL character (U+0000)"
SURROGATE_MESSAGE: Final = "must not contain a lone UTF-16 surrogate (U+D800 to U+DFFF): it is not a character"
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why `value` cannot be stored or encoded (a message for the client), or None when it can."""
    if "\x00" in value:
        return NUL_MESSAGE
    if _SURROGATE.search(value) is not None:
        return SURROGATE_MESSAGE
    return None
