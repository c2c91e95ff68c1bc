"""The bronze -> silver job for one domain and one interval: read, transform, MERGE, audit.

Write-audit-publish: the MERGE commits to the run's own branch of the silver table, the
domain's `quality.silver` expectations validate the rows it wrote there, and `main` moves to
that commit only if no `fail` expectation failed (lakehouse.medallion.wap, .quality).

Re-running an interval is a no-op: only rows that are new or newer than silver's are merged,
and nothing is committed when there are none.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.domains import QUARANTINE
from lakehouse.jobs import JobRequest
from lakehouse.medallion import quality, silver, wap
from lakehouse.medallion.runs import RunResult, fault_point, job_run, timed


def run(spark: SparkSession, request: JobRequest) -> RunResult:
    """Promote bronze rows ingested in [start, end) (or, with backfill, whose event time is in
    it) to silver and quarantine."""
    domain = request.domain
    if domain.quality.silver and not request.dry_run:
        quality.preload()  # the gate's import runs beside the job's Spark work
    with job_run(spark, "bronze_to_silver", request, [domain.tables.silver, QUARANTINE]) as result:
        _promote(spark, request, result)
    return result


def _promote(spark, request: JobRequest, result):
    domain, start, end, dry_run = request.domain, request.start, request.end, request.dry_run
    backfill = request.backfill
    column = "event_time" if backfill else "ingested_at"
    bronze = spark.table(domain.tables.bronze).where((F.col(column) >= F.lit(start)) & (F.col(column) < F.lit(end)))
    conformed = silver.conform(silver.parse(bronze, domain), domain, result.run_id).cache()
    rows = changes = branch = None
    try:
        valid, rejected = silver.split_by_rules(conformed, domain)
        target_columns = spark.table(domain.tables.silver).columns
        rows = silver.silver_rows(silver.dedup(valid), target_columns).cache()
        # Silver versions of the incoming ids: the incoming side is small (one interval), so it is
        # broadcast and silver is only scanned (two columns), never shuffled.
        incoming = F.broadcast(rows.select(F.col("event_id").alias("_t_id")))
        target = (
            spark.table(domain.tables.silver)
            .select(F.col("event_id").alias("_t_id"), F.col("event_time").alias("_t_time"))
            .join(incoming, "_t_id")
        )
        # Only new events, or newer versions of known ones, reach the MERGE: an interval that was
        # already promoted produces no commit (and so no new data files).
        changes = (
            rows.join(target, rows.event_id == target._t_id, "left")
            .where(F.col("_t_id").isNull() | (F.col("event_time") > F.col("_t_time")))
            .select(*target_columns, "_t_time")
            .cache()
        )
        quarantined = silver.quarantine_rows(rejected, domain)
        existing = (
            spark.table(QUARANTINE)
            .where(F.col("domain") == domain.name)
            .select("kafka_topic", "kafka_partition", "kafka_offset")
        )
        new_quarantine = quarantined.join(existing, ["kafka_topic", "kafka_partition", "kafka_offset"], "left_anti")
        result.rows_read = conformed.count()
        result.rows_written = rows.count()
        result.rows_quarantined = quarantined.count()
        result.rows_merged = changes.count()
        fault_point("silver-before-merge")
        if not dry_run and result.rows_merged:
            # The rows to update are known (and where they live), so the MERGE reads only the
            # days they sit in, not the whole table: its cost follows the interval. The days of
            # the new versions are where the gate finds what the MERGE wrote.
            found = (
                changes.select(F.to_date("event_time").alias("new"), F.to_date("_t_time").alias("old"))
                .distinct()
                .collect()
            )
            days = sorted({r.old for r in found if r.old is not None})
            written_days = sorted({r.new for r in found})
            changes.drop("_t_time").createOrReplaceTempView("silver_changes")
            branch = wap.branch_name(result.run_id)
            wap.create(spark, domain.tables.silver, branch)
            with timed(result, "merge"):
                spark.sql(
                    f"""MERGE INTO {wap.branch_table(domain.tables.silver, branch)} t USING silver_changes s
                        ON t.event_id = s.event_id AND {silver.in_days("t.event_time", days)}
                        WHEN MATCHED AND s.event_time > t.event_time THEN UPDATE SET *
                        WHEN NOT MATCHED THEN INSERT *"""
                )
        fault_point("silver-after-merge")
        if not dry_run and new_quarantine.limit(1).count():
            new_quarantine.createOrReplaceTempView("quarantine_changes")
            spark.sql(
                f"""MERGE INTO {QUARANTINE} t USING quarantine_changes s
                    ON t.domain = s.domain AND t.kafka_topic = s.kafka_topic
                       AND t.kafka_partition = s.kafka_partition AND t.kafka_offset = s.kafka_offset
                    WHEN NOT MATCHED THEN INSERT *"""
            )
        if branch:
            _audit_and_publish(spark, domain, branch, written_days, result)
    except BaseException as exc:
        if branch and not isinstance(exc, quality.QualityGateFailed):
            wap.drop(spark, domain.tables.silver, branch)  # a half-done batch is of no use to inspect
        raise
    finally:
        conformed.unpersist()
        for frame in (rows, changes):
            if frame is not None:
                frame.unpersist()


def _audit_and_publish(spark, domain, branch, days, result):
    """Validate the rows this run wrote to its branch (they lie in `days`); publish them to
    main if they pass."""
    with timed(result, "quality"):
        report = _validate(spark, domain, branch, days, result)
    quality.enforce(report)
    fault_point("silver-before-publish")
    with timed(result, "publish"):
        wap.publish(spark, domain.tables.silver, branch)


def _validate(spark, domain, branch, days, result):
    written = (
        spark.table(wap.branch_table(domain.tables.silver, branch))
        .where(silver.in_days("event_time", days))
        .where(F.col("run_id") == result.run_id)
    )
    batch = quality.Batch(
        domain.tables.silver,
        domain.tables.silver.replace(".", "_"),
        written,
        quality.suite_expectations(domain.quality.silver),
    )
    [report] = quality.gate(spark, [batch], result.run_id, "bronze_to_silver", domain.name, branch, result.details)
    return report
