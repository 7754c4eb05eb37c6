"""Keys limited to one miner (`miner:<name>`): the scope's text, the grants, and the HTTP checks.

The HTTP part runs a small app in memory (httpx's ASGI transport) with a
hand-written gate, so `authorize`, `require_scope` and the guard are tested
as routes use them, without a database or a socket.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import pydantic
import pytest
from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel

from services.ingest.adapters.keys import KeyAuthenticator
from services.ingest.domain.keys import (
    ApiKeyRecord,
    InvalidScopes,
    KeyGrant,
    ScopeProblem,
    format_key,
    hash_key,
    parse_grant,
    parse_scopes,
    stored_grant,
)
from shared.access import (
    MINER_NAME_MAX_CHARS,
    MINER_NAME_PATTERN,
    MINER_SCOPE_PREFIX,
    KeyRefused,
    Principal,
    Scope,
    is_miner_name,
    miner_scope,
    parse_miner_scope,
)
from shared.events import MINER_PATTERN, Miner
from shared.http.auth import BEARER, AuthFailure, Gate, Limit, authorize, ensure_miner, require_scope
from shared.http.errors import ApiError, install_error_handlers
from shared.http.guard import BodyLimits, BodyRefusal, RequiredAccess, guarded_router, required_access

pytestmark = pytest.mark.unit

ALICE = Principal("k-alice", "alice-phone", frozenset(), miner="alice")
READER = Principal("k-read", "dashboard", frozenset({Scope.READ}))
INGESTER = Principal("k-ingest", "node", frozenset({Scope.INGEST}))


# --- the scope's text -------------------------------------------------------------------------------------------

def test_the_miner_name_is_the_event_contracts() -> None:
    assert MINER_NAME_PATTERN == MINER_PATTERN
    as_events_take_it = pydantic.TypeAdapter(Miner)
    samples = ["alice", "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh", "a" * MINER_NAME_MAX_CHARS,
               "a" * (MINER_NAME_MAX_CHARS + 1), "", "al ice", "ali\u0430e", "alice\n", "x:y,z", "\u200balice"]
    for sample in samples:
        try:
            as_events_take_it.validate_python(sample)
            accepted = True
        except pydantic.ValidationError:
            accepted = False
        assert is_miner_name(sample) is accepted, sample


def test_parse_miner_scope() -> None:
    assert MINER_SCOPE_PREFIX == "miner:"
    assert parse_miner_scope("miner:alice") == "alice"
    assert parse_miner_scope("MINER:Alice") == "Alice"  # the prefix ignores case, the name keeps it
    assert parse_miner_scope("miner:a:b") == "a:b"
    for text in ("read", "miner:", "miner: alice", "miner:alice\n", "miners:alice", "alice", "miner:ali\u0430e",
                 "miner:" + "a" * (MINER_NAME_MAX_CHARS + 1)):
        assert parse_miner_scope(text) is None, text


def test_miner_scope_text() -> None:
    assert miner_scope("alice") == "miner:alice"
    assert parse_miner_scope(miner_scope("bc1q-x.y")) == "bc1q-x.y"
    with pytest.raises(ValueError):
        miner_scope("al ice")


def test_a_miner_principal_holds_no_scope() -> None:
    assert ALICE.scopes == frozenset() and ALICE.miner == "alice"
    assert READER.miner is None
    with pytest.raises(ValueError):
        Principal("k", "n", frozenset({Scope.READ}), miner="alice")


# --- what a new key is given ------------------------------------------------------------------------------------

def test_parse_grant_ordinary_scopes_and_one_miner() -> None:
    assert parse_grant("ingest, READ") == KeyGrant(frozenset({Scope.INGEST, Scope.READ}))
    assert parse_grant("miner:alice") == KeyGrant(frozenset(), "alice")
    assert parse_grant(" Miner:alice , miner:alice ") == KeyGrant(frozenset(), "alice")
    assert parse_grant(["miner:a,b"]) == KeyGrant(frozenset(), "a,b")  # an iterable keeps commas in names
    assert parse_grant("miner:alice").names() == ["miner:alice"]
    assert parse_grant("read,admin").names() == ["admin", "read"]


@pytest.mark.parametrize(("text", "problem", "culprits"), [
    ("miner:alice,read", ScopeProblem.MINER_NOT_ALONE, ["miner:alice", "read"]),
    ("admin,miner:alice", ScopeProblem.MINER_NOT_ALONE, ["admin", "miner:alice"]),
    ("miner:alice,miner:bob", ScopeProblem.MANY_MINERS, ["miner:alice", "miner:bob"]),
    ("miner:", ScopeProblem.MINER_NAME, ["miner:"]),
    ("miner:al ice", ScopeProblem.MINER_NAME, ["miner:al ice"]),
    ("miner:ali\u0430e,read", ScopeProblem.MINER_NAME, ["miner:ali\u0430e"]),
    ("miner:alice,write", ScopeProblem.UNKNOWN, ["write"]),
    ("miners:alice", ScopeProblem.UNKNOWN, ["miners:alice"]),
    (" , ", ScopeProblem.NONE, []),
])
def test_parse_grant_refuses(text: str, problem: ScopeProblem, culprits: list[str]) -> None:
    with pytest.raises(InvalidScopes) as info:
        parse_grant(text)
    assert info.value.problem is problem
    assert info.value.culprits == culprits
    assert info.value.unknown == (culprits if problem is ScopeProblem.UNKNOWN else [])


def test_the_refusals_explain_themselves() -> None:
    with pytest.raises(InvalidScopes) as mixed:
        parse_grant("miner:alice,read")
    assert "only scope" in str(mixed.value) and "'read'" in str(mixed.value)
    with pytest.raises(InvalidScopes) as many:
        parse_grant("miner:alice,miner:bob")
    assert "one miner" in str(many.value)
    with pytest.raises(InvalidScopes) as bad:
        parse_grant("miner:al ice")
    assert "names no miner" in str(bad.value)


def test_parse_scopes_takes_ordinary_scopes_only() -> None:
    assert parse_scopes("read") == {Scope.READ}
    with pytest.raises(InvalidScopes) as info:
        parse_scopes("miner:alice")
    assert info.value.unknown == ["miner:alice"]


# --- what a stored key may do -----------------------------------------------------------------------------------

def test_stored_grant() -> None:
    assert stored_grant(["miner:alice"]) == KeyGrant(frozenset(), "alice")
    assert stored_grant(["ingest", "read"]) == KeyGrant(frozenset({Scope.INGEST, Scope.READ}))
    # Unknown names grant nothing; a NULL element written by hand is skipped.
    assert stored_grant(["read", "write", None, "miner:", "miner:al ice"]) == KeyGrant(frozenset({Scope.READ}))
    # A hand-written row mixing a miner with scopes is held to its miner.
    assert stored_grant(["admin", "miner:alice", "read"]) == KeyGrant(frozenset(), "alice")
    # Two miners: no single one is meant, so nothing at all.
    assert stored_grant(["miner:alice", "miner:bob"]) == KeyGrant(frozenset())
    assert stored_grant([]) == KeyGrant(frozenset())


def _record(grant: KeyGrant) -> ApiKeyRecord:
    return ApiKeyRecord(id=uuid.UUID(int=9), name="alice-phone", key_prefix="chm_abcdefgh", scopes=grant.scopes,
                        rate_limit_per_second=None, created_at=datetime(2026, 1, 1, tzinfo=UTC), miner=grant.miner)


def test_a_miner_keys_record_and_principal() -> None:
    record = _record(parse_grant("miner:alice"))
    assert record.grant.names() == ["miner:alice"]
    assert record.principal() == Principal(str(uuid.UUID(int=9)), "alice-phone", frozenset(), miner="alice")
    assert _record(parse_grant("read")).principal().miner is None


class OneKeyStore:
    def __init__(self, token: str, record: ApiKeyRecord) -> None:
        self._rows = {hash_key(token): record}

    async def lookup(self, key_hash: str) -> ApiKeyRecord | None:
        return self._rows.get(key_hash)

    async def touch(self, ids: object) -> None:
        return None


async def test_the_authenticator_gives_the_miner() -> None:
    token = format_key(bytes(range(32)))
    auth = KeyAuthenticator(OneKeyStore(token, _record(parse_grant("miner:alice"))))
    principal = await auth.authenticate(token)
    assert isinstance(principal, Principal) and principal.miner == "alice" and principal.scopes == frozenset()


# --- over HTTP: authorize, require_scope, the guard -------------------------------------------------------------

class FakeGate:
    """The gate's parts: a token is the key_id of one of the principals above; nothing is limited."""

    def __init__(self) -> None:
        self.principals = {p.key_id: p for p in (ALICE, READER, INGESTER)}
        self.forbidden_scopes: list[Scope] = []
        self.refused_bodies: list[BodyRefusal] = []

    async def authenticate(self, token: str) -> Principal | KeyRefused:
        return self.principals.get(token, KeyRefused.UNKNOWN)

    def retry_after_s(self, principal: Principal) -> float:
        return 0.0

    def blocked_for_s(self, address: str) -> float:
        return 0.0

    def failed(self, address: str) -> None:
        return None

    def auth_failed(self, reason: AuthFailure) -> None:
        return None

    def forbidden(self, scope: Scope) -> None:
        self.forbidden_scopes.append(scope)

    def rate_limited_by(self, limit: Limit) -> None:
        return None

    def body_refused(self, refusal: BodyRefusal) -> None:
        self.refused_bodies.append(refusal)


