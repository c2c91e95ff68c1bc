"""Promote one interval of a domain's bronze table to silver (Spark MERGE INTO).

    .venv/bin/python spark_jobs/bronze_to_silver.py --domain sales \
        --start 2026-11-20T10:00:00Z --end 2026-11-20T11:00:00Z [--backfill] [--dry-run]

The interval is of ingestion time (bronze `ingested_at`), or of event time with --backfill.
Exits non-zero on failure; every run is recorded in ops.job_runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

from lakehouse.domains import get_domain
from lakehouse.engines.spark import get_spark
from lakehouse.errors import LakehouseError
from lakehouse.medallion.bronze_to_silver import run
from lakehouse.settings import load_settings


def timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", default=None)
    parser.add_argument("--start", type=timestamp, required=True, help="inclusive, ISO 8601 (UTC if no offset)")
    parser.add_argument("--end", type=timestamp, required=True, help="exclusive, ISO 8601 (UTC if no offset)")
    parser.add_argument("--backfill", action="store_true", help="select by event time instead of ingestion time")
    parser.add_argument("--dry-run", action="store_true", help="compute and report, write nothing but the audit row")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.end <= args.start:
        parser.error("--end must be after --start")
    try:
        settings = load_settings()
        domain = get_domain(settings.definitions_dir, args.domain)
        run(
            get_spark(settings, f"bronze_to_silver-{domain.name}"),
            domain,
            args.start,
            args.end,
            args.backfill,
            args.dry_run,
        )
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
