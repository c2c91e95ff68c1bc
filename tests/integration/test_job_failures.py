"""A failure injected mid-job leaves the tables as they were, and the re-run completes correctly.

Faults are injected with LAKEHOUSE_FAULT=<point>[:kill] (see lakehouse.medallion.runs): an
exception inside the job, or SIGKILL of a real `spark_jobs/` process. Dates are March 2025,
owned by this module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from pyspark.sql import functions as F

from lakehouse.domains import get_domain
from lakehouse.events.generator import Mix
from lakehouse.jobs import JobRequest
from lakehouse.medallion import bronze_to_silver, silver_to_gold
from lakehouse.medallion.runs import FAULT_VARIABLE, InjectedFault, current_snapshot
from lakehouse.settings import PROJECT_ROOT
from tests.medallion_data import append_bronze, assert_gold_matches, expected_sales, gold_rows, simulate

pytestmark = pytest.mark.slow

END = datetime(2025, 3, 3, tzinfo=UTC)


def audit_row(spark, run_id: str):
    rows = spark.sql(f"SELECT status, error FROM ops.job_runs WHERE run_id = '{run_id}'").collect()
    assert len(rows) == 1
    return rows[0]


def branches(spark, table: str) -> set[str]:
    return {r.name for r in spark.sql(f"SELECT name FROM {table}.refs WHERE type = 'BRANCH'").collect()} - {"main"}


def failed_runs(spark, job: str) -> set[str]:
    """The run ids of the job's failed runs in the audit (other tests' among them)."""
    return {
        r.run_id
        for r in spark.sql(f"SELECT run_id FROM ops.job_runs WHERE job = '{job}' AND status = 'failed'").collect()
    }


@pytest.fixture(scope="module")
def history(stack, iceberg_catalog):
    sales = get_domain(stack.definitions_dir, "sales")
    generated = simulate(sales, 400, 1, END, Mix(duplicates=0.05, late=0.05, out_of_order=0, malformed=0), seed=3)
    append_bronze(iceberg_catalog, sales, generated.rows)
    return sales, generated


def test_exception_in_silver_run_rolls_back_and_rerun_completes(spark, history, monkeypatch):
    sales, generated = history
    ids = sorted({r["event_id"] for r in generated.rows})
    silver_ids = F.col("event_id").isin(ids)
    first = datetime.combine(min(r["event_time"] for r in generated.rows).date(), datetime.min.time(), tzinfo=UTC)
    before = current_snapshot(spark, sales.tables.silver), spark.table(sales.tables.silver).count()
    failed_before = failed_runs(spark, "bronze_to_silver")

    monkeypatch.setenv(FAULT_VARIABLE, "silver-after-merge")
    with pytest.raises(InjectedFault):
        bronze_to_silver.run(spark, JobRequest(sales, first, END, backfill=True))
    # The MERGE had committed to the run's audit branch: main is where it was (a table that had
    # no snapshot before may get an empty one).
    after = current_snapshot(spark, sales.tables.silver), spark.table(sales.tables.silver).count()
    assert after == before or (before == (None, 0) and after[1] == 0)
    assert spark.table(sales.tables.silver).where(silver_ids).count() == 0
    [failed_id] = failed_runs(spark, "bronze_to_silver") - failed_before  # this run's, found without a clock
    failed = audit_row(spark, failed_id)
    assert failed.status == "failed" and "fault injected at silver-after-merge" in failed.error

    monkeypatch.delenv(FAULT_VARIABLE)
    rerun = bronze_to_silver.run(spark, JobRequest(sales, first, END, backfill=True))
    assert rerun.rows_merged == len(ids) and audit_row(spark, rerun.run_id).status == "success"
    assert spark.table(sales.tables.silver).where(silver_ids).count() == len(ids)


def test_gold_after_exception_and_after_kill(spark, history, monkeypatch):
    sales, generated = history
    gold_tables = [g.table for g in sales.gold]
    dates = sorted({r["event_time"].date() for r in generated.rows})
    window_start = datetime.combine(dates[0], datetime.min.time(), tzinfo=UTC)
    assert spark.table(sales.tables.silver).where(F.col("event_date").isin(dates)).count() > 0  # silver is there
    before = {t: current_snapshot(spark, t) for t in gold_tables}
    empty = {t: gold_rows(spark, t, dates) for t in gold_tables}
    branches_before = {t: branches(spark, t) for t in gold_tables}

    # An exception after the second of three gold MERGEs (to the run's audit branches): main of
    # every table is as before, and the half-done branches are dropped.
    monkeypatch.setenv(FAULT_VARIABLE, f"gold-after-{gold_tables[1]}")
    with pytest.raises(InjectedFault):
        silver_to_gold.run(spark, JobRequest(sales, window_start, END, backfill=True))
    assert {t: current_snapshot(spark, t) for t in gold_tables if before[t]} == {t: s for t, s in before.items() if s}
    assert {t: gold_rows(spark, t, dates) for t in gold_tables} == empty
    assert {t: branches(spark, t) for t in gold_tables} == branches_before

    # SIGKILL of the job's process after its first gold MERGE: nothing can clean up, but that
    # MERGE went to an audit branch, so no table's main changed (gold publishes all its tables
    # or none); the branch is left, and expires with table maintenance ...
    env = {**os.environ, FAULT_VARIABLE: f"gold-after-{gold_tables[0]}:kill"}
    args = ["--domain", "sales", "--start", window_start.isoformat(), "--end", END.isoformat(), "--backfill"]
    killed = subprocess.run(
        [sys.executable, "spark_jobs/silver_to_gold.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert {t: gold_rows(spark, t, dates) for t in gold_tables} == empty
    left = {t: branches(spark, t) - branches_before[t] for t in gold_tables}
    assert len(left[gold_tables[0]]) == 1 and not any(left[t] for t in gold_tables[1:]), left

    # ... and the re-run publishes every table.
    monkeypatch.delenv(FAULT_VARIABLE)
    rerun = silver_to_gold.run(spark, JobRequest(sales, window_start, END, backfill=True))
    assert audit_row(spark, rerun.run_id).status == "success"
    assert_gold_matches(spark, expected_sales(generated.events), dates)
