"""The Kafka -> bronze batch job: recover what the stream did not commit, or replay a range.

Both modes MERGE into bronze ON event_id (PyIceberg `upsert`, inserting only event ids bronze
does not have), so a replay never duplicates an event, and route malformed records to the
dead-letter table, merged ON (topic, partition, offset).

- Recovery (default), for when the stream was down: reads from bronze's position (the stream
  job's consumer group offsets, or the offsets earlier replays recorded in bronze's snapshots)
  up to the last record stamped before `end` (Kafka's offsets for that time). Records the stream
  never committed are recovered even if stamped before `start`: skipping them would lose them.
  A stream job resumed from its own checkpoint afterwards reads them again; silver keeps one.
- Backfill (--backfill), to repair a bronze range: reads from the earliest offsets up to those
  committed in bronze and keeps events whose event time is in [start, end) (malformed records:
  whose Kafka timestamp is). Offsets do not move: what is beyond them belongs to the stream.

It reads with confluent-kafka into Arrow and writes with PyIceberg (moving it onto Spark's
Kafka source, now in locks/jars.toml, is the next step of the streaming rework).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from lakehouse.domains import Domain
from lakehouse.engines.iceberg import load_catalog
from lakehouse.errors import LakehouseError
from lakehouse.events.contracts import Contract, check_record
from lakehouse.events.read import end_offsets, group_position, read_range
from lakehouse.medallion.runs import AUDIT, RunResult, audited_run, fault_point
from lakehouse.settings import Settings
from lakehouse.streaming.checkpoints import consumer_group
from lakehouse.streaming.iceberg_commit import committed_offsets, next_commit
from lakehouse.streaming.rows import KafkaMeta, bronze_row, dead_letter_row
from lakehouse.streaming.watermarks import PartitionWatermarks

JOB = "kafka_to_bronze"
LETTER_KEY = ["kafka_topic", "kafka_partition", "kafka_offset"]
log = logging.getLogger("lakehouse.jobs")


@dataclass
class Batch:
    """What one chunk of records becomes."""

    rows: list[dict] = field(default_factory=list)  # bronze rows, first copy of each event id
    letters: list[dict] = field(default_factory=list)
    read: int = 0
    duplicates: int = 0
    outside_window: int = 0
    offsets: dict[int, int] = field(default_factory=dict)  # highest offset read per partition


def to_rows(
    domain: Domain,
    contract: Contract,
    records: Iterable[tuple[KafkaMeta, bytes | None]],
    seen: set[str],
    watermarks: PartitionWatermarks,
    window: tuple[datetime, datetime] | None,
    now: datetime,
) -> Batch:
    """Bronze rows and dead letters from Kafka records, as the stream makes them: the first copy
    of an event id wins (`seen` carries ids across chunks), lateness against per-partition
    watermarks. With a `window`, only events whose event time (malformed records: Kafka
    timestamp) is in it are kept."""
    batch = Batch()
    for meta, value in records:
        batch.read += 1
        batch.offsets[meta.partition] = max(batch.offsets.get(meta.partition, -1), meta.offset)
        verdict = check_record(domain, contract, value)
        if not verdict.valid:
            stamped = meta.timestamp
            if window and not (stamped is not None and window[0] <= stamped < window[1]):
                batch.outside_window += 1
                continue
            batch.letters.append(dead_letter_row(domain, verdict, value, meta, now))
            continue
        row = bronze_row(domain, verdict.event, value, meta, False, now)
        if window and not window[0] <= row["event_time"] < window[1]:
            batch.outside_window += 1
            continue
        if row["event_id"] in seen:
            batch.duplicates += 1
            continue
        seen.add(row["event_id"])
        row["is_late"] = watermarks.observe(meta.partition, int(row["event_time"].timestamp() * 1000))
        batch.rows.append(row)
    return batch


def _merge(table: Table, rows: list[dict], join_cols: list[str], topic: str, read: dict[int, int] | None) -> int:
    """Insert the rows whose keys `table` lacks; returns how many. With `read` (recovery), rows at
    or below the offsets already committed are dropped and the snapshot records the offsets
    covered, all in one commit; a concurrent commit (the stream) makes it reload and retry."""
    for attempt in range(5):
        fresh, properties = rows, {}
        if read is not None:
            fresh, properties = next_commit(table, rows, {topic: read})
            if properties is None:
                return 0
        elif not fresh:
            return 0
        data = pa.Table.from_pylist(fresh, schema=table.schema().as_arrow())
        try:
            if not fresh:  # only the offsets move (every record was a duplicate)
                table.append(data, snapshot_properties=properties)
                return 0
            outcome = table.upsert(
                data, join_cols=join_cols, when_matched_update_all=False, snapshot_properties=properties
            )
            return outcome.rows_inserted
        except CommitFailedException:
            time.sleep(0.2 * (attempt + 1))
            table = table.refresh()
    raise CommitFailedException(f"could not commit to {table.name()} after 5 attempts")


def _snapshot_id(table: Table) -> int | None:
    snapshot = table.refresh().current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def run(
    settings: Settings,
    domain: Domain,
    start: datetime,
    end: datetime,
    backfill: bool = False,
    dry_run: bool = False,
    run_id: str | None = None,
    chunk: int = 100_000,
) -> RunResult:
    catalog = load_catalog(settings)
    bronze = catalog.load_table(domain.tables.bronze)
    letters = catalog.load_table(domain.tables.dead_letter)
    audit = catalog.load_table(AUDIT)
    with audited_run(
        JOB,
        domain,
        start,
        end,
        backfill,
        dry_run,
        run_id,
        snapshots=lambda: {
            domain.tables.bronze: _snapshot_id(bronze),
            domain.tables.dead_letter: _snapshot_id(letters),
        },
        record=lambda row: audit.append(pa.Table.from_pylist([row], schema=audit.schema().as_arrow())),
    ) as result:
        _replay(settings, domain, bronze, letters, start, end, backfill, dry_run, chunk, result)
    return result


def _replay(settings, domain, bronze, letters, start, end, backfill, dry_run, chunk, result):
    topic = domain.topic.name
    # Bronze's position: the stream job's consumer group (committed with each checkpoint) and
    # what replays recorded in bronze's snapshots, whichever is further.
    committed = committed_offsets(bronze).get(topic, {})
    try:
        stream = group_position(settings, consumer_group(domain.name), topic)
    except LakehouseError:
        stream = {}
    for partition, offset in stream.items():
        committed[partition] = max(committed.get(partition, -1), offset)
    if backfill:
        if not committed:
            raise LakehouseError(
                f"bronze {domain.tables.bronze} has no committed offsets for {topic}: there is nothing to "
                "backfill from; run without --backfill to recover the topic from its earliest offsets"
            )
        first, last, window = {}, committed, (start, end)
    else:
        # the records that reached the broker before `end`, from bronze's position on
        first, window = {p: o + 1 for p, o in committed.items()}, None
        last = end_offsets(settings, topic, int(end.timestamp() * 1000))
    result.details.update(mode="backfill" if backfill else "recovery", from_offsets=first or "earliest")
    records = read_range(settings, topic, first, last)
    contract, seen = domain.validator(), set()
    watermarks = PartitionWatermarks(domain.allowed_lateness, domain.topic.partitions)
    read_to: dict[int, int] = {}
    duplicates = outside = 0
    while records_chunk := list(itertools.islice(records, chunk)):
        batch = to_rows(domain, contract, records_chunk, seen, watermarks, window, datetime.now(UTC))
        result.rows_read += batch.read
        result.rows_written += len(batch.rows)
        result.rows_quarantined += len(batch.letters)
        duplicates, outside = duplicates + batch.duplicates, outside + batch.outside_window
        for partition, offset in batch.offsets.items():
            read_to[partition] = max(read_to.get(partition, -1), offset)
        if not dry_run:
            # Dead letters first: if the bronze commit then fails, a re-run finds them merged.
            progress = None if backfill else batch.offsets
            _merge(letters, batch.letters, LETTER_KEY, topic, progress if batch.letters else None)
            fault_point("replay-before-bronze")
            result.rows_merged += _merge(bronze, batch.rows, ["event_id"], topic, progress)
        log.info(
            "%s: read %d records up to offsets %s, %d bronze rows merged so far",
            JOB,
            result.rows_read,
            read_to,
            result.rows_merged,
        )
    result.details.update(to_offsets=read_to, duplicates=duplicates, outside_window=outside)
