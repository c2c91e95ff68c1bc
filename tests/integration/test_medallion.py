"""Silver and gold on the real catalog, from simulated history with duplicates and late events.

Each test owns its own dates (early 2025), so the shared silver and gold tables never mix
their rows with another test's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from lakehouse.domains import get_domain
from lakehouse.events.generator import Mix
from lakehouse.jobs import JobRequest
from lakehouse.medallion import bronze_to_silver, silver_to_gold
from lakehouse.medallion.gold import dates_between
from tests.medallion_data import (
    append_bronze,
    assert_gold_matches,
    data_files,
    event,
    expected_conversions,
    expected_sales,
    gold_rows,
    hours,
    silver_rows,
    simulate,
    snapshots,
)

pytestmark = pytest.mark.slow

MIX = Mix(duplicates=0.06, late=0.05, out_of_order=0.05, malformed=0)


@pytest.fixture(scope="module")
def sales(stack):
    return get_domain(stack.definitions_dir, "sales")


def test_sales_hourly_daily_late_backfill_and_idempotence(spark, iceberg_catalog, sales):
    end = datetime(2025, 1, 3, tzinfo=UTC)
    start = end - timedelta(days=1)
    history = simulate(sales, 800, 1, end, MIX, seed=7)
    append_bronze(iceberg_catalog, sales, history.rows)
    ids = {row["event_id"] for row in history.rows}
    late_rows = [r for r in history.rows if r["ingested_at"].date() > r["event_time"].date()]
    assert len(history.rows) > len(ids) and late_rows  # duplicates and late arrivals are in the data

    # Hourly silver, then daily gold, as the schedule would run them.
    t0 = time.monotonic()
    for hour_start, hour_end in hours(start, end):
        bronze_to_silver.run(spark, JobRequest(sales, hour_start, hour_end))
    silver_seconds = time.monotonic() - t0
    for day in dates_between(start, end):
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        silver_to_gold.run(spark, JobRequest(sales, day_start, day_start + timedelta(days=1)))
    print(
        f"24 hourly silver runs: {silver_seconds:.0f} s; daily gold runs: {time.monotonic() - t0 - silver_seconds:.0f} s"
    )

    expected = expected_sales(history.events)
    all_dates = sorted({r["event_time"].date() for r in history.rows})
    assert len(all_dates) > 1  # late events reach dates before the simulated window
    assert spark.table(sales.tables.silver).where(F.col("event_id").isin(list(ids))).count() == len(ids)
    assert_gold_matches(spark, expected, all_dates)

    # The same intervals again: identical contents, no new snapshots or data files.
    gold_tables = [g.table for g in sales.gold]
    tables = [sales.tables.silver, *gold_tables]
    before_rows = silver_rows(spark, sales, ids), {t: gold_rows(spark, t, all_dates) for t in gold_tables}
    before_snapshots, before_files = snapshots(spark, tables), data_files(spark, tables)
    again = bronze_to_silver.run(spark, JobRequest(sales, start + timedelta(hours=5), start + timedelta(hours=6)))
    assert again.rows_read > 0 and again.rows_merged == 0
    rerun = silver_to_gold.run(spark, JobRequest(sales, start, start + timedelta(days=1)))
    assert rerun.rows_written > 0 and rerun.rows_merged == 0
    assert snapshots(spark, tables) == before_snapshots and data_files(spark, tables) == before_files
    assert (silver_rows(spark, sales, ids), {t: gold_rows(spark, t, all_dates) for t in gold_tables}) == before_rows

    # A late event: dated day 1 for a city nobody bought in, ingested on day 3. The next hourly
    # and daily runs correct day 1 and leave every other gold row alone.
    day1 = start.date()
    untouched = {t: gold_rows(spark, t, [d for d in all_dates if d != day1]) for t in gold_tables}
    late = event(
        sales,
        history,
        start + timedelta(hours=15),
        end + timedelta(hours=10),
        city="Lisbon",
        country="PT",
        currency="EUR",
        quantity=3,
        unit_price_cents=1000,
    )
    append_bronze(iceberg_catalog, sales, [late])
    bronze_to_silver.run(spark, JobRequest(sales, end + timedelta(hours=10), end + timedelta(hours=11)))
    day3 = silver_to_gold.run(spark, JobRequest(sales, end, end + timedelta(days=1)))
    assert day3.details["dates"] == [day1.isoformat()]
    lisbon = spark.table("gold.daily_sales_by_city").where(F.col("city") == "Lisbon").collect()
    assert [(r.event_date, r.orders, r.units, r.revenue_cents, r.run_id) for r in lisbon] == [
        (day1, 1, 3, 3000, day3.run_id)
    ]
    assert {t: gold_rows(spark, t, [d for d in all_dates if d != day1]) for t in gold_tables} == untouched
    expected = expected_sales(history.events)
    assert_gold_matches(spark, expected, all_dates)
    ids.add(late["event_id"])

    # Backfill over the whole range gives the same tables as the hourly and daily runs did.
    hourly = silver_rows(spark, sales, ids), {t: gold_rows(spark, t, all_dates) for t in gold_tables}
    id_list = ", ".join(f"'{i}'" for i in ids)
    spark.sql(f"DELETE FROM {sales.tables.silver} WHERE event_id IN ({id_list})")
    date_list = ", ".join(f"DATE'{d.isoformat()}'" for d in all_dates)
    for table in gold_tables:
        spark.sql(f"DELETE FROM {table} WHERE event_date IN ({date_list})")
    assert silver_rows(spark, sales, ids) == []
    first, last = all_dates[0], all_dates[-1] + timedelta(days=1)
    range_start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    range_end = datetime.combine(last, datetime.min.time(), tzinfo=UTC)
    silver_backfill = bronze_to_silver.run(spark, JobRequest(sales, range_start, range_end, backfill=True))
    gold_backfill = silver_to_gold.run(spark, JobRequest(sales, range_start, range_end, backfill=True))
    assert silver_backfill.rows_merged == len(ids) and gold_backfill.rows_merged > 0
    assert (silver_rows(spark, sales, ids), {t: gold_rows(spark, t, all_dates) for t in gold_tables}) == hourly

    audit = spark.sql(
        f"SELECT job, status, rows_merged FROM ops.job_runs WHERE run_id IN ('{silver_backfill.run_id}', "
        f"'{gold_backfill.run_id}')"
    ).collect()
    assert sorted((a.job, a.status) for a in audit) == [("bronze_to_silver", "success"), ("silver_to_gold", "success")]


def test_conversions_silver_and_gold(spark, iceberg_catalog, stack):
    domain = get_domain(stack.definitions_dir, "conversions")
    end = datetime(2025, 2, 2, tzinfo=UTC)
    history = simulate(domain, 1500, 1, end, Mix(duplicates=0.05, late=0.03, out_of_order=0.05, malformed=0), 11)
    append_bronze(iceberg_catalog, domain, history.rows)
    dates = sorted({r["event_time"].date() for r in history.rows})
    range_start = datetime.combine(dates[0], datetime.min.time(), tzinfo=UTC)
    silver_run = bronze_to_silver.run(spark, JobRequest(domain, range_start, end, backfill=True))
    ids = {r["event_id"] for r in history.rows}
    assert silver_run.rows_merged == len(ids) and silver_run.rows_quarantined == 0
    rows = spark.table(domain.tables.silver).where(F.col("event_id").isin(list(ids))).collect()
    assert {r.status for r in rows} == {"ok", "error"}
    assert all((r.status == "ok") == (r.output_numeral is not None) for r in rows)
    assert all(r.output_numeral is None or r.output_numeral.isupper() for r in rows)

    gold_run = silver_to_gold.run(spark, JobRequest(domain, range_start, end, backfill=True))
    assert gold_run.rows_merged == gold_run.rows_written > 0
    assert_gold_matches(spark, expected_conversions(history.events), dates)
