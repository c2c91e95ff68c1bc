"""The quality gate on the real catalog: Great Expectations on an Iceberg audit branch, then publish.

Each test owns its dates (September 2024), so silver and gold rows of other tests never mix in.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from lakehouse.domains import Check, get_domain
from lakehouse.events.generator import Mix
from lakehouse.jobs import JobRequest
from lakehouse.medallion import bronze_to_silver, quality, silver_to_gold, wap
from lakehouse.medallion.runs import current_snapshot
from tests.medallion_data import append_bronze, event, simulate

CLEAN = Mix(duplicates=0.05, late=0, out_of_order=0, malformed=0)


@pytest.fixture(scope="module")
def sales(stack):
    return get_domain(stack.definitions_dir, "sales")


def results(spark, run_id: str, table: str = "silver.sales_orders") -> dict[str, tuple]:
    """The run's recorded outcomes for `table`: expectation -> (severity, success)."""
    rows = spark.table(quality.RESULTS).where((F.col("run_id") == run_id) & (F.col("table_name") == table)).collect()
    return {r.expectation: (r.severity, r.success) for r in rows}


def branches(spark, table: str) -> set[str]:
    return {r.name for r in spark.sql(f"SELECT name FROM {table}.refs WHERE type = 'BRANCH'").collect()}


def silver_ids(spark, sales, day: date) -> set[str]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    rows = spark.table(sales.tables.silver).where(
        (F.col("event_time") >= F.lit(start)) & (F.col("event_time") < F.lit(start + timedelta(days=1)))
    )
    return {r.event_id for r in rows.select("event_id").collect()}


def test_clean_hour_publishes_and_a_warning_is_recorded_but_published(spark, iceberg_catalog, sales):
    hour = datetime(2024, 9, 2, 10, tzinfo=UTC)
    history = simulate(sales, 200, 1 / 24, hour + timedelta(hours=1), CLEAN, seed=41)
    odd_city = event(sales, history, hour + timedelta(minutes=30), hour + timedelta(minutes=31), city="Springfield")
    append_bronze(iceberg_catalog, sales, [*history.rows, odd_city])
    before = current_snapshot(spark, sales.tables.silver)

    result = bronze_to_silver.run(spark, JobRequest(sales, hour, hour + timedelta(hours=1)))

    assert result.rows_merged > 0 and current_snapshot(spark, sales.tables.silver) != before
    assert silver_ids(spark, sales, hour.date()) == {r["event_id"] for r in history.rows} | {odd_city["event_id"]}
    outcomes = results(spark, result.run_id)
    assert set(outcomes) == {c.type for c in sales.quality.silver}
    assert outcomes["expect_column_values_to_be_in_set"] == ("warn", False)
    assert all(success for severity, success in outcomes.values() if severity == "fail")
    assert result.details["quality"][sales.tables.silver]["warnings"] == ["expect_column_values_to_be_in_set"]
    assert set(result.details["quality"][sales.tables.silver]["seconds"]) == {"silver_sales_orders"}  # per batch
    assert wap.branch_name(result.run_id) not in branches(spark, sales.tables.silver)  # published: dropped
    assert quality.docs_index().is_file()


def test_failing_expectation_keeps_main_untouched_until_the_data_is_fixed(spark, iceberg_catalog, sales, caplog):
    hour = datetime(2024, 9, 5, 14, tzinfo=UTC)
    history = simulate(sales, 100, 1 / 24, hour + timedelta(hours=1), CLEAN, seed=43)
    free = [
        event(sales, history, hour + timedelta(minutes=m), hour + timedelta(minutes=m + 1), unit_price_cents=0)
        for m in (5, 6)
    ]
    append_bronze(iceberg_catalog, sales, [*history.rows, *free])
    table = sales.tables.silver
    before = current_snapshot(spark, table), silver_ids(spark, sales, hour.date())

    with pytest.raises(quality.QualityGateFailed, match="expect_column_values_to_be_between") as failure:
        bronze_to_silver.run(spark, JobRequest(sales, hour, hour + timedelta(hours=1), run_id="gate-fails-2024-09-05"))
    assert "unit_price_cents" in str(failure.value) and "2 unexpected; e.g. [0, 0]" in str(failure.value)

    # main is exactly as before; the audit branch holds the batch, the zero prices included.
    assert (current_snapshot(spark, table), silver_ids(spark, sales, hour.date())) == before
    branch = wap.branch_name("gate-fails-2024-09-05")
    assert branch in branches(spark, table)
    held = spark.table(wap.branch_table(table, branch)).where(F.col("run_id") == "gate-fails-2024-09-05")
    assert held.count() == len({r["event_id"] for r in history.rows}) + 2
    assert held.where("unit_price_cents = 0").count() == 2
    assert results(spark, "gate-fails-2024-09-05")["expect_column_values_to_be_between"] == ("fail", False)
    audit = spark.sql("SELECT status, error FROM ops.job_runs WHERE run_id = 'gate-fails-2024-09-05'").collect()
    assert [r.status for r in audit] == ["failed"] and "unit_price_cents" in audit[0].error

    # The producer's bug is fixed in bronze; the re-run publishes.
    spark.sql(
        f"""UPDATE {sales.tables.bronze} SET payload = replace(payload, '"unit_price_cents": 0,', '"unit_price_cents": 1299,')
            WHERE event_id IN ('{free[0]["event_id"]}', '{free[1]["event_id"]}')"""
    )
    fixed = bronze_to_silver.run(spark, JobRequest(sales, hour, hour + timedelta(hours=1)))
    assert fixed.status == "success" and current_snapshot(spark, table) != before[0]
    assert silver_ids(spark, sales, hour.date()) == before[1] | {r["event_id"] for r in [*history.rows, *free]}
    assert spark.table(table).where(F.col("event_id") == free[0]["event_id"]).first().unit_price_cents == 1299


