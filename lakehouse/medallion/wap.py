"""Write-audit-publish on Iceberg branches.

A run that changes a table writes its commit to a branch of its own (`audit_<run>`, made from
`main` when the run starts), the quality gate validates what is on that branch, and only
then `CALL system.fast_forward` moves `main` to it: readers of `main` never see a batch that
failed its gate. A failed gate leaves the branch in place, holding the batch for inspection
(`SELECT ... FROM <table>.branch_audit_<run>`), for KEEP_DAYS (table maintenance's snapshot
expiry then drops it); publishing drops it at once.
"""

from __future__ import annotations

import re

from pyspark.sql import SparkSession

from lakehouse.errors import LakehouseError

PREFIX = "audit_"
KEEP_DAYS = 7  # an unpublished branch (failed gate, killed run) is kept this long, then expiry drops it


class PublishConflict(LakehouseError):
    """`main` moved while the run wrote its branch (another writer): the run must be redone."""


def branch_name(run_id: str) -> str:
    """A branch name for the run that is a plain SQL identifier."""
    return PREFIX + re.sub(r"[^0-9a-z]+", "_", run_id.lower()).strip("_")


def branch_table(table: str, branch: str) -> str:
    """The identifier that reads and writes `branch` of `table` in Spark SQL."""
    return f"{table}.branch_{branch}"


def create(spark: SparkSession, table: str, branch: str) -> None:
    """A branch at `main`'s current snapshot (replacing a leftover of an earlier attempt),
    which `expire_snapshots` (table maintenance) removes KEEP_DAYS after it was made."""
    spark.sql(f"ALTER TABLE {table} CREATE OR REPLACE BRANCH {branch} RETAIN {KEEP_DAYS} DAYS")


def publish(spark: SparkSession, table: str, branch: str) -> None:
    """Fast-forward `main` to the audited branch, then drop the branch."""
    catalog = spark.conf.get("spark.sql.defaultCatalog")
    try:
        spark.sql(f"CALL {catalog}.system.fast_forward('{table}', 'main', '{branch}')")
    except Exception as exc:
        if "not an ancestor" in str(exc) or "Cannot fast-forward" in str(exc):
            raise PublishConflict(
                f"{table}: main moved while this run wrote branch {branch} (another writer committed); "
                "re-run the interval (the jobs are idempotent)"
            ) from exc
        raise
    drop(spark, table, branch)


def drop(spark: SparkSession, table: str, branch: str) -> None:
    spark.sql(f"ALTER TABLE {table} DROP BRANCH IF EXISTS {branch}")
