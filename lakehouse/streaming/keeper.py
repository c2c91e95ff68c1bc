"""The keeper of one domain's stream job on the Flink session cluster (`stream-<domain>` under supervisord).

    python -m lakehouse.streaming.keeper --domain sales

It submits flink_jobs/bronze_ingest.py with `flink run` (resuming from the domain's latest
savepoint or retained checkpoint), or adopts the job if it is already running, then watches it
through the REST API. Inside the cluster Flink restarts a failing job itself (its restart
strategy, from the latest checkpoint). Only when the job is gone (the JobManager restarted and
lost it, or the job failed for good) does the keeper exit non-zero: supervisord starts it again
and it submits the job again from the newest restore point. On SIGTERM (`lakehouse stream
stop`, `make down`) it stops the job with a savepoint and exits.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

from lakehouse.domains import get_domain
from lakehouse.errors import LakehouseError, ServiceError
from lakehouse.services import flink
from lakehouse.settings import Settings, load_settings
from lakehouse.streaming.checkpoints import latest_restore_point, savepoint_dir

POLL_S = 2.0
LOST_AFTER_S = 30.0  # the REST API unreachable this long: the cluster is gone, start over


def job_name(domain: str) -> str:
    return f"bronze-ingest-{domain}"


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} keeper {message}", flush=True)


def wait_for_cluster(settings: Settings, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            flink.check_taskmanager(settings)
            return
        except ServiceError as exc:
            if time.monotonic() > deadline:
                raise ServiceError(f"the Flink cluster is not ready after {timeout_s:.0f}s: {exc}") from exc
        time.sleep(1)


def submit(settings: Settings, domain: str) -> str:
    """`flink run --detached` of the job; returns its job id."""
    restore = latest_restore_point(settings, domain)
    python = str(settings.project_root / ".venv-flink/bin/python")
    command = [
        "bash", flink.script(settings, "flink"), "run", "--detached",
        *(["--fromSavepoint", str(restore)] if restore else []),
        "--python", str(settings.project_root / "flink_jobs/bronze_ingest.py"),
        "--pyClientExecutable", python, "--pyExecutable", python,
        "--domain", domain,
    ]  # fmt: skip
    log(f"submitting {job_name(domain)} from {restore or 'the consumer group offsets (earliest without any)'}")
    result = subprocess.run(command, env={**os.environ, **flink.environment(settings)}, capture_output=True, text=True)
    output = result.stdout + result.stderr
    match = re.search(r"JobID ([0-9a-f]{32})", output)
    if result.returncode != 0 or not match:
        tail = "\n".join(line for line in output.splitlines() if not line.startswith("\tat "))[-3000:]
        raise ServiceError(f"`flink run` of {job_name(domain)} failed (exit {result.returncode}):\n{tail}")
    log(f"submitted job {match.group(1)}")
    return match.group(1)


def keep(settings: Settings, domain: str) -> int:
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    wait_for_cluster(settings)
    job = flink.alive_job(settings, job_name(domain))
    if job:
        job_id = job["jid"]
        log(f"adopting running job {job_id}")
    else:
        job_id = submit(settings, domain)
    unreachable_since = None
    while not stopping:
        time.sleep(POLL_S)
        try:
            state = flink.rest(settings, "GET", f"/jobs/{job_id}")["state"]
            unreachable_since = None
        except ServiceError as exc:
            if "answered 404" in str(exc):
                log(f"job {job_id} is unknown to the JobManager (it restarted): exiting to resubmit")
                return 1
            unreachable_since = unreachable_since or time.monotonic()
            if time.monotonic() - unreachable_since > LOST_AFTER_S:
                log(f"the JobManager has not answered for {LOST_AFTER_S:.0f}s: exiting to resubmit")
                return 1
            continue
        if state not in flink.ALIVE:
            log(f"job {job_id} is {state}: exiting to resubmit")
            return 1
    log(f"stopping job {job_id} with a savepoint")
    path = flink.stop_with_savepoint(settings, job_id, savepoint_dir(settings, domain))
    log(f"stopped; savepoint at {path}")
    return 0


def check(settings: Settings, domain: str) -> int:
    """0 when the domain's job runs on the cluster (Docker mode's healthcheck of the keeper), else 1."""
    try:
        job = flink.alive_job(settings, job_name(domain))
    except ServiceError as exc:
        print(f"no answer from the Flink cluster: {exc}")
        return 1
    if job is None or job["state"] != "RUNNING":
        print(f"{job_name(domain)} is {job['state'] if job else 'not submitted'}")
        return 1
    print(f"{job_name(domain)} RUNNING as job {job['jid']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", default=None, help="domain name (default: the default domain)")
    parser.add_argument(
        "--check", action="store_true", help="only report whether the job is RUNNING (exit 0) or not (1)"
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    domain = get_domain(settings.definitions_dir, args.domain)
    if args.check:
        return check(settings, domain.name)
    try:
        return keep(settings, domain.name)
    except LakehouseError as exc:
        log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
