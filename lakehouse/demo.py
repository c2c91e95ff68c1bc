"""The `make up` demo: data flowing through every layer of the default domain.

On a fresh stack: start the domain's Flink stream and send a historical load (the last few
days, with duplicates, late and malformed events) while Airflow starts; then promote it through
Airflow (silver_hourly and gold_daily over the load's ingestion range), send a second wave of
late events dated in earlier days and promote again, so gold shows a late-data correction
across its snapshots.
Live events then keep arriving at `demo.live_rate` for the scheduled DAGs to promote.

On a stack that already holds the demo's data (`make up` after `make down`), nothing is sent
or re-run: the stream resumes from its checkpoint and the data is as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from lakehouse.domains import Domain, get_domain
from lakehouse.engines.iceberg import load_catalog
from lakehouse.errors import ServiceError
from lakehouse.events.generator import Mix, generate
from lakehouse.events.send import send
from lakehouse.orchestration import trigger
from lakehouse.services.supervisor import Supervisor
from lakehouse.settings import Settings
from lakehouse.streaming import operations
from lakehouse.streaming.iceberg_commit import committed_offsets

LATE_WAVE = Mix(duplicates=0, late=1.0, out_of_order=0, malformed=0)


def marker(settings: Settings, domain: Domain):
    return settings.state_dir / "demo" / f"{domain.name}.json"


def start(
    settings: Settings, log: Callable[[str], None] = print, stream: Callable[[Settings, str], str] | None = None
) -> dict | None:
    """Start the domain's stream and, on a fresh stack, send the historical load: both need only
    S3, Kafka and the catalog, so they run while Airflow starts. Returns the load for `finish`,
    or None when the stack already holds the demo's data. `stream` replaces starting the stream
    under supervisord (Docker mode: `wait_for_stream`, its keeper is the `streams` service)."""
    domain = get_domain(settings.definitions_dir, None)
    if stream is None:
        operations.start(settings, domain.name)
        log(f"  stream-{domain.name} starting (Flink: Kafka -> {domain.tables.bronze})")
    else:
        log(f"  {stream(settings, domain.name)} (Flink: Kafka -> {domain.tables.bronze})")
    done = marker(settings, domain)
    if done.exists():
        record = json.loads(done.read_text())
        log(f"  demo data already loaded at {record['loaded_at']}: nothing sent or re-run")
        return None
    demo = settings.demo
    started = datetime.now(UTC)
    log(f"  sending {demo.history_events} {domain.name} events over the last {demo.history_days:g} days")
    history = send(
        settings, domain, generate(domain, demo.history_events, Mix(), days=demo.history_days),
        total=demo.history_events, progress=False,
    )  # fmt: skip
    return {"started": started, "history": history}


def finish(settings: Settings, pending: dict | None, log: Callable[[str], None] = print, live: bool = True) -> None:
    """Once Airflow is up: promote the load of `start` (if any), then start the live events
    (unless not `live`: in Docker mode they are the `generator` service)."""
    domain = get_domain(settings.definitions_dir, None)
    if pending is not None:
        record = promote_load(settings, domain, pending["started"], pending["history"], log)
        done = marker(settings, domain)
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps(record, indent=2))
    if live and settings.demo.live_rate > 0:
        Supervisor(settings.state_dir).start(f"generator-{domain.name}")
        log(f"  generator-{domain.name} sending {settings.demo.live_rate:g} live events/s")


def wait_for_stream(settings: Settings, domain: str, timeout_s: float = 300) -> str:
    """Until the domain's job runs on the Flink cluster (submitted by a keeper that is not ours to
    start: Docker mode's `streams` service)."""
    from lakehouse.errors import LakehouseError
    from lakehouse.services import flink
    from lakehouse.streaming.keeper import job_name

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            job = flink.alive_job(settings, job_name(domain))
        except LakehouseError:
            job = None
        if job and job["state"] == "RUNNING":
            return f"{job_name(domain)} running on the Flink cluster as job {job['jid'][:8]}"
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{job_name(domain)} is not running after {timeout_s:.0f}s: see the streams service's log"
            )
        time.sleep(2)


