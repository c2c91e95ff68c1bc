"""Bronze -> silver on the real catalog: typed, conformed, deduplicated, quarantined, idempotent."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from lakehouse.domains import get_domain
from lakehouse.events.contracts import Contract, check_record
from lakehouse.events.generator import Mix, generate
from lakehouse.jobs import JobRequest
from lakehouse.medallion.bronze_to_silver import run
from tests.medallion_data import KafkaMeta, bronze_row

pytestmark = pytest.mark.slow

HOUR = datetime(2026, 3, 1, 10, tzinfo=UTC)


def bronze_rows(domain, events, ingested_at, start_offset):
    contract = Contract(domain.contract)
    rows = []
    for offset, value in enumerate(events, start=start_offset):
        verdict = check_record(domain, contract, value)
        assert verdict.valid, verdict.detail
        meta = KafkaMeta(domain.topic.name, 0, offset, int(ingested_at.timestamp() * 1000))
        rows.append(bronze_row(domain, verdict.event, value, meta, False, ingested_at))
    return rows


def append(catalog, domain, rows):
    table = catalog.load_table(domain.tables.bronze)
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def silver_state(spark, ids):
    frame = spark.table("silver.sales_orders").where(F.col("event_id").isin(ids))
    return sorted(tuple(r) for r in frame.drop("processed_at", "run_id").collect())


def test_promotion_dedup_quarantine_and_idempotence(spark, iceberg_catalog, stack):
    domain = get_domain(stack.definitions_dir, "sales")
    events = [json.loads(r.value) for r in generate(domain, 40, mix=Mix(0, 0, 0, 0), seed=uuid.uuid4().int % 10_000)]
    events[0]["city"] = "  new   york "  # conformed to "New York"
    events[1]["currency"] = "JPY"  # passes the contract, fails the known_currency rule
    older = dict(events[2], quantity=1)
    newer = dict(
        events[2],
        quantity=5,
        event_time=(
            datetime.fromisoformat(events[2]["event_time"].replace("Z", "+00:00")) + timedelta(minutes=1)
        ).isoformat(),
    )
    values = [json.dumps(e).encode() for e in events[3:]] + [
        json.dumps(events[0]).encode(),
        json.dumps(events[1]).encode(),
    ]
    values += [
        json.dumps(older).encode(),
        json.dumps(newer).encode(),
        json.dumps(older).encode(),
    ]  # duplicates of one event_id
    base = uuid.uuid4().int % 1_000_000 * 100
    append(iceberg_catalog, domain, bronze_rows(domain, values, HOUR + timedelta(minutes=5), base))

    first = run(spark, JobRequest(domain, HOUR, HOUR + timedelta(hours=1)))
    assert first.rows_read == len(values)
    assert first.rows_quarantined == 1
    assert first.rows_written == first.rows_merged == 39  # 40 events, one quarantined, dups collapsed
    ids = [e["event_id"] for e in events]
    rows = {r.event_id: r for r in spark.table("silver.sales_orders").where(F.col("event_id").isin(ids)).collect()}
    assert len(rows) == 39 and events[1]["event_id"] not in rows
    assert rows[events[0]["event_id"]].city == "New York"
    assert rows[events[2]["event_id"]].quantity == 5  # the newer version wins
    winner = rows[events[2]["event_id"]]
    assert winner.amount_cents == 5 * events[2]["unit_price_cents"] and winner.run_id == first.run_id
    quarantine = spark.sql(
        f"SELECT rule, kafka_offset FROM silver.quarantine WHERE event_id = '{events[1]['event_id']}'"
    ).collect()
    assert [q.rule for q in quarantine] == ["known_currency"]

    before = silver_state(spark, ids)
    second = run(spark, JobRequest(domain, HOUR, HOUR + timedelta(hours=1)))
    assert second.rows_merged == 0
    assert second.snapshot_ids == first.snapshot_ids  # no new snapshot, so no new data files
    assert silver_state(spark, ids) == before

    audit = spark.sql(
        f"SELECT status, rows_read, rows_merged FROM ops.job_runs WHERE run_id IN ('{first.run_id}', '{second.run_id}')"
    ).collect()
    assert sorted((a.status, a.rows_read, a.rows_merged) for a in audit) == [
        ("success", len(values), 0),
        ("success", len(values), 39),
    ]
