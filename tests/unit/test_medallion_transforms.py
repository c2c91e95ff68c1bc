"""The pure transformations of the medallion jobs, on small hand-made inputs.

Spark ones use the session's shared SparkSession (no tables are read or written)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import types as T

from lakehouse.domains import GoldTable, Rank, get_domain
from lakehouse.medallion import gold, silver
from lakehouse.medallion.kafka_to_bronze import to_rows
from lakehouse.settings import PROJECT_ROOT
from lakehouse.streaming.rows import KafkaMeta
from lakehouse.streaming.watermarks import PartitionWatermarks

T0 = datetime(2025, 6, 1, 10, tzinfo=UTC)
pytestmark = pytest.mark.spark


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


def order(event_id, offset, minutes=0, quantity=1, currency="EUR", city="Porto"):
    body = {
        "event_id": event_id,
        "event_time": (T0 + timedelta(minutes=minutes)).isoformat(),
        "order_id": f"o-{event_id}",
        "customer_id": "c-1",
        "salesman_id": "s-1",
        "product": "lamp",
        "city": city,
        "country": "PT",
        "quantity": quantity,
        "unit_price_cents": 250,
        "currency": currency,
    }
    return KafkaMeta("sales.events", 0, offset, int(T0.timestamp() * 1000)), json.dumps(body).encode()


def test_replay_rows_keep_first_copy_route_malformed_and_filter_by_window(sales):
    records = [order("a" * 8, 10), order("b" * 8, 11), order("a" * 8, 12, quantity=9), (order("c" * 8, 13)[0], b"{")]
    seen: set[str] = set()
    marks = PartitionWatermarks(sales.allowed_lateness, 1)
    batch = to_rows(sales, sales.validator(), records, seen, marks, None, T0)
    assert [(r["event_id"], r["kafka_offset"]) for r in batch.rows] == [("a" * 8, 10), ("b" * 8, 11)]
    assert json.loads(batch.rows[0]["payload"])["quantity"] == 1  # the first copy, not the later one
    assert [(d["reason"], d["kafka_topic"], d["kafka_partition"], d["kafka_offset"]) for d in batch.letters] == [
        ("invalid_json", "sales.events", 0, 13)
    ]
    assert (batch.read, batch.duplicates, batch.offsets) == (4, 1, {0: 13})
    # ids seen in an earlier chunk stay duplicates; a window keeps only events inside it
    later = to_rows(sales, sales.validator(), [order("b" * 8, 20), order("d" * 8, 21, minutes=120)], seen, marks,
                    (T0, T0 + timedelta(hours=1)), T0)  # fmt: skip
    assert (later.rows, later.duplicates, later.outside_window) == ([], 1, 1)


def frame(spark, rows, schema):
    return spark.createDataFrame(rows, schema=schema)


def test_dedup_newest_version_wins_then_first_arrival(spark):
    schema = "event_id string, event_time timestamp, ingested_at timestamp, _kafka_partition int, _kafka_offset long"
    t = T0.replace(tzinfo=None)
    rows = [
        ("a", t, t + timedelta(hours=2), 0, 5),
        ("a", t + timedelta(minutes=1), t + timedelta(hours=3), 0, 9),  # newer version
        ("b", t, t + timedelta(hours=2), 0, 7),
        ("b", t, t + timedelta(hours=1), 1, 8),  # same version, arrived first
    ]
    kept = silver.dedup(frame(spark, rows, schema)).orderBy("event_id").collect()
    assert [(r.event_id, r._kafka_offset) for r in kept] == [("a", 9), ("b", 8)]


def test_first_failed_rule_names_the_first_rule_a_row_fails(spark, sales):
    t = T0.replace(tzinfo=None)
    future = datetime(2999, 1, 1)  # after any clock the rule compares with: no need to read one here
    rows = [(1, "EUR", t), (0, "XYZ", t), (2, "XYZ", t), (3, None, t), (4, "EUR", future)]
    checked = frame(spark, rows, "quantity int, currency string, event_time timestamp").select(
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


def test_aggregate_measures_rank_and_types(spark):
    source = frame(
        spark,
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


def test_changes_update_insert_and_delete_only_what_differs(spark):
    schema = "event_date date, city string, orders long, units long"
    current = frame(spark, [(D1, "Porto", 1, 3), (D1, "Braga", 2, 2), (D1, None, 1, 1)], schema)
    fresh = frame(spark, [(D1, "Porto", 1, 4), (D1, "Faro", 1, 1), (D1, None, 1, 1)], schema)
    delta = sorted((r.city or "", r.units, r[gold.DELETE_FLAG]) for r in gold.changes(fresh, current, CITY).collect())
    assert delta == [("Braga", None, True), ("Faro", 1, False), ("Porto", 4, False)]
    assert gold.changes(current, current, CITY).count() == 0  # nothing to do on a re-run


def test_merge_sql_is_null_safe_and_limited_to_the_dates():
    sql = gold.merge_sql(CITY, "changes", [D1, D2])
    assert "t.event_date <=> s.event_date AND t.city <=> s.city" in sql
    assert "t.event_date IN (DATE'2025-06-01', DATE'2025-06-02')" in sql
    assert "WHEN MATCHED AND s._delete THEN DELETE" in sql
    assert "UPDATE SET orders = s.orders, units = s.units, generated_at = s.generated_at, run_id = s.run_id" in sql


def test_in_days_selects_whole_utc_days_as_ranges(spark):
    predicate = silver.in_days("t", [D2, D1, date(2025, 6, 5)])
    assert predicate.count(" OR ") == 1  # D1 and D2 are one range
    moments = [datetime(2025, 5, 31, 23, 59, 59), datetime(2025, 6, 1), datetime(2025, 6, 2, 23), datetime(2025, 6, 3),
               datetime(2025, 6, 5, 12)]  # fmt: skip
    picked = frame(spark, [(m,) for m in moments], "t timestamp").where(predicate).collect()
    assert [r.t for r in picked] == moments[1:3] + moments[4:]
    assert frame(spark, [(moments[0],)], "t timestamp").where(silver.in_days("t", [])).count() == 0
