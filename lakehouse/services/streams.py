"""`lakehouse stream start | stop | status`: each domain's job on the Flink session cluster,
kept there by its `stream-<domain>` keeper under supervisord."""

from __future__ import annotations

import xmlrpc.client
from dataclasses import dataclass
from datetime import UTC, datetime

from lakehouse.domains import Domain, get_domain, load_domains
from lakehouse.engines.iceberg import load_catalog
from lakehouse.errors import LakehouseError, ServiceError
from lakehouse.events.read import group_position
from lakehouse.events.topics import ensure_topics
from lakehouse.services import flink
from lakehouse.services.supervisor import Supervisor
from lakehouse.settings import Settings
from lakehouse.streaming.checkpoints import latest_restore_point
from lakehouse.streaming.names import consumer_group, job_name, program_name


def running_supervisor(settings: Settings) -> Supervisor:
    supervisor = Supervisor(settings.state_dir)
    if not supervisor.running():
        raise ServiceError("the embedded stack is not running: start it with `make up`")
    return supervisor


def start(settings: Settings, domain_name: str | None) -> Domain:
    domain = get_domain(settings.definitions_dir, domain_name)
    supervisor = running_supervisor(settings)
    ensure_topics(settings, [domain])
    try:
        supervisor.start(program_name(domain.name))
    except xmlrpc.client.Fault as fault:  # a domain added after `make up`
        raise ServiceError(
            f"{program_name(domain.name)} is unknown to supervisord: restart the stack (make down && make up)"
        ) from fault
    return domain


def stop(settings: Settings, domain_name: str | None) -> Domain:
    domain = get_domain(settings.definitions_dir, domain_name)
    running_supervisor(settings).stop(program_name(domain.name))
    return domain


@dataclass
class StreamStatus:
    domain: str
    state: str
    pid: int | None
    bronze_rows: int
    last_commit: datetime | None
    committed_offsets: dict[int, int]
    checkpoint: str | None
    freshness_sla_s: float
    # From the Flink REST API: the job's id, state, restarts, checkpoints and records read.
    job: dict | None = None

    @property
    def seconds_since_commit(self) -> float | None:
        return None if self.last_commit is None else (datetime.now(UTC) - self.last_commit).total_seconds()


def flink_job(settings: Settings, domain: str) -> dict | None:
    """The domain's job on the session cluster with its metrics, or None if there is none."""
    try:
        job = flink.alive_job(settings, job_name(domain))
        return None if job is None else {"id": job["jid"], **flink.job_metrics(settings, job["jid"])}
    except LakehouseError:
        return None


def _position(settings: Settings, domain: Domain) -> dict[int, int]:
    try:
        return group_position(settings, consumer_group(domain.name), domain.topic.name)
    except LakehouseError:
        return {}  # no topic yet


def status(settings: Settings, domain_name: str | None = None) -> list[StreamStatus]:
    """Every domain's stream, or only `domain_name`'s."""
    supervisor = Supervisor(settings.state_dir)
    up = supervisor.running()
    catalog = load_catalog(settings)
    report = []
    domains = load_domains(settings.definitions_dir).values()
    for domain in (d for d in domains if domain_name in (None, d.name)):
        info = {"statename": "STOPPED", "pid": 0}
        if up:
            try:
                info = supervisor.process(program_name(domain.name))
            except xmlrpc.client.Fault:
                info = {"statename": "UNKNOWN", "pid": 0}
        elif flink_job(settings, domain.name):
            # No supervisord, yet the job runs: its keeper is elsewhere (Docker mode's `streams` service).
            info = {"statename": "RUNNING", "pid": 0}
        table = catalog.load_table(domain.tables.bronze)
        snapshot = table.current_snapshot()
        rows = int(snapshot.summary.additional_properties.get("total-records", 0)) if snapshot else 0
        last = datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC) if snapshot else None
        checkpoint = latest_restore_point(settings, domain.name)
        job = flink_job(settings, domain.name) if info["statename"] == "RUNNING" else None
        report.append(
            StreamStatus(
                domain=domain.name,
                state=info["statename"],
                pid=info["pid"] or None,
                bronze_rows=rows,
                last_commit=last,
                committed_offsets=_position(settings, domain),
                checkpoint=checkpoint.name if checkpoint else None,
                freshness_sla_s=domain.freshness_sla.total_seconds(),
                job=job,
            )
        )
    return report
