"""Airflow 3 on the test stack: the real scheduler runs the DAGs, whose tasks spark-submit the jobs.

One test walks the whole path, because every run costs a JVM start: refused params, a native
backfill of silver_hourly through the REST API, a retried task, gold_daily over the range,
and a single param-range run over the same range. Its dates (2026-03-12) are its own.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan

from lakehouse.domains import get_domain
from lakehouse.events.generator import Mix
from lakehouse.jobs import AUDIT
from lakehouse.medallion.runs import FAULT_DIR_VARIABLE, current_snapshot
from lakehouse.orchestration import trigger
from lakehouse.orchestration.client import RejectedRequest
from lakehouse.orchestration.params import InvalidParams
from tests.medallion_data import append_bronze, assert_gold_matches, event, expected_sales, silver_rows, simulate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

DAY = datetime(2026, 3, 12, tzinfo=UTC)
MIX = Mix(duplicates=0.06, late=0.05, out_of_order=0.05, malformed=0)


def audit_rows(catalog, job: str, start: datetime, end: datetime) -> list[dict]:
    """The run audit of `job` for intervals inside [start, end)."""
    table = catalog.load_table(AUDIT)
    rows = table.scan(
        row_filter=And(
            EqualTo("job", job),
            GreaterThanOrEqual("interval_start", start.isoformat()),
            LessThan("interval_start", end.isoformat()),
        )
    ).to_arrow()
    return rows.to_pylist()


def run_in(settings, dag_id, start, end, native=False, wait=True, **options):
    params = {"domain": "sales", "start_date": start.isoformat(), "end_date": end.isoformat()} | options
    return trigger.main(settings, dag_id, params, native, wait, log=print)


def test_scheduler_runs_backfills_retries_and_refuses_bad_params(stack, airflow, iceberg_catalog, spark):
    sales = get_domain(stack.definitions_dir, "sales")
    history = simulate(sales, 600, 4 / 24, DAY + timedelta(hours=4), MIX, seed=23)
    append_bronze(iceberg_catalog, sales, history.rows)
    ids = {row["event_id"] for row in history.rows}
    assert len(history.rows) > len(ids)  # duplicates are in the data

    # Refused params start nothing: Airflow's schema check refuses the run itself...
    before = len(airflow.runs("silver_hourly"))
    for conf in ({"domain": "nowhere"}, {"start_date": "2026-03-12", "end_date": "2026-03-13"}):
        with pytest.raises(RejectedRequest, match="400"):
            airflow.trigger("silver_hourly", conf)
    assert len(airflow.runs("silver_hourly")) == before
    # ...`lakehouse trigger` refuses what the schema cannot express before calling Airflow...
    with pytest.raises(InvalidParams, match="must be after start_date"):
        run_in(stack, "silver_hourly", DAY + timedelta(hours=2), DAY)
    with pytest.raises(InvalidParams, match="over the maximum of 31 days"):
        run_in(stack, "silver_hourly", DAY, DAY + timedelta(days=40))
    # ...and a run that reaches Airflow anyway fails its plan task: no job task runs.
    reversed_range = {"start_date": (DAY + timedelta(hours=2)).isoformat(), "end_date": DAY.isoformat()}
    refused = airflow.trigger("silver_hourly", reversed_range)
    assert airflow.wait("silver_hourly", [refused], timeout_s=300) == {refused["dag_run_id"]: "failed"}
    states = {t["task_id"]: t["state"] for t in airflow.task_instances("silver_hourly", refused["dag_run_id"])}
    assert states["plan"] == "failed" and states["bronze_to_silver"] in (None, "upstream_failed"), states
    assert audit_rows(iceberg_catalog, "bronze_to_silver", DAY, DAY + timedelta(hours=4)) == []

    # Airflow's native backfill over three hours, with params: one run per hour, each for sales only.
    states = run_in(stack, "silver_hourly", DAY, DAY + timedelta(hours=3), native=True)
    assert len(states) == 3 and set(states.values()) == {"success"}
    backfilled = airflow.backfill_runs("silver_hourly", DAY, DAY + timedelta(hours=3))
    assert sorted(r["data_interval_start"] for r in backfilled) == [
        (DAY + timedelta(hours=h)).isoformat().replace("+00:00", "Z") for h in range(3)
    ]
    assert all(r["conf"] == {"domain": "sales", "backfill": False, "dry_run": False} for r in backfilled)
    for run in backfilled:  # the domain param narrowed every run to one Spark task
        tasks = airflow.task_instances("silver_hourly", run["dag_run_id"])
        assert [(t["task_id"], t["map_index"]) for t in tasks if t["task_id"] == "bronze_to_silver"] == [
            ("bronze_to_silver", 0)
        ]
    audit = audit_rows(iceberg_catalog, "bronze_to_silver", DAY, DAY + timedelta(hours=3))
    assert sorted((r["domain"], r["interval_start"], r["status"]) for r in audit) == [
        ("sales", DAY + timedelta(hours=h), "success") for h in range(3)
    ]

    # The fourth hour as a param-range run whose Spark task fails once after its MERGE: the job
    # rolls silver back, Airflow retries, and the retry leaves each event once.
    fault = Path(os.environ[FAULT_DIR_VARIABLE]) / "silver-after-merge"
    fault.parent.mkdir(parents=True, exist_ok=True)
    fault.write_text("raise")
    [(run_id, state)] = run_in(stack, "silver_hourly", DAY + timedelta(hours=3), DAY + timedelta(hours=4)).items()
    assert state == "success" and not fault.exists()
    [spark_task] = [t for t in airflow.task_instances("silver_hourly", run_id) if t["task_id"] == "bronze_to_silver"]
    assert spark_task["try_number"] == 2
    fourth = audit_rows(iceberg_catalog, "bronze_to_silver", DAY + timedelta(hours=3), DAY + timedelta(hours=4))
    assert sorted(r["status"] for r in fourth) == ["failed", "success"]
    silver = silver_rows(spark, sales, ids)
    assert len(silver) == len(ids)  # every event once: the failed attempt left nothing behind

    # Gold over the same range waits for silver (complete), then recomputes every date touched,
    # including the older dates of late events: equal to pandas over the generated events.
    run_in(stack, "gold_daily", DAY, DAY + timedelta(hours=4))
    dates = sorted({r["event_time"].date() for r in history.rows})
    assert len(dates) > 1
    assert_gold_matches(spark, expected_sales(history.events), dates)

    # One param-range run over the whole range gives the same tables as the backfill: it merges nothing.
    run_in(stack, "silver_hourly", DAY, DAY + timedelta(hours=4))
    audit = audit_rows(iceberg_catalog, "bronze_to_silver", DAY, DAY + timedelta(hours=4))
    whole = [r for r in audit if (r["interval_start"], r["interval_end"]) == (DAY, DAY + timedelta(hours=4))]
    assert [(r["status"], r["rows_merged"]) for r in whole] == [("success", 0)] and whole[0]["rows_read"] > 0
    assert silver_rows(spark, sales, ids) == silver

    # An hour with nothing ingested starts no Spark job in either layer (no JVM for empty hours).
    empty = (DAY + timedelta(hours=10), DAY + timedelta(hours=11))
    for dag_id, task_id, job in (
        ("silver_hourly", "bronze_to_silver", "bronze_to_silver"),
        ("gold_daily", "silver_to_gold", "silver_to_gold"),
    ):
        [(run_id, state)] = run_in(stack, dag_id, *empty).items()
        spark_tasks = [t["state"] for t in airflow.task_instances(dag_id, run_id) if t["task_id"] == task_id]
        assert state == "success" and spark_tasks in ([], ["skipped"]), spark_tasks
        assert audit_rows(iceberg_catalog, job, *empty) == []


def test_failing_quality_gate_fails_silver_hourly_at_once_and_gold_waits(stack, airflow, iceberg_catalog, spark):
    """A batch with prices of 0 (the contract allows them; the gate does not)."""
    sales = get_domain(stack.definitions_dir, "sales")
    hour = datetime(2026, 3, 16, 9, tzinfo=UTC)
    history = simulate(sales, 40, 1 / 24, hour + timedelta(hours=1), Mix(0, 0, 0, 0), seed=29)
    free = event(sales, history, hour + timedelta(minutes=10), hour + timedelta(minutes=11), unit_price_cents=0)
    append_bronze(iceberg_catalog, sales, [*history.rows, free])
    before = current_snapshot(spark, sales.tables.silver)

    conf = {"domain": "sales", "backfill": False, "dry_run": False}
    window = {"start_date": hour.isoformat(), "end_date": (hour + timedelta(hours=1)).isoformat()}
    silver_run = airflow.trigger("silver_hourly", conf | window)
    run_id = silver_run["dag_run_id"]
    assert airflow.wait("silver_hourly", [silver_run], timeout_s=600) == {run_id: "failed"}
    [spark_task] = [t for t in airflow.task_instances("silver_hourly", run_id) if t["task_id"] == "bronze_to_silver"]
    assert (spark_task["state"], spark_task["try_number"]) == ("failed", 1)  # not retried
    text = airflow.task_log("silver_hourly", run_id, "bronze_to_silver", 1, spark_task["map_index"])
    assert "quality gate failed" in text and "expect_column_values_to_be_between" in text, text[-3000:]
    assert current_snapshot(spark, sales.tables.silver) == before
    assert [r["status"] for r in audit_rows(iceberg_catalog, "bronze_to_silver", hour, hour + timedelta(hours=1))] == [
        "failed"
    ]

    # gold_daily for the day waits for the hour silver has not promoted: its job never starts.
    day = hour.replace(hour=0)
    window = {"start_date": day.isoformat(), "end_date": (day + timedelta(days=1)).isoformat()}
    gold_run = airflow.trigger("gold_daily", conf | window)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        states = {t["task_id"]: t["state"] for t in airflow.task_instances("gold_daily", gold_run["dag_run_id"])}
        if states.get("silver_complete") == "up_for_reschedule":
            break
        time.sleep(3)
    assert states["silver_complete"] == "up_for_reschedule" and states.get("silver_to_gold") is None, states
    airflow.mark_failed("gold_daily", gold_run["dag_run_id"])


def test_maintenance_dag_maintains_the_chosen_layers_through_the_scheduler(stack, airflow):
    run = airflow.trigger("maintenance", {"namespaces": ["gold"]})
    run_id = run["dag_run_id"]
    assert airflow.wait("maintenance", [run], timeout_s=900) == {run_id: "success"}
    states = {t["task_id"]: t["state"] for t in airflow.task_instances("maintenance", run_id)}
    assert states["maintain_gold"] == "success", states
    assert {states[f"maintain_{layer}"] for layer in ("bronze", "silver", "ops")} == {"skipped"}, states
    [job] = [t for t in airflow.task_instances("maintenance", run_id) if t["task_id"] == "maintain_gold"]
    text = airflow.task_log("maintenance", run_id, "maintain_gold", 1, job["map_index"])
    sales = get_domain(stack.definitions_dir, "sales")
    for spec in sales.gold:  # each gold table's report: health before and after
        assert f"{spec.table} (" in text and "before:" in text and "after:" in text, text[-3000:]


def test_gold_waits_only_for_hours_that_hold_bronze_rows(stack, iceberg_catalog):
    from lakehouse.orchestration.readiness import silver_gaps

    sales = get_domain(stack.definitions_dir, "sales")
    day = datetime(2026, 3, 14, tzinfo=UTC)
    history = simulate(sales, 5, 1 / 24, day + timedelta(hours=6), MIX, seed=3)  # ingested in [05:00, 06:00)
    append_bronze(iceberg_catalog, sales, history.rows)
    assert silver_gaps(stack, "sales", day, day + timedelta(days=1)) == [(day, day + timedelta(days=1))]
    # A day with no bronze rows has nothing to wait for.
    assert silver_gaps(stack, "sales", day + timedelta(days=1), day + timedelta(days=2)) == []
