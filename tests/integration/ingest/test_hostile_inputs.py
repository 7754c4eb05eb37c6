"""Odd but well-formed input to every route of the ingest API: a 4xx naming the field, never a 5xx.

Security review, class 2. Two parts:

- explicit regression cases, one per concrete finding: a `to` in the first
  hour of year 1 (the default `from`, `to` - 1 hour, overflowed), times past
  the documented range, and a lone UTF-16 surrogate (JSON "\\ud800") in each
  free-text body field (it reached PostgreSQL or orjson, which refuse it);
- a Hypothesis test over EVERY operation of the live app's own /openapi.json
  (so a route added later is covered without touching this file): each
  example sends, to each operation, a request whose path/query parameters and
  top-level body properties are valid but for one or two, which get a hostile
  value (edge dates, surrogates, NUL, 100,000 characters, NaN/Infinity,
  look-alike Unicode, deep nesting, wrong types, empty strings).

Everything goes over real HTTP to the server of `module_api`, with a key
holding every scope. Query strings, paths and bodies are encoded here, by
hand: httpx would refuse to encode a lone surrogate, and JSON bodies are
written with `ensure_ascii=True` so "\\ud800" reaches the server as the
escape a client would send (and NaN/Infinity as the literals Python's
`json` writes).

The one 5xx allowed is a 503 that an operation documents for a dependency
absent from this test set-up: the PromQL pass-through has no PROMETHEUS_URL.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.integration.ingest.conftest import Api
from tests.integration.ingest.helpers import share

pytestmark = pytest.mark.integration

ALL_SCOPES: Final = ("ingest", "read", "admin")
MINER: Final = "bc1qhostile"
# Operations whose dependency this set-up leaves out, with the documented 503 they answer for it.
DEPENDENCY_ABSENT: Final = frozenset({"GET /api/query", "GET /api/query_range"})
HTTP_METHODS: Final = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    # Hundreds of requests from one key: its token bucket must not turn them into 429s.
    return {"rate_limit_per_second": 1_000_000.0}


# --- sending requests by hand ------------------------------------------------


@dataclass(frozen=True)
class RawJson:
    """JSON text inserted into a body (or a parameter) verbatim: nesting too deep for `json.dumps`."""

    text: str
    label: str

    def __repr__(self) -> str:
        return f"RawJson({self.label})"


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate becomes the bytes ED A0 80, what a client
    # that percent-encodes it blindly would send.
    return text.encode("utf-8", "surrogatepass")


# httpx refuses URLs over 64 KiB; two targeted parameters must fit, percent-encoded.
MAX_ENCODED_PARAM: Final = 30_000


def _fit(text: str) -> str:
    """The longest prefix of `text` whose percent-encoded form fits MAX_ENCODED_PARAM."""
    while len(encoded := quote(_utf8(text), safe="")) > MAX_ENCODED_PARAM:
        text = text[: len(text) * MAX_ENCODED_PARAM // len(encoded)]
    return text


def _as_param(value: Any) -> str | None:
    """How a client would put a JSON-ish value into a URL; None: leave the parameter out."""
    text = _as_param_text(value)
    return None if text is None else _fit(text)


def _as_param_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, RawJson):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    return str(value)


def encode_body(body: Any) -> bytes:
    """JSON with ASCII escapes (so "\\ud800" survives) and NaN/Infinity literals; RawJson spliced in."""
    raws: dict[str, str] = {}

    def placeholder(value: Any) -> Any:
        if isinstance(value, RawJson):
            token = f"__raw_json_{len(raws)}__"
            raws[token] = value.text
            return token
        if isinstance(value, dict):
            return {k: placeholder(v) for k, v in value.items()}
        if isinstance(value, list):
            return [placeholder(v) for v in value]
        return value

    text = json.dumps(placeholder(body), ensure_ascii=True, allow_nan=True)
    for token, raw in raws.items():
        text = text.replace(f'"{token}"', raw)
    return text.encode("ascii")


@dataclass
class HostileRequest:
    method: str
    path: str  # already percent-encoded
    query: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    has_body: bool = False
    targets: list[tuple[str, Any]] = field(default_factory=list)  # (where, hostile value), for messages
    streams: bool = False  # a 200 is an endless text/event-stream (GET /live)

    @property
    def url(self) -> str:
        if not self.query:
            return self.path
        return self.path + "?" + "&".join(f"{quote(_utf8(k), safe='')}={quote(_utf8(v), safe='')}"
                                          for k, v in self.query)

    def describe(self) -> str:
        shown = ", ".join(f"{where}={_short(value)}" for where, value in self.targets)
        return f"{self.method} {self.url[:200]} [{shown}]"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:100]}...({len(text)} chars)"


async def send(api: Api, request: HostileRequest, headers: Mapping[str, str]) -> httpx.Response:
    all_headers = dict(headers)
    content: bytes | None = None
    if request.has_body:
        content = encode_body(request.body)
        all_headers["Content-Type"] = "application/json"
    if not request.streams:
        return await api.client.request(request.method, request.url, content=content, headers=all_headers)
    # An event stream's 200 never ends: its status and headers are the answer, and the stream is
    # closed at once (left open, every such request would hold a connection and a stream slot).
    async with api.client.stream(request.method, request.url, content=content, headers=all_headers) as response:
        if response.status_code != 200:
            await response.aread()
            return response
        return httpx.Response(200, headers=response.headers, content=b"", request=response.request)


def check_response(response: httpx.Response, *, operation: str, documented: frozenset[str],
                   request: HostileRequest) -> None:
    """Never a 5xx (but a documented 503 of an absent dependency); every 4xx in the one error
    shape; each detail of a 422 names a field (or, in a batch of events, the item's index)."""
    where = f"{request.describe()} -> {response.status_code} {response.text[:500]}"
    status = response.status_code
    if status >= 500:
        assert status == 503 and "503" in documented and operation in DEPENDENCY_ABSENT, where
        return
    if not 400 <= status < 500:
        return
    assert response.headers.get("content-type", "").startswith("application/json"), where
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error", "details"}, where
    assert isinstance(body["error"], str) and body["error"], where
    assert isinstance(body["details"], list), where
    if status == 422:
        assert body["details"], where
        for detail in body["details"]:
            assert isinstance(detail, dict), where
            named = isinstance(detail.get("field"), str) and detail["field"] != ""
            # POST /v1/events: field "" is the item itself (not an object), located by its index.
            assert named or isinstance(detail.get("index"), int), where


# --- the OpenAPI document -----------------------------------------------------


def _resolve(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    seen: set[str] = set()
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/components/schemas/") and ref not in seen, ref
        seen.add(ref)
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def _properties(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Top-level property names of an object schema, through $ref, allOf/anyOf/oneOf (union)."""
    schema = _resolve(doc, schema)
    names = list(schema.get("properties", {}))
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combinator, []):
            names += [n for n in _properties(doc, sub) if n not in names]
    return names


@dataclass(frozen=True)
class Parameter:
    location: str  # "path" or "query"
    name: str
    required: bool
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: tuple[Parameter, ...]
    has_body: bool
    body_is_array: bool
    body_properties: tuple[str, ...]
    responses: frozenset[str]
    streams: bool = False

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def operations_of(doc: Mapping[str, Any]) -> list[Operation]:
    out: list[Operation] = []
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            params = tuple(
                Parameter(p["in"], p["name"], bool(p.get("required")), p.get("schema", {}))
                for p in (*shared, *op.get("parameters", []))
                if p["in"] in ("path", "query")
            )
            content = op.get("requestBody", {}).get("content", {})
            schema = _resolve(doc, content["application/json"]["schema"]) if "application/json" in content else None
            is_array = schema is not None and schema.get("type") == "array"
            if schema is None:
                props: list[str] = []
            elif is_array:
                props = _properties(doc, schema.get("items", {}))
            else:
                props = _properties(doc, schema)
            ok = op.get("responses", {}).get("200", {}).get("content", {})
            out.append(Operation(method.upper(), path, params, schema is not None, is_array, tuple(props),
                                 frozenset(str(code) for code in op.get("responses", {})),
                                 "text/event-stream" in ok))
    return out


# --- valid values: what the hostile one is mixed with ------------------------

# A minimal valid body per operation; an operation not listed gets {}.
VALID_BODIES: Final[dict[str, Callable[[], Any]]] = {
    "POST /v1/events": lambda: [share(miner=MINER)],
    "POST /api/metrics": lambda: {"name": "hostile_probe", "value": 1.0, "labels": {"host": "a"}},
    "POST /api/metrics/performance": lambda: {"host": "host-1", "cpu_usage": 12.5, "labels": {"dc": "x"}},
    "POST /api/metrics/miner": lambda: {"miner": MINER, "user_agent": "cgminer/4.12"},
    "POST /api/dashboards": lambda: {"name": "probe", "description": "d", "config": {"panels": []}},
    "PUT /api/dashboards/{dashboardId}": lambda: {"name": "probe", "description": "d", "config": {"panels": []}},
    "PATCH /api/dashboards/{dashboardId}": lambda: {"name": "probe"},
}
# Valid values of required parameters, by name (optional ones are left out unless targeted).
VALID_PARAMS: Final[dict[str, str]] = {
    "miner": MINER,
    "minerId": MINER,
    "query": "up",
    "start": "2026-01-01T00:00:00Z",
    "end": "2026-01-01T01:00:00Z",
    "step": "60s",
}


def _valid_param(parameter: Parameter, dynamic: Mapping[str, str]) -> str:
    if parameter.name in dynamic:
        return dynamic[parameter.name]
    if parameter.name in VALID_PARAMS:
        return VALID_PARAMS[parameter.name]
    default = parameter.schema.get("default", parameter.schema.get("example"))
    return str(default) if default is not None else "x"


# --- hostile values ------------------------------------------------------------

LONG: Final = 100_000
EDGE_TIMES: Final = (
    "0001-01-01T00:00:00Z", "0001-01-01T00:30:00Z", "0001-01-01T00:59:59.999999Z", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:00Z", "9999-12-31T23:00:00-01:00",
    "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "1970-01-01T00:30:00Z", "9998-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z", "2026-01-01T00:00:00+99:59",
    "2026-01-01T00:00:00.1234567891234Z", "0000-01-01T00:00:00Z",
)
EDGE_INTEGERS: Final = (
    -62135596800000, -62135594400000, 253402300799999, 253402300800000, 999_999_999_999_999,
    -999_999_999_999_999, 10**16, 2**63, 2**63 - 1, -(2**63) - 1, 2**64, 10**30, -(10**30), -1, 0, 1,
)
TEXTS: Final = (
    "", " ", "\ud800", "a\udfff", "\udc00\ud800", "x\ud800y", "\x00", "a\x00b", "\x00" * 3,
    "a" * LONG, "\u00e9" * 10_000, "\ud800" * 1000, "\U0001f600" * 1000,
    # look-alikes and invisibles
    "\u0430dmin", "m\u0430in", "\uff4d\uff41\uff49\uff4e", "\u212a", "\u0130", "\u00df", "\ufb01",
    "\u200b", "\u202etxt", "e\u0301", "\ufeff", "\u2028", "\u00a0", "\u2212" + "1",
    "\uff11\uff10", "\u0661\u0660", "1\u200b0",
    # shapes of other types, in a string
    "NaN", "Infinity", "-Infinity", "1e309", "-0", "0x10", "1_000", "true", "null", "[]", "{}",
    "../../etc/passwd", "%00", "%ED%A0%80", "\\ud800", "'; DROP TABLE dashboards;--",
)
NON_FINITE: Final = (math.nan, math.inf, -math.inf)
DEEP_ARRAY: Final = RawJson("[" * 10_000 + "]" * 10_000, "10,000 nested arrays")
DEEP_OBJECT: Final = RawJson('{"a":' * 300 + "1" + "}" * 300, "300 nested objects")
DEEP_LIST_IN_OBJECT: Final = RawJson('{"a":' + "[" * 2000 + "]" * 2000 + "}", "2,000 nested arrays in an object")

scalar = st.one_of(
    st.sampled_from(TEXTS),
    st.sampled_from(EDGE_TIMES),
    st.sampled_from(EDGE_INTEGERS),
    st.sampled_from([str(i) for i in EDGE_INTEGERS]),
    st.sampled_from(NON_FINITE),
    st.sampled_from([True, False, None, 1.5, -0.0, 1e308, 5e-324]),
)
hostile_key = st.sampled_from(["\ud800", "a\udfff", "\x00", "a\x00", "", "\u0430", "a" * 1000, "__name__", "le"])
hostile = st.one_of(
    scalar,
    st.sampled_from([DEEP_ARRAY, DEEP_OBJECT, DEEP_LIST_IN_OBJECT]),
    st.lists(scalar, max_size=3),
    st.dictionaries(st.one_of(hostile_key, st.sampled_from(TEXTS[:12])), scalar, min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(["a", "panels"]),
                    st.dictionaries(hostile_key, scalar, min_size=1, max_size=2), min_size=1, max_size=1),
    st.just({"a": [{"b": "\ud800"}]}),
    st.just({"k": {"\ud800": [1, {"x": "\x00"}]}}),
)

WHOLE_BODY: Final = "<body>"
EXTRA_PROPERTY: Final = "<extra property>"


def targets_of(op: Operation) -> list[str]:
    out = [f"{p.location}.{p.name}" for p in op.parameters]
    if op.has_body:
        out += [f"body.{name}" for name in op.body_properties] + [WHOLE_BODY, EXTRA_PROPERTY]
    return out


@st.composite
def hostile_requests(draw: st.DrawFn, op: Operation, dynamic: Mapping[str, str]) -> HostileRequest:
    targets = targets_of(op)
    chosen = draw(st.lists(st.sampled_from(targets), min_size=1, max_size=2, unique=True)) if targets else []
    values: dict[str, Any] = {}
    for target in chosen:
        values[target] = draw(hostile_key) if target == EXTRA_PROPERTY else draw(hostile)
    path = op.path
    query: list[tuple[str, str]] = []
    for parameter in op.parameters:
        target = f"{parameter.location}.{parameter.name}"
        if target in values:
            text = _as_param(values[target])
            if text is None and parameter.location == "path":
                text = "null"
        elif parameter.required or parameter.location == "path":
            text = _valid_param(parameter, dynamic)
        else:
            text = None
        if text is None:
            continue
        if parameter.location == "path":
            path = path.replace("{" + parameter.name + "}", quote(_utf8(text), safe=""))
        else:
            query.append((parameter.name, text))
    body: Any = None
    if op.has_body:
        body = VALID_BODIES.get(op.key, dict)()
        container = body[0] if op.body_is_array and isinstance(body, list) and body else body
        for target, value in values.items():
            if target == WHOLE_BODY:
                body = value
            elif target == EXTRA_PROPERTY and isinstance(container, dict):
                container[value] = "x"
            elif target.startswith("body.") and isinstance(container, dict):
                container[target.removeprefix("body.")] = value
    return HostileRequest(op.method, path, query, body, op.has_body, list(values.items()), op.streams)


# --- the property ---------------------------------------------------------------

Prepared = tuple[list[Operation], dict[str, str], dict[str, str]]
# Per served app: prepared once, not once per Hypothesis example.
_prepared: weakref.WeakKeyDictionary[FastAPI, Prepared] = weakref.WeakKeyDictionary()


async def _prepare(api: Api) -> Prepared:
    """The document's operations, a key with every scope, and values only the live app can give."""
    if api.app not in _prepared:
        response = await api.client.get("/openapi.json")
        assert response.status_code == 200, response.text
        headers = await api.headers(*ALL_SCOPES)
        created = await api.client.post("/api/dashboards", headers=headers,
                                        json={"name": "hostile target", "config": {"panels": []}})
        assert created.status_code == 201, created.text
        _prepared[api.app] = (operations_of(response.json()), headers, {"dashboardId": created.json()["id"]})
    return _prepared[api.app]


# No shrink phase: an example is some 20 requests, and shrinking a failure takes Hypothesis'
# five-minute shrink budget; each failure message already names the request that failed.
@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
async def test_hostile_values_in_every_operation_never_cause_a_server_error(module_api: Api,
                                                                           data: st.DataObject) -> None:
    operations, headers, dynamic = await _prepare(module_api)
    sent: list[str] = []
    for op in operations:
        request = data.draw(hostile_requests(op, dynamic), label=op.key)
        response = await send(module_api, request, headers)
        check_response(response, operation=op.key, documented=op.responses, request=request)
        sent.append(op.key)
    # Every operation of the document (plugins' routes included) got its request.
    assert len(sent) == len(set(sent)) == len(operations)
    assert len(operations) >= 20  # today's count: a document parsed to nothing cannot pass vacuously


# --- regression cases: each concrete finding of the review ----------------------

TIME_ROUTES: Final = ("/api/metrics", "/api/metrics/performance", f"/api/metrics/miner/{MINER}",
                      f"/api/miners/{MINER}/history")
# (parameters, the field the 422 must name)
EDGE_TIME_CASES: Final = {
    "to_first_half_hour_of_year_1": ({"to": "0001-01-01T00:30:00Z"}, "query.to"),
    "to_first_hour_of_year_1_epoch_ms": ({"to": "-62135594400000"}, "query.to"),
    "to_start_of_year_1_epoch_ms": ({"to": "-62135596800000"}, "query.to"),
    "to_last_ms_of_year_9999": ({"to": "253402300799999"}, "query.to"),
    "to_last_microsecond_of_9999": ({"to": "9999-12-31T23:59:59.999999Z"}, "query.to"),
    "from_last_minute_of_9999_no_to": ({"from": "9999-12-31T23:59:00Z"}, "query.from"),
    "from_and_to_in_year_1": ({"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T00:30:00Z"}, "query.to"),
    "from_before_the_epoch": ({"from": "1969-12-31T23:59:59Z", "to": "2026-01-01T00:00:00Z"}, "query.from"),
    "to_past_year_9999_by_offset": ({"to": "9999-12-31T23:30:00-01:00"}, "query.to"),
}


@pytest.mark.parametrize("case", list(EDGE_TIME_CASES))
@pytest.mark.parametrize("route", TIME_ROUTES)
async def test_times_at_the_edge_of_the_range_are_422_naming_the_field(module_api: Api, route: str,
                                                                       case: str) -> None:
    params, field_name = EDGE_TIME_CASES[case]
    response = await module_api.client.get(route, params=params, headers=await module_api.headers(*ALL_SCOPES))
    assert response.status_code == 422, response.text
    details = response.json()["details"]
    assert [d for d in details if d["field"] == field_name and d["message"]], details


S: Final = "\ud800"
DASHBOARD_BODY: Final = {"name": "probe", "description": "d", "config": {"panels": []}}
# (method, path, body, the prefix of the field the 422 must name); "{id}" is a dashboard of the caller's.
SURROGATE_CASES: Final[dict[str, tuple[str, str, Any, str]]] = {
    "metric_label_value": ("POST", "/api/metrics", {"name": "m_probe", "value": 1, "labels": {"host": S}},
                           "body.labels"),
    "metric_label_name": ("POST", "/api/metrics", {"name": "m_probe", "value": 1, "labels": {S: "a"}},
                          "body.labels"),
    "metric_label_name_suffix": ("POST", "/api/metrics",
                                 {"name": "m_probe", "value": 1, "labels": {"host" + S: "a"}}, "body.labels"),
    "metric_name": ("POST", "/api/metrics", {"name": "m" + S, "value": 1}, "body.name"),
    "performance_label_value": ("POST", "/api/metrics/performance",
                                {"host": "h", "cpu_usage": 1, "labels": {"dc": "x" + S}}, "body.labels"),
    "performance_label_name": ("POST", "/api/metrics/performance",
                               {"host": "h", "cpu_usage": 1, "labels": {S: "x"}}, "body.labels"),
    "performance_service": ("POST", "/api/metrics/performance", {"host": "h", "cpu_usage": 1, "service": S},
                            "body.service"),
    "miner_user_agent": ("POST", "/api/metrics/miner", {"miner": MINER, "user_agent": "cg" + S}, "body.user_agent"),
    "miner_worker": ("POST", "/api/metrics/miner", {"miner": MINER, "worker": S, "user_agent": "cg"}, "body.worker"),
    "miner_miner": ("POST", "/api/metrics/miner", {"miner": S, "user_agent": "cg"}, "body.miner"),
    "dashboard_name": ("POST", "/api/dashboards", {**DASHBOARD_BODY, "name": S}, "body.name"),
    "dashboard_description": ("POST", "/api/dashboards", {**DASHBOARD_BODY, "description": "d" + S},
                              "body.description"),
    "dashboard_config_key": ("POST", "/api/dashboards", {**DASHBOARD_BODY, "config": {S: 1}}, "body.config"),
    "dashboard_config_value": ("POST", "/api/dashboards", {**DASHBOARD_BODY, "config": {"a": S}}, "body.config"),
    "dashboard_config_deep_key": ("POST", "/api/dashboards",
                                  {**DASHBOARD_BODY, "config": {"a": [{"b": {S: None}}]}}, "body.config"),
    "dashboard_config_deep_value": ("POST", "/api/dashboards",
                                    {**DASHBOARD_BODY, "config": {"a": [1, {"b": ["x", S]}]}}, "body.config"),
    # Not a surrogate: Python's json parses NaN, and orjson would have stored it as null.
    "dashboard_config_nan": ("POST", "/api/dashboards", {**DASHBOARD_BODY, "config": {"a": [math.nan]}},
                             "body.config"),
    "dashboard_unknown_field": ("POST", "/api/dashboards", {**DASHBOARD_BODY, S: 1}, "body"),
    "put_dashboard_name": ("PUT", "/api/dashboards/{id}", {**DASHBOARD_BODY, "name": S}, "body.name"),
    "put_dashboard_description": ("PUT", "/api/dashboards/{id}", {**DASHBOARD_BODY, "description": S},
                                  "body.description"),
    "put_dashboard_config": ("PUT", "/api/dashboards/{id}", {**DASHBOARD_BODY, "config": {"a": {S: S}}},
                             "body.config"),
    "patch_dashboard_name": ("PATCH", "/api/dashboards/{id}", {"name": S}, "body.name"),
    "patch_dashboard_description": ("PATCH", "/api/dashboards/{id}", {"description": S}, "body.description"),
    "patch_dashboard_config": ("PATCH", "/api/dashboards/{id}", {"config": {"a": [S]}}, "body.config"),
    # orjson parses the events body and refuses the escape itself: the body is the field.
    "event_reject_reason": ("POST", "/v1/events", [share(miner=MINER, status="rejected", reject_reason=S)], "body"),
    "event_user_agent": ("POST", "/v1/events",
                         [{**share(miner=MINER), "type": "miner", "state": "connected", "user_agent": S}], "body"),
}


async def _own_dashboard(api: Api, headers: Mapping[str, str]) -> str:
    response = await api.client.post("/api/dashboards", json=DASHBOARD_BODY, headers=dict(headers))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("case", list(SURROGATE_CASES))
async def test_a_lone_surrogate_in_a_body_field_is_422_naming_the_field(module_api: Api, case: str) -> None:
    method, path, body, field_prefix = SURROGATE_CASES[case]
    headers = await module_api.headers(*ALL_SCOPES)
    if "{id}" in path:
        path = path.replace("{id}", await _own_dashboard(module_api, headers))
    response = await module_api.client.request(method, path, content=encode_body(body),
                                               headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    details = response.json()["details"]
    named = [d for d in details if d["field"] == field_prefix or d["field"].startswith(field_prefix + ".")]
    assert named and all(d["message"] for d in named), details


async def test_nan_under_a_surrogate_key_in_an_event_is_422_naming_the_field(module_api: Api) -> None:
    """orjson refuses the body; the fallback that locates NaN for the 422 parses it with Python's
    json, which decodes the key to a lone surrogate: naming that field made the answer a 500."""
    event = {**share(miner=MINER), "actual_difficulty": {"a": {S: math.nan}}}
    response = await module_api.client.post("/v1/events", content=encode_body([event]), headers={
        **await module_api.headers(*ALL_SCOPES), "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    details = response.json()["details"]
    assert [d for d in details if d["index"] == 0 and d["field"] == "actual_difficulty.a.\\ud800"], details


# Percent-encoded bytes in paths and queries: Starlette decodes invalid UTF-8 (a surrogate's
# bytes ED A0 80) to U+FFFD, and %00 to NUL, which must stop at validation.
ENCODED_URLS: Final = (
    "/api/miners/%ED%A0%80/stats", "/api/miners/%00/stats", "/api/miners/a%00b/history",
    "/api/metrics/miner/%ED%A0%80", "/api/metrics/miner/%00",
    "/api/dashboards/%ED%A0%80", "/api/dashboards/%00",
    "/api/pool/stats?pool=%ED%A0%80", "/api/pool/stats?pool=%00",
    "/api/metrics?name=%ED%A0%80", "/api/metrics?name=%00",
    "/api/metrics?labels=%7B%22a%22%3A%22%ED%A0%80%22%7D", "/api/metrics?labels=%7B%22a%22%3A%22%00%22%7D",
    "/api/metrics?labels=%7B%22a%22%3A%22%5Cud800%22%7D", "/api/metrics?labels=%7B%22%5Cud800%22%3A%22a%22%7D",
    "/api/metrics?labels=%7B%22a%22%3A%22%5Cu0000%22%7D",
    "/api/metrics?from=%ED%A0%80", "/api/metrics?to=%00", "/api/metrics/performance?host=%ED%A0%80&service=%00",
    f"/api/miners/{MINER}/history?from=%00&to=%ED%A0%80", f"/api/miners/{MINER}/history?step=%00",
    "/api/query?query=%ED%A0%80", "/api/query?query=up%00", "/api/dashboards?limit=%00&offset=%ED%A0%80",
)


@pytest.mark.parametrize("url", ENCODED_URLS)
async def test_encoded_surrogates_and_nul_in_urls_are_no_server_error(module_api: Api, url: str) -> None:
    response = await module_api.client.get(url, headers=await module_api.headers(*ALL_SCOPES))
    operation = "GET /api/query" if url.startswith("/api/query?") else url
    check_response(response, operation=operation, documented=frozenset({"503"}),
                   request=HostileRequest("GET", url))
    if ("%00" in url or "%5Cud800" in url) and not url.startswith("/api/query?"):
        assert response.status_code in (404, 422), response.text


@pytest.mark.parametrize("value", ['{"a":"\\ud800"}', '{"\\ud800":"a"}', '{"a":"\\u0000"}', '{"a\\u0000":"b"}'])
async def test_labels_filter_with_unstorable_text_is_422(module_api: Api, value: str) -> None:
    response = await module_api.client.get("/api/metrics", params={"labels": value},
                                           headers=await module_api.headers(*ALL_SCOPES))
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == ["query.labels"]