def test_gold_cross_table_check_catches_a_row_altered_by_hand(spark, iceberg_catalog, sales):
    day = datetime(2024, 9, 9, tzinfo=UTC)
    history = simulate(sales, 300, 1, day + timedelta(days=1), CLEAN, seed=47)
    append_bronze(iceberg_catalog, sales, history.rows)
    bronze_to_silver.run(spark, JobRequest(sales, day, day + timedelta(days=1)))
    result = silver_to_gold.run(spark, JobRequest(sales, day, day + timedelta(days=1)))
    assert result.status == "success" and result.rows_merged > 0
    for spec in sales.gold:  # every gold table passed its checks, the cross-table one included
        outcomes = results(spark, result.run_id, spec.table)
        assert outcomes[quality.MATCHES_SILVER] == ("fail", True) and all(ok for _, ok in outcomes.values())
        name = spec.table.replace(".", "_")
        assert set(result.details["quality"][spec.table]["seconds"]) == {name, f"{name}_{quality.MATCHES_SILVER}"}

    [spec] = [g for g in sales.gold if g.table == "gold.daily_sales_by_city"]
    row = spark.table(spec.table).where(F.col("event_date") == day.date()).orderBy("city").first()
    spark.sql(
        f"UPDATE {spec.table} SET revenue_cents = revenue_cents + 1 "
        f"WHERE event_date = DATE'{day.date()}' AND city = '{row.city}' AND currency = '{row.currency}'"
    )
    [report] = silver_to_gold.check(spark, sales, [spec], [day.date()], run_id="hand-check-2024-09-09", job="check")
    [failed] = report.failed
    assert failed.expectation == quality.MATCHES_SILVER
    assert failed.observed == 1
    [bad] = failed.sample
    assert (bad["city"], bad["gold_revenue_cents"], bad["silver_revenue_cents"]) == (
        row.city,
        row.revenue_cents + 1,
        row.revenue_cents,
    )
    # The next gold run recomputes the date from silver and corrects the row (and passes).
    again = silver_to_gold.run(spark, JobRequest(sales, day, day + timedelta(days=1), backfill=True))
    assert again.rows_merged == 1 and results(spark, again.run_id, spec.table)[quality.MATCHES_SILVER] == ("fail", True)


def test_a_gold_batch_that_fails_its_gate_publishes_no_table(
    spark,
    iceberg_catalog,
    sales,
):
    day = datetime(2024, 9, 12, tzinfo=UTC)
    history = simulate(sales, 100, 1, day + timedelta(days=1), CLEAN, seed=53)
    append_bronze(iceberg_catalog, sales, history.rows)
    bronze_to_silver.run(spark, JobRequest(sales, day, day + timedelta(days=1)))
    tables = [g.table for g in sales.gold]
    before = {t: current_snapshot(spark, t) for t in tables}
    # A stricter rule, as a changed YAML would give: no row may have revenue (the first table fails).
    strict = Check("expect_column_values_to_be_between", {"column": "revenue_cents", "max_value": 0})
    by_city = sales.quality.gold["gold.daily_sales_by_city"]
    gold_checks = {
        **sales.quality.gold,
        "gold.daily_sales_by_city": replace(by_city, expectations=(*by_city.expectations, strict)),
    }
    strict_sales = replace(sales, quality=replace(sales.quality, gold=gold_checks))

    with pytest.raises(quality.QualityGateFailed, match="gold.daily_sales_by_city"):
        silver_to_gold.run(spark, JobRequest(strict_sales, day, day + timedelta(days=1), run_id="gold-gate-2024-09-12"))
    assert {t: current_snapshot(spark, t) for t in tables} == before  # not even the tables that passed
    assert all(wap.branch_name("gold-gate-2024-09-12") in branches(spark, t) for t in tables)
    published = silver_to_gold.run(spark, JobRequest(sales, day, day + timedelta(days=1)))
    assert published.status == "success" and all(current_snapshot(spark, t) != before[t] for t in tables)
