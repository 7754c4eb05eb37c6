"""Telling a database that is away from a query that is wrong.

Callers decide on these predicates (the error's type and SQLSTATE), never on
message text: an unreachable or restarting server is worth a 503 and a retry,
a failing statement is a bug.
"""

from __future__ import annotations

from typing import Final

import asyncpg

__all__ = ["DATABASE_ERRORS", "UNAVAILABLE_SQLSTATE_CLASSES", "database_unavailable"]

# What asyncpg (or the socket under it) raises. InternalClientError is what a
# connection broken in mid-protocol reports on its next use.
DATABASE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                          OSError, TimeoutError)

# SQLSTATE classes that describe the server, not the statement: 08 connection
# exception, 53 insufficient resources (too many connections), 57 operator
# intervention (shutting down, starting up), 58 system error.
UNAVAILABLE_SQLSTATE_CLASSES: Final = frozenset({"08", "53", "57", "58"})


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or used right now."""
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None)
        return isinstance(sqlstate, str) and sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES
    # No server verdict: the connection could not be made, broke, or timed out.
    return isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError))
