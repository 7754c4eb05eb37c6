"""The channels API over real HTTP, mounted on the public app through the plugin, on the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from services.notifier.adapters.channel_store import ChannelStore
from services.notifier.adapters.secrets import SecretBox
from services.notifier.api import make_plugin
from services.notifier.domain.matchers import Matcher
from shared.settings import ConfigError

from .conftest import NotifierApi
from .receivers import HttpReceiver, Reply

pytestmark = pytest.mark.integration

HOOK_TOKEN = "T000-B000-XXXXsecrettoken"
SIGNING_SECRET = "s3cr3t-signing-key"


def webhook_body(url: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "ops", "type": "webhook", "config": {"url": url, "hmac_secret": SIGNING_SECRET},
        "matchers": {"pool": "main"}, "label_matchers": [{"name": "worker", "op": "=~", "value": "rig-.*"}],
        "min_severity": "warning", "group_by": ["miner"], "group_wait": "10s", "group_interval": "1m",
        "repeat_interval": "2h", "rate_limit_per_minute": 30,
    }
    body.update(changes)
    return body


@pytest.fixture
async def hooks() -> AsyncIterator[HttpReceiver]:
    async with HttpReceiver() as receiver:
        yield receiver


async def stored_row(api: NotifierApi, channel_id: int) -> dict[str, Any]:
    row = await api.api.container.pool.fetchrow("SELECT * FROM alert_channels WHERE id = $1", channel_id)
    assert row is not None
    return dict(row)


async def test_a_channel_is_created_read_replaced_and_deleted_with_its_secrets_hidden(
    api: NotifierApi, hooks: HttpReceiver,
) -> None:
    admin, read = await api.headers("admin"), await api.headers("read")
    url = hooks.url(f"/hook/{HOOK_TOKEN}")
    created = await api.api.client.post("/api/alert-channels", json=webhook_body(url), headers=admin)
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["config"] == {"hmac_secret": "********", "max_alerts": 0,
                                 "url": "http://127.0.0.1/********"}
    assert {k: channel[k] for k in ("matchers", "label_matchers", "min_severity", "group_by", "group_wait",
                                    "group_interval", "repeat_interval", "rate_limit_per_minute", "send_resolved",
                                    "enabled", "miner", "secrets_readable")} == {
        "matchers": {"pool": "main"}, "label_matchers": [{"name": "worker", "op": "=~", "value": "rig-.*"}],
        "min_severity": "warning", "group_by": ["miner"], "group_wait": "10s", "group_interval": "1m",
        "repeat_interval": "2h", "rate_limit_per_minute": 30.0, "send_resolved": True, "enabled": True,
        "miner": None, "secrets_readable": True}
    listed = await api.api.client.get("/api/alert-channels", headers=read)
    got = await api.api.client.get(f"/api/alert-channels/{channel['id']}", headers=read)
    assert [c["id"] for c in listed.json()["channels"]] == [channel["id"]] and got.json() == channel
    for answer in (created, listed, got):
        assert HOOK_TOKEN not in answer.text and SIGNING_SECRET not in answer.text

    row = await stored_row(api, channel["id"])
    assert row["config"] == {"max_alerts": 0}
    assert HOOK_TOKEN not in str(row) and SIGNING_SECRET not in str(row)
    assert row["secrets"].startswith("gAAAAA")  # a Fernet token, under this server's key
    assert SecretBox([api.secret_key]).open(row["secrets"]) == {"url": url, "hmac_secret": SIGNING_SECRET}

    replaced = await api.api.client.put(f"/api/alert-channels/{channel['id']}",
                                        json=webhook_body(url, name="ops-2", min_severity="critical"), headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "ops-2" and replaced.json()["min_severity"] == "critical"
    assert replaced.json()["created_at"] == channel["created_at"]
    assert (await api.api.client.delete(f"/api/alert-channels/{channel['id']}", headers=admin)).status_code == 204
    assert (await api.api.client.get(f"/api/alert-channels/{channel['id']}", headers=read)).status_code == 404
    assert (await api.api.client.delete(f"/api/alert-channels/{channel['id']}", headers=admin)).status_code == 404


async def test_a_put_of_what_was_got_keeps_the_secrets_and_a_new_value_replaces_them(
    api: NotifierApi, hooks: HttpReceiver,
) -> None:
    admin, read = await api.headers("admin"), await api.headers("read")
    url = hooks.url(f"/hook/{HOOK_TOKEN}")
    created = (await api.api.client.post("/api/alert-channels", json=webhook_body(url), headers=admin)).json()
    got = (await api.api.client.get(f"/api/alert-channels/{created['id']}", headers=read)).json()
    body = {name: got[name] for name in webhook_body(url)} | {"enabled": False}
    put = await api.api.client.put(f"/api/alert-channels/{created['id']}", json=body, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["enabled"] is False and put.json()["config"] == got["config"]
    row = await stored_row(api, created["id"])
    assert SecretBox([api.secret_key]).open(row["secrets"]) == {"url": url, "hmac_secret": SIGNING_SECRET}

    new_url = hooks.url("/other-hook/NEWTOKEN")
    body["config"] = {"url": new_url, "hmac_secret": "********"}
    put = await api.api.client.put(f"/api/alert-channels/{created['id']}", json=body, headers=admin)
    assert put.status_code == 200, put.text
    row = await stored_row(api, created["id"])
    assert SecretBox([api.secret_key]).open(row["secrets"]) == {"url": new_url, "hmac_secret": SIGNING_SECRET}


async def test_a_mask_that_stands_for_no_stored_secret_is_refused(api: NotifierApi, hooks: HttpReceiver) -> None:
    admin = await api.headers("admin")
    masked = webhook_body("http://127.0.0.1/********")
    answer = await api.api.client.post("/api/alert-channels", json=masked, headers=admin)
    assert answer.status_code == 422 and answer.json()["details"][0]["field"] == "body.config.url"
    unsigned = webhook_body(hooks.url("/h"), config={"url": hooks.url("/h")})
    created = (await api.api.client.post("/api/alert-channels", json=unsigned, headers=admin)).json()
    put = await api.api.client.put(f"/api/alert-channels/{created['id']}", headers=admin,
                                   json=unsigned | {"config": {"url": hooks.url("/h"), "hmac_secret": "********"}})
    assert put.status_code == 422 and put.json()["details"][0]["field"] == "body.config.hmac_secret"
    retyped = unsigned | {"type": "slack", "config": {"webhook_url": "http://127.0.0.1/********"}}
    put = await api.api.client.put(f"/api/alert-channels/{created['id']}", json=retyped, headers=admin)
    assert put.status_code == 422 and put.json()["details"][0]["field"] == "body.config.webhook_url"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "carrier-pigeon"}, "body.type"),
        ({"config": {"url": "http://127.0.0.1/h", "colour": "red"}}, "body.config.colour"),
        ({"config": {}}, "body.config.url"),
        ({"config": {"url": "ftp://127.0.0.1/h"}}, "body.config.url"),
        ({"config": {"url": "http://user:pw@127.0.0.1/h"}}, "body.config.url"),
        ({"config": {"url": "http://127.0.0.1/h", "max_alerts": -1}}, "body.config.max_alerts"),
        ({"type": "email", "config": {"to": "not-an-address", "from": "a@b.c", "smarthost": "127.0.0.1"}},
         "body.config.to[0]"),
        ({"type": "telegram", "config": {"bot_token": "1:x", "chat_id": "no spaces"}}, "body.config.chat_id"),
        ({"group_wait": "5 minutes"}, "body.group_wait"),
        ({"group_interval": "0"}, "body.group_interval"),
        ({"repeat_interval": "400d"}, "body.repeat_interval"),
        ({"label_matchers": [{"name": "worker", "op": "=~", "value": "rig-(["}]}, "body.label_matchers[0].value"),
        ({"label_matchers": [{"name": "worker", "op": "~=", "value": "x"}]}, "body.label_matchers[0].op"),
        ({"min_severity": "fatal"}, "body.min_severity"),
        ({"rate_limit_per_minute": 0}, "body.rate_limit_per_minute"),
        ({"name": ""}, "body.name"),
        ({"colour": "red"}, "body.colour"),
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(shared_api: NotifierApi, change: dict[str, Any],
                                                    field: str) -> None:
    answer = await shared_api.api.client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1/h") | change,
                                              headers=await shared_api.headers("admin"))
    assert answer.status_code == 422, answer.text
    assert field in [d["field"] for d in answer.json()["details"]], answer.json()


async def test_without_the_allow_list_a_private_address_is_refused(public_api: NotifierApi) -> None:
    admin = await public_api.headers("admin")
    for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/hook", "http://169.254.169.254/"):
        answer = await public_api.api.client.post("/api/alert-channels", json=webhook_body(url), headers=admin)
        assert answer.status_code == 422, answer.text
        assert answer.json()["details"][0]["field"] == "body.config.url"
    public = await public_api.api.client.post("/api/alert-channels", json=webhook_body("https://hooks.example.com/x"),
                                              headers=admin)
    assert public.status_code == 201, public.text


async def test_with_loopback_allowed_a_loopback_address_is_taken(api: NotifierApi) -> None:
    answer = await api.api.client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1:9/hook"),
                                       headers=await api.headers("admin"))
    assert answer.status_code == 201, answer.text


async def test_names_are_unique(api: NotifierApi) -> None:
    admin = await api.headers("admin")
    first = await api.api.client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1/a"), headers=admin)
    again = await api.api.client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1/b"), headers=admin)
    assert again.status_code == 409 and again.json()["details"][0]["field"] == "body.name"
    other = await api.api.client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1/b", name="other"),
                                      headers=admin)
    put = await api.api.client.put(f"/api/alert-channels/{other.json()['id']}",
                                   json=webhook_body("http://127.0.0.1/b"), headers=admin)
    assert first.status_code == 201 and put.status_code == 409


async def test_scopes_guard_the_channels(shared_api: NotifierApi) -> None:
    body = webhook_body("http://127.0.0.1/h")
    assert (await shared_api.api.client.get("/api/alert-channels")).status_code == 401
    read, ingest = await shared_api.headers("read"), await shared_api.headers("ingest")
    assert (await shared_api.api.client.post("/api/alert-channels", json=body, headers=read)).status_code == 403
    assert (await shared_api.api.client.get("/api/alert-channels", headers=ingest)).status_code == 403


async def test_a_miner_key_manages_its_own_miners_channels_only(api: NotifierApi) -> None:
    admin, read = await api.headers("admin"), await api.headers("read")
    alice, bob = await api.miner_headers("alice"), await api.miner_headers("bob")
    client = api.api.client
    mine = await client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1/a", name="alice's"),
                             headers=alice)
    assert mine.status_code == 201, mine.text
    assert mine.json()["miner"] == "alice"
    assert (await stored_row(api, mine.json()["id"]))["miner"] == "alice"
    others = await client.post("/api/alert-channels", headers=alice,
                               json=webhook_body("http://127.0.0.1/b", name="bob's", miner="bob"))
    assert others.status_code == 403 and others.json()["details"][0]["field"] == "body.miner"
    admins = (await client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1/c", name="ops"),
                                headers=admin)).json()
    bobs = (await client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1/d", name="bob's"),
                              headers=bob)).json()

    assert [c["name"] for c in (await client.get("/api/alert-channels", headers=alice)).json()["channels"]] == [
        "alice's"]
    assert {c["name"] for c in (await client.get("/api/alert-channels", headers=read)).json()["channels"]} == {
        "alice's", "ops", "bob's"}
    for foreign in (admins["id"], bobs["id"]):
        path = f"/api/alert-channels/{foreign}"
        assert (await client.get(path, headers=alice)).status_code == 404
        assert (await client.put(path, json=webhook_body("http://127.0.0.1/e", name="x"),
                                 headers=alice)).status_code == 404
        assert (await client.post(f"{path}/test", headers=alice)).status_code == 404
        assert (await client.delete(path, headers=alice)).status_code == 404
    assert (await client.get(f"/api/alert-channels/{admins['id']}", headers=read)).json()["name"] == "ops"
    # An admin replacing a miner's channel without naming its miner keeps it; null clears it.
    kept = await client.put(f"/api/alert-channels/{bobs['id']}", headers=admin,
                            json=webhook_body("http://127.0.0.1/d", name="bob's"))
    assert kept.status_code == 200 and kept.json()["miner"] == "bob"
    cleared = await client.put(f"/api/alert-channels/{bobs['id']}", headers=admin,
                               json=webhook_body("http://127.0.0.1/d", name="bob's", miner=None))
    assert cleared.status_code == 200 and cleared.json()["miner"] is None
    edited = await client.put(f"/api/alert-channels/{mine.json()['id']}", headers=alice,
                              json=webhook_body("http://127.0.0.1/a", name="alice's", enabled=False))
    assert edited.status_code == 200 and edited.json()["miner"] == "alice" and edited.json()["enabled"] is False
    assert (await client.delete(f"/api/alert-channels/{mine.json()['id']}", headers=alice)).status_code == 204


async def test_the_notifier_reads_back_what_the_api_wrote(api: NotifierApi) -> None:
    store = ChannelStore(api.api.container.pool, SecretBox([api.secret_key]))
    before = await store.state()
    body = webhook_body("http://127.0.0.1/h")
    created = await api.api.client.post("/api/alert-channels", json=body, headers=await api.miner_headers("m1"))
    assert await store.state() != before
    [channel] = await store.all_for_sending()
    assert channel.id == created.json()["id"] and channel.full_config() == {
        "url": "http://127.0.0.1/h", "hmac_secret": SIGNING_SECRET, "max_alerts": 0}
    route = channel.route()
    assert route.matchers == (Matcher.of("pool", "main"), Matcher.of("worker", "rig-.*", "=~"))
    assert (route.miner, route.min_severity, route.group_by) == ("m1", "warning", ("miner",))
    assert (route.group_wait_ms, route.group_interval_ms, route.repeat_interval_ms) == (10_000, 60_000, 7_200_000)
    assert route.matchers[1].matches({"worker": "rig-7"}) and not route.matchers[1].matches({"worker": "xrig-7"})


async def test_a_channel_whose_secrets_no_key_opens_is_shown_so_and_left_out_of_sending(api: NotifierApi) -> None:
    created = await api.api.client.post("/api/alert-channels", json=webhook_body("http://127.0.0.1/h"),
                                        headers=await api.headers("admin"))
    other_key = SecretBox([Fernet.generate_key()]).seal({"url": "http://127.0.0.1/h"})
    await api.api.container.pool.execute("UPDATE alert_channels SET secrets = $1 WHERE id = $2", other_key,
                                          created.json()["id"])
    got = await api.api.client.get(f"/api/alert-channels/{created.json()['id']}", headers=await api.headers("read"))
    assert got.status_code == 200 and got.json()["secrets_readable"] is False
    assert await ChannelStore(api.api.container.pool, SecretBox([api.secret_key])).all_for_sending() == []
    tested = await api.api.client.post(f"/api/alert-channels/{created.json()['id']}/test",
                                       headers=await api.headers("admin"))
    assert tested.status_code == 409


async def test_a_test_notification_is_sent_and_logged(api: NotifierApi, hooks: HttpReceiver) -> None:
    admin, read = await api.headers("admin"), await api.headers("read")
    body = webhook_body(hooks.url("/hook"), name="test-me")
    channel = (await api.api.client.post("/api/alert-channels", json=body, headers=admin)).json()
    answer = await api.api.client.post(f"/api/alert-channels/{channel['id']}/test", headers=admin)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["ok"] is True and result["status_code"] == 200 and result["error"] is None
    [request] = await hooks.wait_for(1)
    assert request.json["version"] == "4" and request.json["receiver"] == "test-me"
    assert [a["labels"]["alertname"] for a in request.json["alerts"]] == ["ChimeraTestNotification"]
    assert request.headers["X-Chimera-Signature"].startswith("sha256=")

    hooks.script("/hook", Reply(500, body="down for maintenance"))
    failed = (await api.api.client.post(f"/api/alert-channels/{channel['id']}/test", headers=admin)).json()
    assert failed["ok"] is False and failed["status_code"] == 500 and "down for maintenance" in failed["error"]
    log = (await api.api.client.get(f"/api/notifications?channel={channel['id']}", headers=read)).json()
    assert [(n["delivery_id"], n["status"], n["kind"]) for n in log["notifications"]] == [
        (failed["delivery_id"], "dead", "test"), (result["delivery_id"], "sent", "test")]


async def test_the_api_document_names_every_types_config_keys(shared_api: NotifierApi) -> None:
    document = (await shared_api.api.client.get("/openapi.json")).json()
    schema = document["components"]["schemas"]["ChannelIn"]["properties"]["config"]
    variants = {v["title"]: v for v in schema["anyOf"]}
    assert set(variants) == {f"{t} config" for t in ("webhook", "slack", "discord", "telegram", "email",
                                                     "pagerduty")}
    assert variants["telegram config"]["required"] == ["bot_token", "chat_id"]
    assert "Secret" in variants["slack config"]["properties"]["webhook_url"]["description"]
    assert "| email | `smarthost` | yes |" in schema["description"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("NOTIFIER_SECRET_KEYS", "not-a-fernet-key"), ("NOTIFIER_ALLOWED_NETWORKS", "10.0.0.0/33"),
     ("NOTIFIER_SEND_TIMEOUT_S", "-1")],
)
async def test_a_bad_notifier_setting_stops_the_plugin_naming_it(
    shared_api: NotifierApi, monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        make_plugin(shared_api.api.settings, shared_api.api.container.pool)
    assert [name for name, _ in caught.value.problems] == [variable]
    assert value not in str(caught.value) or variable != "NOTIFIER_SECRET_KEYS"
