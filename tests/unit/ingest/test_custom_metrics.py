"""The custom metrics exporter: types, labels, conflicts, the series cap, per-key quotas, expiry, two-phase posting."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.ingest.adapters.custom_metrics import CustomMetrics
from services.ingest.domain.custom_metrics import (
    DEFAULT_BUCKETS,
    KeyQuotaReached,
    MetricConflict,
    SeriesLimitReached,
)

pytestmark = pytest.mark.unit

KEY_A = "0b6a3c1e-0000-4000-8000-00000000000a"
KEY_B = "0b6a3c1e-0000-4000-8000-00000000000b"


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def post(metrics: CustomMetrics, name: str, kind: str, value: float, **labels: str) -> None:
    post_as(KEY_A, metrics, name, kind, value, **labels)


def post_as(key_id: str, metrics: CustomMetrics, name: str, kind: str, value: float, **labels: str) -> None:
    metrics.record(metrics.admit(name, kind, labels, key_id=key_id), value)  # type: ignore[arg-type]


def scrape(metrics: CustomMetrics) -> dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    """family name -> (type, {(sample name, sorted labels): value}), through a real registry."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(metrics.collector())
    text = generate_latest(registry).decode()
    return {
        f.name: (f.type, {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples})
        for f in text_string_to_metric_families(text)
    }


def test_gauge_is_set_to_the_last_value() -> None:
    m = CustomMetrics(max_series=10)
    post(m, "temperature", "gauge", 20.5, host="a")
    post(m, "temperature", "gauge", 19.0, host="a")
    post(m, "temperature", "gauge", 30.0, host="b")
    kind, samples = scrape(m)["temperature"]
    assert kind == "gauge"
    assert samples == {("temperature", (("host", "a"),)): 19.0, ("temperature", (("host", "b"),)): 30.0}


def test_counter_adds_its_values() -> None:
    m = CustomMetrics(max_series=10)
    post(m, "jobs", "counter", 2, queue="x")
    post(m, "jobs", "counter", 3.5, queue="x")
    kind, samples = scrape(m)["jobs"]
    assert kind == "counter"
    assert samples == {("jobs_total", (("queue", "x"),)): 5.5}


def test_counter_named_with_total_suffix_is_the_same_family() -> None:
    m = CustomMetrics(max_series=10)
    post(m, "jobs_total", "counter", 1)
    post(m, "jobs", "counter", 1)
    assert scrape(m)["jobs"][1] == {("jobs_total", ()): 2.0}
    assert m.series_count == 1


def test_histogram_observes_into_cumulative_buckets() -> None:
    m = CustomMetrics(max_series=10)
    for value in (0.003, 0.3, 0.3, 42.0):
        post(m, "latency", "histogram", value, route="r")
    kind, samples = scrape(m)["latency"]
    assert kind == "histogram"
    route = ("route", "r")
    assert samples[("latency_bucket", (("le", "0.005"), route))] == 1
    assert samples[("latency_bucket", (("le", "0.25"), route))] == 1
    assert samples[("latency_bucket", (("le", "0.5"), route))] == 3
    assert samples[("latency_bucket", (("le", "10.0"), route))] == 3
    assert samples[("latency_bucket", (("le", "+Inf"), route))] == 4
    assert samples[("latency_count", (route,))] == 4
    assert samples[("latency_sum", (route,))] == pytest.approx(42.603)
    assert len([k for k in samples if k[0] == "latency_bucket"]) == len(DEFAULT_BUCKETS) + 1


def test_bucket_bounds_are_inclusive() -> None:
    m = CustomMetrics(max_series=10)
    post(m, "h", "histogram", 0.1)
    samples = scrape(m)["h"][1]
    assert samples[("h_bucket", (("le", "0.075"),))] == 0
    assert samples[("h_bucket", (("le", "0.1"),))] == 1


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        (("m", "gauge", {}), ("m", "counter", {}), "type"),
        (("m", "gauge", {"a": "1"}), ("m", "gauge", {"b": "1"}), "labels"),
        (("m", "gauge", {"a": "1"}), ("m", "gauge", {}), "labels"),
        (("m", "gauge", {}), ("m", "gauge", {"a": "1", "b": "2"}), "labels"),
        # A counter `x` is exposed as x_total: a gauge of that name would collide with it.
        (("x", "counter", {}), ("x_total", "gauge", {}), "type"),
        (("h", "histogram", {}), ("h_bucket", "gauge", {}), "type"),
        (("h_sum", "gauge", {}), ("h", "histogram", {}), "type"),
    ],
)
def test_one_name_keeps_one_type_and_label_set(first: tuple, second: tuple, field: str) -> None:  # type: ignore[type-arg]
    m = CustomMetrics(max_series=10)
    post(m, first[0], first[1], 1, **first[2])
    with pytest.raises(MetricConflict) as caught:
        m.admit(*second, key_id=KEY_A)
    assert caught.value.field == field
    assert m.refused("conflict") == 1
    assert m.series_count == 1


