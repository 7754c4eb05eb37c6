"""The live models as the outputs see them, kept from the batches they are handed.

Models are referenced, not copied: the outputs read the live `PoolAggregate`
objects between batches, from the same event loop (no locking needed). A
partition listed in a batch's `revoked` is dropped here with its model.
"""

from __future__ import annotations

from shared.kafka.topics import Topic

from ..consume.results import BatchResult
from ..domain.export_figures import catching_up, common_as_of_ms, liveness_time_ms
from ..domain.model import PoolAggregate

__all__ = ["ModelSet"]


class ModelSet:
    """The live models by partition, the share partitions' lag (and when it was measured),
    and a monotone as-of clock."""

    __slots__ = ("_as_of_ms", "_behind", "_lag_at_ms", "models")

    def __init__(self) -> None:
        self.models: dict[int, PoolAggregate] = {}
        self._behind: dict[int, int] = {}
        self._lag_at_ms: int | None = None
        self._as_of_ms = 0

    def update(self, batch: BatchResult) -> None:
        for partition, po in batch.partitions.items():
            self.models[partition] = po.model
        for partition in batch.revoked:
            self.models.pop(partition, None)
            self._behind.pop(partition, None)
        if batch.consumer_lag is not None:
            self._lag_at_ms = batch.consumer_lag_at_ms
        for (topic, partition), behind in (batch.consumer_lag or {}).items():
            if topic == Topic.SHARES:
                self._behind[partition] = behind

    def items(self) -> list[tuple[int, PoolAggregate]]:
        return sorted(self.models.items(), key=lambda kv: kv[0])

    def live_at_ms(self, partition: int, now_ms: int) -> int:
        model = self.models.get(partition)
        if model is None:
            return now_ms
        # The model's watermark and arrival move together, in the fold; the lag is the one
        # measured when the last batch (or an idle loop's report) was handed over.
        return liveness_time_ms(now_ms, model.watermark_ms, self._behind.get(partition), model.share_arrival_ms,
                                self._lag_at_ms)

    def catching_up(self, partition: int, now_ms: int) -> bool:
        model = self.models.get(partition)
        if model is None:
            return False
        return catching_up(now_ms, model.watermark_ms, self._behind.get(partition), model.share_arrival_ms)

    def as_of_ms(self, now_ms: int) -> int:
        """Never earlier than a previous call: window figures do not go back in time."""
        self._as_of_ms = common_as_of_ms(now_ms, (m.watermark_ms for m in self.models.values()), self._as_of_ms)
        return self._as_of_ms
