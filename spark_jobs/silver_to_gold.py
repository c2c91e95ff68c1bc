"""Recompute a domain's daily gold tables for the dates touched in an interval (Spark MERGE INTO).

    .venv/bin/python spark_jobs/silver_to_gold.py --domain sales \
        --start 2026-11-20 --end 2026-11-21 [--backfill] [--dry-run]

Normally the dates are those of the silver rows ingested in [start, end), so late events
correct old dates; with --backfill they are the dates [start, end) covers. Exits non-zero on
failure; every run is recorded in ops.job_runs.
"""

import sys

from lakehouse.medallion.cli import job_main, spark_job
from lakehouse.medallion.silver_to_gold import run

if __name__ == "__main__":
    sys.exit(
        job_main(
            __doc__,
            spark_job(run, "silver_to_gold"),
            backfill_help="recompute the dates [start, end) covers instead of the dates touched by ingestion",
        )
    )
