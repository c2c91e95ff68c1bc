"""`lakehouse up | down | status` for the embedded stack."""

from __future__ import annotations

import os
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass

from lakehouse.engines.java import java17_home
from lakehouse.errors import LakehouseError, ServiceError
from lakehouse.services import postgres, s3
from lakehouse.services.embedded import Service, airflow_services, jupyterlab, services, stream_programs
from lakehouse.services.ports import require_free
from lakehouse.services.supervisor import Supervisor
from lakehouse.settings import Settings


def supervisor_env(settings: Settings) -> dict[str, str]:
    """The environment every embedded service inherits: the S3 server's credentials (it enforces
    them) and the clients' (Flink's S3 filesystem, PyIceberg)."""
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": settings.secret("s3", "access_key"),
        "AWS_SECRET_ACCESS_KEY": settings.secret("s3", "secret_key"),
        "AWS_DEFAULT_REGION": settings.s3.region,
        "AWS_REGION": settings.s3.region,
        # AWS SDK 2.30+ sends checksum headers some S3 servers reject; only when required.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "WHEN_REQUIRED",
        "JUPYTER_TOKEN": settings.secret("jupyter", "token"),
        **({"JAVA_HOME": java17_home()} if java17_home() and "JAVA_HOME" not in os.environ else {}),
    }


def wait_healthy(settings: Settings, service: Service, supervisor: Supervisor, started: float) -> float:
    """Poll the service's health check until it passes; returns the seconds since `started`."""
    timeout_s = service.start_timeout_s or settings.embedded.health_timeout_s
    deadline = started + timeout_s
    while True:
        state = supervisor.process(service.name)["statename"]
        if state in ("FATAL", "EXITED", "BACKOFF", "STOPPED"):
            raise ServiceError(f"{service.name} is {state}:\n{supervisor.tail(service.name)}")
        try:
            service.health(settings)
            return time.monotonic() - started
        except LakehouseError as exc:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{service.name} did not become healthy within {timeout_s:.0f}s: "
                    f"{exc}\n{supervisor.tail(service.name)}"
                ) from exc
        time.sleep(0.3)


# Work that needs a healthy service before the next one starts.
AFTER_HEALTHY: dict[str, Callable[[Settings], object]] = {
    "seaweedfs": s3.ensure_buckets,
    "postgres": lambda settings: postgres.ensure_database(settings, settings.postgres.catalog_database),
}


def app_services(settings: Settings) -> list[Service]:
    return [jupyterlab(settings), *airflow_services(settings)]  # JupyterLab starts during the migration


def up(settings: Settings, log: Callable[[str], None] = print, apps: bool = True) -> None:
    """Start the base services (S3, PostgreSQL, Kafka, the Flink cluster) together, then, once all
    are healthy and with `apps`, JupyterLab and Airflow's components together. Running ones are
    left alone."""
    settings.require_secrets()
    base, extra = services(settings), app_services(settings)
    stack = base + (extra if apps else [])
    supervisor = Supervisor(settings.state_dir)
    programs = [*base, *extra, *stream_programs(settings)]
    daemon_running = supervisor.running()
    if daemon_running:
        supervisor.add_missing(programs)  # a daemon started before programs were added to the project
    to_start = [s for s in stack if supervisor.process(s.name)["statename"] != "RUNNING"] if daemon_running else stack
    require_free({label: addr for s in to_start for label, addr in s.ports.items()})
    if not daemon_running:
        supervisor.write_config(programs)
        supervisor.start_daemon(supervisor_env(settings))
    names = {s.name for s in to_start}
    # No base service needs another; the apps need the base (Airflow its database and schema,
    # the api-server's `prepare`), so they start together after it.
    for wave in [base] + ([extra] if apps else []):
        started = time.monotonic()
        for service in wave:
            if service.name in names:
                if service.name == "airflow-api-server":
                    log(f"  {service.name:<22} starting (with its database migration: about a minute)")
                service.prepare()
                supervisor.start(service.name)
        for service in wave:
            seconds = wait_healthy(settings, service, supervisor, started)
            after = AFTER_HEALTHY.get(service.name)
            if after:
                after(settings)
            log(f"  {service.name:<22} healthy in {seconds:5.1f}s  {service.endpoint}")


def down(settings: Settings) -> None:
    """Stop everything: the streams first (each stops its job with a savepoint, which needs the
    Flink cluster), then the apps, then the base services."""
    streams = [program.name for program in stream_programs(settings)]
    apps = [service.name for service in app_services(settings)]
    Supervisor(settings.state_dir).shutdown(layers=[streams, apps])


@dataclass
class ServiceStatus:
    name: str
    state: str
    pid: int | None
    endpoint: str
    health: str

    @property
    def ok(self) -> bool:
        return self.state == "RUNNING" and self.health == "ok"


def status(settings: Settings) -> list[ServiceStatus]:
    supervisor = Supervisor(settings.state_dir)
    running = supervisor.running()
    report = []
    for service in services(settings) + app_services(settings):
        try:
            info = supervisor.process(service.name) if running else {"statename": "STOPPED", "pid": 0}
        except xmlrpc.client.Fault:  # not in the running daemon's configuration yet
            info = {"statename": "STOPPED", "pid": 0}
        health = "-"
        if info["statename"] == "RUNNING":
            try:
                service.health(settings)
                health = "ok"
            except LakehouseError as exc:
                health = str(exc)
        report.append(ServiceStatus(service.name, info["statename"], info["pid"] or None, service.endpoint, health))
    return report
