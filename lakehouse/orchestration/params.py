"""What a DAG run should process, from its params and data interval (pure; no Airflow imports).

Every DAG takes the same params: `domain` (empty: every domain), `start_date` / `end_date`
(both or neither), `backfill`, `dry_run`. A run with a range processes exactly that range;
a scheduled (or natively backfilled) run without one processes its data interval. The
checks JSON Schema cannot express (end after start, the maximum range, a range given on
both ends) are here, and the DAG's first task applies them before any job runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lakehouse.jobs import InvalidParams, command_line, parse_moment


@dataclass(frozen=True)
class Window:
    domains: tuple[str, ...]
    start: datetime
    end: datetime
    backfill: bool
    dry_run: bool

    def job_args(self, domain: str) -> list[str]:
        """The shared job command line for one domain."""
        return command_line(domain, self.start, self.end, self.backfill, self.dry_run)


def resolve_window(
    params: dict,
    interval_start: datetime | None,
    interval_end: datetime | None,
    known_domains: list[str],
    max_range: timedelta,
) -> Window:
    domain = params.get("domain") or None
    if domain is not None and domain not in known_domains:
        raise InvalidParams(f"unknown domain {domain!r}; known domains: {', '.join(known_domains)}")
    start_text, end_text = params.get("start_date") or None, params.get("end_date") or None
    if (start_text is None) != (end_text is None):
        raise InvalidParams("give both start_date and end_date, or neither (to process the run's data interval)")
    if start_text is not None:
        start, end = parse_moment(start_text, "start_date"), parse_moment(end_text, "end_date")
    elif interval_start is not None and interval_end is not None and interval_end > interval_start:
        start, end = interval_start, interval_end
    else:
        raise InvalidParams("this run has no data interval: give start_date and end_date")
    if end <= start:
        raise InvalidParams(f"end_date {end.isoformat()} must be after start_date {start.isoformat()}")
    if end - start > max_range:
        raise InvalidParams(
            f"the range {start.isoformat()} .. {end.isoformat()} is {end - start}, over the maximum of {max_range} "
            "(airflow.max_range_days in config/lakehouse.yaml): split it into several runs"
        )
    return Window(
        domains=(domain,) if domain else tuple(known_domains),
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        backfill=bool(params.get("backfill")),
        dry_run=bool(params.get("dry_run")),
    )
