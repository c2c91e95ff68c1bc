"""What each embedded service runs: command line, ports, user, data folder and health check."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from lakehouse.bootstrap.jars import group_dir
from lakehouse.engines.java import java_bin
from lakehouse.errors import ServiceError
from lakehouse.services import airflow, flink, kafka, postgres, s3
from lakehouse.settings import Settings
from lakehouse.streaming.names import program_name

SEAWEEDFS_INTERNAL = (
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass
class Service:
    name: str
    command: list[str]
    endpoint: str
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)  # label -> (host, port), checked free
    health: Callable[[Settings], None] = field(default=lambda _settings: None)
    stopsignal: str = "TERM"
    user: str | None = None
    prepare: Callable[[], None] = field(default=lambda: None)
    start_timeout_s: float | None = None  # instead of embedded.health_timeout_s
    env: dict[str, str] = field(default_factory=dict)  # on top of supervisord's environment
    stop_wait_s: int = 30  # after the stop signal, before SIGKILL


def artifact(settings: Settings, name: str) -> Path:
    path = settings.project_root / ".artifacts/bin" / name
    if not path.exists():
        raise ServiceError(f"{path} is missing: run `make setup`")
    return path


def seaweedfs(settings: Settings) -> Service:
    host, base = settings.s3.host, settings.embedded.seaweedfs_internal_port_base
    data = settings.state_dir / "seaweedfs"
    internal = {flag: base + offset for offset, flag in enumerate(SEAWEEDFS_INTERNAL)}
    command = [
        str(artifact(settings, "weed")),
        "mini",
        f"-dir={data}",
        f"-ip={host}",
        f"-ip.bind={host}",
        f"-s3.port={settings.s3.port}",
        *(f"-{flag}={port}" for flag, port in internal.items()),
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
    ]
    ports = {"S3 API": (host, settings.s3.port)} | {
        f"SeaweedFS {flag}": (host, port) for flag, port in internal.items()
    }
    return Service(
        name="seaweedfs",
        command=command,
        ports=ports,
        endpoint=settings.s3.endpoint,
        health=s3.check,
        prepare=lambda: data.mkdir(parents=True, exist_ok=True),
    )


def kafka_broker(settings: Settings) -> Service:
    """Apache Kafka in KRaft combined mode, its jars from Maven Central (locks/jars.toml)."""
    folder = settings.state_dir / "kafka"
    config = folder / "server.properties"
    classpath = str(group_dir(settings.project_root, "kafka") / "*")
    java = [java_bin(), f"-Xmx{settings.kafka.heap}", f"-Xms{settings.kafka.heap}", "-cp", classpath]

    def prepare() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config.write_text(kafka.server_properties(settings))
        if (kafka.data_dir(settings) / "meta.properties").exists():
            return
        # First start: format the log folder as a new single-node cluster.
        command = [
            *java,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={kafka.new_cluster_id()}",
            "-c",
            str(config),
        ]
        result = subprocess.run([*command, "--standalone"], capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"formatting Kafka's storage failed: {(result.stderr or result.stdout).strip()[-800:]}")

    return Service(
        name="kafka",
        command=[*java, "-Dorg.slf4j.simpleLogger.defaultLogLevel=info", "kafka.Kafka", str(config)],
        ports={
            "Kafka": (settings.kafka.host, settings.kafka.port),
            "Kafka controller": (settings.kafka.host, settings.kafka.controller_port),
        },
        endpoint=settings.kafka.bootstrap_servers,
        health=kafka.check,
        prepare=prepare,
    )


def flink_cluster(settings: Settings) -> list[Service]:
    """A Flink standalone session cluster: one JobManager and one TaskManager, from PyFlink's
    own scripts in the foreground (supervisord restarts either if it dies)."""
    env = flink.environment(settings)
    host = settings.flink.host
    return [
        Service(
            name="flink-jobmanager",
            command=["bash", flink.script(settings, "jobmanager.sh"), "start-foreground"],
            ports={
                "Flink REST API and UI": (host, settings.flink.rest_port),
                "Flink JobManager RPC": (host, settings.flink.rpc_port),
            },
            endpoint=settings.flink.rest_url,
            health=flink.check_jobmanager,
            prepare=lambda: flink.prepare(settings),
            env=env,
        ),
        Service(
            name="flink-taskmanager",
            command=["bash", flink.script(settings, "taskmanager.sh"), "start-foreground"],
            endpoint=f"{settings.flink.taskmanager_slots} task slots",
            health=flink.check_taskmanager,
            env=env,
        ),
    ]


def postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise ServiceError("PostgreSQL server binaries not found: run `make setup` (apt-get install postgresql)")
    return Path(candidates[-1]).parent


def postgres_run_user() -> str | None:
    """PostgreSQL refuses to run as root; under root it runs as the Debian `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceError("running as root but there is no `postgres` user: apt-get install postgresql") from exc
    return "postgres"


def postgres_data_dir(settings: Settings) -> Path:
    """The cluster's folder: in the state folder, unless the `postgres` user cannot reach it."""
    preferred = settings.state_dir / "postgres"
    user = postgres_run_user()
    if user is None or _user_can_traverse(user, settings.state_dir):
        return preferred
    # For example a clone under a 0700 temporary folder: keep the cluster where `postgres` can reach it.
    key = hashlib.sha256(str(settings.state_dir).encode()).hexdigest()[:12]
    return Path("/var/lib/lakehouse") / key / "postgres"


def _user_can_traverse(user: str, folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(folder)], capture_output=True)
    return probe.returncode == 0


def as_user(user: str | None, command: list[str]) -> list[str]:
    return command if user is None else ["runuser", "-u", user, "--", *command]


def claim_outside_cluster(settings: Settings, data: Path) -> None:
    """A cluster kept outside the state folder carries the id of the state folder that made
    it. One left behind by an earlier state folder at the same path (whose teardown never ran,
    e.g. a killed test session) was made with another password: it is removed, not reused."""
    mine, theirs = settings.state_dir / "postgres.id", data.parent / "state.id"
    if theirs.exists() and (not mine.exists() or mine.read_text() != theirs.read_text()):
        shutil.rmtree(data.parent)
    if not mine.exists():
        mine.parent.mkdir(parents=True, exist_ok=True)
        mine.write_text(secrets.token_hex(8))
    if not theirs.exists():  # a new cluster, or one made before clusters carried the id
        data.parent.mkdir(parents=True, exist_ok=True)
        theirs.write_text(mine.read_text())


def init_postgres_cluster(settings: Settings, data: Path, user: str | None) -> None:
    if not data.is_relative_to(settings.state_dir):
        claim_outside_cluster(settings, data)
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    pwfile = data.parent / ".pgpass-init"
    pwfile.write_text(settings.secret("postgres", "password") + "\n")
    if user is not None:
        owner = pwd.getpwnam(user)
        for path in (data.parent, data, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data.chmod(0o700)
    pwfile.chmod(0o600)
    try:
        command = [
            str(postgres_bin_dir() / "initdb"),
            "-D",
            str(data),
            "-U",
            settings.postgres.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        result = subprocess.run(as_user(user, command), capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"initdb failed in {data}: {result.stderr.strip() or result.stdout.strip()}")
    finally:
        pwfile.unlink(missing_ok=True)


def postgresql(settings: Settings) -> Service:
    user = postgres_run_user()
    data = postgres_data_dir(settings)
    pg = settings.postgres
    command = [
        str(postgres_bin_dir() / "postgres"),
        "-D",
        str(data),
        "-p",
        str(pg.port),
        "-c",
        f"listen_addresses={pg.host}",
        # TCP only: no socket file whose path length or permissions could get in the way.
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
    ]
    return Service(
        name="postgres",
        command=command,
        ports={"PostgreSQL": (pg.host, pg.port)},
        endpoint=f"postgresql://{pg.user}@{pg.host}:{pg.port}",
        health=postgres.check,
        stopsignal="INT",  # PostgreSQL's "fast" shutdown: rolls back sessions, checkpoints, exits
        user=user,
        prepare=lambda: init_postgres_cluster(settings, data, user),
    )


def spark_cluster(settings: Settings) -> list[Service]:
    """A Spark standalone master and one worker from pyspark's own launcher (`spark-class`), for
    `spark.standalone: true`: every Spark job then runs on them instead of in local threads."""
    spark = settings.spark
    spark_class = str(Path(sys.executable).parent / "spark-class")
    env = {
        "SPARK_LOG_DIR": str(settings.state_dir / "logs"),
        "SPARK_WORKER_DIR": str(settings.state_dir / "spark" / "work"),
        "SPARK_LOCAL_IP": spark.host,
        "PYSPARK_PYTHON": sys.executable,
        # the daemons' own heap; executors get spark.executor.memory
        "SPARK_DAEMON_MEMORY": "512m",
    }
    master = spark.master_url
    return [
        Service(
            name="spark-master",
            command=[
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                spark.host,
                "--port",
                str(spark.master_port),
                "--webui-port",
                str(spark.master_ui_port),
            ],  # fmt: skip
            ports={
                "Spark master": (spark.host, spark.master_port),
                "Spark master UI": (spark.host, spark.master_ui_port),
            },
            endpoint=master,
            health=lambda settings: spark_health(settings, workers=0),
            env=env,
        ),
        Service(
            name="spark-worker",
            command=[
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                spark.host,
                "--cores",
                str(spark.worker_cores),
                "--memory",
                spark.worker_memory,
                "--webui-port",
                str(spark.worker_ui_port),
                master,
            ],  # fmt: skip
            ports={"Spark worker UI": (spark.host, spark.worker_ui_port)},
            endpoint=f"{spark.worker_cores} cores, {spark.worker_memory}",
            health=lambda settings: spark_health(settings, workers=1),
            env=env,
        ),
    ]


def spark_health(settings: Settings, workers: int) -> None:
    """The master's JSON status: ALIVE, with at least `workers` workers registered."""
    url = f"http://{settings.spark.host}:{settings.spark.master_ui_port}/json/"
    try:
        status = requests.get(url, timeout=5).json()
    except (requests.RequestException, ValueError) as exc:
        raise ServiceError(f"the Spark master does not answer at {url}: {type(exc).__name__}") from exc
    alive = sum(1 for worker in status.get("workers", []) if worker.get("state") == "ALIVE")
    if status.get("status") != "ALIVE" or alive < workers:
        raise ServiceError(f"the Spark master is {status.get('status')} with {alive} workers alive")


def services(settings: Settings) -> list[Service]:
    """The base services; none needs another to start, so they start together."""
    spark = spark_cluster(settings) if settings.spark.standalone else []
    return [seaweedfs(settings), postgresql(settings), kafka_broker(settings), *flink_cluster(settings), *spark]


def airflow_services(settings: Settings) -> list[Service]:
    """Airflow 3's components on the project's PostgreSQL; the api-server first, after the
    database schema and pools are in place (`prepare`)."""
    af = settings.airflow
    ports = {
        "api-server": {"Airflow UI and API": (af.host, af.port)},
        "scheduler": {"Airflow task log server": (af.host, af.log_server_port)},
        "triggerer": {"Airflow trigger log server": (af.host, af.trigger_log_server_port)},
    }
    return [
        Service(
            name=f"airflow-{component}",
            command=[sys.executable, "-m", "lakehouse.services.airflow", component],
            ports=ports.get(component, {}),
            endpoint=af.url if component == "api-server" else f"Airflow {component}",
            health=lambda settings, component=component: airflow.check(settings, component),
            prepare=(lambda: airflow.prepare(settings)) if component == "api-server" else (lambda: None),
            # First start: schema migration, then the api-server and the first heartbeats
            # (150 s seen on a 2-core machine next to a test run; over 300 s with three stacks
            # on it). Only a live process that never answers waits this long: one that exits
            # fails at once.
            start_timeout_s=600,
        )
        for component in airflow.COMPONENTS
    ]


def jupyterlab(settings: Settings) -> Service:
    """JupyterLab on notebooks/ with the project's kernel (this venv); its token comes from the
    environment (JUPYTER_TOKEN, set by the supervisor), never the command line."""
    jupyter = settings.jupyter
    command = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        "--no-browser",
        f"--ip={jupyter.host}",
        f"--port={jupyter.port}",
        "--port-retries=0",
        f"--ServerApp.root_dir={settings.project_root / 'notebooks'}",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    return Service(
        name="jupyterlab",
        command=command,
        ports={"JupyterLab": (jupyter.host, jupyter.port)},
        endpoint=jupyter.url,
        health=_jupyter_health,
        start_timeout_s=120,
    )


def _jupyter_health(settings: Settings) -> None:
    url = f"{settings.jupyter.url}/api/status"
    try:
        response = requests.get(
            url, headers={"Authorization": f"token {settings.secret('jupyter', 'token')}"}, timeout=5
        )
    except requests.RequestException as exc:
        raise ServiceError(f"JupyterLab does not answer at {url}: {exc}") from exc
    if response.status_code != 200:
        raise ServiceError(f"JupyterLab answered {response.status_code} at {url}")


def generator_program(settings: Settings, domain: str) -> Service:
    """Live events for the demo: `demo.live_rate` events/s of the domain, for as long as it runs."""
    return Service(
        name=f"generator-{domain}",
        command=[
            sys.executable,
            "-m",
            "lakehouse",
            "generate",
            "--domain",
            domain,
            "--events",
            str(10**12),
            "--rate",
            str(settings.demo.live_rate),
            "--manifest",
            str(settings.state_dir / "manifests" / f"live-{domain}.json"),
        ],  # fmt: skip
        endpoint=f"live {domain} events",
    )


def stream_program(settings: Settings, domain: str) -> Service:
    """The keeper of one domain's Flink job on the session cluster (started by `lakehouse stream
    start`, not by `up`): it submits the job, resuming from its latest savepoint or checkpoint,
    watches it, and stops it with a savepoint when stopped. If the job is lost (the JobManager
    restarted), the keeper exits, supervisord restarts it, and it submits the job again."""
    return Service(
        name=program_name(domain),
        command=[sys.executable, "-m", "lakehouse.services.keeper", "--domain", domain],
        endpoint=f"bronze ingestion of {domain}",
        stop_wait_s=150,  # the savepoint
    )


def stream_programs(settings: Settings) -> list[Service]:
    from lakehouse.domains import load_domains

    domains = load_domains(settings.definitions_dir)
    return [stream_program(settings, name) for name in domains] + [generator_program(settings, n) for n in domains]
