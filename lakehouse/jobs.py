"""What the batch jobs and the DAGs both speak (pure, low in the layers): a job request and its
command line, ISO 8601 moments, and the audit table every run is recorded in.

Every batch job takes the same command line, `--domain D --start T --end T [--backfill]
[--dry-run]`; the DAGs write it (`command_line`), the jobs read it (`parser`), so it has one
home.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime

from lakehouse.domains import Domain
from lakehouse.errors import LakehouseError

AUDIT = "ops.job_runs"  # one row per run of any batch job (lakehouse.medallion.runs writes it)


class InvalidParams(LakehouseError):
    """The run's params are inconsistent; nothing was processed."""


def parse_moment(value: str, name: str) -> datetime:
    """ISO 8601 date or date-time; UTC when it has no offset."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidParams(f"{name} {value!r} is not an ISO 8601 date-time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def command_line(domain: str, start: datetime, end: datetime, backfill: bool = False, dry_run: bool = False):
    """The shared job command line for one domain and window."""
    args = ["--domain", domain, "--start", start.isoformat(), "--end", end.isoformat()]
    return args + (["--backfill"] if backfill else []) + (["--dry-run"] if dry_run else [])


@dataclass(frozen=True)
class JobRequest:
    """One run of a batch job: the domain's rows of [start, end), by ingestion time, or by event
    time with `backfill`; `dry_run` computes and reports but writes only the audit row; `run_id`
    names the run in the audit (default: a new one)."""

    domain: Domain
    start: datetime
    end: datetime
    backfill: bool = False
    dry_run: bool = False
    run_id: str | None = None


def _timestamp(text: str) -> datetime:
    try:
        return parse_moment(text, "the value")
    except InvalidParams as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def parser(doc: str, batch_options: bool = True, backfill_help: str = "select by event time instead of ingestion time"):
    """The argument parser of `command_line` (without --backfill and --dry-run unless `batch_options`)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default=None, help="domain name (default: the default domain)")
    parser.add_argument("--start", type=_timestamp, required=True, help="inclusive, ISO 8601 (UTC if no offset)")
    parser.add_argument("--end", type=_timestamp, required=True, help="exclusive, ISO 8601 (UTC if no offset)")
    if batch_options:
        parser.add_argument("--backfill", action="store_true", help=backfill_help)
        parser.add_argument(
            "--dry-run", action="store_true", help="compute and report; write nothing but the audit row"
        )
    return parser
