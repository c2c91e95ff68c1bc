"""The bronze -> silver job for one domain and one interval: read, transform, MERGE, audit.

Re-running an interval is a no-op: only rows that are new or newer than silver's are merged,
and nothing is committed when there are none.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.domains import Domain
from lakehouse.medallion import silver

log = logging.getLogger("bronze_to_silver")
QUARANTINE = "silver.quarantine"
AUDIT = "ops.job_runs"


@dataclass
class RunResult:
    run_id: str
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_merged: int = 0
    snapshot_ids: dict | None = None


def current_snapshot(spark: SparkSession, table: str) -> int | None:
    rows = spark.sql(f"SELECT snapshot_id FROM {table}.snapshots ORDER BY committed_at DESC LIMIT 1").collect()
    return rows[0].snapshot_id if rows else None


def run(
    spark: SparkSession,
    domain: Domain,
    start: datetime,
    end: datetime,
    backfill: bool = False,
    dry_run: bool = False,
    run_id: str | None = None,
) -> RunResult:
    result = RunResult(run_id=run_id or f"silver-{domain.name}-{uuid.uuid4().hex[:12]}")
    started, t0 = datetime.now(UTC), time.monotonic()
    status, error = "success", None
    try:
        _run(spark, domain, start, end, backfill, dry_run, result)
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        audit(
            spark,
            "bronze_to_silver",
            domain,
            start,
            end,
            backfill,
            dry_run,
            result,
            status,
            error,
            started,
            time.monotonic() - t0,
        )
    log.info(
        "%s %s [%s, %s): read %d, written %d, quarantined %d, merged %d%s",
        result.run_id,
        domain.name,
        start.isoformat(),
        end.isoformat(),
        result.rows_read,
        result.rows_written,
        result.rows_quarantined,
        result.rows_merged,
        " (dry run)" if dry_run else "",
    )
    return result


def _run(spark, domain, start, end, backfill, dry_run, result):
    column = "event_time" if backfill else "ingested_at"
    bronze = spark.table(domain.tables.bronze).where((F.col(column) >= F.lit(start)) & (F.col(column) < F.lit(end)))
    conformed = silver.conform(silver.parse(bronze, domain), domain, result.run_id).cache()
    valid, rejected = silver.split_by_rules(conformed, domain)
    target_columns = spark.table(domain.tables.silver).columns
    rows = silver.silver_rows(silver.dedup(valid), target_columns)
    quarantined = silver.quarantine_rows(rejected, domain)
    result.rows_read = conformed.count()
    result.rows_written = rows.count()
    result.rows_quarantined = quarantined.count()

    target = spark.table(domain.tables.silver).select(
        F.col("event_id").alias("_t_id"), F.col("event_time").alias("_t_time")
    )
    changes = (
        rows.join(target, rows.event_id == target._t_id, "left")
        .where(F.col("_t_id").isNull() | (F.col("event_time") > F.col("_t_time")))
        .select(*target_columns)
    )
    result.rows_merged = changes.count()
    if not dry_run and result.rows_merged:
        changes.createOrReplaceTempView("silver_changes")
        spark.sql(
            f"""MERGE INTO {domain.tables.silver} t USING silver_changes s ON t.event_id = s.event_id
                WHEN MATCHED AND s.event_time > t.event_time THEN UPDATE SET *
                WHEN NOT MATCHED THEN INSERT *"""
        )
    existing = (
        spark.table(QUARANTINE)
        .where(F.col("domain") == domain.name)
        .select("kafka_topic", "kafka_partition", "kafka_offset")
    )
    new_quarantine = quarantined.join(existing, ["kafka_topic", "kafka_partition", "kafka_offset"], "left_anti")
    if not dry_run and new_quarantine.limit(1).count():
        new_quarantine.createOrReplaceTempView("quarantine_changes")
        spark.sql(
            f"""MERGE INTO {QUARANTINE} t USING quarantine_changes s
                ON t.domain = s.domain AND t.kafka_topic = s.kafka_topic
                   AND t.kafka_partition = s.kafka_partition AND t.kafka_offset = s.kafka_offset
                WHEN NOT MATCHED THEN INSERT *"""
        )
    conformed.unpersist()
    result.snapshot_ids = {t: current_snapshot(spark, t) for t in (domain.tables.silver, QUARANTINE)}


def audit(spark, job, domain, start, end, backfill, dry_run, result: RunResult, status, error, started, seconds):
    row = {
        **{k: v for k, v in asdict(result).items() if k != "snapshot_ids"},
        "job": job,
        "domain": domain.name,
        "interval_start": start,
        "interval_end": end,
        "backfill": backfill,
        "dry_run": dry_run,
        "snapshot_ids": json.dumps(result.snapshot_ids or {}),
        "status": status,
        "error": error,
        "started_at": started,
        "duration_s": float(seconds),
    }
    columns = spark.table(AUDIT).columns
    frame = spark.createDataFrame([tuple(row[c] for c in columns)], schema=spark.table(AUDIT).schema)
    frame.writeTo(AUDIT).append()
