"""Interactive API docs (Swagger UI) served from this process: no script, style or image from outside.

FastAPI's own /docs loads Swagger UI from a CDN; here the assets come from
the `swagger-ui-bundle-v2` package, the page's one inline script is allowed
by its hash in a Content-Security-Policy, and the validator badge (which
would call out to swagger.io) is off. `API_DOCS=off` serves no docs at all.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH: Final = "/docs"
ASSETS_PATH: Final = "/docs/assets"
_INLINE_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_ASSETS_MAX_AGE_S: Final = 3600


class _Assets(StaticFiles):
    """Swagger UI's files; cacheable (they change only with the package), unlike API answers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = f"public, max-age={_ASSETS_MAX_AGE_S}"
        return response


def _content_security_policy(html: str) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return ("default-src 'none'; "
            f"script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def mount_local_docs(app: FastAPI, title: str) -> None:
    """/docs with Swagger UI's assets under /docs/assets. The app must be built with docs_url=None."""
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{title} - API docs",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode("utf-8")
    headers = {"Content-Security-Policy": _content_security_policy(html)}

    async def docs(_: Request) -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    app.add_route(DOCS_PATH, docs, include_in_schema=False)
    app.mount(ASSETS_PATH, _Assets(directory=str(swagger_ui_path)), name="docs-assets")
