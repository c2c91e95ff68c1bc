"""The `make up` demo: data flowing through every layer of the default domain.

On a fresh stack: start the domain's Flink stream and send a historical load (the last few
days, with duplicates, late and malformed events) while Airflow starts; then promote it through
Airflow (silver_hourly and gold_daily over the load's ingestion range), send a second wave of
late events dated in earlier days and promote again, so gold shows a late-data correction
across its snapshots.
Live events then keep arriving at `demo.live_rate` for the scheduled DAGs to promote.

The demo is four steps: history sent, history promoted, late wave sent, late wave promoted.
Each is recorded in the demo's state file (`.state/demo/<domain>.json`, replaced atomically) as
soon as it is done, with what the later steps need (the offsets to wait for, the promoted
window, the gold snapshots, the dates the late wave touched). A `make up` after a failure
continues with the first step not recorded, so no load is ever sent twice. A send that was
interrupted midway is repeated with the seed and clock recorded before it started: the same
events again, which the stream drops as duplicates of the ones it already has.

On a stack whose demo is complete (`make up` after `make down`), nothing is sent or re-run: the
stream resumes from its checkpoint and the data is as it was.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lakehouse.domains import Domain, get_domain
from lakehouse.engines.iceberg import load_catalog
from lakehouse.errors import ServiceError
from lakehouse.events.generator import Mix, Record, generate
from lakehouse.events.read import group_position
from lakehouse.events.send import send
from lakehouse.orchestration import trigger
from lakehouse.services import streams
from lakehouse.services.supervisor import Supervisor
from lakehouse.settings import Settings
from lakehouse.streaming.names import consumer_group, job_name, program_name

LATE_WAVE = Mix(duplicates=0, late=1.0, out_of_order=0, malformed=0)
STEPS = ("history_sent", "history_promoted", "late_sent", "late_promoted")
DAGS = ("silver_hourly", "gold_daily")  # what the demo triggers, in order
MANIFEST_KEYS = ("sent", "expected_unique_valid", "duplicates", "malformed", "first_offsets", "last_offsets",
                 "started_at", "finished_at")  # fmt: skip


def state_file(settings: Settings, domain_name: str) -> Path:
    return settings.state_dir / "demo" / f"{domain_name}.json"


def read_state(settings: Settings, domain_name: str | None = None) -> dict | None:
    """The demo's record for a domain (default: the default domain), or None if it never ran."""
    name = domain_name or get_domain(settings.definitions_dir, None).name
    path = state_file(settings, name)
    return json.loads(path.read_text()) if path.exists() else None


