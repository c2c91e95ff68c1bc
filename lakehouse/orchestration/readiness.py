"""Is silver complete for a window? Answered from the run audit (ops.job_runs), not from
Airflow's own records, so silver promoted by any means (schedule, backfill, a manual run of
the job) counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from pyiceberg.expressions import And, EqualTo, GreaterThan, GreaterThanOrEqual, LessThan

from lakehouse.jobs import AUDIT
from lakehouse.settings import Settings


def gaps(intervals: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) that no interval covers, in order."""
    missing, cursor = [], start
    for low, high in sorted(intervals):
        if high <= cursor:
            continue
        if low > cursor:
            missing.append((cursor, min(low, end)))
        cursor = max(cursor, high)
        if cursor >= end:
            break
    if cursor < end:
        missing.append((cursor, end))
    return [(low, high) for low, high in missing if low < high]


def silver_gaps(
    settings: Settings, domain: str, start: datetime, end: datetime, settled: bool = False
) -> list[tuple[datetime, datetime]]:
    """Parts of [start, end) of ingestion time holding bronze rows that no successful
    bronze -> silver run (by ingestion time, not a dry run) has promoted yet. A part without
    bronze rows is no gap: there is nothing to promote (the stream was not running yet).

    With `settled`, a run covers its interval only up to a checkpoint interval before it
    started: a run over an hour that had not ended yet (a manual run) did not see the rows
    ingested after it started, nor those whose checkpoint had not completed (reconciliation
    needs silver to hold all of them; gold_daily does not wait for that)."""
    from lakehouse.domains import get_domain
    from lakehouse.engines.iceberg import load_catalog

    catalog = load_catalog(settings)
    runs = (
        catalog.load_table(AUDIT)
        .scan(
            row_filter=And(
                EqualTo("job", "bronze_to_silver"),
                EqualTo("domain", domain),
                EqualTo("status", "success"),
                EqualTo("backfill", False),
                EqualTo("dry_run", False),
                LessThan("interval_start", end.isoformat()),
                GreaterThan("interval_end", start.isoformat()),
            ),
            selected_fields=("interval_start", "interval_end", "started_at"),
        )
        .to_arrow()
    )
    intervals = list(zip(runs["interval_start"].to_pylist(), runs["interval_end"].to_pylist(), strict=True))
    if settled:
        unseen = timedelta(seconds=settings.flink.checkpoint_interval_s)
        ends = [
            min(high, began - unseen)
            for (_, high), began in zip(intervals, runs["started_at"].to_pylist(), strict=True)
        ]
        intervals = [(low, high) for (low, _), high in zip(intervals, ends, strict=True) if high > low]
    bronze = catalog.load_table(get_domain(settings.definitions_dir, domain).tables.bronze)
    return [(low, high) for low, high in gaps(intervals, start, end) if has_rows_ingested(bronze, low, high)]


def has_rows_ingested(table, start: datetime, end: datetime) -> bool:
    """Any row of `table` (bronze or silver) ingested in [start, end)? Files are pruned by their
    ingested_at statistics (bronze is partitioned by ingestion hour), so this reads little."""
    rows = table.scan(
        row_filter=And(GreaterThanOrEqual("ingested_at", start.isoformat()), LessThan("ingested_at", end.isoformat())),
        selected_fields=("event_id",),
        limit=1,
    )
    return len(rows.to_arrow()) > 0
