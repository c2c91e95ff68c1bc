"""The keeper of one domain's stream job on the Flink session cluster (`stream-<domain>` under supervisord).

    python -m lakehouse.services.keeper --domain sales

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
from lakehouse.streaming.checkpoints import mark_unusable, restore_points, savepoint_dir
from lakehouse.streaming.names import job_name

POLL_S = 2.0
LOST_AFTER_S = 30.0  # the REST API unreachable this long: the cluster is gone, start over


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
    """Submit the job, resuming from the newest restore point Flink can restore; returns its job id.

    A point whose metadata Flink cannot read (corrupted, truncated) is marked unusable and the
    next older one is tried, down to none: the consumer group's offsets, with empty dedup state (bronze
    may then get a copy of an event it holds; silver's dedup keeps one)."""
    for restore in restore_points(settings, domain):
        job_id, failure = _run(settings, domain, restore)
        if failure is None:
            return job_id
        log(f"cannot resume from {restore}: {failure}; trying the next older restore point")
        mark_unusable(restore, failure)
    return _run(settings, domain, None)[0]  # without a restore point, every failure raises


# What Flink reports for a restore point whose metadata it cannot read (corrupted, truncated,
# files missing). A point that reads fine but does not fit the program ("Cannot map
# checkpoint/savepoint state") is not among them: falling back from it would silently drop state.
UNREADABLE = re.compile(r"Unexpected magic number|java\.io\.EOFException|java\.io\.FileNotFoundException")


def unreadable(failure: str) -> bool:
    return bool(UNREADABLE.search(failure)) and "Cannot map checkpoint/savepoint state" not in failure


def _run(settings: Settings, domain: str, restore) -> tuple[str | None, str | None]:
    """`flink run --detached` from `restore`, then wait until the job runs: (job id, None), or
    (None or job id, why) when Flink cannot read `restore`. Any other failure raises."""
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
        failure = f"`flink run` of {job_name(domain)} failed (exit {result.returncode}):\n{tail}"
        if restore is not None and unreadable(output):
            return None, failure
        raise ServiceError(failure)  # not an unreadable restore point (an incompatible one is kept)
    job_id = match.group(1)
    log(f"submitted job {job_id}")
    # The JobManager restores the point's metadata while the job initialises: a point it cannot
    # read fails the job before it ever runs.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = flink.rest(settings, "GET", f"/jobs/{job_id}")["state"]
        if state == "RUNNING":
            return job_id, None
        if state == "FAILED":
            failure = f"job {job_id} failed while starting: {flink.root_exception(settings, job_id)}"
            if restore is not None and unreadable(failure):
                return job_id, failure
            raise ServiceError(failure)
        time.sleep(0.5)
    return job_id, None  # still initialising: the keeper's watch takes over


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
