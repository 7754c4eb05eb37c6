"""Reading and checking the sign-in form: a small urlencoded body, its origin, its double-submit token.

Parsed here rather than by FastAPI's Form(): that would need python-multipart
for one three-field form, and a hand-bounded parse says exactly what it
refuses and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs

from fastapi import Request

from services.ingest.console.access import PageError

FORM_TYPE: Final = "application/x-www-form-urlencoded"
# api_key (a key is 47 characters), csrf_token (43), next (a path): far under this.
MAX_FORM_BYTES: Final = 4096
_MAX_FIELDS: Final = 8


@dataclass(frozen=True, slots=True)
class Form:
    fields: dict[str, str]

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


async def read_form(request: Request) -> Form:
    """The urlencoded body's fields (first value of each); a `PageError` 400/415 for anything else."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise PageError(415, f"send the form as {FORM_TYPE}")
    body = await request.body()  # bounded by the route's body limit before it is buffered
    try:
        text = body.decode("ascii")  # urlencoded is ASCII; percent-escapes carry the rest
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "the form could not be read") from None
    return Form({name: values[0] for name, values in parsed.items()})


def same_origin(request: Request) -> bool:
    """Whether the browser says the form came from this site; True when it says nothing (old clients).

    SameSite=Strict on both cookies already keeps another site's form from
    carrying them; this refuses such a post even before they are looked at."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin.lower() == f"{request.url.scheme}://{host}".lower()
