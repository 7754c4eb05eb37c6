"""A console page as an HTTP response: the template, the context every page has, the CSP header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse

from services.ingest.console.access import Viewer
from services.ingest.console.console import Console

# No inline script or style anywhere: page data travels in data-* attributes or a
# JSON <script type="application/json"> block, which is never executed.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # Not the API's no-referrer: under it a browser sends `Origin: null` with a form's
    # POST, and the sign-in form's origin check needs the real one. Other sites still
    # learn no console URL.
    "Referrer-Policy": "same-origin",
}


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """`template` rendered with `viewer`, `nav` (the first path segment) and the page's own `context`."""
    console: Console = request.app.state.console
    values: dict[str, Any] = {
        "viewer": viewer,
        "nav": "/" + request.url.path.strip("/").split("/", 1)[0],
        "pool": "main",
    }
    values.update(context or {})
    html = console.templates.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
