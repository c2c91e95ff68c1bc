"""Bronze and dead-letter rows from Kafka records (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lakehouse.domains import Domain
from lakehouse.events.contracts import Verdict, parse_event_time


@dataclass(frozen=True)
class KafkaMeta:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None

    @property
    def timestamp(self) -> datetime | None:
        return None if self.timestamp_ms is None else datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


def decode_payload(value: bytes | None) -> str | None:
    """Raw payloads are kept as text; bytes that are not UTF-8 are replaced, never dropped."""
    return None if value is None else value.decode("utf-8", errors="replace")


def bronze_row(
    domain: Domain, event: dict, value: bytes, meta: KafkaMeta, is_late: bool, ingested_at: datetime
) -> dict:
    return {
        "event_id": str(event[domain.dedup_key]),
        "event_type": domain.event_type,
        "event_time": parse_event_time(event[domain.event_time_field]).astimezone(UTC),
        "payload": decode_payload(value),
        "kafka_topic": meta.topic,
        "kafka_partition": meta.partition,
        "kafka_offset": meta.offset,
        "kafka_timestamp": meta.timestamp,
        "is_late": is_late,
        "ingested_at": ingested_at,
    }


def dead_letter_row(
    domain: Domain, verdict: Verdict, value: bytes | None, meta: KafkaMeta, failed_at: datetime
) -> dict:
    return {
        "domain": domain.name,
        "reason": verdict.reason,
        "detail": verdict.detail,
        "payload": decode_payload(value),
        "kafka_topic": meta.topic,
        "kafka_partition": meta.partition,
        "kafka_offset": meta.offset,
        "kafka_timestamp": meta.timestamp,
        "failed_at": failed_at,
    }
