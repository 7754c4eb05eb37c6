"""Errors of the aggregator: data about what failed, and whether retrying can help.

Callers decide on `retriable` (and the fields), never on message text. The
adapters raise them (adapters/db.py classifies PostgreSQL's failures); the
batch path (consume/) decides on them.
"""

from __future__ import annotations

__all__ = ["AggregatorError", "StoreError"]


class AggregatorError(Exception):
    def __init__(self, message: str, *, retriable: bool, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.cause = cause


class StoreError(AggregatorError):
    """A PostgreSQL operation failed. `operation` names it, `sqlstate` is the server's code
    (None for connection-level failures), `partitions` the input partitions it concerned."""

    def __init__(
        self,
        message: str,
        *,
        retriable: bool,
        operation: str,
        sqlstate: str | None = None,
        partitions: tuple[int, ...] = (),
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, retriable=retriable, cause=cause)
        self.operation = operation
        self.sqlstate = sqlstate
        self.partitions = partitions
