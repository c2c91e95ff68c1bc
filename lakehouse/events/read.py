"""Read a bounded range of a topic with confluent-kafka: explicit partitions and offsets, no group.

The embedded broker's high watermark can lag the true end of a partition (see PLATFORM notes),
so "the end" is never taken from it: a read stops at an explicit last offset per partition, or
when no record has arrived for `idle_s` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from lakehouse.errors import ServiceError
from lakehouse.settings import Settings
from lakehouse.streaming.rows import KafkaMeta


def read_range(
    settings: Settings,
    topic: str,
    first: dict[int, int],
    last: dict[int, int] | None = None,
    stop_at_ms: int | None = None,
    idle_s: float = 5.0,
    batch: int = 5000,
) -> Iterator[tuple[KafkaMeta, bytes | None]]:
    """Records of `topic` from offset `first[p]` (the beginning if absent) of each partition up to
    `last[p]` inclusive (if given; a partition whose last is below its first is skipped), or up
    to the first record stamped at or after `stop_at_ms`, or until the topic has been idle for
    `idle_s` seconds (so a live producer cannot keep the read going forever). Every partition
    the broker has for the topic is read, whatever the configuration says."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"lakehouse-read-{topic}",  # required by the client; offsets are never committed
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        yield from _read(consumer, topic, first, last, stop_at_ms, idle_s, batch)
    finally:
        consumer.close()


def _read(consumer, topic, first, last, stop_at_ms, idle_s, batch):
    metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise ServiceError(f"topic {topic} does not exist on the broker: create it with `lakehouse topics create`")
    assignments = []
    for partition in sorted(metadata.partitions):
        start = first.get(partition, OFFSET_BEGINNING)
        if last is not None and (partition not in last or (start != OFFSET_BEGINNING and last[partition] < start)):
            continue
        assignments.append(TopicPartition(topic, partition, start))
    if not assignments:
        return
    open_partitions = {a.partition for a in assignments}
    consumer.assign(assignments)
    idle_since = time.monotonic()
    while open_partitions and time.monotonic() - idle_since < idle_s:
        messages = consumer.consume(batch, timeout=0.5)
        if messages:
            idle_since = time.monotonic()
        for message in messages:
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise ServiceError(f"reading {topic}: {message.error()}")
            partition, offset = message.partition(), message.offset()
            if partition not in open_partitions:
                continue
            kind, timestamp_ms = message.timestamp()
            past_stop = stop_at_ms is not None and kind and timestamp_ms >= stop_at_ms
            if past_stop or (last is not None and offset > last[partition]):
                open_partitions.discard(partition)
                consumer.incremental_unassign([TopicPartition(topic, partition)])
                continue
            yield KafkaMeta(topic, partition, offset, timestamp_ms if kind else None), message.value()
            if last is not None and offset >= last[partition]:
                open_partitions.discard(partition)
                consumer.incremental_unassign([TopicPartition(topic, partition)])
