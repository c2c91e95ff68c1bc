"""The Flink-free building blocks of the stream: rows, watermarks, idempotent Iceberg appends."""

from datetime import UTC, datetime, timedelta

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from lakehouse.catalog.definitions import load_definitions
from lakehouse.domains import load_domains
from lakehouse.events.contracts import check_record
from lakehouse.events.generator import Mix, generate
from lakehouse.settings import PROJECT_ROOT
from lakehouse.streaming.iceberg_commit import OFFSETS_PROPERTY, append_exactly_once, committed_offsets
from lakehouse.streaming.rows import KafkaMeta, bronze_row, dead_letter_row
from lakehouse.streaming.watermarks import PartitionWatermarks

SALES = load_domains(PROJECT_ROOT / "catalog")["sales"]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def bronze(tmp_path):
    definitions = {d.identifier: d for d in load_definitions(PROJECT_ROOT / "catalog")}
    catalog = SqlCatalog("unit", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/w")
    catalog.create_namespace("bronze")
    d = definitions["bronze.sales_events"]
    return catalog.create_table(d.identifier, schema=d.schema(), partition_spec=d.partition_spec(d.schema()))


def rows(count, partition=0, start=0):
    records = generate(SALES, count, mix=Mix(0, 0, 0, 0), seed=start + partition, clock=lambda: NOW)
    validator = SALES.validator()
    out = []
    for offset, record in enumerate(records, start=start):
        verdict = check_record(SALES, validator, record.value)
        meta = KafkaMeta("sales.events", partition, offset, int(NOW.timestamp() * 1000))
        out.append(bronze_row(SALES, verdict.event, record.value, meta, False, NOW))
    return out


def test_bronze_and_dead_letter_rows():
    record = next(generate(SALES, 1, mix=Mix(0, 0, 0, 0), seed=1, clock=lambda: NOW))
    verdict = check_record(SALES, SALES.validator(), record.value)
    meta = KafkaMeta("sales.events", 2, 41, 1_763_640_000_000)
    row = bronze_row(SALES, verdict.event, record.value, meta, True, NOW)
    assert row["event_id"] == record.event_id and row["event_type"] == "order_placed"
    assert row["event_time"] == NOW and row["is_late"] is True
    assert (row["kafka_partition"], row["kafka_offset"]) == (2, 41)
    assert row["payload"] == record.value.decode()
    bad = check_record(SALES, SALES.validator(), b"\xffnot-json")
    letter = dead_letter_row(SALES, bad, b"\xffnot-json", meta, NOW)
    assert letter["reason"] == "invalid_encoding" and letter["payload"] == "\ufffdnot-json"
    assert (letter["kafka_topic"], letter["kafka_offset"]) == ("sales.events", 41)


def test_watermark_is_min_over_partitions_minus_lateness():
    marks = PartitionWatermarks(timedelta(minutes=10), partitions=2)
    t = int(NOW.timestamp() * 1000)
    minute = 60_000
    assert marks.observe(0, t) is False
    assert marks.observe(0, t - 60 * minute) is False  # partition 1 not seen yet: no watermark
    assert marks.observe(1, t + 30 * minute) is False
    assert marks.watermark_ms == t - 10 * minute  # partition 0 holds it back
    assert marks.observe(1, t - 5 * minute) is False  # behind, but within the lateness
    assert marks.observe(0, t - 11 * minute) is True  # behind the watermark: late, flagged
    assert marks.max_event_ms == {0: t, 1: t + 30 * minute}  # late events never move it


def test_replayed_rows_are_never_appended_twice(bronze):
    first = rows(50, partition=0) + rows(30, partition=1)
    assert append_exactly_once(bronze, first) == 80
    assert committed_offsets(bronze) == {"sales.events": {0: 49, 1: 29}}
    # a replay from an older checkpoint: the same rows plus new ones
    replay = first[20:] + rows(10, partition=0, start=50)
    assert append_exactly_once(bronze, replay) == 10
    assert append_exactly_once(bronze, replay) == 0
    table = bronze.refresh()
    ids = table.scan().to_arrow()["event_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 90
    assert table.current_snapshot().summary[OFFSETS_PROPERTY] == '{"sales.events": {"0": 59, "1": 29}}'


def test_progress_moves_offsets_past_records_without_rows(bronze):
    append_exactly_once(bronze, rows(5))
    assert append_exactly_once(bronze, [], progress={"sales.events": {0: 9, 1: 3}}) == 0
    assert committed_offsets(bronze.refresh()) == {"sales.events": {0: 9, 1: 3}}
    assert bronze.refresh().scan().to_arrow().num_rows == 5
