"""Simulated history for the medallion tests, and the expected gold computed independently.

The expected tables are computed here with pandas straight from the generated events, never
with the jobs' code or the domain's gold expressions, so a mistake in either shows up.
"""

from __future__ import annotations

import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
from pyspark.sql import functions as F

from lakehouse.domains import Domain
from lakehouse.events.contracts import Contract, check_record, parse_event_time
from lakehouse.events.generator import Mix, generate


@dataclass(frozen=True)
class KafkaMeta:
    """Where a record is in Kafka, and its record timestamp."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None

    @property
    def timestamp(self) -> datetime | None:
        return None if self.timestamp_ms is None else datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


# Rows written straight into bronze never came from Kafka: their topic is marked so that no
# recovery replay takes their made-up offsets for bronze's position in the real topic, and no
# reconciliation looks for them in Kafka.
SIMULATED = ".simulated"


def bronze_row(
    domain: Domain, event: dict, value: bytes, meta: KafkaMeta, is_late: bool, ingested_at: datetime
) -> dict:
    """A bronze row as the stream writes it, for tests and benchmarks that fill bronze directly
    (from the topic `<topic>.simulated`)."""
    return {
        "event_id": str(event[domain.dedup_key]),
        "event_type": domain.event_type,
        "event_time": parse_event_time(event[domain.event_time_field]).astimezone(UTC),
        "payload": value.decode("utf-8"),
        "kafka_topic": meta.topic + SIMULATED,
        "kafka_partition": meta.partition,
        "kafka_offset": meta.offset,
        "kafka_timestamp": meta.timestamp,
        "is_late": is_late,
        "ingested_at": ingested_at,
    }


@dataclass
class History:
    rows: list[dict]  # bronze rows (with duplicates, as a replay might leave them)
    events: list[dict]  # every valid event sent, duplicates included


def simulate(domain: Domain, count: int, days: float, end: datetime, mix: Mix, seed: int) -> History:
    """`count` records over `days` days up to `end`. A record's ingestion time is when it was
    sent, so late events are ingested long after their event time."""
    start = end - timedelta(days=days)
    step = timedelta(days=days) / count
    contract = Contract(domain.contract)
    offsets = {p: uuid.uuid4().int % 10**9 * 1000 for p in range(domain.topic.partitions)}
    rows, events = [], []
    for i, record in enumerate(generate(domain, count, mix=mix, days=days, seed=seed, clock=lambda: end)):
        verdict = check_record(domain, contract, record.value)
        if not verdict.valid:
            continue
        arrival = start + step * i
        partition = zlib.crc32(record.key) % domain.topic.partitions
        offsets[partition] += 1
        meta = KafkaMeta(domain.topic.name, partition, offsets[partition], int(arrival.timestamp() * 1000))
        rows.append(bronze_row(domain, verdict.event, record.value, meta, False, arrival))
        events.append(verdict.event)
    return History(rows, events)


def event(domain: Domain, history: History, event_time: datetime, ingested_at: datetime, **fields) -> dict:
    """One more bronze row: a copy of the first event with a new id, time and fields."""
    body = {**history.events[0], "event_id": uuid.uuid4().hex, "event_time": event_time.isoformat(), **fields}
    meta = KafkaMeta(domain.topic.name, 0, uuid.uuid4().int % 10**12, int(ingested_at.timestamp() * 1000))
    verdict = check_record(domain, Contract(domain.contract), json.dumps(body).encode())
    assert verdict.valid, verdict.detail
    history.events.append(verdict.event)
    return bronze_row(domain, verdict.event, json.dumps(body).encode(), meta, False, ingested_at)


def append_bronze(catalog, domain: Domain, rows: list[dict]) -> None:
    table = catalog.load_table(domain.tables.bronze)
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def unique_events(events: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(events)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
    frame = frame.sort_values("event_time").drop_duplicates("event_id", keep="last")
    frame["event_date"] = frame["event_time"].dt.date
    return frame


def expected_sales(events: list[dict]) -> dict[str, pd.DataFrame]:
    e = unique_events(events)
    e["amount"] = e["quantity"] * e["unit_price_cents"]

    def per(keys):
        return e.groupby(keys, as_index=False).agg(
            orders=("order_id", "nunique"), units=("quantity", "sum"), revenue_cents=("amount", "sum")
        )

    by_city = per(["event_date", "country", "city", "currency"])
    salesmen = per(["event_date", "country", "currency", "salesman_id"])
    salesmen = salesmen.sort_values(
        ["event_date", "country", "currency", "revenue_cents", "salesman_id"], ascending=[True, True, True, False, True]
    )
    salesmen["sales_rank"] = salesmen.groupby(["event_date", "country", "currency"]).cumcount() + 1
    salesmen = salesmen[salesmen["sales_rank"] <= 5]
    customers = e.groupby(["event_date", "customer_id", "currency"], as_index=False).agg(
        orders=("order_id", "nunique"),
        units=("quantity", "sum"),
        revenue_cents=("amount", "sum"),
        first_order_at=("event_time", "min"),
        last_order_at=("event_time", "max"),
    )
    return {
        "gold.daily_sales_by_city": by_city,
        "gold.daily_top_salesmen": salesmen,
        "gold.daily_customer_activity": customers,
    }


def expected_conversions(events: list[dict]) -> dict[str, pd.DataFrame]:
    e = unique_events(events)
    e["is_error"] = e["status"] == "error"
    usage = e.groupby(["event_date", "user_id"], as_index=False).agg(
        requests=("event_id", "count"),
        errors=("is_error", "sum"),
        p95_latency_ms=("latency_ms", lambda s: s.quantile(0.95)),
    )
    return {"gold.daily_usage_by_user": usage}


def normalise(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Rows as sorted tuples of plain Python values, for exact comparison across engines."""
    out = []
    for row in frame[columns].itertuples(index=False):
        values = []
        for v in row:
            if isinstance(v, pd.Timestamp):
                v = v.to_pydatetime()
            if isinstance(v, datetime):
                v = v.astimezone(UTC) if v.tzinfo else v.replace(tzinfo=UTC)
            elif hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float):
                v = round(v, 6)
            values.append(v)
        out.append(tuple(values))
    return sorted(out)


