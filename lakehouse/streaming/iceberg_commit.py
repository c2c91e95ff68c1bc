"""Idempotent appends to Iceberg: each commit records the Kafka offsets it covers.

Every append stores, in its snapshot summary, the highest committed offset per partition of
each source topic (cumulative). Before appending, rows at or below the committed offsets are
dropped. So a replay after a crash (rows re-read from an older checkpoint, or the same rows
flushed twice) never writes an event twice, although the broker has no transactions.
"""

from __future__ import annotations

import json
import time

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

OFFSETS_PROPERTY = "lakehouse.kafka-offsets"


def committed_offsets(table: Table) -> dict[str, dict[int, int]]:
    """{topic: {partition: highest committed offset}} from the newest snapshot naming each topic."""
    found: dict[str, dict[int, int]] = {}
    snapshot = table.current_snapshot()
    while snapshot is not None:
        raw = (snapshot.summary.additional_properties if snapshot.summary else {}).get(OFFSETS_PROPERTY)
        if raw:
            for topic, partitions in json.loads(raw).items():
                found.setdefault(topic, {int(p): int(o) for p, o in partitions.items()})
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    return found


def uncommitted(rows: list[dict], committed: dict[str, dict[int, int]]) -> list[dict]:
    return [
        row
        for row in rows
        if row["kafka_offset"] > committed.get(row["kafka_topic"], {}).get(row["kafka_partition"], -1)
    ]


def covered_offsets(rows: list[dict], committed: dict[str, dict[int, int]]) -> dict[str, dict[int, int]]:
    """The cumulative offsets after committing `rows`, for the topics the rows come from."""
    result = {topic: dict(parts) for topic, parts in committed.items()}
    for row in rows:
        parts = result.setdefault(row["kafka_topic"], {})
        parts[row["kafka_partition"]] = max(parts.get(row["kafka_partition"], -1), row["kafka_offset"])
    return result


def next_commit(
    table: Table, rows: list[dict], progress: dict[str, dict[int, int]] | None = None
) -> tuple[list[dict], dict[str, str] | None]:
    """What an offset-tracked commit of `rows` to `table` writes: the rows not yet committed, and
    the snapshot summary recording the offsets after it, for the rows' topics and `progress`
    (offsets of records that made no row here, such as duplicates, so the committed position
    moves past them too). The summary is None when the commit would change nothing."""
    committed = committed_offsets(table)
    fresh = uncommitted(rows, committed)
    offsets = covered_offsets(fresh, committed)
    for topic, parts in (progress or {}).items():
        for partition, offset in parts.items():
            current = offsets.setdefault(topic, {})
            current[partition] = max(current.get(partition, -1), offset)
    if not fresh and offsets == committed:
        return fresh, None
    topics = {row["kafka_topic"] for row in rows} | set(progress or {})
    return fresh, {
        OFFSETS_PROPERTY: json.dumps(
            {t: {str(p): o for p, o in sorted(offsets.get(t, {}).items())} for t in sorted(topics)}
        )
    }


def append_exactly_once(
    table: Table, rows: list[dict], progress: dict[str, dict[int, int]] | None = None, retries: int = 5
) -> int:
    """Append the rows not yet committed, recording the offsets (see next_commit); returns how
    many were appended."""
    for attempt in range(retries):
        fresh, summary = next_commit(table, rows, progress)
        if summary is None:
            return 0
        data = pa.Table.from_pylist(fresh, schema=table.schema().as_arrow())
        try:
            table.append(data, snapshot_properties=summary)
            return len(fresh)
        except CommitFailedException:
            # another writer committed first: reload, filter again, retry
            time.sleep(0.2 * (attempt + 1))
            table = table.refresh()
    raise CommitFailedException(f"could not commit to {table.name()} after {retries} attempts")
