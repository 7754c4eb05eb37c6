"""GET /static/{path}: the console's CSS, scripts and vendored uPlot, from memory.

Every file under `static/` is read once at app creation into an index keyed
by its path: a request can only name a file of that index (no path is ever
joined, so no `..` escapes, and a folder is no file: no listing). The URLs
the templates write carry the file's content hash (`?v=`), which is what
makes a year-long, immutable cache safe; a request without the current hash
(an old page, a person typing the URL) is cached for minutes only.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Annotated, Final

from fastapi import Path, Query, Request
from starlette.responses import Response

from services.ingest.console.templating import PACKAGE
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

STATIC_PREFIX: Final = "/static/"
_IMMUTABLE: Final = "public, max-age=31536000, immutable"
_UNVERSIONED: Final = "public, max-age=300"
_MAX_PATH_CHARS: Final = 256
_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    version: str  # the first 16 hex digits of the content's SHA-256


def _media_type(name: str) -> str:
    suffix = name[name.rfind("."):] if "." in name else ""
    if suffix in _TYPES:
        return _TYPES[suffix]
    if name.isupper():  # LICENSE, VERSION
        return "text/plain; charset=utf-8"
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield f"{prefix}{entry.name}", entry


class StaticFiles:
    """The index of `static/`: relative path -> asset."""

    def __init__(self, assets: Mapping[str, Asset]) -> None:
        self._assets = dict(assets)

    @classmethod
    def load(cls) -> StaticFiles:
        assets = {}
        for path, entry in _walk(files(PACKAGE) / "static", ""):
            body = entry.read_bytes()
            assets[path] = Asset(body, _media_type(entry.name), hashlib.sha256(body).hexdigest()[:16])
        return cls(assets)

    def get(self, path: str) -> Asset | None:
        return self._assets.get(path)

    def url(self, path: str) -> str:
        """The versioned URL of a file; a template naming a file that does not exist fails at once."""
        asset = self._assets.get(path)
        if asset is None:
            raise LookupError(f"no static file {path!r}")
        return f"{STATIC_PREFIX}{path}?v={asset.version}"


router = guarded_router(include_in_schema=False)


@router.get("/static/{path:path}")
async def static_file(
    request: Request,
    path: Annotated[str, Path(max_length=_MAX_PATH_CHARS)],
    v: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    static: StaticFiles = request.app.state.console.static
    asset = static.get(path)
    if asset is None:
        raise ApiError(404, "no such file", [{"field": "path.path", "message": "not a file of the console"}])
    etag = f'"{asset.version}"'
    headers = {"Cache-Control": _IMMUTABLE if v == asset.version else _UNVERSIONED, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
