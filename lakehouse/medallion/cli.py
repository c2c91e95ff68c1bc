"""The command line every batch job shares: --domain --start --end [--backfill] [--dry-run]."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import datetime

from lakehouse.domains import Domain, get_domain
from lakehouse.errors import LakehouseError
from lakehouse.orchestration.params import InvalidParams, parse_moment
from lakehouse.settings import Settings, load_settings


def timestamp(text: str) -> datetime:
    """ISO 8601 date or date-time; UTC when it has no offset (as the DAG params)."""
    try:
        return parse_moment(text, "the value")
    except InvalidParams as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def job_main(
    doc: str,
    job: Callable[[Settings, Domain, argparse.Namespace], object],
    argv: list[str] | None = None,
    backfill_help: str = "select by event time instead of ingestion time",
    batch_options: bool = True,
) -> int:
    """Parse the shared arguments (without --backfill and --dry-run unless `batch_options`), set
    up logging, run `job`; exit code 1 on a failed run, else the error's own (3: a failed
    quality gate, 4: reconciliation drift)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default=None, help="domain name (default: the default domain)")
    parser.add_argument("--start", type=timestamp, required=True, help="inclusive, ISO 8601 (UTC if no offset)")
    parser.add_argument("--end", type=timestamp, required=True, help="exclusive, ISO 8601 (UTC if no offset)")
    if batch_options:
        parser.add_argument("--backfill", action="store_true", help=backfill_help)
        parser.add_argument(
            "--dry-run", action="store_true", help="compute and report; write nothing but the audit row"
        )
    args = parser.parse_args(argv)
    if args.end <= args.start:
        parser.error(f"--end ({args.end.isoformat()}) must be after --start ({args.start.isoformat()})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # GX 1.x logs every expectation and data-context step at INFO, which buries the job's own
    # progress lines; its validation result is reported by the job itself.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        job(settings, get_domain(settings.definitions_dir, args.domain), args)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    return 0


def spark_job(run: Callable, app: str) -> Callable[[Settings, Domain, argparse.Namespace], object]:
    """Adapt a medallion `run(spark, domain, start, end, backfill, dry_run)` to `job_main`."""

    def job(settings: Settings, domain: Domain, args: argparse.Namespace):
        from lakehouse.engines.spark import get_spark

        spark = get_spark(settings, f"{app}-{domain.name}")
        return run(spark, domain, args.start, args.end, args.backfill, args.dry_run)

    return job
