"""The silver -> gold job for one domain and one interval: recompute the touched dates, MERGE.

Which dates: normally, the event dates of the silver rows *ingested* in [start, end), so a
late event (ingested today, dated last week) recomputes last week's date; with backfill, the
dates [start, end) overlaps. Each gold table's rows for those dates are recomputed from the
whole of silver for those dates, compared with what gold holds, and only the difference is
merged (changed rows updated, new ones inserted, vanished keys deleted). A re-run changes
nothing and commits nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.domains import Domain
from lakehouse.errors import ConfigError
from lakehouse.medallion import gold
from lakehouse.medallion.runs import RunResult, fault_point, job_run


def touched_dates(spark: SparkSession, domain: Domain, start: datetime, end: datetime, backfill: bool) -> list:
    if backfill:
        return gold.dates_between(start, end)
    rows = (
        spark.table(domain.tables.silver)
        .where((F.col("ingested_at") >= F.lit(start)) & (F.col("ingested_at") < F.lit(end)))
        .select("event_date")
        .distinct()
        .collect()
    )
    return sorted(r.event_date for r in rows if r.event_date is not None)


def run(
    spark: SparkSession,
    domain: Domain,
    start: datetime,
    end: datetime,
    backfill: bool = False,
    dry_run: bool = False,
    run_id: str | None = None,
) -> RunResult:
    if not domain.gold:
        raise ConfigError(f"domain {domain.name} has no gold tables (a `gold:` section in {domain.source})")
    tables = [spec.table for spec in domain.gold]
    with job_run(spark, "silver_to_gold", domain, start, end, tables, backfill, dry_run, run_id) as result:
        _recompute(spark, domain, start, end, backfill, dry_run, result)
    return result


def _recompute(spark, domain, start, end, backfill, dry_run, result):
    dates = touched_dates(spark, domain, start, end, backfill)
    result.details["dates"] = [d.isoformat() for d in dates]
    if not dates:
        return
    source = gold.in_dates(spark.table(domain.tables.silver), dates).cache()
    try:
        result.rows_read = source.count()
        generated_at = datetime.now(UTC)
        for spec in domain.gold:
            target = spark.table(spec.table)
            fresh = gold.aggregate(source, spec, target.schema).cache()
            delta = gold.changes(fresh, gold.in_dates(target, dates), spec).cache()
            try:
                result.rows_written += fresh.count()
                merged = delta.count()
                result.rows_merged += merged
                if merged and not dry_run:
                    view = f"gold_changes_{spec.table.replace('.', '_')}"
                    delta.withColumn("generated_at", F.lit(generated_at)).withColumn(
                        "run_id", F.lit(result.run_id)
                    ).createOrReplaceTempView(view)
                    spark.sql(gold.merge_sql(spec, view, dates))
            finally:
                fresh.unpersist()
                delta.unpersist()
            fault_point(f"gold-after-{spec.table}")
    finally:
        source.unpersist()