def write_state(settings: Settings, state: dict) -> None:
    """Replace the state file in one rename, so a crash leaves the old record or the new one."""
    path = state_file(settings, state["domain"])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    with partial.open("w") as handle:
        handle.write(json.dumps(state, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def complete(state: dict) -> bool:
    # A record from before the steps existed has only loaded_at: it was written when all was done.
    return "loaded_at" in state


def new_state(settings: Settings, domain: Domain) -> dict:
    """The plan, recorded before anything is sent: a re-run of an interrupted send regenerates
    exactly the same events from it, whatever the settings or the time are by then."""
    now = datetime.now(UTC)
    demo = settings.demo
    dated_until = (demo.now if demo.now.tzinfo else demo.now.replace(tzinfo=UTC)) if demo.now else now
    return {
        "domain": domain.name,
        "started": now.isoformat(),  # real time: the ingestion windows start from it
        "dated_until": dated_until.astimezone(UTC).isoformat(),  # the events' "now"
        "seed": random.SystemRandom().randrange(2**31),
        "history_events": demo.history_events,
        "history_days": demo.history_days,
        "late_events": demo.late_events,
        "steps": {},
    }


def record_step(settings: Settings, state: dict, step: str, result: dict) -> None:
    state["steps"][step] = {"done_at": datetime.now(UTC).isoformat(), **result}
    if step == STEPS[-1]:
        state["loaded_at"] = state["steps"][step]["done_at"]
    write_state(settings, state)
    # Failure injection for tests, after the step is recorded (see lakehouse.medallion.runs);
    # imported here because it brings pyspark along, which the rest of the demo does not need.
    from lakehouse.medallion.runs import fault_point

    fault_point(f"demo-after-{step.replace('_', '-')}")


def start(
    settings: Settings, log: Callable[[str], None] = print, stream: Callable[[Settings, str], str] | None = None
) -> dict | None:
    """Start the domain's stream and, unless it is already sent, the historical load: both need
    only S3, Kafka and the catalog, so they run while Airflow starts. Returns the demo's state
    for `finish`, or None when the demo is complete. `stream` replaces starting the stream under
    supervisord (Docker mode: `wait_for_stream`, its keeper is the `streams` service)."""
    domain = get_domain(settings.definitions_dir, None)
    if stream is None:
        streams.start(settings, domain.name)
        log(f"  {program_name(domain.name)} starting (Flink: Kafka -> {domain.tables.bronze})")
    else:
        log(f"  {stream(settings, domain.name)} (Flink: Kafka -> {domain.tables.bronze})")
    state = read_state(settings, domain.name)
    if state is not None and complete(state):
        log(f"  demo data already loaded at {state['loaded_at']}: nothing sent or re-run")
        return None
    resumed = state is not None
    if state is None:
        state = new_state(settings, domain)
        write_state(settings, state)
    if "history_sent" in state["steps"]:
        log(f"  history already sent at {state['steps']['history_sent']['done_at']}: not sending it again")
        return state
    days, until = state["history_days"], datetime.fromisoformat(state["dated_until"])
    again = " (again: the last send was interrupted; the stream drops what it has)" if resumed else ""
    log(
        f"  sending {state['history_events']} {domain.name} events over the {days:g} days up to "
        f"{until:%Y-%m-%d %H:%M} UTC{again}"
    )
    records = generate(domain, state["history_events"], Mix(), days=days, seed=state["seed"], clock=lambda: until)
    record_step(settings, state, "history_sent", sent(settings, domain, records, state["history_events"]))
    return state


def finish(settings: Settings, pending: dict | None, log: Callable[[str], None] = print, live: bool = True) -> None:
    """Once Airflow is up: the steps `start` left (if any), then the live events (unless not
    `live`: in Docker mode they are the `generator` service)."""
    domain = get_domain(settings.definitions_dir, None)
    if pending is not None:
        run_steps(settings, domain, pending, log)
    if live and settings.demo.live_rate > 0:
        Supervisor(settings.state_dir).start(f"generator-{domain.name}")
        log(f"  generator-{domain.name} sending {settings.demo.live_rate:g} live events/s")


def wait_for_stream(settings: Settings, domain: str, timeout_s: float = 300) -> str:
    """Until the domain's job runs on the Flink cluster (submitted by a keeper that is not ours to
    start: Docker mode's `streams` service)."""
    from lakehouse.services import flink

    job = flink.wait_for_running(settings, job_name(domain), timeout_s)
    return f"{job_name(domain)} running on the Flink cluster as job {job['jid'][:8]}"


def check_gold(settings: Settings, timeout_s: float = 900, log: Callable[[str], None] = print) -> list[str]:
    """What `make docker-smoke` asserts once the demo ran: gold rows exist (waiting for them up to
    `timeout_s`), in the default domain's first gold table every row has its grain and positive
    counts, every date of the load is there, and bronze holds every unique valid event the demo
    sent. Returns the problems (none: ok)."""
    from lakehouse.analytics import Lakehouse

    domain = get_domain(settings.definitions_dir, None)
    spec = domain.gold[0]
    table = spec.table
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
    counts = [name for name, expression in spec.measures.items() if expression.lower().startswith("count(")]
    wrong = " OR ".join([f"{column} IS NULL" for column in spec.grain] + [f"{name} <= 0" for name in counts])
    bad = lh.sql(f"SELECT count(*) AS n FROM {table} WHERE {wrong}").iloc[0]["n"]
    dates = int(lh.sql(f"SELECT count(DISTINCT event_date) AS n FROM {table}").iloc[0]["n"])
    problems = [f"{bad} rows of {table} lack a key or have a count <= 0"] if bad else []
    if dates < max(1, int(settings.demo.history_days)):
        problems.append(f"{table} covers {dates} dates, fewer than the {settings.demo.history_days:g} days of the load")
    state = read_state(settings, domain.name)
    if state is None or not complete(state):
        problems.append(f"no complete demo record at {state_file(settings, domain.name)}: the demo did not finish")
    else:
        expected = sum(state["steps"][step]["expected_unique_valid"] for step in ("history_sent", "late_sent"))
        snapshot = load_catalog(settings).load_table(domain.tables.bronze).current_snapshot()
        bronze = int(snapshot.summary.additional_properties.get("total-records", 0)) if snapshot else 0
        if bronze < expected:
            problems.append(
                f"{domain.tables.bronze} has {bronze} rows, fewer than the {expected} unique valid events sent"
            )
    log(f"  {table}: {rows} rows over {dates} dates" + ("" if problems else "; checks passed"))
    return problems


def run_steps(settings: Settings, domain: Domain, state: dict, log) -> None:
    """Every step after the history's send that is not recorded yet, in order."""
    from lakehouse.orchestration.client import AirflowClient

    steps = state["steps"]
    for step in STEPS[1:]:
        if step in steps:
            log(f"  {step.replace('_', ' ')}: already done at {steps[step]['done_at']}")
    if "late_promoted" not in steps:
        # Right after Airflow starts, its api-server answers before the dag-processor has parsed
        # dags/: a trigger would be refused with 404.
        AirflowClient(settings).wait_for_dags(DAGS, log=log)
    started = datetime.fromisoformat(state["started"])
    if "history_promoted" not in steps:
        wait_for_bronze(settings, domain, steps["history_sent"], log)
        window = promote(settings, domain, started, log)
        first_gold = datetime.now(UTC)
        log(f"  first gold rows {(first_gold - started).total_seconds():.0f}s after the demo started")
        result = {"window": window, "gold_snapshots": gold_snapshots(settings, domain),
                  "seconds_to_first_gold": round((first_gold - started).total_seconds(), 1)}  # fmt: skip
        record_step(settings, state, "history_promoted", result)
    if "late_sent" not in steps:
        count, until = state["late_events"], datetime.fromisoformat(state["dated_until"])
        log(f"  sending {count} late events (dated in earlier days): gold corrects those dates")
        # Another seed than the history's: the same one would repeat the history's event ids.
        records = generate(domain, count, LATE_WAVE, seed=state["seed"] + 1, clock=lambda: until)
        record_step(settings, state, "late_sent", sent(settings, domain, records, count))
    if "late_promoted" not in steps:
        wait_for_bronze(settings, domain, steps["late_sent"], log)
        window = promote(settings, domain, started, log)
        record_step(
            settings, state, "late_promoted", {"window": window, "gold_snapshots": gold_snapshots(settings, domain)}
        )


def sent(settings: Settings, domain: Domain, records: Iterator[Record], total: int) -> dict:
    """Send the records; returns the step's record: the send's manifest and, per UTC event date,
    how many unique valid events it holds (the dates gold will recompute)."""
    dates: Counter[str] = Counter()

    def counted() -> Iterator[Record]:
        for record in records:
            if record.event_id is not None:
                moment = json.loads(record.value)[domain.event_time_field]
                dates[datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(UTC).date().isoformat()] += 1
            yield record

    manifest = send(settings, domain, counted(), total=total, progress=False)
    return {**{key: manifest[key] for key in MANIFEST_KEYS}, "event_dates": dict(sorted(dates.items()))}


def gold_snapshots(settings: Settings, domain: Domain) -> dict[str, int | None]:
    """Each gold table's current snapshot: the time-travel notebook compares the demo's two."""
    catalog = load_catalog(settings)
    snapshots = {}
    for spec in domain.gold:
        current = catalog.load_table(spec.table).current_snapshot()
        snapshots[spec.table] = current.snapshot_id if current else None
    return snapshots


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def wait_for_bronze(settings: Settings, domain: Domain, manifest: dict, log, timeout_s: float = 600) -> None:
    """Until the stream has committed every record the manifest sent: its consumer group's offsets,
    which Flink commits when a checkpoint completes, as the Iceberg sink commits that checkpoint's
    files (in the same round, so this waits one more checkpoint interval)."""
    wanted = {int(p): o for p, o in manifest["last_offsets"].items()}
    deadline, last_report = time.monotonic() + timeout_s, 0.0
    while True:
        offsets = group_position(settings, consumer_group(domain.name), domain.topic.name)
        behind = sum(max(0, o - offsets.get(p, -1)) for p, o in wanted.items())
        if behind == 0:
            time.sleep(settings.flink.checkpoint_interval_s)
            log(f"  bronze has committed all {manifest['sent']} records")
            return
        if time.monotonic() > deadline:
            raise ServiceError(
                f"bronze is still {behind} records behind after {timeout_s:.0f}s: "
                f"see .state/logs/{program_name(domain.name)}.log"
            )
        if time.monotonic() - last_report > 10:
            log(f"  waiting for the stream: {behind} records to commit")
            last_report = time.monotonic()
        time.sleep(2)


def promote(settings: Settings, domain: Domain, started: datetime, log) -> list[str]:
    """silver_hourly, then gold_daily, as Airflow runs with params, over the ingestion range from
    the hour the demo started to the end of the current hour; returns that window."""
    window = (hour_floor(started), hour_floor(datetime.now(UTC)) + timedelta(hours=1))
    for dag_id in DAGS:
        params = {"domain": domain.name, "start_date": window[0].isoformat(), "end_date": window[1].isoformat()}
        trigger.main(settings, dag_id, params, log=lambda line: log(f"  {line}"))
    return [window[0].isoformat(), window[1].isoformat()]
