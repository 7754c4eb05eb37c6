"""What every API router declares the same way: storable text fields, the error shape in
the OpenAPI document, and a 422 naming a field."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel
from pydantic_core import PydanticCustomError

from shared.http.errors import ApiError
from shared.text import unstorable

__all__ = ["ErrorOut", "Text", "error_responses", "invalid"]


def _storable(value: str) -> str:
    # NUL (PostgreSQL cannot hold it) and lone surrogates (no UTF-8 encoder can write
    # them; JSON's "\ud800" decodes to one): refused here, or the value would be
    # acknowledged and then fail to encode or store (shared/text.py).
    problem = unstorable(value)
    if problem is not None:
        raise PydanticCustomError("unstorable_text", problem)
    return value


# A body's string field that can be stored and encoded as it is.
Text = Annotated[str, AfterValidator(_storable)]


class ErrorOut(BaseModel):
    """The one error shape (docs/contract.md section 3)."""

    error: str
    details: list[dict[str, object]]


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` entries for these error statuses, and 503: every route
    needs PostgreSQL (the key store at least), which may be unreachable for a while."""
    out: dict[int | str, dict[str, object]] = {status: {"model": ErrorOut} for status in statuses}
    out.setdefault(503, {"model": ErrorOut,
                         "description": "PostgreSQL (or Kafka) is unreachable; retry after Retry-After"})
    return out


def invalid(field: str, message: str) -> ApiError:
    """A 422 in the same shape FastAPI's own validation errors get."""
    return ApiError(422, "request is invalid", [{"field": field, "message": message}])
