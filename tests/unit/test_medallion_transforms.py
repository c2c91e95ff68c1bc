"""The pure transformations of the medallion jobs, on small hand-made inputs.

Spark ones use `local_spark` (no stack: no tables are read or written)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import types as T

from lakehouse.domains import GoldTable, Rank, get_domain
from lakehouse.medallion import gold, silver
from lakehouse.medallion.kafka_to_bronze import bronze_rows, dead_letter_rows, judge
from lakehouse.settings import PROJECT_ROOT

T0 = datetime(2025, 6, 1, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def sales():
    return get_domain(PROJECT_ROOT / "catalog", "sales")


def test_dates_between_is_half_open():
    assert gold.dates_between(T0, T0 + timedelta(hours=1)) == [date(2025, 6, 1)]
    midnight = datetime(2025, 6, 2, tzinfo=UTC)
    assert gold.dates_between(midnight - timedelta(days=2), midnight) == [date(2025, 5, 31), date(2025, 6, 1)]
    assert gold.dates_between(midnight - timedelta(minutes=1), midnight + timedelta(minutes=1)) == [
        date(2025, 6, 1),
        date(2025, 6, 2),
    ]


def order(event_id, partition, offset, minutes=0, quantity=1):
    body = {
        "event_id": event_id,
        "event_time": (T0 + timedelta(minutes=minutes)).isoformat(),
        "order_id": f"o-{event_id}",
        "customer_id": "c-1",
        "salesman_id": "s-1",
        "product": "lamp",
        "city": "Porto",
        "country": "PT",
        "quantity": quantity,
        "unit_price_cents": 250,
        "currency": "EUR",
    }
    return ("sales.events", partition, offset, T0.replace(tzinfo=None), json.dumps(body).encode())


def test_replay_keeps_the_first_copy_routes_malformed_and_flags_late_per_partition(local_spark, sales):
    """The replay's Kafka records -> (contract in mapInArrow) -> bronze rows and dead letters."""
    lateness = int(sales.allowed_lateness.total_seconds() // 60)
    records = [
        order("a" * 8, 0, 10),
        order("b" * 8, 0, 11, minutes=lateness + 30),
        order("a" * 8, 1, 12, quantity=9),  # a later copy on another partition: dropped
        order("c" * 8, 0, 13),  # 30 minutes past the allowed lateness behind b: late
        order("d" * 8, 1, 14),  # partition 1 saw nothing later: on time
        ("sales.events", 0, 15, T0.replace(tzinfo=None), b"{"),
        ("sales.events", 1, 16, T0.replace(tzinfo=None), b"\xff"),
        ("sales.events", 1, 17, T0.replace(tzinfo=None), None),
    ]
    kafka = local_spark.createDataFrame(
        records, "topic string, partition int, offset long, timestamp timestamp, value binary"
    )
    judged = kafka.mapInArrow(judge(sales), "kafka_topic string, kafka_partition int, kafka_offset bigint, "
                              "kafka_timestamp timestamp, payload string, reason string, detail string, "
                              "event_id string, event_time timestamp")  # fmt: skip
    rows = {r.event_id: r for r in bronze_rows(judged, sales).collect()}
    assert sorted(rows) == ["a" * 8, "b" * 8, "c" * 8, "d" * 8]
    assert (rows["a" * 8].kafka_offset, json.loads(rows["a" * 8].payload)["quantity"]) == (10, 1)  # the first copy
    assert {k: r.is_late for k, r in rows.items()} == {"a" * 8: False, "b" * 8: False, "c" * 8: True, "d" * 8: False}
    assert rows["b" * 8].event_time == (T0 + timedelta(minutes=lateness + 30)).replace(tzinfo=None)
    assert rows["a" * 8].event_type == sales.event_type
    letters = sorted((r.kafka_offset, r.reason, r.payload, r.domain) for r in dead_letter_rows(judged, sales).collect())
    assert letters == [
        (15, "invalid_json", "{", "sales"),
        (16, "invalid_encoding", "\ufffd", "sales"),  # kept as text, the invalid byte replaced
        (17, "empty", None, "sales"),
    ]


def frame(spark, rows, schema):
    return spark.createDataFrame(rows, schema=schema)


def test_dedup_newest_version_wins_then_first_arrival(local_spark):
    schema = "event_id string, event_time timestamp, ingested_at timestamp, _kafka_partition int, _kafka_offset long"
    t = T0.replace(tzinfo=None)
    rows = [
        ("a", t, t + timedelta(hours=2), 0, 5),
        ("a", t + timedelta(minutes=1), t + timedelta(hours=3), 0, 9),  # newer version
        ("b", t, t + timedelta(hours=2), 0, 7),
        ("b", t, t + timedelta(hours=1), 1, 8),  # same version, arrived first
    ]
    kept = silver.dedup(frame(local_spark, rows, schema)).orderBy("event_id").collect()
    assert [(r.event_id, r._kafka_offset) for r in kept] == [("a", 9), ("b", 8)]


def test_first_failed_rule_names_the_first_rule_a_row_fails(local_spark, sales):
    t = T0.replace(tzinfo=None)
    future = datetime(2999, 1, 1)  # after any clock the rule compares with: no need to read one here
    rows = [(1, "EUR", t), (0, "XYZ", t), (2, "XYZ", t), (3, None, t), (4, "EUR", future)]
    checked = frame(local_spark, rows, "quantity int, currency string, event_time timestamp").select(
        "quantity", silver.first_failed_rule(sales).alias("rule")
    )
    assert sorted(tuple(r) for r in checked.collect()) == [
        (0, "positive_quantity"),  # fails two rules: the first one is named
        (1, None),
        (2, "known_currency"),
        (3, "known_currency"),  # a rule that is NULL fails
        (4, "event_not_in_future"),
    ]


CITY = GoldTable(
    table="gold.t",
    grain=("event_date", "city"),
    measures={"orders": "count(DISTINCT order_id)", "units": "sum(quantity)"},
)
RANKED = GoldTable(
    table="gold.r",
    grain=("event_date", "salesman"),
    measures={"revenue": "sum(amount)"},
    rank=Rank(column="position", within=("event_date",), order_by=("revenue DESC", "salesman"), keep=2),
)
SILVER = "event_date date, city string, salesman string, order_id string, quantity int, amount long"
D1, D2 = date(2025, 6, 1), date(2025, 6, 2)


def test_aggregate_measures_rank_and_types(local_spark):
    source = frame(
        local_spark,
        [
            (D1, "Porto", "x", "o1", 2, 100),
            (D1, "Porto", "y", "o1", 1, 300),  # one order, two lines
            (D1, None, "z", "o2", 5, 300),  # an unknown city is a group of its own
            (D2, "Lisbon", "x", "o3", 1, 50),
        ],
        SILVER,
    )
    schema = T.StructType(
        [T.StructField(c, t) for c, t in [("event_date", T.DateType()), ("city", T.StringType()),
                                          ("orders", T.LongType()), ("units", T.LongType())]]
    )  # fmt: skip
    by_city = sorted(tuple(r) for r in gold.aggregate(source, CITY, schema).collect() if r.city)
    assert by_city == [(D1, "Porto", 1, 3), (D2, "Lisbon", 1, 1)]
    ranked_schema = T.StructType(
        [T.StructField(c, t) for c, t in [("event_date", T.DateType()), ("salesman", T.StringType()),
                                          ("revenue", T.LongType()), ("position", T.IntegerType())]]
    )  # fmt: skip
    top = sorted(tuple(r) for r in gold.aggregate(source, RANKED, ranked_schema).collect())
    # y and z tie on 300: the tie-break (salesman) decides; x is third on D1 and dropped (keep 2)
    assert top == [(D1, "y", 300, 1), (D1, "z", 300, 2), (D2, "x", 50, 1)]


def test_changes_update_insert_and_delete_only_what_differs(local_spark):
    schema = "event_date date, city string, orders long, units long"
    current = frame(local_spark, [(D1, "Porto", 1, 3), (D1, "Braga", 2, 2), (D1, None, 1, 1)], schema)
    fresh = frame(local_spark, [(D1, "Porto", 1, 4), (D1, "Faro", 1, 1), (D1, None, 1, 1)], schema)
    delta = sorted((r.city or "", r.units, r[gold.DELETE_FLAG]) for r in gold.changes(fresh, current, CITY).collect())
    assert delta == [("Braga", None, True), ("Faro", 1, False), ("Porto", 4, False)]
    assert gold.changes(current, current, CITY).count() == 0  # nothing to do on a re-run


def test_merge_sql_is_null_safe_and_limited_to_the_dates():
    sql = gold.merge_sql(CITY, "changes", [D1, D2])
    assert "t.event_date <=> s.event_date AND t.city <=> s.city" in sql
    assert "t.event_date IN (DATE'2025-06-01', DATE'2025-06-02')" in sql
    assert "WHEN MATCHED AND s._delete THEN DELETE" in sql
    assert "UPDATE SET orders = s.orders, units = s.units, generated_at = s.generated_at, run_id = s.run_id" in sql


def test_in_days_selects_whole_utc_days_as_ranges(local_spark):
    predicate = silver.in_days("t", [D2, D1, date(2025, 6, 5)])
    assert predicate.count(" OR ") == 1  # D1 and D2 are one range
    moments = [datetime(2025, 5, 31, 23, 59, 59), datetime(2025, 6, 1), datetime(2025, 6, 2, 23), datetime(2025, 6, 3),
               datetime(2025, 6, 5, 12)]  # fmt: skip
    picked = frame(local_spark, [(m,) for m in moments], "t timestamp").where(predicate).collect()
    assert [r.t for r in picked] == moments[1:3] + moments[4:]
    assert frame(local_spark, [(moments[0],)], "t timestamp").where(silver.in_days("t", [])).count() == 0
