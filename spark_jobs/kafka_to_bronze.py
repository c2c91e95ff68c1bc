"""Replay a domain's Kafka topic into bronze with Spark's Kafka source: recovery after a stream
outage, or a range backfill.

    .venv/bin/python spark_jobs/kafka_to_bronze.py --domain sales \
        --start 2026-11-20T00:00 --end 2026-11-21T00:00 [--backfill] [--dry-run]

Without --backfill: recovers everything after bronze's position (the highest Kafka offsets bronze
and the dead letters hold, or the stream's committed offsets) that reached the broker before
--end. With --backfill: re-reads the topic from the beginning up to that position and merges
the events whose event time is in [start, end) that bronze lacks. Both MERGE INTO bronze ON the
dedup key, so a replay never duplicates. Exits non-zero on failure; every run is recorded in
ops.job_runs.
"""

import sys

from lakehouse.medallion.cli import job_main, spark_job
from lakehouse.medallion.kafka_to_bronze import run

if __name__ == "__main__":
    sys.exit(
        job_main(
            __doc__,
            spark_job(run, "kafka_to_bronze"),
            backfill_help="re-read from the earliest offsets and keep events whose event time is in [start, end)",
        )
    )
