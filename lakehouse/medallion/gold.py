"""Silver -> gold transformations: pure functions on Spark DataFrames, driven by the domain's
`gold` section (grain, measures, optional rank)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.domains import GoldTable

DELETE_FLAG = "_delete"


def dates_between(start: datetime, end: datetime) -> list[date]:
    """The UTC dates that [start, end) overlaps."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def aggregate(silver: DataFrame, spec: GoldTable, schema: T.StructType) -> DataFrame:
    """One row per grain with the measures (and rank, keeping the top N), typed as the gold table."""
    grouped = silver.groupBy(*spec.grain).agg(*[F.expr(expr).alias(name) for name, expr in spec.measures.items()])
    if spec.rank:
        rank = spec.rank
        grouped = grouped.selectExpr(
            "*",
            f"row_number() OVER (PARTITION BY {', '.join(rank.within)} ORDER BY {', '.join(rank.order_by)})"
            f" AS {rank.column}",
        )
        if rank.keep:
            grouped = grouped.where(F.col(rank.column) <= rank.keep)
    types = {f.name: f.dataType for f in schema.fields}
    return grouped.select(*[F.col(c).cast(types[c]).alias(c) for c in spec.columns])


def changes(fresh: DataFrame, current: DataFrame, spec: GoldTable) -> DataFrame:
    """What turns `current` (gold rows of the recomputed dates) into `fresh`: rows new or with
    different values, plus the grain keys that no longer exist, flagged with _delete."""
    upserts = fresh.select(*spec.columns).subtract(current.select(*spec.columns))
    vanished = current.select(*spec.grain).subtract(fresh.select(*spec.grain))
    values = [c for c in spec.columns if c not in spec.grain]
    types = {f.name: f.dataType for f in fresh.schema.fields}
    deletes = vanished.select(*spec.grain, *[F.lit(None).cast(types[c]).alias(c) for c in values])
    return upserts.withColumn(DELETE_FLAG, F.lit(False)).unionByName(deletes.withColumn(DELETE_FLAG, F.lit(True)))


def merge_sql(spec: GoldTable, source_view: str, dates: list[date], target: str | None = None) -> str:
    """MERGE INTO the gold table (or `target`, a branch of it) on its grain (null-safe) for the
    recomputed dates."""
    on = " AND ".join(f"t.{k} <=> s.{k}" for k in spec.grain)
    in_dates = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
    values = [c for c in spec.columns if c not in spec.grain] + ["generated_at", "run_id"]
    columns = [*spec.grain, *values]
    return f"""MERGE INTO {target or spec.table} t USING {source_view} s
        ON {on} AND t.event_date IN ({in_dates})
        WHEN MATCHED AND s.{DELETE_FLAG} THEN DELETE
        WHEN MATCHED THEN UPDATE SET {", ".join(f"{c} = s.{c}" for c in values)}
        WHEN NOT MATCHED AND NOT s.{DELETE_FLAG} THEN INSERT ({", ".join(columns)})
            VALUES ({", ".join(f"s.{c}" for c in columns)})"""


def in_dates(frame: DataFrame, dates: list[date]) -> DataFrame:
    """Rows of event_date in `dates`; the event_time range lets Iceberg prune silver's day partitions."""
    if not dates:
        return frame.where(F.lit(False))
    condition = F.col("event_date").isin(dates)
    if "event_time" in frame.columns:
        low = datetime.combine(min(dates), time(0), tzinfo=UTC)
        high = datetime.combine(max(dates) + timedelta(days=1), time(0), tzinfo=UTC)
        condition &= (F.col("event_time") >= F.lit(low)) & (F.col("event_time") < F.lit(high))
    return frame.where(condition)
