"""Table maintenance on the real catalog and S3: compaction, snapshot expiry, orphan files.

Each test works on a table of its own, made from bronze.sales_events' definition (same schema,
hourly partitions, sort order and policy), so the shared tables other tests read keep their
files and snapshots.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lakehouse.catalog.definitions import load_definitions, load_namespaces
from lakehouse.catalog.sync import init_catalog
from lakehouse.medallion import maintenance
from lakehouse.services import s3

HOUR = datetime(2024, 10, 1, 10, tzinfo=UTC)  # the closed hour; the next one is "open"


@pytest.fixture
def scratch(stack, iceberg_catalog):
    """A fresh copy of bronze.sales_events' definition under a name of the test's own."""
    [bronze] = [d for d in load_definitions(stack.definitions_dir) if d.identifier == "bronze.sales_events"]
    definition = replace(bronze, name=f"maint_{uuid.uuid4().hex[:8]}")
    init_catalog(iceberg_catalog, load_namespaces(stack.definitions_dir), [definition])
    yield definition
    iceberg_catalog.purge_table(definition.identifier)


def rows(count: int, ingested_at: datetime, start: int) -> list[dict]:
    return [
        {
            "event_id": f"e{start + i:07d}",
            "event_type": "order_placed",
            "event_time": ingested_at - timedelta(seconds=30),
            "payload": "{}",
            "kafka_topic": "sales.events",
            "kafka_partition": i % 3,
            "kafka_offset": start + i,
            "kafka_timestamp": ingested_at,
            "is_late": False,
            "ingested_at": ingested_at + timedelta(seconds=i),
        }
        for i in range(count)
    ]


def commits(table, batches: int, per_batch: int, ingested_at: datetime, start: int = 0) -> None:
    """`batches` small commits, as the stream makes one per checkpoint."""
    schema = table.schema().as_arrow()
    for b in range(batches):
        table.append(pa.Table.from_pylist(rows(per_batch, ingested_at, start + b * per_batch), schema=schema))


def files_per_hour(spark, identifier: str) -> dict[int, int]:
    found = spark.sql(f"SELECT partition.ingested_at_hour AS hour, file_count FROM {identifier}.partitions").collect()
    return {r.hour: r.file_count for r in found}


def content(spark, identifier: str) -> list[tuple]:
    return [tuple(r) for r in spark.sql(f"SELECT * FROM {identifier} ORDER BY event_id").collect()]


def timed_scan(spark, identifier: str) -> float:
    t0 = time.monotonic()
    spark.sql(f"SELECT count(*), count(DISTINCT kafka_offset) FROM {identifier}").collect()
    return time.monotonic() - t0


def test_compaction_merges_closed_hours_only_and_keeps_every_row(spark, iceberg_catalog, scratch):
    table = iceberg_catalog.load_table(scratch.identifier)
    commits(table, 30, 50, HOUR)  # the closed hour: 30 small files
    commits(table, 12, 50, HOUR + timedelta(hours=1), start=10_000)  # the open hour, still being written
    before, files_before = content(spark, scratch.identifier), files_per_hour(spark, scratch.identifier)
    closed, open_ = sorted(files_before)
    assert (files_before[closed], files_before[open_]) == (30, 12)
    scan_before = timed_scan(spark, scratch.identifier)

    report = maintenance.maintain(spark, scratch, now=HOUR + timedelta(hours=1, minutes=30))

    files_after = files_per_hour(spark, scratch.identifier)
    assert files_before[closed] >= 10 * files_after[closed]  # at least 10x fewer files in the closed hour
    assert files_after[open_] == 12  # the stream's open hour is left alone
    assert content(spark, scratch.identifier) == before  # every row, unchanged
    assert report.before.data_files == 42 and report.after.data_files == 12 + files_after[closed]
    print(
        f"\ncompaction: {report.before.line()} -> {report.after.line()} in {report.seconds:.1f} s; "
        f"scan and count {scan_before:.2f} s -> {timed_scan(spark, scratch.identifier):.2f} s"
    )
    # Compaction again finds nothing to do (the hour is one file now).
    again = maintenance.maintain(spark, scratch, now=HOUR + timedelta(hours=1, minutes=30))
    assert again.steps["compacted"] == "0 files into 0" and content(spark, scratch.identifier) == before


def test_expiry_keeps_the_retention_window_and_removes_older_snapshots(spark, iceberg_catalog, scratch):
    table = iceberg_catalog.load_table(scratch.identifier)
    commits(table, 8, 10, HOUR)
    snapshots = [s.snapshot_id for s in iceberg_catalog.load_table(scratch.identifier).snapshots()]
    newest_commit = max(s.timestamp_ms for s in iceberg_catalog.load_table(scratch.identifier).snapshots())
    committed = datetime.fromtimestamp(newest_commit / 1000, UTC)
    policy = replace(scratch.maintenance, retain_snapshots=timedelta(hours=6), retain_last=3)
    definition = replace(scratch, maintenance=policy)

    # Every snapshot is inside the window: all kept, and time travel to the first still works.
    maintenance.maintain(spark, definition, now=committed + timedelta(hours=5))
    kept = {r.snapshot_id for r in spark.sql(f"SELECT snapshot_id FROM {scratch.identifier}.snapshots").collect()}
    assert set(snapshots) <= kept
    first = spark.sql(f"SELECT count(*) AS n FROM {scratch.identifier} VERSION AS OF {snapshots[0]}").first().n
    assert first == 10

    # A day later all are outside it: only the last `retain_last` stay (plus compaction's own).
    maintenance.maintain(spark, definition, now=committed + timedelta(days=1))
    left = [r.snapshot_id for r in spark.sql(f"SELECT snapshot_id FROM {scratch.identifier}.snapshots").collect()]
    assert len(left) == 3 and snapshots[0] not in left
    assert spark.sql(f"SELECT count(*) AS n FROM {scratch.identifier}").first().n == 80


def test_orphan_removal_deletes_an_old_orphan_and_never_a_concurrent_commits_files(
    spark, iceberg_catalog, scratch, stack
):
    table = iceberg_catalog.load_table(scratch.identifier)
    commits(table, 2, 10, HOUR)
    bucket, _, prefix = table.location().removeprefix("s3://").partition("/")
    client = s3.client(stack)
    orphan = f"{prefix}/data/orphan-{uuid.uuid4().hex}.parquet"
    client.put_object(bucket, orphan, io.BytesIO(b"left behind by a crashed writer"), 31)
    time.sleep(2)
    cutoff = datetime.now(UTC)  # the orphan is older than this; everything written from now on is newer
    time.sleep(2)
    in_flight = f"{prefix}/data/in-flight-{uuid.uuid4().hex}.parquet"
    client.put_object(bucket, in_flight, io.BytesIO(b"a commit that has not happened yet"), 34)

    # A writer commits while the orphan files are listed and removed.
    writer = threading.Thread(target=commits, args=(table, 6, 10, HOUR, 1000))
    writer.start()
    report = maintenance.maintain(spark, scratch, now=cutoff + scratch.maintenance.orphan_age)
    writer.join()

    listed = {o.object_name for o in client.list_objects(bucket, prefix=f"{prefix}/data/", recursive=True)}
    assert orphan not in listed and in_flight in listed
    assert report.steps["orphan files removed"] == 1
    # Every file of every commit, the concurrent ones included, is still there: the table reads whole.
    assert spark.sql(f"SELECT count(*) AS n FROM {scratch.identifier}").first().n == 80
    client.remove_object(bucket, in_flight)


def test_dry_run_changes_nothing_and_unknown_tables_are_refused(spark, iceberg_catalog, scratch, stack):
    table = iceberg_catalog.load_table(scratch.identifier)
    commits(table, 6, 10, HOUR)
    before = maintenance.health(spark, scratch.identifier)
    policy = replace(scratch.maintenance, retain_snapshots=timedelta(hours=1), retain_last=2)
    report = maintenance.maintain(
        spark, replace(scratch, maintenance=policy), now=HOUR + timedelta(days=3650), dry_run=True
    )
    assert report.steps["snapshots that would expire"] == 4 and report.after is None
    assert maintenance.health(spark, scratch.identifier) == before
    with pytest.raises(Exception, match="unknown tables or namespaces"):
        maintenance.select(load_definitions(stack.definitions_dir), ["bronze.nope"], [])
