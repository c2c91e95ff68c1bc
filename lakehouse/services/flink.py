"""The Flink session cluster: its distribution, configuration and REST API.

The cluster is PyFlink's own distribution (the `pyflink` package of .venv-flink: bin/, lib/,
opt/) started with its own scripts, plus the project's jars from Maven Central
(.artifacts/jars/flink on lib/, the S3 filesystem as a plugin). Everything variable lives in
the state folder: the configuration (PyFlink's default config.yaml with the settings'
addresses, ports and memory on top), the assembled lib/ and plugins/ folders, the logs.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from pathlib import Path

import requests
import yaml

from lakehouse.bootstrap.jars import group_jars
from lakehouse.engines.java import java17_home
from lakehouse.errors import ServiceError
from lakehouse.settings import Settings, load_settings

# Job states in which the job is alive (or about to be), per Flink's JobStatus.
ALIVE = {"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "FAILING", "CANCELLING", "RECONCILING", "SUSPENDED"}


def pyflink_home(settings: Settings) -> Path:
    found = glob.glob(str(settings.project_root / ".venv-flink/lib/python3*/site-packages/pyflink/bin/flink"))
    if not found:
        raise ServiceError("PyFlink is not installed in .venv-flink: run `make setup`")
    return Path(found[0]).parents[1]


def folder(settings: Settings) -> Path:
    return settings.state_dir / "flink"


def environment(settings: Settings) -> dict[str, str]:
    """What Flink's scripts need to find the distribution, the jars and the configuration."""
    if home := settings.flink.distribution:  # a complete installation: its own conf/ (write_config), lib/, plugins/
        env = {"FLINK_HOME": str(home), "FLINK_CONF_DIR": str(home / "conf")}
    else:
        base = folder(settings)
        env = {
            "FLINK_HOME": str(pyflink_home(settings)),
            "FLINK_CONF_DIR": str(base / "conf"),
            "FLINK_LIB_DIR": str(base / "lib"),
            "FLINK_PLUGINS_DIR": str(base / "plugins"),
            "FLINK_LOG_DIR": str(settings.state_dir / "logs" / "flink"),
        }
    if java17_home() and "JAVA_HOME" not in os.environ:
        env["JAVA_HOME"] = java17_home()
    return env


def script(settings: Settings, name: str) -> str:
    """A script of the Flink installation the cluster and `flink run` use: PyFlink's own (embedded mode),
    or `flink.distribution` (Docker mode: the official image's, the project's jars in its lib/)."""
    return str((settings.flink.distribution or pyflink_home(settings)) / "bin" / name)