def test_label_order_does_not_matter() -> None:
    m = CustomMetrics(max_series=10)
    post(m, "m", "gauge", 1, a="1", b="2")
    m.record(m.admit("m", "gauge", {"b": "2", "a": "1"}, key_id=KEY_A), 3)
    assert m.series_count == 1
    assert scrape(m)["m"][1] == {("m", (("a", "1"), ("b", "2"))): 3.0}


def test_new_series_past_the_cap_is_refused_and_counted() -> None:
    m = CustomMetrics(max_series=2)
    post(m, "a", "gauge", 1, k="1")
    post(m, "a", "gauge", 1, k="2")
    with pytest.raises(SeriesLimitReached) as caught:
        m.admit("a", "gauge", {"k": "3"}, key_id=KEY_A)
    assert caught.value.max_series == 2
    with pytest.raises(SeriesLimitReached):
        m.admit("b", "gauge", {}, key_id=KEY_A)
    # Known series still take samples at the cap.
    post(m, "a", "gauge", 5, k="1")
    families = scrape(m)
    assert families["a"][1][("a", (("k", "1"),))] == 5
    assert families["chimera_custom_metrics_refused"][1][
        ("chimera_custom_metrics_refused_total", (("key_id", KEY_A), ("reason", "series_limit")))] == 2
    assert families["chimera_custom_metrics_series"][1][("chimera_custom_metrics_series", ())] == 2
    # A refused new name leaves no family behind.
    assert "b" not in families


def test_reservations_count_toward_the_cap() -> None:
    """Two concurrent requests for new series cannot both take the last slot."""
    m = CustomMetrics(max_series=1)
    first = m.admit("a", "gauge", {}, key_id=KEY_A)
    with pytest.raises(SeriesLimitReached):
        m.admit("b", "gauge", {}, key_id=KEY_B)
    m.record(first, 1)


def test_admitted_but_unrecorded_series_is_not_exported() -> None:
    m = CustomMetrics(max_series=5)
    m.admit("pending", "gauge", {}, key_id=KEY_A)
    assert "pending" not in scrape(m)


def test_cancel_frees_a_series_nobody_recorded() -> None:
    m = CustomMetrics(max_series=1)
    admission = m.admit("a", "gauge", {"k": "1"}, key_id=KEY_A)
    m.cancel(admission)
    assert m.series_count == 0
    # The name, its type and its label names are free again.
    post(m, "a", "counter", 1)
    assert scrape(m)["a"][0] == "counter"


def test_cancel_keeps_a_series_that_has_a_value() -> None:
    m = CustomMetrics(max_series=5)
    post(m, "a", "gauge", 7)
    m.cancel(m.admit("a", "gauge", {}, key_id=KEY_A))
    assert scrape(m)["a"][1] == {("a", ()): 7.0}


def test_cancel_waits_for_concurrent_admissions_of_the_same_series() -> None:
    m = CustomMetrics(max_series=5)
    one, two = m.admit("a", "gauge", {}, key_id=KEY_A), m.admit("a", "gauge", {}, key_id=KEY_B)
    m.cancel(one)
    m.record(two, 4)
    assert scrape(m)["a"][1] == {("a", ()): 4.0}


def test_max_series_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CustomMetrics(max_series=0)


def test_a_key_at_its_quota_is_refused_while_another_key_still_adds_series() -> None:
    m = CustomMetrics(max_series=10, max_series_per_key=2)
    post_as(KEY_A, m, "a", "gauge", 1, k="1")
    post_as(KEY_A, m, "a", "gauge", 1, k="2")
    with pytest.raises(KeyQuotaReached) as caught:
        m.admit("a", "gauge", {"k": "3"}, key_id=KEY_A)
    assert (caught.value.key_id, caught.value.max_series_per_key) == (KEY_A, 2)
    with pytest.raises(KeyQuotaReached):
        m.admit("other", "gauge", {}, key_id=KEY_A)
    # The other key is not locked out by A's series.
    post_as(KEY_B, m, "a", "gauge", 7, k="3")
    post_as(KEY_B, m, "b", "counter", 1)
    # At its quota A still updates series, its own and B's (a series is paid for by its creator).
    post_as(KEY_A, m, "a", "gauge", 5, k="1")
    post_as(KEY_A, m, "a", "gauge", 8, k="3")
    assert (m.series_of(KEY_A), m.series_of(KEY_B), m.series_count) == (2, 2, 4)
    assert (m.refused("key_quota", KEY_A), m.refused("key_quota", KEY_B)) == (2, 0)
    families = scrape(m)
    assert families["a"][1] == {("a", (("k", "1"),)): 5.0, ("a", (("k", "2"),)): 1.0, ("a", (("k", "3"),)): 8.0}
    assert "other" not in families


