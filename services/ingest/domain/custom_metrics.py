"""Custom metrics as POST /api/metrics feeds them: the series, their owners, quotas and expiry. Pure.

A gauge sample sets its series, a counter sample adds its value, a histogram
sample is observed into the default Prometheus buckets. One metric name keeps
one type and one set of label names for the process lifetime (Prometheus
cannot represent anything else), and the number of distinct series (name +
label values) is capped so one careless client cannot blow up the scrape.

The cap is shared, so it alone would let one API key take every slot and lock
all other clients out of new series. Hence each series is owned by the key
that created it, and each key may own at most `max_series_per_key` series; a
series nobody updates for `series_ttl_s` expires (leaves /metrics and frees
its owner's quota), so abandoned series do not hold slots until a restart.
Expiry is lazy, on `admit()` and on collection: an ordered index by last
update makes it cost the expired series only, not a walk of all of them.

Posting is two-phase, so a refused or failed POST leaves nothing behind:
`admit()` checks type, label names, the key's quota and the cap and reserves
the series (synchronously, so concurrent requests cannot overshoot either);
after Kafka acknowledged the sample the handler calls `record()`, or
`cancel()` if the write failed. A reserved series is exported only once it
has a value, and never expires while a sample for it is in flight.

State is in memory: it restarts empty with the process, like any exporter's.
Reading it for /metrics (`snapshot()`, rendered by
`services.ingest.adapters.custom_metrics`) may happen on another thread (a
sync /metrics handler), hence the lock.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from shared.metric_envelopes import MetricType

# prometheus_client's default buckets (seconds-oriented, but the de-facto default).
DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
# Refusal reasons: the shared cap, the caller's own quota, a type/label-name clash.
SERIES_LIMIT: Final = "series_limit"
KEY_QUOTA: Final = "key_quota"
CONFLICT: Final = "conflict"


class CustomMetricError(Exception):
    """A sample the exporter cannot take."""


class SeriesLimitReached(CustomMetricError):
    def __init__(self, name: str, labels: dict[str, str], max_series: int) -> None:
        self.name = name
        self.labels = labels
        self.max_series = max_series
        super().__init__(f"custom metric series limit reached ({max_series} distinct series); "
                         f"the new series {name}{labels} is refused")


class KeyQuotaReached(CustomMetricError):
    def __init__(self, name: str, labels: dict[str, str], key_id: str, max_series_per_key: int) -> None:
        self.name = name
        self.labels = labels
        self.key_id = key_id
        self.max_series_per_key = max_series_per_key
        super().__init__(f"this API key's custom metric series quota is reached ({max_series_per_key} series); "
                         f"the new series {name}{labels} is refused")


class MetricConflict(CustomMetricError):
    """The name is taken with another type or other label names."""

    def __init__(self, name: str, field: str, existing: str, requested: str) -> None:
        self.name = name
        self.field = field  # "type" or "labels"
        self.existing = existing
        self.requested = requested
        what = "type" if field == "type" else "label names"
        super().__init__(f"metric {name!r} already exists with {what} {existing}; got {requested}")


def family_name(name: str, kind: MetricType) -> str:
    """The exposition family: a counter `x_total` and a counter `x` are both exposed as `x_total`."""
    if kind == "counter" and name.endswith("_total"):
        return name[: -len("_total")]
    return name


def _exposed_names(family: str, kind: MetricType) -> tuple[str, ...]:
    """Sample names the family puts on /metrics; two families must not share one."""
    if kind == "counter":
        # The bare name too: OpenMetrics names the family `x` in its TYPE line.
        return (family, f"{family}_total", f"{family}_created")
    if kind == "histogram":
        return (family, f"{family}_bucket", f"{family}_sum", f"{family}_count", f"{family}_created")
    return (family,)


@dataclass
class _Series:
    label_values: tuple[str, ...]
    owner: str  # key_id of the API key that created it; its quota pays for the series
    updated_at_s: float  # clock time of the last record (or of the reservation that created it)
    pending: int = 0  # admissions not yet recorded or cancelled
    recorded: bool = False
    value: float = 0.0  # gauge value or counter total
    bucket_counts: list[int] = field(default_factory=list)  # histogram, per bucket (not cumulative)
    total: float = 0.0  # histogram sum


@dataclass
class _Family:
    name: str
    kind: MetricType
    label_names: tuple[str, ...]
    series: dict[tuple[str, ...], _Series] = field(default_factory=dict)


@dataclass(frozen=True)
class Admission:
    """A reserved series, to be recorded once the sample is durable, or cancelled."""

    family: str
    label_values: tuple[str, ...]
    kind: MetricType


@dataclass(frozen=True, slots=True)
class SeriesReading:
    label_values: tuple[str, ...]
    value: float  # gauge value or counter total
    bucket_counts: tuple[int, ...]  # histogram, per bucket of DEFAULT_BUCKETS then +Inf (not cumulative)
    total: float  # histogram sum


@dataclass(frozen=True, slots=True)
class FamilyReading:
    name: str
    kind: MetricType
    label_names: tuple[str, ...]
    series: tuple[SeriesReading, ...]  # those with a value: a reserved series is not shown yet


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything there is to export, as it was at one instant."""

    families: tuple[FamilyReading, ...]
    series_count: int  # reserved series included
    refused: dict[tuple[str, str], int]  # (key_id, reason) -> refusals


