"""Send generated records to Kafka at a given rate, with a progress bar and a manifest of what was sent."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Producer
from tqdm import tqdm

from lakehouse.domains import Domain
from lakehouse.errors import ServiceError
from lakehouse.events.generator import MALFORMED_KINDS, VALID_KINDS, Record
from lakehouse.settings import Settings


class Delivery:
    """Collects delivery reports: per-partition offsets of what the broker acknowledged."""

    def __init__(self) -> None:
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.delivered = 0
        self.errors: list[str] = []

    def __call__(self, error, message) -> None:
        if error is not None:
            self.errors.append(str(error))
            return
        self.delivered += 1
        partition, offset = message.partition(), message.offset()
        self.first[partition] = min(self.first.get(partition, offset), offset)
        self.last[partition] = max(self.last.get(partition, offset), offset)


def send(
    settings: Settings,
    domain: Domain,
    records,
    total: int,
    rate: float = 0,
    manifest_path: Path | None = None,
    progress: bool = True,
) -> dict:
    """Produce `records` to the domain's topic; `rate` events/s (0 = as fast as possible).

    Raises ServiceError if any record was not acknowledged: nothing is silently lost."""
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "message.max.bytes": settings.kafka.max_message_bytes + 65536,  # the broker, not the client, refuses
        }
    )
    delivery = Delivery()
    kinds: Counter[str] = Counter()
    valid_ids: list[tuple[str, str]] = []
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    bar = tqdm(total=total, unit="ev", desc=f"{domain.name} -> {domain.topic.name}", disable=not progress)
    for i, record in enumerate(records):
        if rate:
            ahead = (i / rate) - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        _produce(producer, domain.topic.name, record, delivery)
        kinds[record.kind] += 1
        if record.event_id is not None:
            valid_ids.append((record.event_id, record.kind))
        if i % 1000 == 0:
            producer.poll(0)
            bar.update(i + 1 - bar.n)
    remaining = producer.flush(60)
    bar.update(total - bar.n)
    bar.close()
    if remaining or delivery.errors:
        raise ServiceError(
            f"{remaining} records not delivered and {len(delivery.errors)} failed "
            f"(first error: {delivery.errors[:1]}); the manifest was not written"
        )
    manifest = {
        "domain": domain.name,
        "topic": domain.topic.name,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.monotonic() - t0, 3),
        "sent": sum(kinds.values()),
        "delivered": delivery.delivered,
        "kinds": dict(sorted(kinds.items())),
        "expected_unique_valid": sum(kinds[k] for k in VALID_KINDS),
        "duplicates": kinds["duplicate"],
        "malformed": sum(kinds[k] for k in MALFORMED_KINDS),
        "first_offsets": {str(p): o for p, o in sorted(delivery.first.items())},
        "last_offsets": {str(p): o for p, o in sorted(delivery.last.items())},
    }
    if manifest_path is not None:
        write_manifest(manifest_path, manifest, valid_ids)
    return manifest


def _produce(producer: Producer, topic: str, record: Record, delivery: Delivery) -> None:
    while True:
        try:
            producer.produce(topic, key=record.key, value=record.value, on_delivery=delivery)
            return
        except BufferError:  # local queue full: let deliveries drain, then retry
            producer.poll(0.1)


def write_manifest(path: Path, manifest: dict, valid_ids: list[tuple[str, str]]) -> None:
    """The manifest as JSON, and beside it every unique valid event_id with its kind (tab-separated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids_path = path.with_name(path.stem + ".event_ids.tsv.gz")
    with gzip.open(ids_path, "wt") as handle:
        handle.write("\n".join(f"{event_id}\t{kind}" for event_id, kind in valid_ids))
    manifest = {**manifest, "event_ids_file": ids_path.name}
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def read_event_kinds(manifest_path: Path) -> dict[str, str]:
    """{event_id: kind} of every unique valid event the manifest's run sent."""
    manifest = json.loads(manifest_path.read_text())
    with gzip.open(manifest_path.with_name(manifest["event_ids_file"]), "rt") as handle:
        text = handle.read()
    return dict(line.split("\t") for line in text.split("\n")) if text else {}


def read_event_ids(manifest_path: Path) -> list[str]:
    return list(read_event_kinds(manifest_path))