def test_the_shared_cap_still_holds_for_keys_under_their_quota() -> None:
    m = CustomMetrics(max_series=3, max_series_per_key=2)
    post_as(KEY_A, m, "a", "gauge", 1, k="1")
    post_as(KEY_A, m, "a", "gauge", 1, k="2")
    post_as(KEY_B, m, "b", "gauge", 1)
    with pytest.raises(SeriesLimitReached):
        m.admit("c", "gauge", {}, key_id=KEY_B)
    assert m.refused("series_limit", KEY_B) == 1
    assert m.series_count == 3


def test_a_series_not_updated_for_the_ttl_expires_and_frees_its_quota() -> None:
    clock = FakeClock()
    m = CustomMetrics(max_series=10, max_series_per_key=1, series_ttl_s=60, clock=clock)
    post_as(KEY_A, m, "old", "gauge", 1, k="1")
    clock.now_s += 59.9
    with pytest.raises(KeyQuotaReached):
        m.admit("new", "gauge", {}, key_id=KEY_A)
    assert "old" in scrape(m)
    clock.now_s += 0.1
    # Expired on admit, without a scrape in between: the slot is A's again.
    post_as(KEY_A, m, "new", "gauge", 2)
    assert (m.series_of(KEY_A), m.series_count) == (1, 1)
    families = scrape(m)
    assert "old" not in families
    assert families["new"][1] == {("new", ()): 2.0}
    assert families["chimera_custom_metrics_series"][1][("chimera_custom_metrics_series", ())] == 1
    # The expired name is free for another type.
    clock.now_s += 60
    post_as(KEY_B, m, "old", "counter", 3)
    assert scrape(m)["old"] == ("counter", {("old_total", ()): 3.0})


def test_expiry_on_collection_and_updates_keep_a_series_alive() -> None:
    clock = FakeClock()
    m = CustomMetrics(max_series=10, series_ttl_s=60, clock=clock)
    post_as(KEY_A, m, "kept", "counter", 1)
    post_as(KEY_A, m, "dropped", "gauge", 1)
    for _ in range(3):
        clock.now_s += 50
        post_as(KEY_B, m, "kept", "counter", 1)  # an update by any key counts
    families = scrape(m)
    assert families["kept"][1] == {("kept_total", ()): 4.0}
    assert "dropped" not in families
    assert m.series_count == 1
    clock.now_s += 60
    assert "kept" not in scrape(m)
    assert (m.series_count, m.series_of(KEY_A)) == (0, 0)


def test_a_reserved_series_does_not_expire_while_its_sample_is_in_flight() -> None:
    clock = FakeClock()
    m = CustomMetrics(max_series=10, series_ttl_s=60, clock=clock)
    post(m, "slow", "gauge", 1)
    in_flight = m.admit("slow", "gauge", {}, key_id=KEY_A)
    clock.now_s += 120
    post(m, "other", "gauge", 1)  # an admit runs expiry
    m.record(in_flight, 2)
    assert scrape(m)["slow"][1] == {("slow", ()): 2.0}


def test_refusals_are_exported_per_key_and_reason() -> None:
    m = CustomMetrics(max_series=3, max_series_per_key=2)
    post_as(KEY_A, m, "a", "gauge", 1, k="1")
    post_as(KEY_A, m, "a", "gauge", 1, k="2")
    for k in ("3", "4"):
        with pytest.raises(KeyQuotaReached):
            m.admit("a", "gauge", {"k": k}, key_id=KEY_A)
    with pytest.raises(MetricConflict):
        m.admit("a", "counter", {"k": "1"}, key_id=KEY_A)
    post_as(KEY_B, m, "b", "gauge", 1)
    with pytest.raises(SeriesLimitReached):
        m.admit("c", "gauge", {}, key_id=KEY_B)
    kind, samples = scrape(m)["chimera_custom_metrics_refused"]
    assert kind == "counter"
    assert samples == {
        ("chimera_custom_metrics_refused_total", (("key_id", KEY_A), ("reason", "conflict"))): 1,
        ("chimera_custom_metrics_refused_total", (("key_id", KEY_A), ("reason", "key_quota"))): 2,
        ("chimera_custom_metrics_refused_total", (("key_id", KEY_B), ("reason", "series_limit"))): 1,
    }
    assert (m.refused("key_quota"), m.refused("conflict", KEY_B)) == (2, 0)


def test_cancel_frees_a_reserved_series_and_its_owners_quota() -> None:
    m = CustomMetrics(max_series=10, max_series_per_key=1)
    reserved = m.admit("a", "gauge", {}, key_id=KEY_A)
    with pytest.raises(KeyQuotaReached):
        m.admit("b", "gauge", {}, key_id=KEY_A)  # reservations count toward the quota
    m.cancel(reserved)
    assert (m.series_count, m.series_of(KEY_A)) == (0, 0)
    post_as(KEY_A, m, "b", "gauge", 1)
    assert m.series_of(KEY_A) == 1


@pytest.mark.parametrize("bad", [{"max_series_per_key": 0}, {"series_ttl_s": 0}])
def test_quota_and_ttl_must_be_positive(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CustomMetrics(max_series=1, **bad)  # type: ignore[arg-type]
