"""The stream-health check behind the stream_health DAG."""

from __future__ import annotations

from datetime import UTC, datetime

from lakehouse.services.streams import StreamStatus
from lakehouse.settings import Settings
from lakehouse.streaming.names import program_name


def problems(status: StreamStatus, now: datetime | None = None) -> list[str]:
    """What is wrong with one domain's stream at `now` (default: the current time), in words a
    person on call can act on."""
    found = []
    if status.state != "RUNNING":
        found.append(
            f"the bronze stream of {status.domain} is {status.state}: start it with "
            f"`lakehouse stream start --domain {status.domain}` (log: .state/logs/{program_name(status.domain)}.log)"
        )
    elif status.job is None:
        found.append(
            f"the keeper of {status.domain} runs but the Flink cluster has no job for it: see "
            f".state/logs/{program_name(status.domain)}.log and the Flink UI"
        )
    elif status.job["state"] != "RUNNING":
        found.append(
            f"the Flink job of {status.domain} is {status.job['state']} (restarts: {status.job['restarts']}): "
            "see its exceptions in the Flink UI and .state/logs/flink/"
        )
    age = seconds_since_commit(status, now)
    if age is None:
        found.append(f"bronze of {status.domain} has no commit yet")
    elif age > status.freshness_sla_s:
        found.append(
            f"bronze of {status.domain} is stale: last commit {age:.0f}s ago, over its freshness_sla of "
            f"{status.freshness_sla_s:.0f}s (no events arriving, or the stream is stuck)"
        )
    return found


def seconds_since_commit(status: StreamStatus, now: datetime | None = None) -> float | None:
    """The age of bronze's last commit at `now` (default: the current time), None without one."""
    if status.last_commit is None:
        return None
    return ((now or datetime.now(UTC)) - status.last_commit).total_seconds()


def check_stream(settings: Settings, domain: str, now: datetime | None = None) -> dict:
    """Raises AirflowFailException listing the problems; returns the status otherwise. A stream
    nobody started (or that was stopped on purpose) is skipped, not failed: a crashed one is
    FATAL or BACKOFF in supervisord, never STOPPED."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from lakehouse.services import streams

    [status] = streams.status(settings, domain)
    if status.state == "STOPPED":
        raise AirflowSkipException(
            f"the bronze stream of {domain} is not started; nothing to check "
            f"(start it with `lakehouse stream start --domain {domain}`)"
        )
    now = now or datetime.now(UTC)  # one instant for the verdict and the report
    found = problems(status, now)
    if found:
        raise AirflowFailException("; ".join(found))
    age = seconds_since_commit(status, now)
    print(f"{domain}: stream {status.state}, last bronze commit {age:.0f}s ago")
    return {"domain": domain, "state": status.state, "seconds_since_commit": age}
