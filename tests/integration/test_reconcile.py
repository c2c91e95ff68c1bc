"""Reconciliation on the real broker and catalog: clean layers pass; each injected fault (a bronze
row deleted, a silver row changed, a gold row changed, a Kafka record that reached neither bronze
nor the dead letters) is found and named; records not yet ingested are incomplete, not drift.

Uses the `conversions` topic (no stream consumes it in the test session) filled by the Spark
replay, events dated around a day no other test writes (2026-09-14), and an interval of
ingestion time that brackets only this module's own sends and runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from lakehouse.domains import get_domain
from lakehouse.errors import DriftFound, LakehouseError
from lakehouse.events.generator import MALFORMED_KINDS, Mix, generate
from lakehouse.events.send import send
from lakehouse.events.topics import ensure_topics
from lakehouse.jobs import JobRequest
from lakehouse.medallion import bronze_to_silver, kafka_to_bronze, reconcile, silver_to_gold
from lakehouse.medallion.runs import current_snapshot

pytestmark = pytest.mark.slow

GOLD = "gold.daily_usage_by_user"


@pytest.fixture(scope="module")
def landed(stack, spark):
    """3,000 records (duplicates, late, malformed) sent, replayed into bronze, promoted to silver
    and gold; the interval [start, end) of ingestion time holds exactly them."""
    domain = get_domain(stack.definitions_dir, "conversions")
    ensure_topics(stack, [domain])
    # What other tests left in the topic unreplayed is ingested now, before this interval starts.
    kafka_to_bronze.run(
        spark, JobRequest(domain, datetime.now(UTC) - timedelta(days=1), datetime.now(UTC)), settings=stack
    )
    start = datetime.now(UTC)
    mix = Mix(duplicates=0.06, late=0.05, out_of_order=0.05, malformed=0.04)
    dated_until = datetime(2026, 9, 14, 12, tzinfo=UTC)
    records = list(generate(domain, 3000, mix, days=1, seed=9141, clock=lambda: dated_until))
    send(stack, domain, iter(records), total=len(records), progress=False)
    sent = datetime.now(UTC) + timedelta(seconds=1)
    replayed = kafka_to_bronze.run(spark, JobRequest(domain, start, sent), settings=stack)
    assert replayed.status == "success" and replayed.rows_read == len(records), replayed.details
    # The reconcile DAG counts a silver run as covering rows ingested up to a checkpoint interval
    # before it started (readiness.silver_gaps, settled): start it after that, as an hourly run is.
    time.sleep(stack.flink.checkpoint_interval_s + 1)
    promoted_until = datetime.now(UTC) + timedelta(seconds=1)
    assert bronze_to_silver.run(spark, JobRequest(domain, start, promoted_until)).status == "success"
    assert silver_to_gold.run(spark, JobRequest(domain, start, promoted_until)).status == "success"
    return domain, records, start, datetime.now(UTC)


def recorded(spark, run_id: str) -> dict[tuple[str, str], bool]:
    rows = spark.table(reconcile.TABLE).where(F.col("run_id") == run_id).collect()
    return {(r.check_name, r.table_name): r.passed for r in rows}


def test_clean_layers_reconcile_with_exact_counts(spark, stack, landed):
    domain, records, start, end = landed
    checks = reconcile.run(spark, JobRequest(domain, start, end, run_id="reconcile-test-clean"), settings=stack)

    by_name = {c.name: c for c in checks}
    assert [c.name for c in checks] == ["kafka_bronze", "bronze_silver", "silver_gold"] and all(
        c.passed for c in checks
    )
    duplicates = sum(r.kind == "duplicate" for r in records)
    malformed = sum(r.kind in MALFORMED_KINDS for r in records)
    events = len({r.event_id for r in records if r.event_id})
    assert duplicates and malformed and events == len(records) - duplicates - malformed
    kafka = by_name["kafka_bronze"]
    # every record of the interval is a bronze row, a dead letter or a duplicate, per partition
    assert kafka.expected == kafka.actual == len(records)
    assert kafka.details["duplicates"] == duplicates
    partitions = kafka.details["partitions"].values()
    assert sum(p["bronze"] for p in partitions) == events and sum(p["dead_letters"] for p in partitions) == malformed
    assert by_name["bronze_silver"].expected == by_name["bronze_silver"].actual == events
    gold = by_name["silver_gold"]
    assert gold.table == GOLD and gold.expected == gold.actual > 0
    assert "2026-09-14" in gold.details["dates"]
    assert recorded(spark, "reconcile-test-clean") == {
        ("kafka_bronze", domain.tables.bronze): True,
        ("bronze_silver", domain.tables.silver): True,
        ("silver_gold", GOLD): True,
    }


def _one(spark, table: str, where: str):
    [row] = spark.sql(f"SELECT * FROM {table} WHERE {where} ORDER BY 1 LIMIT 1").collect()
    return row


@pytest.mark.parametrize("fault", ["bronze_row_deleted", "silver_row_changed", "gold_row_changed", "record_lost"])
def test_each_injected_fault_is_found_and_named(spark, stack, landed, fault):
    domain, records, start, end = landed
    valid = sorted(r.event_id for r in records if r.event_id)
    if fault == "bronze_row_deleted":
        row = _one(spark, domain.tables.bronze, f"event_id = '{valid[0]}'")
        table, change = domain.tables.bronze, f"DELETE FROM {domain.tables.bronze} WHERE event_id = '{row.event_id}'"
        failing = {"kafka_bronze": f"missing {row.kafka_topic}/{row.kafka_partition}/{row.kafka_offset}"}
        failing["bronze_silver"] = f"silver event_id={row.event_id}"  # silver holds an event bronze lost
    elif fault == "silver_row_changed":
        row = _one(spark, domain.tables.silver, f"event_id = '{valid[1]}'")
        table = domain.tables.silver
        change = f"UPDATE {table} SET latency_ms = latency_ms + 7 WHERE event_id = '{row.event_id}'"
        failing = {"bronze_silver": f"silver event_id={row.event_id}"}  # gold is checked against what it read
    elif fault == "gold_row_changed":
        row = _one(spark, GOLD, "event_date = DATE'2026-09-14'")
        table = GOLD
        change = f"UPDATE {GOLD} SET requests = requests + 1 WHERE event_date = DATE'2026-09-14' AND user_id = '{row.user_id}'"
        failing = {"silver_gold": f"event_date=2026-09-14, user_id={row.user_id}"}
    else:  # a malformed record whose dead letter is gone: it reached neither bronze nor the dead letters
        letters = spark.sql(f"SELECT * FROM {domain.tables.dead_letter} WHERE domain = '{domain.name}'")
        row = letters.where(F.col("failed_at") >= F.lit(start)).orderBy("kafka_partition", "kafka_offset").first()
        table = domain.tables.dead_letter
        change = (
            f"DELETE FROM {table} WHERE domain = '{domain.name}' AND kafka_topic = '{row.kafka_topic}' "
            f"AND kafka_partition = {row.kafka_partition} AND kafka_offset = {row.kafka_offset}"
        )
        failing = {"kafka_bronze": f"missing {row.kafka_topic}/{row.kafka_partition}/{row.kafka_offset}"}
    before = current_snapshot(spark, table)
    spark.sql(change)
    try:
        run_id = f"reconcile-test-{fault}"
        with pytest.raises(DriftFound) as raised:
            reconcile.run(spark, JobRequest(domain, start, end, run_id=run_id), settings=stack)
        for key in failing.values():
            assert key in str(raised.value)
        outcome = recorded(spark, run_id)
        assert {name for (name, _), passed in outcome.items() if not passed} == set(failing)
        [keys] = [
            json.loads(r.first_keys)
            for r in spark.table(reconcile.TABLE).where(F.col("run_id") == run_id).collect()
            if r.check_name == next(iter(failing))
        ]
        assert keys[0] == failing[next(iter(failing))]  # the diverging key comes first, in the table too
    finally:
        spark.sql(f"CALL {spark.conf.get('spark.sql.defaultCatalog')}.system.rollback_to_snapshot('{table}', {before})")


def test_records_not_yet_ingested_are_incomplete_not_drift(spark, stack, landed):
    domain, records, start, _ = landed
    late_start = datetime.now(UTC)
    extra = list(generate(domain, 5, Mix(), days=0, seed=9142, clock=lambda: datetime(2026, 9, 14, 13, tzinfo=UTC)))
    send(stack, domain, iter(extra), total=len(extra), progress=False)
    try:
        with pytest.raises(LakehouseError, match="5 records of .* not yet ingested") as raised:
            reconcile.run(
                spark, JobRequest(domain, late_start, datetime.now(UTC) + timedelta(seconds=1)), settings=stack
            )
        assert not isinstance(raised.value, DriftFound)
    finally:  # the replay takes them in (other tests find the topic as they would after a stream)
        kafka_to_bronze.run(
            spark, JobRequest(domain, late_start, datetime.now(UTC) + timedelta(seconds=1)), settings=stack
        )
    # and the repaired layers of the first interval reconcile again
    assert all(c.passed for c in reconcile.run(spark, JobRequest(domain, start, landed[3]), settings=stack))


def test_a_topic_never_created_holds_nothing_and_a_row_claiming_it_is_drift(spark, stack, landed):
    domain, records, start, end = landed
    missing = f"{domain.topic.name}.never-created"
    alone = replace(domain, topic=replace(domain.topic, name=missing))
    # The demo creates only its own domains' topics: the others reconcile as empty, not as an error.
    assert [c.passed for c in reconcile.run(spark, JobRequest(alone, start, end), settings=stack)] == [True, True, True]
    clean = reconcile.kafka_bronze(spark, stack, alone, start, end)
    assert (clean.expected, clean.actual, clean.details["topic"]) == (0, 0, f"{missing} does not exist on the broker")
    row = _one(spark, domain.tables.bronze, f"event_id = '{sorted(r.event_id for r in records if r.event_id)[2]}'")
    before = current_snapshot(spark, domain.tables.bronze)
    spark.sql(f"UPDATE {domain.tables.bronze} SET kafka_topic = '{missing}' WHERE event_id = '{row.event_id}'")
    try:
        check = reconcile.kafka_bronze(spark, stack, alone, start, end)
        assert (check.drift, check.keys) == (1, [f"extra {missing}/{row.kafka_partition}/{row.kafka_offset}"])
    finally:
        spark.sql(
            f"CALL {spark.conf.get('spark.sql.defaultCatalog')}.system.rollback_to_snapshot("
            f"'{domain.tables.bronze}', {before})"
        )


def test_gold_daily_publishes_its_window_and_the_reconcile_dag_runs_through_the_scheduler(
    spark, stack, airflow, landed
):
    domain, _, start, end = landed
    window = {"domain": domain.name, "start_date": start.isoformat(), "end_date": end.isoformat()}
    # A backfill recomputes the dates the window covers (no waiting for hourly silver runs).
    gold = airflow.trigger("gold_daily", window | {"backfill": True})
    assert airflow.wait("gold_daily", [gold], timeout_s=900) == {gold["dag_run_id"]: "success"}
    # Its last task published the asset reconcile is scheduled on, with the window. (The test
    # stack's scheduler creates no scheduled runs, asset-triggered ones included, so the run
    # below is triggered by hand, with the same window as params.)
    events = {e["uri"]: e for e in airflow.asset_events(source_dag_id="gold_daily", source_run_id=gold["dag_run_id"])}
    event = events.pop("lakehouse://gold/daily")
    # and the gold job's task reported the domain's gold tables, its lineage outlets, as updated
    tables = [spec.table.split(".") for spec in domain.gold]
    assert sorted(events) == sorted(f"iceberg://{stack.catalog.name}/{ns}/{name}" for ns, name in tables)
    assert event["extra"] == {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "domains": [domain.name],
        "backfill": True,
    }
    triggered = datetime.now(UTC)
    run = airflow.trigger("reconcile", window)
    assert airflow.wait("reconcile", [run], timeout_s=900) == {run["dag_run_id"]: "success"}
    plan = airflow.task_log("reconcile", run["dag_run_id"], "plan")
    assert f"will reconcile: --domain {domain.name} --start {start.isoformat()} --end {end.isoformat()}" in plan
    rows = (
        spark.table(reconcile.TABLE)
        .where((F.col("domain") == domain.name) & (F.col("interval_start") == F.lit(start)))
        .where(F.col("checked_at") >= F.lit(triggered))
        .collect()
    )
    assert {(r.check_name, r.passed) for r in rows} == {
        ("kafka_bronze", True),
        ("bronze_silver", True),
        ("silver_gold", True),
    }