class Note(BaseModel):
    text: str


MinerId = Annotated[str, Path(alias="minerId")]


def build_router() -> APIRouter:
    router = guarded_router()
    read_or_miner = Depends(require_scope(Scope.READ, miner=True))
    read = Depends(require_scope(Scope.READ))

    @router.get("/miners/{minerId}")
    async def miner_by_hand(miner_id: MinerId, request: Request) -> dict[str, Any]:
        principal = await authorize(request, Scope.READ, miner=True)
        ensure_miner(principal, miner_id)
        return {"miner": miner_id}

    @router.post("/miners/{minerId}/notes")
    async def miner_note(miner_id: MinerId, note: Note, principal: Principal = read_or_miner) -> dict[str, Any]:
        ensure_miner(principal, miner_id)
        return {"note": note.text}

    @router.post("/pool/notes")
    async def pool_note(note: Note, _: Principal = read) -> dict[str, Any]:
        return {"note": note.text}

    return router


def build_app(gate: FakeGate) -> FastAPI:
    app = FastAPI()
    app.include_router(build_router())
    install_error_handlers(app)
    app.state.gate = Gate(authenticator=gate, key_limiter=gate, failure_limiter=gate, observer=gate)
    app.state.body_limits = BodyLimits(default_bytes=64, timeout_s=5.0)
    app.state.body_observer = gate
    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx.AsyncClient, FakeGate]]:
    gate = FakeGate()
    transport = httpx.ASGITransport(app=build_app(gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, gate


def bearer(principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {principal.key_id}"}


def test_the_guard_finds_whether_a_route_lets_miner_keys_in() -> None:
    found = {r.path: required_access(r.dependant) for r in build_router().routes if isinstance(r, APIRoute)}
    assert found["/miners/{minerId}/notes"] == RequiredAccess(Scope.READ, miner_allowed=True)
    assert found["/pool/notes"] == RequiredAccess(Scope.READ, miner_allowed=False)
    assert found["/miners/{minerId}"] is None  # authorize() is called by hand there, not declared


async def test_a_miner_key_reads_its_own_miner_only(served: tuple[httpx.AsyncClient, FakeGate]) -> None:
    client, _ = served
    own = await client.post("/miners/alice/notes", json={"text": "hi"}, headers=bearer(ALICE))
    assert own.status_code == 200, own.text
    other = await client.post("/miners/bob/notes", json={"text": "hi"}, headers=bearer(ALICE))
    assert other.status_code == 403
    assert other.json() == {"error": "this key may read miner alice only",
                            "details": [{"field": "path.minerId",
                                         "message": "this API key is limited to miner alice"}]}
    # An ordinary key with the scope reads any miner; one without it is refused as before.
    assert (await client.post("/miners/bob/notes", json={"text": "hi"}, headers=bearer(READER))).status_code == 200
    refused = await client.post("/miners/bob/notes", json={"text": "hi"}, headers=bearer(INGESTER))
    assert refused.status_code == 403 and refused.json()["error"] == "this API key lacks the 'read' scope"


async def test_authorize_called_by_hand_honours_miner_too(served: tuple[httpx.AsyncClient, FakeGate]) -> None:
    client, _ = served
    assert (await client.get("/miners/alice", headers=bearer(ALICE))).json() == {"miner": "alice"}
    assert (await client.get("/miners/bob", headers=bearer(ALICE))).status_code == 403
    assert (await client.get("/miners/bob", headers=bearer(INGESTER))).status_code == 403
    assert (await client.get("/miners/bob")).status_code == 401


async def test_a_miner_key_is_refused_before_the_body_where_miners_are_not_let_in(
        served: tuple[httpx.AsyncClient, FakeGate]) -> None:
    client, gate = served
    # Over the 64-byte limit and malformed: the guard answers 403 before reading a byte of it.
    refused = await client.post("/pool/notes", content=b"{" * 1000, headers=bearer(ALICE))
    assert refused.status_code == 403 and refused.json()["error"] == "this API key lacks the 'read' scope"
    assert gate.forbidden_scopes == [Scope.READ] and gate.refused_bodies == []
    # Where miner keys are let in, the guard passes them and the body limit applies.
    too_large = await client.post("/miners/alice/notes", content=b"{" * 1000, headers=bearer(ALICE))
    assert too_large.status_code == 413 and gate.refused_bodies == [BodyRefusal.TOO_LARGE]


def test_ensure_miner() -> None:
    ensure_miner(ALICE, "alice")
    ensure_miner(READER, "bob")  # ordinary keys: the route's scope was the whole check
    with pytest.raises(ApiError) as info:
        ensure_miner(ALICE, "bob", field="query.miner")
    assert info.value.status == 403 and info.value.details[0]["field"] == "query.miner"


def test_the_openapi_scheme_names_the_miner_scope() -> None:
    assert "miner:<name>" in (BEARER.model.description or "")
