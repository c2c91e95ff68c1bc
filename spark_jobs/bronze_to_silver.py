"""Promote one interval of a domain's bronze table to silver (Spark MERGE INTO).

    .venv/bin/python spark_jobs/bronze_to_silver.py --domain sales \
        --start 2026-11-20T10:00:00Z --end 2026-11-20T11:00:00Z [--backfill] [--dry-run]

The interval is of ingestion time (bronze `ingested_at`), or of event time with --backfill.
Rows failing the domain's rules go to silver.quarantine. Exits non-zero on failure; every run
is recorded in ops.job_runs.
"""

import sys

from lakehouse.medallion.bronze_to_silver import run
from lakehouse.medallion.cli import job_main, spark_job

if __name__ == "__main__":
    sys.exit(job_main(__doc__, spark_job(run, "bronze_to_silver")))