def configuration(settings: Settings) -> dict:
    """The cluster's config.yaml: PyFlink's defaults (JVM options Java 17 needs among them) with
    the lakehouse's addresses, ports, memory and restart behaviour on top."""
    flink = settings.flink
    with open(pyflink_home(settings) / "conf" / "config.yaml") as handle:
        config = yaml.safe_load(handle) or {}
    bind = flink.bind_host or flink.host  # where the processes listen; `host` is where they are reached
    ours = {
        "jobmanager": {
            "rpc": {"address": flink.host, "port": flink.rpc_port},
            "bind-host": bind,
            "memory": {"process": {"size": flink.jobmanager_memory}},
        },
        "taskmanager": {
            "host": flink.taskmanager_host or flink.host,
            "bind-host": bind,
            "numberOfTaskSlots": flink.taskmanager_slots,
            "memory": {"process": {"size": flink.taskmanager_memory}},
        },
        "rest": {"address": flink.host, "bind-address": bind, "port": flink.rest_port},
        # A TaskManager that starts before the JobManager retries after 1 s, not 10 s.
        "cluster": {"registration": {"error-delay": 1000, "refused-registration-delay": 1000}},
        # Savepoints default to the state folder; each job sets its own checkpoint folder. How
        # many completed checkpoints a job retains is the JobManager's setting (a job's own
        # configuration does not change it): three, so a lost or corrupted newest one leaves
        # older ones to resume from.
        "execution": {
            "checkpointing": {"savepoint-dir": f"file://{folder(settings) / 'savepoints'}", "num-retained": 3}
        },
        "web": {"tmpdir": str(folder(settings) / "tmp")},
        "io": {"tmp": {"dirs": str(folder(settings) / "tmp")}},
    }
    merged = _merge(config, ours)
    merged.update(flink.extra_conf)
    return merged


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def prepare(settings: Settings) -> None:
    """Write the configuration and assemble lib/ and plugins/ (links, so nothing is copied)."""
    base, home = folder(settings), pyflink_home(settings)
    for sub in ("conf", "lib", "plugins/s3-fs-hadoop"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (settings.state_dir / "logs" / "flink").mkdir(parents=True, exist_ok=True)
    jars = [*sorted((home / "lib").glob("*.jar")), *group_jars(settings.project_root, "flink")]
    _link_exactly(base / "lib", jars)
    _link_exactly(base / "plugins/s3-fs-hadoop", group_jars(settings.project_root, "flink-s3"))
    missing = [str(jar) for jar in jars if not jar.exists()]
    if missing:
        raise ServiceError(f"Flink jars missing: {', '.join(missing)}. Run `make setup`.")
    write_config(settings, base / "conf")
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties", "log4j-session.properties"):
        target = base / "conf" / name
        if not target.exists():
            target.write_bytes((home / "conf" / name).read_bytes())


def write_config(settings: Settings, conf_dir: Path) -> Path:
    """The cluster's config.yaml (`configuration`) into a conf/: the embedded cluster's (`prepare`) or, as the
    Docker images' entrypoint does before Flink's own, another installation's: both modes run one configuration."""
    for sub in ("savepoints", "tmp"):
        (folder(settings) / sub).mkdir(parents=True, exist_ok=True)
    target = conf_dir / "config.yaml"
    with open(target, "w") as handle:
        yaml.safe_dump(configuration(settings), handle, sort_keys=True)
    return target


def _link_exactly(folder_: Path, files: list[Path]) -> None:
    wanted = {f.name: f for f in files}
    for existing in folder_.iterdir():
        if existing.name not in wanted or existing.resolve() != wanted[existing.name].resolve():
            existing.unlink()
    for name, source in wanted.items():
        if not (folder_ / name).exists():
            (folder_ / name).symlink_to(source)


# ---- REST API ----


def rest(settings: Settings, method: str, path: str, body: dict | None = None, timeout_s: float = 10) -> dict:
    url = f"{settings.flink.rest_url}{path}"
    try:
        response = requests.request(method, url, json=body, timeout=timeout_s)
    except requests.RequestException as exc:
        raise ServiceError(f"the Flink JobManager does not answer at {url}: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        raise ServiceError(f"Flink REST {method} {path} answered {response.status_code}: {response.text[:300]}")
    return response.json() if response.content else {}


def check_jobmanager(settings: Settings) -> None:
    rest(settings, "GET", "/overview", timeout_s=5)


def check_taskmanager(settings: Settings) -> None:
    overview = rest(settings, "GET", "/overview", timeout_s=5)
    if overview.get("taskmanagers", 0) < 1:
        raise ServiceError("no TaskManager has registered with the Flink JobManager yet")


def jobs(settings: Settings) -> list[dict]:
    """Every job the cluster knows: [{'jid', 'name', 'state', 'start-time', ...}], newest first."""
    listed = rest(settings, "GET", "/jobs/overview").get("jobs", [])
    return sorted(listed, key=lambda job: job.get("start-time", 0), reverse=True)


def alive_job(settings: Settings, name: str) -> dict | None:
    return next((job for job in jobs(settings) if job["name"] == name and job["state"] in ALIVE), None)


def wait_for_running(settings: Settings, name: str, timeout_s: float = 300) -> dict:
    """Until a job named `name` is RUNNING on the cluster (the cluster may not answer yet);
    returns its overview entry, or raises ServiceError naming the jobs the cluster has."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            job = alive_job(settings, name)
        except ServiceError:
            job = None
        if job and job["state"] == "RUNNING":
            return job
        if time.monotonic() > deadline:
            try:
                known = [(j["name"], j["state"]) for j in jobs(settings)]
            except ServiceError as exc:
                known = str(exc)
            raise ServiceError(f"{name} is not running on the Flink cluster after {timeout_s:.0f}s (jobs: {known})")
        time.sleep(1)


def stop_with_savepoint(settings: Settings, job_id: str, target: Path, timeout_s: float = 120) -> str:
    """Stop the job with a savepoint (Flink's `stop`, not `cancel`); returns the savepoint's path."""
    trigger = rest(settings, "POST", f"/jobs/{job_id}/stop", {"targetDirectory": f"file://{target}", "drain": False})
    request_id = trigger["request-id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = rest(settings, "GET", f"/jobs/{job_id}/savepoints/{request_id}")
        if result.get("status", {}).get("id") == "COMPLETED":
            operation = result.get("operation", {})
            if "failure-cause" in operation:
                cause = operation["failure-cause"].get("stack-trace", "").splitlines()[:3]
                raise ServiceError(f"the savepoint of job {job_id} failed: {' '.join(cause)}")
            return operation["location"].removeprefix("file:")
        time.sleep(0.5)
    raise ServiceError(f"job {job_id} did not complete its savepoint within {timeout_s:.0f}s")


def root_exception(settings: Settings, job_id: str) -> str:
    """The first lines of the job's root exception, or '' if it has none."""
    found = rest(settings, "GET", f"/jobs/{job_id}/exceptions").get("root-exception") or ""
    return " ".join(line.strip() for line in found.splitlines()[:4] if not line.strip().startswith("at "))


def job_metrics(settings: Settings, job_id: str) -> dict:
    """State, restarts, the last completed checkpoint and records in/out of one job."""
    detail = rest(settings, "GET", f"/jobs/{job_id}")
    checkpoints = rest(settings, "GET", f"/jobs/{job_id}/checkpoints")
    restarts = rest(settings, "GET", f"/jobs/{job_id}/metrics?get=numRestarts")
    vertices = detail.get("vertices", [])
    completed = (checkpoints.get("latest") or {}).get("completed") or {}
    return {
        "state": detail.get("state"),
        "restarts": int(restarts[0]["value"]) if restarts else 0,
        "checkpoints_completed": checkpoints.get("counts", {}).get("completed", 0),
        "last_checkpoint": completed.get("external_path"),
        "last_checkpoint_at_ms": completed.get("latest_ack_timestamp"),
        "restored_from": ((checkpoints.get("latest") or {}).get("restored") or {}).get("external_path"),
        # the sources' output and the sinks' input, as Flink counts them between operators
        "records_in": sum(v["metrics"].get("write-records", 0) for v in vertices[:1]),
        "records_out": sum(v["metrics"].get("read-records", 0) for v in vertices[-1:]),
    }


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "write-config":
        sys.exit("usage: python -m lakehouse.services.flink write-config CONF_DIR")
    print(f"wrote {write_config(load_settings(), Path(sys.argv[2]))}")
