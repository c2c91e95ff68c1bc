"""The command line every batch job shares: --domain --start --end [--backfill] [--dry-run]."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from lakehouse.domains import get_domain
from lakehouse.errors import LakehouseError
from lakehouse.jobs import JobRequest, parser
from lakehouse.settings import Settings, load_settings


def job_main(
    doc: str,
    job: Callable[[Settings, JobRequest], object],
    argv: list[str] | None = None,
    backfill_help: str = "select by event time instead of ingestion time",
    batch_options: bool = True,
) -> int:
    """Parse the shared command line (lakehouse.jobs.parser), set up logging, run `job` with the
    request; exit code 1 on a failed run, else the error's own (3: a failed quality gate, 4:
    reconciliation drift)."""
    arguments = parser(doc, batch_options, backfill_help)
    args = arguments.parse_args(argv)
    if args.end <= args.start:
        arguments.error(f"--end ({args.end.isoformat()}) must be after --start ({args.start.isoformat()})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # GX 1.x logs every expectation and data-context step at INFO, which buries the job's own
    # progress lines; its validation result is reported by the job itself.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        domain = get_domain(settings.definitions_dir, args.domain)
        request = JobRequest(
            domain, args.start, args.end, getattr(args, "backfill", False), getattr(args, "dry_run", False)
        )
        job(settings, request)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    return 0


def spark_job(run: Callable, app: str) -> Callable[[Settings, JobRequest], object]:
    """Adapt a medallion `run(spark, request)` to `job_main`."""

    def job(settings: Settings, request: JobRequest):
        from lakehouse.engines.spark import get_spark

        return run(get_spark(settings, f"{app}-{request.domain.name}"), request)

    return job
