"""Schemathesis against the live /openapi.json: no input may cause a server error.

The service runs as a real process (`python -m services.ingest`) on the real
broker and database, and every operation of the document gets a bounded
number of generated requests, schema-valid and schema-violating, with a key
holding every scope. Bounded so the whole run stays well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import LiveService

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = {
    schemathesis.GenerationMode.POSITIVE: 25,
    schemathesis.GenerationMode.NEGATIVE: 20,
}


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_: Any, value: Any) -> bytes:
    """POST /v1/events also takes NDJSON; its schema is a string (the lines), sent as is."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list):
        return b"\n".join(json.dumps(item).encode("utf-8") for item in value)
    return json.dumps(value).encode("utf-8")


@schemathesis.check
def no_server_error_but_documented_503(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Like not_a_server_error, except a 503 the operation documents (a dependency away,
    such as /api/query without PROMETHEUS_URL) is the contract, not a failure."""
    if response.status_code == 503 and "503" in case.operation.responses.status_codes:
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error_but_documented_503]
# Our own endpoints also answer only with the statuses and content types they
# document; the other routers are held to that by their own tests.
STRICT_CHECKS = [*CHECKS, status_code_conformance, content_type_conformance]
STRICT_PATHS = {"/v1/events", "/healthz", "/readyz", "/metrics"}


# Hypothesis draws strings for `pattern` with Python's `re`, which has no
# Unicode property classes. The document uses them (the event contract's
# patterns, as ECMA-262 allows), so the fuzzer gets equivalents it can use:
# a printable-ASCII subset for event ids.
GENERATOR_PATTERNS = {
    r"^(?:[^\p{C}\p{Z}]| )+$": r"^[\x20-\x7e]+$",
}


def _python_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: GENERATOR_PATTERNS.get(v, v) if k == "pattern" and isinstance(v, str)
                else _python_patterns(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_python_patterns(item) for item in node]
    return node


# An operation answering text/event-stream (GET /live) never ends its 200 on its own:
# schemathesis reads such a stream until the call's timeout, so those calls get a short
# timeout (the stream is cut there, which is no failure) and few positive examples
# (their inputs are a pool and a miner), keeping the run bounded.
EVENT_STREAM_TIMEOUT_S = 1.0
EVENT_STREAM_POSITIVE_EXAMPLES = 5


def _streams_events(operation: schemathesis.APIOperation) -> bool:
    ok = operation.definition.raw.get("responses", {}).get("200", {})
    return "text/event-stream" in ok.get("content", {})


def _has_inputs(operation: schemathesis.APIOperation) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


def _fuzzer(
    operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode, examples: int,
    service: LiveService, seen_media_types: set[str],
) -> Callable[[], None]:
    """A Hypothesis test sending `examples` generated requests to one operation."""
    headers = {"Authorization": f"Bearer {service.token}"}
    checks = STRICT_CHECKS if operation.path in STRICT_PATHS else CHECKS
    timeout = EVENT_STREAM_TIMEOUT_S if _streams_events(operation) else 30

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: schemathesis.Case) -> None:
        seen_media_types.add(f"{operation.path} {case.media_type}")
        case.call_and_validate(base_url=service.base_url, headers=headers, checks=checks,
                               timeout=timeout)

    return exercise


def test_no_input_causes_a_server_error(live_service: LiveService) -> None:
    document = httpx.get(f"{live_service.base_url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(_python_patterns(document))
    failures: list[str] = []
    seen_media_types: set[str] = set()
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES_PER_OPERATION.items():
            if mode is schemathesis.GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue  # nothing to get wrong
            if mode is schemathesis.GenerationMode.POSITIVE and _streams_events(operation):
                examples = EVENT_STREAM_POSITIVE_EXAMPLES
            tried += 1
            try:
                _fuzzer(operation, mode, examples, live_service, seen_media_types)()
            except Unsatisfiable:
                # No request can violate this operation's schema in a way HTTP can
                # carry (e.g. an unconstrained string path parameter).
                continue
            except (Exception, BaseExceptionGroup) as exc:  # report them all at the end
                failures.append(f"{operation.label} ({mode}): {exc}")
    assert tried >= 20, f"only {tried} operation/mode pairs found in the document"
    assert any(_streams_events(result.ok()) for result in schema.get_all_operations()), "GET /live not fuzzed"
    assert not failures, "\n\n".join(failures)
    assert {"/v1/events application/json", "/v1/events application/x-ndjson"} <= seen_media_types
    # The service survived all of it.
    assert httpx.get(f"{live_service.base_url}/healthz").status_code == 200
