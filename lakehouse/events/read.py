"""Read a bounded range of a topic with confluent-kafka: explicit partitions and offsets, no group.

A read always has an end per partition, taken before it starts: either given, or the offsets
Kafka reports for a time (`offsets_for_times`: the records stamped before it) or the high
watermark (what is in the log now). So a live producer can never keep a read going.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from lakehouse.errors import ServiceError, TopicMissing
from lakehouse.settings import Settings


@dataclass(frozen=True)
class KafkaMeta:
    """Where a record is in Kafka, and its record timestamp."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None

    @property
    def timestamp(self) -> datetime | None:
        return None if self.timestamp_ms is None else datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


def consumer(settings: Settings, topic: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"lakehouse-read-{topic}",  # required by the client; offsets are never committed
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "isolation.level": "read_committed",  # records of aborted transactions are never read
        }
    )


def partitions(client: Consumer, topic: str) -> list[int]:
    metadata = client.list_topics(topic, timeout=30).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise TopicMissing(f"topic {topic} does not exist on the broker: create it with `lakehouse topics create`")
    return sorted(metadata.partitions)


def end_offsets(settings: Settings, topic: str, before_ms: int | None = None) -> dict[int, int]:
    """The last offset per partition of the records stamped before `before_ms` (all records now in
    the log without it); -1 for a partition with none."""
    client = consumer(settings, topic)
    try:
        result = {}
        parts = partitions(client, topic)
        by_time = {}
        if before_ms is not None:
            query = [TopicPartition(topic, p, before_ms) for p in parts]
            by_time = {tp.partition: tp.offset for tp in client.offsets_for_times(query, timeout=30)}
        for partition in parts:
            _low, high = client.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            first_at_or_after = by_time.get(partition, -1)
            # offsets_for_times gives the first record stamped at or after the time, -1 if none is
            end = first_at_or_after if first_at_or_after >= 0 else high
            result[partition] = end - 1
        return result
    finally:
        client.close()


def read_range(
    settings: Settings, topic: str, first: dict[int, int], last: dict[int, int], batch: int = 5000
) -> Iterator[tuple[KafkaMeta, bytes | None]]:
    """Records of `topic` from offset `first[p]` (the beginning if absent) up to `last[p]`
    inclusive, for each partition in `last` (one whose last is below its first is skipped)."""
    client = consumer(settings, topic)
    try:
        yield from _read(client, topic, first, last, batch)
    finally:
        client.close()


def _read(client, topic, first, last, batch):
    assignments = []
    for partition in partitions(client, topic):
        start = first.get(partition, OFFSET_BEGINNING)
        if partition not in last or last[partition] < 0 or (start != OFFSET_BEGINNING and last[partition] < start):
            continue
        assignments.append(TopicPartition(topic, partition, start))
    if not assignments:
        return
    open_partitions = {a.partition for a in assignments}
    client.assign(assignments)
    while open_partitions:
        for message in client.consume(batch, timeout=1.0):
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise ServiceError(f"reading {topic}: {message.error()}")
            partition, offset = message.partition(), message.offset()
            if partition in open_partitions and offset <= last[partition]:
                kind, timestamp_ms = message.timestamp()
                yield KafkaMeta(topic, partition, offset, timestamp_ms if kind else None), message.value()
        # Done with a partition once its position (the next offset to fetch) is past its last
        # offset: the last offsets may be transaction markers or aborted records, never delivered.
        done = [tp for tp in client.position([TopicPartition(topic, p) for p in open_partitions])
                if tp.offset > last[tp.partition]]  # fmt: skip
        if done:
            client.incremental_unassign(done)
            open_partitions -= {tp.partition for tp in done}


COORDINATOR_NOT_READY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._TIMED_OUT,
}


def group_position(settings: Settings, group: str, topic: str, timeout_s: float = 60) -> dict[int, int]:
    """The last offset per partition a consumer group has committed as processed (Kafka stores
    the next offset to read; this is one less), for the partitions it has committed at all.
    A stream job's group commits on every completed checkpoint, with the Iceberg commit.
    Retries while the broker's group coordinator is still loading (a fresh or restarted broker)."""
    client = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group})
    deadline = time.monotonic() + timeout_s
    try:
        wanted = [TopicPartition(topic, p) for p in partitions(client, topic)]
        while True:
            try:
                committed = client.committed(wanted, timeout=30)
                break
            except KafkaException as exc:
                error = exc.args[0]
                loading = error.retriable() or error.code() in COORDINATOR_NOT_READY
                if not loading or time.monotonic() > deadline:
                    raise ServiceError(f"reading the committed offsets of group {group}: {error.str()}") from exc
                time.sleep(1)
    finally:
        client.close()
    return {tp.partition: tp.offset - 1 for tp in committed if tp.offset >= 0}