def check_gold(settings: Settings, timeout_s: float = 900, log: Callable[[str], None] = print) -> list[str]:
    """What `make docker-smoke` asserts once the demo ran: gold rows exist (waiting for them up to
    `timeout_s`), every row has its grain and positive measures, every date of the load is there,
    and bronze holds every unique valid event the demo sent. Returns the problems (none: ok)."""
    from lakehouse.analytics import Lakehouse

    domain = get_domain(settings.definitions_dir, None)
    table = "gold.daily_sales_by_city"
    deadline = time.monotonic() + timeout_s
    while True:
        rows = int(Lakehouse(settings).sql(f"SELECT count(*) AS n FROM {table}").iloc[0]["n"])
        if rows or time.monotonic() > deadline:
            break
        log(f"  waiting for rows in {table}")
        time.sleep(10)
    if not rows:
        return [f"{table} has no rows after {timeout_s:.0f}s"]
    lh = Lakehouse(settings)
    bad = lh.sql(
        f"SELECT count(*) AS n FROM {table} WHERE event_date IS NULL OR country IS NULL OR city IS NULL "
        "OR orders <= 0 OR revenue_cents <= 0"
    ).iloc[0]["n"]
    dates = int(lh.sql(f"SELECT count(DISTINCT event_date) AS n FROM {table}").iloc[0]["n"])
    problems = [f"{bad} rows of {table} lack a key or have a measure <= 0"] if bad else []
    if dates < max(1, int(settings.demo.history_days)):
        problems.append(f"{table} covers {dates} dates, fewer than the {settings.demo.history_days:g} days of the load")
    done = marker(settings, domain)
    if not done.exists():
        problems.append(f"no demo record at {done}: the demo did not finish")
    else:
        record = json.loads(done.read_text())
        expected = record["history"]["expected_unique_valid"] + record["late"]["expected_unique_valid"]
        snapshot = load_catalog(settings).load_table(domain.tables.bronze).current_snapshot()
        bronze = int(snapshot.summary.additional_properties.get("total-records", 0)) if snapshot else 0
        if bronze < expected:
            problems.append(
                f"{domain.tables.bronze} has {bronze} rows, fewer than the {expected} unique valid events sent"
            )
    log(f"  {table}: {rows} rows over {dates} dates" + ("" if problems else "; checks passed"))
    return problems


def promote_load(settings: Settings, domain: Domain, started: datetime, history: dict, log) -> dict:
    """The demo's record: what was sent and promoted, and when."""
    demo = settings.demo
    wait_for_bronze(settings, domain, history, log)
    window = (hour_floor(started), hour_floor(datetime.now(UTC)) + timedelta(hours=1))
    promote(settings, domain, window, log)
    first_gold = datetime.now(UTC)
    log(f"  first gold rows {(first_gold - started).total_seconds():.0f}s after the first event was sent")

    log(f"  sending {demo.late_events} late events (dated in earlier days): gold corrects those dates")
    late = send(settings, domain, generate(domain, demo.late_events, LATE_WAVE), total=demo.late_events, progress=False)
    wait_for_bronze(settings, domain, late, log)
    window = (window[0], hour_floor(datetime.now(UTC)) + timedelta(hours=1))
    promote(settings, domain, window, log)
    return {
        "domain": domain.name,
        "loaded_at": datetime.now(UTC).isoformat(),
        "history": {k: history[k] for k in ("sent", "expected_unique_valid", "duplicates", "malformed")},
        "late": {k: late[k] for k in ("sent", "expected_unique_valid")},
        "promoted": [window[0].isoformat(), window[1].isoformat()],
        "seconds_to_first_gold": round((first_gold - started).total_seconds(), 1),
    }


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def wait_for_bronze(settings: Settings, domain: Domain, manifest: dict, log, timeout_s: float = 600) -> None:
    """Until the stream has committed every record the manifest sent (bronze's committed offsets)."""
    bronze = load_catalog(settings).load_table(domain.tables.bronze)
    wanted = {int(p): o for p, o in manifest["last_offsets"].items()}
    deadline, last_report = time.monotonic() + timeout_s, 0.0
    while True:
        offsets = committed_offsets(bronze.refresh()).get(domain.topic.name, {})
        behind = sum(max(0, o - offsets.get(p, -1)) for p, o in wanted.items())
        if behind == 0:
            log(f"  bronze has committed all {manifest['sent']} records")
            return
        if time.monotonic() > deadline:
            raise ServiceError(
                f"bronze is still {behind} records behind after {timeout_s:.0f}s: "
                f"see .state/logs/stream-{domain.name}.log"
            )
        if time.monotonic() - last_report > 10:
            log(f"  waiting for the stream: {behind} records to commit")
            last_report = time.monotonic()
        time.sleep(2)


def promote(settings: Settings, domain: Domain, window: tuple[datetime, datetime], log) -> None:
    """silver_hourly, then gold_daily, over the ingestion range, as Airflow runs with params."""
    for dag_id in ("silver_hourly", "gold_daily"):
        trigger.main(
            settings, dag_id, domain.name, window[0].isoformat(), window[1].isoformat(),
            backfill=False, dry_run=False, native=False, wait=True, log=lambda line: log(f"  {line}"),
        )  # fmt: skip
