"""Reconcile a domain's layers for an interval of ingestion time: Kafka = bronze + dead letters
+ duplicates, bronze = silver + quarantine, gold = the aggregates of silver.

    .venv/bin/python spark_jobs/reconcile.py --domain sales --start 2026-11-20 --end 2026-11-21

Writes one row per check to ops.reconciliation (see lakehouse/medallion/reconcile.py). Exits 4
on drift (the first diverging keys are in the log), 1 when the stream has not ingested the
interval yet or on any other failure.
"""

import sys

from lakehouse.medallion.reconcile import main

if __name__ == "__main__":
    sys.exit(main())