_SeriesKey = tuple[str, tuple[str, ...]]  # (family name, label values)


class CustomMetricsLedger:
    """The custom series, whose key owns each, and when each was last updated.

    `max_series` is shared by all keys; `max_series_per_key` bounds the series
    one key may own (None: no per-key quota); a series not updated for
    `series_ttl_s` expires (None: never). `clock` gives monotonic seconds.
    """

    def __init__(
        self,
        max_series: int,
        *,
        max_series_per_key: int | None = None,
        series_ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_series < 1:
            raise ValueError("max_series must be positive")
        if max_series_per_key is not None and max_series_per_key < 1:
            raise ValueError("max_series_per_key must be positive")
        if series_ttl_s is not None and series_ttl_s <= 0:
            raise ValueError("series_ttl_s must be positive")
        self.max_series = max_series
        self.max_series_per_key = max_series_per_key
        self.series_ttl_s = series_ttl_s
        self._clock = clock
        self._families: dict[str, _Family] = {}
        self._owner_of_exposed: dict[str, str] = {}
        # Every series (reserved ones too), least recently updated first, so
        # expiry stops at the first one still fresh.
        self._by_age: OrderedDict[_SeriesKey, _Series] = OrderedDict()
        self._owned: dict[str, int] = {}  # key_id -> series it owns; keys owning none are absent
        self._refused: dict[tuple[str, str], int] = {}  # (key_id, reason) -> refusals
        self._lock = threading.Lock()

    # --- posting ----------------------------------------------------------

    def admit(self, name: str, kind: MetricType, labels: dict[str, str], *, key_id: str) -> Admission:
        """Check and reserve the series for the API key `key_id`, which owns it if it is new.

        Raises MetricConflict, KeyQuotaReached or SeriesLimitReached, each counted for `key_id`.
        """
        fam_name = family_name(name, kind)
        label_names = tuple(sorted(labels))
        values = tuple(labels[n] for n in label_names)
        with self._lock:
            now = self._clock()
            self._expire(now)
            family = self._families.get(fam_name)
            if family is None:
                clash = next((self._owner_of_exposed[e] for e in _exposed_names(fam_name, kind)
                              if e in self._owner_of_exposed), None)
                if clash is not None:
                    self._count_refusal(key_id, CONFLICT)
                    other = self._families[clash]
                    raise MetricConflict(name, "type", f"{other.kind} (as {other.name!r})", kind)
            else:
                if family.kind != kind:
                    self._count_refusal(key_id, CONFLICT)
                    raise MetricConflict(name, "type", family.kind, kind)
                if family.label_names != label_names:
                    self._count_refusal(key_id, CONFLICT)
                    raise MetricConflict(name, "labels", repr(list(family.label_names)), repr(list(label_names)))
            series = family.series.get(values) if family is not None else None
            if series is None:
                self._check_room(name, labels, key_id)
                if family is None:
                    family = _Family(fam_name, kind, label_names)
                    self._families[fam_name] = family
                    for exposed in _exposed_names(fam_name, kind):
                        self._owner_of_exposed[exposed] = fam_name
                series = _Series(values, key_id, now,
                                 bucket_counts=[0] * (len(DEFAULT_BUCKETS) + 1) if kind == "histogram" else [])
                family.series[values] = series
                self._by_age[(fam_name, values)] = series
                self._owned[key_id] = self._owned.get(key_id, 0) + 1
            series.pending += 1
        return Admission(fam_name, values, kind)

    def record(self, admission: Admission, value: float) -> None:
        """Apply an admitted sample: gauge set, counter add, histogram observe."""
        with self._lock:
            series = self._families[admission.family].series[admission.label_values]
            series.pending -= 1
            series.recorded = True
            series.updated_at_s = self._clock()
            self._by_age.move_to_end((admission.family, admission.label_values))
            if admission.kind == "gauge":
                series.value = value
            elif admission.kind == "counter":
                series.value += value
            else:
                series.bucket_counts[bisect.bisect_left(DEFAULT_BUCKETS, value)] += 1
                series.total += value

    def cancel(self, admission: Admission) -> None:
        """Undo an admission whose sample was not written; frees a series nobody recorded."""
        with self._lock:
            family = self._families[admission.family]
            series = family.series[admission.label_values]
            series.pending -= 1
            if series.pending == 0 and not series.recorded:
                self._drop(family, series)

    # --- bookkeeping (the caller holds the lock) ----------------------------

    def _check_room(self, name: str, labels: dict[str, str], key_id: str) -> None:
        # The key's own quota first: when both are reached, that is the one its
        # owner can act on, and series_limit then counts only keys the shared
        # cap shut out (a sign the cap is too small for the keys in use).
        if self.max_series_per_key is not None and self._owned.get(key_id, 0) >= self.max_series_per_key:
            self._count_refusal(key_id, KEY_QUOTA)
            raise KeyQuotaReached(name, labels, key_id, self.max_series_per_key)
        if len(self._by_age) >= self.max_series:
            self._count_refusal(key_id, SERIES_LIMIT)
            raise SeriesLimitReached(name, labels, self.max_series)

    def _count_refusal(self, key_id: str, reason: str) -> None:
        self._refused[(key_id, reason)] = self._refused.get((key_id, reason), 0) + 1

    def _expire(self, now: float) -> None:
        """Drop the series not updated for series_ttl_s, oldest first."""
        if self.series_ttl_s is None:
            return
        while self._by_age:
            key, series = next(iter(self._by_age.items()))
            if now - series.updated_at_s < self.series_ttl_s:
                return
            if series.pending:
                # A sample for it is in flight, so it is in use, not abandoned (and
                # record() must find it). Treated as updated now, which also moves
                # the walk on: it ends at the latest on this series (ttl > 0).
                series.updated_at_s = now
                self._by_age.move_to_end(key)
                continue
            self._drop(self._families[key[0]], series)

    def _drop(self, family: _Family, series: _Series) -> None:
        """Forget a series and free its owner's slot; the family's names go with its last series."""
        del family.series[series.label_values]
        del self._by_age[(family.name, series.label_values)]
        left = self._owned[series.owner] - 1
        if left:
            self._owned[series.owner] = left
        else:
            del self._owned[series.owner]
        if not family.series:
            del self._families[family.name]
            for exposed in _exposed_names(family.name, family.kind):
                self._owner_of_exposed.pop(exposed, None)

    # --- reading ----------------------------------------------------------

    @property
    def series_count(self) -> int:
        """Series held, reserved ones included (expired ones go at the next admit or collection)."""
        return len(self._by_age)

    def series_of(self, key_id: str) -> int:
        """Series the key owns, reserved ones included."""
        with self._lock:
            return self._owned.get(key_id, 0)

    def refused(self, reason: str, key_id: str | None = None) -> int:
        """Refusals for `reason` of one key, or of all keys when `key_id` is None."""
        with self._lock:
            return sum(count for (key, why), count in self._refused.items()
                       if why == reason and (key_id is None or key == key_id))

    def snapshot(self) -> Snapshot:
        """The series with a value, the series count and the refusals; expired series go first."""
        with self._lock:
            self._expire(self._clock())
            families = tuple(
                FamilyReading(f.name, f.kind, f.label_names,
                              tuple(SeriesReading(s.label_values, s.value, tuple(s.bucket_counts), s.total)
                                    for s in f.series.values() if s.recorded))
                for f in self._families.values())
            return Snapshot(families, len(self._by_age), dict(self._refused))
