"""Miner names that cannot impersonate, over real HTTP (security issue, class 6).

A miner is 1-128 printable ASCII characters, '!' to '~' (contract section 1).
Names with look-alike (Cyrillic 'а', fullwidth 'ａ') or invisible (zero-width,
bidi override, NBSP) characters could show a person the same name as another
miner's: every endpoint that takes a miner refuses them with a 422 naming the
field, in bodies and in (URL-encoded) path parameters alike. The cases share
one server (module_api); none of them may write anything to the pool topics.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.integration.ingest.conftest import Api
from tests.integration.ingest.helpers import block, miner_event, read_topics, share
from tests.unit.event_cases import MINER_REFUSED

pytestmark = pytest.mark.integration

LABELS = [label for label, _ in MINER_REFUSED]
NAMES = dict(MINER_REFUSED)
# The ones a person cannot tell from ASCII, or cannot see; plus plain ASCII the rule refuses.
SHOWN = ["cyrillic-a-among-latin", "zero-width-space", "zero-width-joiner", "bidi-override",
         "fullwidth-a", "nbsp", "emoji", "space", "del"]
assert set(SHOWN) <= set(NAMES)


def _details(response: httpx.Response, field: str) -> list[dict[str, Any]]:
    assert response.status_code == 422, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "details"} and body["error"]
    matching = [d for d in body["details"] if d["field"] == field]
    assert matching, f"no detail names {field!r}: {body['details']}"
    return matching


@pytest.mark.parametrize("label", LABELS)
async def test_event_with_a_look_alike_miner_is_422_naming_miner(module_api: Api, label: str) -> None:
    events = [share(), share(miner=NAMES[label])]
    response = await module_api.client.post("/v1/events", json=events, headers=await module_api.headers("ingest"))
    (detail,) = _details(response, "miner")
    assert detail["index"] == 1
    assert "printable ASCII" in detail["message"], detail


@pytest.mark.parametrize("make", [block, miner_event], ids=["block", "miner"])
async def test_block_and_miner_events_refuse_look_alikes_too(module_api: Api, make: Any) -> None:
    headers = await module_api.headers("ingest")
    for label in SHOWN:
        response = await module_api.client.post("/v1/events", json=[make(miner=NAMES[label])], headers=headers)
        (detail,) = _details(response, "miner")
        assert detail["index"] == 0, label


async def test_nothing_is_written_to_the_pool_topics(module_api: Api) -> None:
    # All or nothing: the valid events beside a look-alike are not written either
    # (and, run after the cases above in file order, nor was anything of theirs).
    events = [e for label in SHOWN for e in (share(), share(miner=NAMES[label]))]
    response = await module_api.client.post("/v1/events", json=events, headers=await module_api.headers("ingest"))
    assert [d["index"] for d in _details(response, "miner")] == list(range(1, len(events), 2))
    assert await read_topics(module_api.settings) == []
    assert (await module_api.client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("label", LABELS)
async def test_miner_report_with_a_look_alike_miner_is_422_naming_body_miner(module_api: Api, label: str) -> None:
    response = await module_api.client.post(
        "/api/metrics/miner", json={"miner": NAMES[label], "reported_hashrate": 1.0},
        headers=await module_api.headers("ingest"))
    _details(response, "body.miner")


PATHS = {
    "/api/miners/{}/stats": "path.miner",
    "/api/miners/{}/history": "path.miner",
    "/api/metrics/miner/{}": "path.minerId",
}


@pytest.mark.parametrize("template", list(PATHS))
@pytest.mark.parametrize("label", LABELS)
async def test_look_alike_miner_in_the_path_is_422(module_api: Api, template: str, label: str) -> None:
    # Percent-encoded as a client would send it; the server decodes it to the look-alike.
    url = template.format(quote(NAMES[label], safe=""))
    response = await module_api.client.get(url, headers=await module_api.headers("read"))
    assert response.status_code not in (200, 500), (url, response.status_code, response.text)
    _details(response, PATHS[template])


@pytest.mark.parametrize("template", list(PATHS))
async def test_printable_ascii_names_in_the_path_are_taken(module_api: Api, template: str) -> None:
    # The rule is the name's characters only: these are looked up (unknown miners:
    # 404 from the stats, no rows from the metrics API), never refused as input.
    headers = await module_api.headers("read")
    # A name may hold "/" (section 1): the miner routes take the rest of the path as the name.
    for name in ["bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "user.worker-1", "a~!@$*(x)_+=:;,'", "m" * 128,
                 "pool/alice", "a/b/c"]:
        response = await module_api.client.get(template.format(quote(name, safe="")), headers=headers)
        assert response.status_code in (200, 404), (name, response.status_code, response.text)
        if response.status_code == 200:
            assert response.json()["miner"] == name
