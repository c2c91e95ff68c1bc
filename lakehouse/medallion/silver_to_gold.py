"""The silver -> gold job for one domain and one interval: recompute the touched dates, MERGE.

Which dates: normally, the event dates of the silver rows *ingested* in [start, end), so a
late event (ingested today, dated last week) recomputes last week's date; with backfill, the
dates [start, end) overlaps. Each gold table's rows for those dates are recomputed from the
whole of silver for those dates, compared with what gold holds, and only the difference is
merged (changed rows updated, new ones inserted, vanished keys deleted). A re-run changes
nothing and commits nothing.

Write-audit-publish: each changed gold table's MERGE commits to the run's branch of it; the
table's `quality.gold` expectations (and `matches_silver`, the cross-table check) validate the
touched dates on those branches, and `main` of every table moves only when all of them pass.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.domains import Domain
from lakehouse.errors import ConfigError
from lakehouse.jobs import JobRequest
from lakehouse.medallion import gold, quality, wap
from lakehouse.medallion.runs import RunResult, current_snapshot, fault_point, job_run, timed


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


def run(spark: SparkSession, request: JobRequest) -> RunResult:
    domain = request.domain
    if not domain.gold:
        raise ConfigError(f"domain {domain.name} has no gold tables (a `gold:` section in {domain.source})")
    if domain.quality.gold and not request.dry_run:
        quality.preload()  # the gate's import runs beside the job's Spark work
    with job_run(spark, "silver_to_gold", request, [spec.table for spec in domain.gold]) as result:
        _recompute(spark, request, result)
    return result


def _recompute(spark, request: JobRequest, result):
    domain, dry_run = request.domain, request.dry_run
    dates = touched_dates(spark, domain, request.start, request.end, request.backfill)
    result.details["dates"] = [d.isoformat() for d in dates]
    if not dates:
        return
    # One silver snapshot for the aggregates and for the gate's cross-table check: an hourly
    # silver run may publish while this job runs, and gold must match what it was computed from.
    snapshot = current_snapshot(spark, domain.tables.silver)
    result.details["silver_snapshot"] = snapshot  # what reconciliation compares this run's dates with
    silver = f"{domain.tables.silver} VERSION AS OF {snapshot}"
    source = gold.in_dates(spark.sql(f"SELECT * FROM {silver}"), dates).cache()
    branches: dict = {}  # gold table -> its audit branch, for the tables this run changed
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
                    branch = branches[spec.table] = wap.branch_name(result.run_id)
                    wap.create(spark, spec.table, branch)
                    with timed(result, "merge"):
                        spark.sql(gold.merge_sql(spec, view, dates, wap.branch_table(spec.table, branch)))
            finally:
                fresh.unpersist()
                delta.unpersist()
            fault_point(f"gold-after-{spec.table}")
        if branches:
            _audit_and_publish(spark, domain, dates, branches, result, source, silver)
    except BaseException as exc:
        if not isinstance(exc, quality.QualityGateFailed):
            for table, branch in branches.items():
                wap.drop(spark, table, branch)
        raise
    finally:
        source.unpersist()


def gate_batches(
    spark: SparkSession, domain: Domain, spec, dates: list, table: str | None, silver: str, against: str
) -> list:
    """The gate's batches for one gold table: its rows of `dates` (read from `table`, a branch
    of it) against its `quality.gold` expectations, and, if it asks for the cross-table check,
    the rows that differ from the aggregates recomputed in SQL over `silver` (a table or view;
    `against` names it in the results). The table's rows are cached (the second batch reads
    them too): the caller unpersists them."""
    checks = domain.quality.gold.get(spec.table)
    if checks is None:
        return []
    name = spec.table.replace(".", "_")
    rows = gold.in_dates(spark.table(table or spec.table), dates).cache()
    batches = [quality.Batch(spec.table, name, rows, quality.suite_expectations(checks.expectations))]
    if checks.matches_silver:
        rows.createOrReplaceTempView(f"quality_{name}")
        differ = spark.sql(quality.matches_silver_query(spec, silver, dates).replace("{batch}", f"quality_{name}"))
        batches.append(
            quality.Batch(
                spec.table,
                f"{name}_{quality.MATCHES_SILVER}",
                differ,
                [quality.matches_silver_expectation(against)],
                rows_are_unexpected=True,
            )
        )
    return batches


def check(
    spark: SparkSession,
    domain: Domain,
    specs: list,
    dates: list,
    tables: dict | None = None,
    *,
    run_id: str,
    job: str = "silver_to_gold",
    branch: str | None = None,
    details: dict | None = None,
    silver: str | None = None,
    against: str | None = None,
) -> list[quality.Report]:
    """Validate the gold tables' rows of `dates` (on `tables[table]`, a branch, or else main)
    against `silver` (default: its main), recording the outcomes under `run_id`; one Report
    per table."""
    silver = silver or domain.tables.silver
    batches = []
    try:
        for spec in specs:
            batches += gate_batches(
                spark, domain, spec, dates, (tables or {}).get(spec.table), silver, against or silver
            )
        return quality.gate(spark, batches, run_id, job, domain.name, branch, {} if details is None else details)
    finally:
        for batch in batches:
            batch.frame.unpersist()


def _audit_and_publish(spark, domain, dates, branches, result, source, silver):
    """Validate every changed table on its branch; publish them all only if all pass. The
    cross-table check reads `source`, the job's cached rows of the silver snapshot `silver`."""
    specs = [spec for spec in domain.gold if spec.table in branches]
    source.createOrReplaceTempView("gold_silver_source")
    with timed(result, "quality"):
        reports = check(
            spark,
            domain,
            specs,
            dates,
            {table: wap.branch_table(table, branch) for table, branch in branches.items()},
            run_id=result.run_id,
            branch=wap.branch_name(result.run_id),
            details=result.details,
            silver="gold_silver_source",
            against=silver,
        )
    for report in reports:
        quality.enforce(report)
    fault_point("gold-before-publish")
    with timed(result, "publish"):
        for table, branch in branches.items():
            wap.publish(spark, table, branch)
