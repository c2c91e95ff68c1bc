"""What every Spark batch job shares: the run record, the audit row, and undoing a failed run.

A job writes several tables, one Iceberg commit each, and Iceberg has no multi-table
transactions. Silver and gold commits go to audit branches first (lakehouse.medallion.wap),
so their `main` only moves when a run succeeds. For the tables written directly (quarantine,
bronze in a replay), when a run fails after some of its commits `job_run` rolls those tables
back to the snapshots they had before the run, as long as every snapshot since then is this
Spark application's own (otherwise it leaves them and says so). A killed process cannot roll
back; the jobs are idempotent, so the re-run completes what it did not reach.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.jobs import AUDIT, JobRequest

FAULT_VARIABLE = "LAKEHOUSE_FAULT"
FAULT_DIR_VARIABLE = "LAKEHOUSE_FAULT_DIR"
log = logging.getLogger("lakehouse.jobs")


class InjectedFault(RuntimeError):
    """Raised at a named fault point (see `fault_point`)."""


@dataclass
class RunResult:
    run_id: str
    job: str
    domain: str
    start: datetime
    end: datetime
    backfill: bool = False
    dry_run: bool = False
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_merged: int = 0
    snapshot_ids: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    status: str = "running"

    def summary(self) -> str:
        return (
            f"{self.job} {self.domain} [{self.start.isoformat()}, {self.end.isoformat()})"
            f"{' backfill' if self.backfill else ''}: read {self.rows_read}, written {self.rows_written}, "
            f"quarantined {self.rows_quarantined}, merged {self.rows_merged}"
            f"{' (dry run, nothing written)' if self.dry_run else ''}"
            f"{''.join(f', {k} {v}' for k, v in self.details.items())} [{self.status}, run {self.run_id}]"
        )


@contextmanager
def timed(result: RunResult, step: str) -> Iterator[None]:
    """Add the block's wall time to the run's details["seconds"][step] (in the audit row)."""
    t0 = time.monotonic()
    try:
        yield
    finally:
        seconds = result.details.setdefault("seconds", {})
        seconds[step] = round(seconds.get(step, 0) + time.monotonic() - t0, 2)


def fault_point(name: str) -> None:
    """Failure injection for tests: LAKEHOUSE_FAULT=<name>[:kill] raises (or SIGKILLs the
    process) when the job reaches the point called <name>. A file <name> in the folder
    LAKEHOUSE_FAULT_DIR arms the point once, for jobs started by other processes (Airflow):
    the first job to reach it removes the file and fails (with `kill` in the file: is killed).
    Unset, it does nothing."""
    wanted, _, how = os.environ.get(FAULT_VARIABLE, "").partition(":")
    armed = Path(os.environ.get(FAULT_DIR_VARIABLE) or "/nonexistent") / name
    if wanted != name:
        try:
            how = armed.read_text().strip()
            armed.unlink()
        except FileNotFoundError:
            return
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"fault injected at {name}")


def current_snapshot(spark: SparkSession, table: str) -> int | None:
    """The snapshot the table's main branch points at (after a rollback, not the newest one)."""
    rows = spark.sql(f"SELECT snapshot_id FROM {table}.refs WHERE name = 'main'").collect()
    return rows[0].snapshot_id if rows else None


def _snapshots_since(spark: SparkSession, table: str, snapshot_id: int | None) -> list:
    """The main branch's snapshots after `snapshot_id`, newest first."""
    known = {
        r.snapshot_id: r for r in spark.sql(f"SELECT snapshot_id, parent_id, summary FROM {table}.snapshots").collect()
    }
    chain, current = [], current_snapshot(spark, table)
    while current is not None and current != snapshot_id and current in known:
        chain.append(known[current])
        current = known[current].parent_id
    return chain


def roll_back(spark: SparkSession, tables: dict[str, int | None]) -> None:
    """Put each table back to its snapshot before the run, if only this application wrote since."""
    app_id = spark.sparkContext.applicationId
    catalog = spark.conf.get("spark.sql.defaultCatalog")
    for table, before in tables.items():
        since = _snapshots_since(spark, table, before)
        if not since:
            continue
        foreign = [s.snapshot_id for s in since if (s.summary or {}).get("spark.app.id") != app_id]
        if foreign:
            log.error("not rolling back %s: snapshots %s were committed by another writer", table, foreign)
            continue
        if before is None:
            spark.sql(f"DELETE FROM {table}")  # it was empty before the run
        else:
            spark.sql(f"CALL {catalog}.system.rollback_to_snapshot('{table}', {before})")
        log.warning("rolled %s back to snapshot %s", table, before)


def audit_row(result: RunResult, error: str | None, started: datetime, seconds: float) -> dict:
    """The run as a row of ops.job_runs."""
    return {
        **{k: v for k, v in asdict(result).items() if k not in ("snapshot_ids", "details", "start", "end")},
        "interval_start": result.start,
        "interval_end": result.end,
        "snapshot_ids": json.dumps(result.snapshot_ids),
        "details": json.dumps(result.details, default=str),
        "error": error,
        "started_at": started,
        "duration_s": float(seconds),
    }


def _append_audit(spark: SparkSession, row: dict) -> None:
    schema = spark.table(AUDIT).schema
    spark.createDataFrame([tuple(row[f.name] for f in schema.fields)], schema=schema).writeTo(AUDIT).append()


@contextmanager
def job_run(spark: SparkSession, job: str, request: JobRequest, tables: list[str]) -> Iterator[RunResult]:
    """Yields the run's RunResult for the job to fill; on exit stores the snapshots of `tables`
    in it, appends the audit row and logs the summary line; a failed run first rolls back what
    it committed."""
    before = {table: current_snapshot(spark, table) for table in tables}
    result = RunResult(
        run_id=request.run_id or f"{job}-{request.domain.name}-{uuid.uuid4().hex[:12]}",
        job=job,
        domain=request.domain.name,
        start=request.start,
        end=request.end,
        backfill=request.backfill,
        dry_run=request.dry_run,
    )
    started, t0 = datetime.now(UTC), time.monotonic()
    error = None
    try:
        yield result
        result.status = "success"
    except BaseException as exc:
        result.status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        roll_back(spark, before)
        raise
    finally:
        result.snapshot_ids = {table: current_snapshot(spark, table) for table in tables}
        _append_audit(spark, audit_row(result, error, started, time.monotonic() - t0))
        (log.info if result.status == "success" else log.error)(result.summary())
