"""The console's static index and its template environment: versioned URLs, types, escaping."""

from __future__ import annotations

import pytest

from services.ingest.console.assets import Asset, StaticFiles, _media_type
from services.ingest.console.templating import load_environment
from shared.access import Principal, Scope

pytestmark = pytest.mark.unit


def test_a_url_carries_the_files_version_and_an_unknown_file_fails_at_once() -> None:
    static = StaticFiles({"js/pool.js": Asset(b"x", "text/javascript", "0123456789abcdef")})
    assert static.url("js/pool.js") == "/static/js/pool.js?v=0123456789abcdef"
    assert static.get("js/../js/pool.js") is None and static.get("js") is None
    with pytest.raises(LookupError):
        static.url("js/missing.js")


@pytest.mark.parametrize(("name", "media_type"), [
    ("console.js", "text/javascript; charset=utf-8"),
    ("uPlot.min.css", "text/css; charset=utf-8"),
    ("LICENSE", "text/plain; charset=utf-8"),
    ("VERSION", "text/plain; charset=utf-8"),
    ("blob", "application/octet-stream"),
])
def test_media_types(name: str, media_type: str) -> None:
    assert _media_type(name) == media_type


def test_the_packaged_files_are_all_indexed_with_the_vendored_uplot() -> None:
    static = StaticFiles.load()
    for path in ("css/console.css", "js/console.js", "js/pool.js", "vendor/uplot/uPlot.iife.min.js",
                 "vendor/uplot/uPlot.min.css", "vendor/uplot/LICENSE", "vendor/uplot/VERSION"):
        assert static.get(path) is not None, path


def test_every_template_escapes_names() -> None:
    environment = load_environment(lambda path: f"/static/{path}")
    assert environment.autoescape is True
    xss = "<script>alert(1)</script>"

    class Viewer:
        principal = Principal(key_id="k", name=xss, scopes=frozenset({Scope.READ}))
        name = xss
        miner = None
        csrf_token = '"><script>'
        sections = [("/", xss)]  # the navigation's labels are escaped too

    html = environment.get_template("pool.html").render(
        viewer=Viewer(), nav="/", pool="main", windows=["1m"], page={"pool": xss})
    assert xss not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '"><script>' not in html
    # tojson escapes <, > and & too: the JSON block cannot close its own <script>.
    assert "\\u003cscript\\u003e" in html