VOLATILE = ("processed_at", "run_id", "generated_at")


def hours(start: datetime, end: datetime):
    moment = start
    while moment < end:
        yield moment, moment + timedelta(hours=1)
        moment += timedelta(hours=1)


def gold_rows(spark, table: str, dates) -> list[tuple]:
    frame = spark.table(table).where(F.col("event_date").isin(list(dates)))
    columns = [c for c in frame.columns if c not in VOLATILE]
    return normalise(frame.select(*columns).toPandas(), columns)


def silver_rows(spark, domain, ids) -> list[tuple]:
    frame = spark.table(domain.tables.silver).where(F.col("event_id").isin(list(ids)))
    columns = [c for c in frame.columns if c not in VOLATILE]
    return normalise(frame.select(*columns).toPandas(), columns)


def snapshots(spark, tables) -> dict:
    return {t: spark.sql(f"SELECT count(*) AS n FROM {t}.snapshots").first().n for t in tables}


def data_files(spark, tables) -> dict:
    return {t: sorted(r.file_path for r in spark.sql(f"SELECT file_path FROM {t}.files").collect()) for t in tables}


def assert_gold_matches(spark, expected: dict, dates) -> None:
    for table, frame in expected.items():
        columns = list(frame.columns)
        want = normalise(frame[frame["event_date"].isin(list(dates))], columns)
        got = [row for row in gold_rows(spark, table, dates)]
        got_columns = [c for c in spark.table(table).columns if c not in VOLATILE]
        got = normalise_order(got, got_columns, columns)
        assert got == want, f"{table}: {len(got)} rows vs {len(want)} expected; first diff " + str(
            next(((g, w) for g, w in zip(got, want, strict=False) if g != w), None)
        )


def normalise_order(rows, have, want):
    index = [have.index(c) for c in want]
    return sorted(tuple(r[i] for i in index) for r in rows)
