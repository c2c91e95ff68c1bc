"""Event-time watermarks per Kafka partition, as Flink's bounded-out-of-orderness strategy does it.

Each partition's watermark is the highest event time seen on it minus the allowed lateness;
the stream's watermark is the minimum over all partitions, and there is none until every
partition has been seen (as with Flink's per-split watermarks, a partition not yet read holds
it back). An event whose time is below the stream's watermark is late: it is kept and
flagged, never dropped.
"""

from __future__ import annotations

from datetime import timedelta


class PartitionWatermarks:
    def __init__(self, allowed_lateness: timedelta, partitions: int, max_event_ms: dict[int, int] | None = None):
        self.lateness_ms = int(allowed_lateness.total_seconds() * 1000)
        self.partitions = partitions
        self.max_event_ms: dict[int, int] = dict(max_event_ms or {})

    @property
    def watermark_ms(self) -> int | None:
        if len(self.max_event_ms) < self.partitions:
            return None
        return min(self.max_event_ms.values()) - self.lateness_ms

    def observe(self, partition: int, event_ms: int) -> bool:
        """Record an event; True if it is late against the watermark before it arrived."""
        watermark = self.watermark_ms
        late = watermark is not None and event_ms < watermark
        if event_ms > self.max_event_ms.get(partition, event_ms - 1):
            self.max_event_ms[partition] = event_ms
        return late
