"""Replay a domain's Kafka topic into bronze: recovery after a stream outage, or a range backfill.

    .venv/bin/python spark_jobs/kafka_to_bronze.py --domain sales \
        --start 2026-11-20T00:00 --end 2026-11-21T00:00 [--backfill] [--dry-run]

Without --backfill: recovers everything after the offsets committed in bronze that reached the
broker before --end (stop the stream first, or let it run: their commits never overlap).
With --backfill: re-reads the topic from the beginning up to the committed offsets and merges
the events whose event time is in [start, end) that bronze lacks. Both merge ON event_id, so
a replay never duplicates. Runs without Spark (confluent-kafka + PyIceberg); exits non-zero
on failure; every run is recorded in ops.job_runs.
"""

import sys

from lakehouse.medallion.cli import job_main
from lakehouse.medallion.kafka_to_bronze import run


def replay(settings, domain, args):
    return run(settings, domain, args.start, args.end, args.backfill, args.dry_run)


if __name__ == "__main__":
    sys.exit(
        job_main(
            __doc__,
            replay,
            backfill_help="re-read from the earliest offsets and keep events whose event time is in [start, end)",
        )
    )
