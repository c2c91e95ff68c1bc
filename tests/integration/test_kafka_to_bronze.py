"""Kafka -> bronze batch replay (Spark's Kafka source, MERGE INTO) on the real broker: recovery,
backfill of a deleted range, re-runs.

Uses the `conversions` topic, which no stream consumes in the test session. Other tests may
have sent records to it too, so assertions look at this test's own event ids and offsets.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pyarrow.compute as pc
import pytest
from pyiceberg.expressions import In

from lakehouse.domains import get_domain
from lakehouse.events.generator import MALFORMED_KINDS, Mix, generate
from lakehouse.events.send import send
from lakehouse.events.topics import ensure_topics
from lakehouse.jobs import JobRequest
from lakehouse.medallion import kafka_to_bronze
from lakehouse.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def bronze_ids(catalog, domain, ids) -> list[str]:
    table = catalog.load_table(domain.tables.bronze)
    return table.scan(row_filter=In("event_id", ids), selected_fields=("event_id",)).to_arrow()["event_id"].to_pylist()


def my_letters(catalog, domain, manifest) -> list[tuple]:
    letters = catalog.load_table(domain.tables.dead_letter).scan().to_arrow()
    rows = zip(
        letters["kafka_topic"].to_pylist(),
        letters["kafka_partition"].to_pylist(),
        letters["kafka_offset"].to_pylist(),
        letters["reason"].to_pylist(),
        strict=True,
    )
    first, last = manifest["first_offsets"], manifest["last_offsets"]
    return sorted(
        r
        for r in rows
        if r[0] == domain.topic.name and str(r[1]) in first and first[str(r[1])] <= r[2] <= last[str(r[1])]
    )


def test_recovery_then_backfill_never_duplicates(stack, iceberg_catalog, spark):
    domain = get_domain(stack.definitions_dir, "conversions")
    # The events are dated by a pinned clock, up to noon of a day no other test writes: the day
    # lost below (the one before) holds only this test's events, whatever the hour. The recovery
    # window is real time: it selects by the broker's timestamps, which are.
    dated_until = datetime(2026, 8, 10, 12, tzinfo=UTC)
    mix = Mix(duplicates=0.08, late=0.05, out_of_order=0.05, malformed=0.04)
    records = list(generate(domain, 3000, mix, days=2, seed=5, clock=lambda: dated_until))
    ids = sorted({r.event_id for r in records if r.event_id})
    malformed = sum(r.kind in MALFORMED_KINDS for r in records)
    assert malformed and len(ids) < len(records) - malformed  # duplicates and malformed are in the data
    ensure_topics(stack, [domain])
    manifest = send(stack, domain, iter(records), total=len(records), progress=False)
    now = datetime.now(UTC)

    # Recovery: everything after bronze's committed offsets, each event once, malformed routed.
    recovery = kafka_to_bronze.run(
        spark, JobRequest(domain, now - timedelta(hours=1), now + timedelta(minutes=1)), settings=stack
    )
    assert recovery.status == "success" and recovery.rows_read >= len(records)
    found = bronze_ids(iceberg_catalog, domain, ids)
    assert sorted(found) == ids  # all of them, none twice
    letters = my_letters(iceberg_catalog, domain, manifest)
    assert len(letters) == malformed and all(reason for *_, reason in letters)
    bronze = iceberg_catalog.load_table(domain.tables.bronze)
    # bronze's position (its highest Kafka coordinates) is at the end of what was sent, at most a
    # trailing duplicate short of it (a dropped copy leaves no row)
    offsets = kafka_to_bronze.position(spark, stack, domain)
    assert all(0 <= last - offsets[int(p)] <= 3 for p, last in manifest["last_offsets"].items())

    # The same recovery again reads at most those trailing duplicates and commits nothing.
    snapshot = bronze.current_snapshot().snapshot_id
    again = kafka_to_bronze.run(
        spark, JobRequest(domain, now - timedelta(hours=1), now + timedelta(minutes=1)), settings=stack
    )
    assert again.rows_read == sum(last - offsets[int(p)] for p, last in manifest["last_offsets"].items())
    assert (again.rows_written, again.rows_merged) == (0, 0)
    assert bronze.refresh().current_snapshot().snapshot_id == snapshot

    # Lose a day of bronze, then backfill that day from the earliest offsets.
    event_times = bronze.scan(row_filter=In("event_id", ids), selected_fields=("event_id", "event_time")).to_arrow()
    day_start = datetime.combine(dated_until.date() - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    day_end = day_start + timedelta(days=1)
    in_day = pc.and_(
        pc.greater_equal(event_times["event_time"], day_start), pc.less(event_times["event_time"], day_end)
    )
    lost = sorted(event_times.filter(in_day)["event_id"].to_pylist())
    assert 0 < len(lost) < len(ids)
    bronze.delete(In("event_id", lost))
    assert bronze_ids(iceberg_catalog, domain, lost) == []

    backfill = kafka_to_bronze.run(spark, JobRequest(domain, day_start, day_end, backfill=True), settings=stack)
    assert backfill.rows_merged == len(lost)
    assert sorted(bronze_ids(iceberg_catalog, domain, ids)) == ids
    assert kafka_to_bronze.position(spark, stack, domain) == offsets  # the position is unchanged
    assert len(my_letters(iceberg_catalog, domain, manifest)) == malformed  # letters merged, not appended

    # Backfill again, and a dry run: nothing merged, nothing committed.
    snapshot = bronze.refresh().current_snapshot().snapshot_id
    assert (
        kafka_to_bronze.run(spark, JobRequest(domain, day_start, day_end, backfill=True), settings=stack).rows_merged
        == 0
    )
    assert bronze.refresh().current_snapshot().snapshot_id == snapshot
    cli = subprocess.run(
        [sys.executable, "spark_jobs/kafka_to_bronze.py", "--domain", "conversions", "--backfill", "--dry-run",
         "--start", day_start.isoformat(), "--end", day_end.isoformat()],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-2000:]
    # The dry run sees what the backfill saw.
    assert f"written {backfill.rows_written}" in cli.stderr and "merged 0 (dry run, nothing written)" in cli.stderr
    assert bronze.refresh().current_snapshot().snapshot_id == snapshot

    audit = iceberg_catalog.load_table("ops.job_runs").scan(row_filter=In("run_id", [backfill.run_id])).to_arrow()
    assert audit["status"].to_pylist() == ["success"] and audit["rows_merged"].to_pylist() == [len(lost)]


def test_cli_rejects_end_before_start():
    cli = subprocess.run(
        [sys.executable, "spark_jobs/kafka_to_bronze.py", "--start", "2026-01-02", "--end", "2026-01-01"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 2 and "--end (2026-01-01T00:00:00+00:00) must be after --start" in cli.stderr
