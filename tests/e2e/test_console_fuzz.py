"""Property-based requests over every console route (pages, sign-in, static files): no input a
browser, a script or an attacker can send gives a 5xx, every HTML answer carries the CSP, and
hostile text sent in never comes back as markup.

The console's routes are not in /openapi.json (they answer HTML), so schemathesis does not
reach them; this walks the routes the app actually mounts (`console_routers()`), so a page
added later is fuzzed without touching this file. The service runs as a real process on the
real broker and database (tests/e2e/conftest.py `live_service`), signed in with a real session
for half the requests, with no cookie, a forged one or a malformed one for the rest.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.console.routes import console_routers
from tests.e2e.conftest import LiveService
from tests.integration.ingest.console_helpers import form_token

pytestmark = pytest.mark.e2e

CSP_START: Final = "default-src 'self'"
MARK: Final = "<script>chimera-fuzz</script>"
_PARAM = re.compile(r"{(\w+)(:path)?}")
# Text a client may put anywhere: markup, quotes, separators, escapes, controls, far Unicode.
HOSTILE_TEXT: Final = st.one_of(
    st.text(max_size=40),
    st.sampled_from([MARK, '"><img src=x onerror=alert(1)>', "../../etc/passwd", "%2e%2e%2f", "//evil.example",
                     "\\\\evil", "javascript:alert(1)", "a" * 5000, "\u202e\u0000", "main", "1", "-1",
                     "00000000-0000-0000-0000-000000000000", "9" * 40]),
)


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every console route, HEAD left to Starlette."""
    out = []
    for router in console_routers():
        for route in router.routes:
            for method in sorted(getattr(route, "methods", ()) or ()):
                if method != "HEAD":
                    out.append((method, route.path))  # type: ignore[attr-defined]
    assert len(out) >= 8, out  # the pages, sign-in/out and static files at least
    return out


ROUTES: Final = _routes()


@pytest.fixture(scope="module")
def live_service_env() -> dict[str, str]:
    # Bad keys are part of the input; the failure limiter has its own tests.
    return {"AUTH_FAILURES_PER_SECOND": "100000", "AUTH_FAILURES_BURST": "100000"}


def _session(service: LiveService) -> httpx.Cookies:
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        page = client.get("/sign-in")
        answer = client.post("/sign-in", data={"api_key": service.token, "csrf_token": form_token(page.text)})
        assert answer.status_code == 303, answer.text
        return client.cookies


def _fill(template: str, values: list[str]) -> str:
    """The template with each parameter percent-encoded as a client would send it ({x:path} keeps its slashes)."""
    parts = iter(values)
    return _PARAM.sub(lambda m: quote(next(parts, "x"), safe="/" if m.group(2) else ""), template)


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    method, template = draw(st.sampled_from(ROUTES))
    values = [draw(HOSTILE_TEXT) for _ in _PARAM.findall(template)]
    query = draw(st.dictionaries(st.sampled_from(["pool", "q", "sort", "order", "offset", "limit", "status",
                                                  "next", "range", "miner", "severity", "x"]),
                                 HOSTILE_TEXT, max_size=4))
    cookie = draw(st.sampled_from(["session", "none", "forged", "garbage"]))
    form = draw(st.dictionaries(st.sampled_from(["api_key", "csrf_token", "next", "x"]), HOSTILE_TEXT, max_size=4))
    return {"method": method, "path": _fill(template, values), "query": query, "cookie": cookie, "form": form}


def test_no_console_input_gives_a_server_error(live_service: LiveService) -> None:
    session = _session(live_service)
    jars = {"session": session, "none": {}, "forged": {"chimera_session": "A" * 43},
            "garbage": {"chimera_session": "\x7f;=,\"x"}}
    seen: dict[int, int] = {}
    client = httpx.Client(base_url=live_service.base_url, timeout=30, follow_redirects=False)

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(_requests())
    def check(request: dict[str, Any]) -> None:
        client.cookies = httpx.Cookies(jars[request["cookie"]])  # what an answer set does not carry over
        answer = client.request(request["method"], request["path"], params=request["query"],
                                data=request["form"] if request["method"] == "POST" else None)
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        assert answer.status_code < 500, (request, answer.status_code, answer.text[:500])
        if answer.headers.get("content-type", "").startswith("text/html"):
            assert answer.headers.get("content-security-policy", "").startswith(CSP_START), request
            assert MARK not in answer.text, (request, "hostile text came back as markup")

    with client:
        check()
    assert any(200 <= status < 300 for status in seen), seen  # pages were reached, not only refusals
    assert any(400 <= status < 500 for status in seen), seen
