"""Where a topic ends and where a consumer group is, with confluent-kafka: what the replay and
reconciliation bound their reads of a topic by (Spark's Kafka source does the reading).

An end per partition is taken before a read starts: the offsets Kafka reports for a time
(`offsets_for_times`: the records stamped before it) or the high watermark (what is in the log
now). So a live producer can never keep a read going.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from lakehouse.errors import ServiceError, TopicMissing
from lakehouse.settings import Settings


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
