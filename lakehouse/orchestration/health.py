"""The stream-health check behind the stream_health DAG."""

from __future__ import annotations

from lakehouse.settings import Settings
from lakehouse.streaming.operations import StreamStatus


def problems(status: StreamStatus) -> list[str]:
    """What is wrong with one domain's stream, in words a person on call can act on."""
    found = []
    if status.state != "RUNNING":
        found.append(
            f"the bronze stream of {status.domain} is {status.state}: start it with "
            f"`lakehouse stream start --domain {status.domain}` (log: .state/logs/stream-{status.domain}.log)"
        )
    age = status.seconds_since_commit
    if age is None:
        found.append(f"bronze of {status.domain} has no commit yet")
    elif age > status.freshness_sla_s:
        found.append(
            f"bronze of {status.domain} is stale: last commit {age:.0f}s ago, over its freshness_sla of "
            f"{status.freshness_sla_s:.0f}s (no events arriving, or the stream is stuck)"
        )
    return found


def check_stream(settings: Settings, domain: str) -> dict:
    """Raises AirflowFailException listing the problems; returns the status otherwise. A stream
    nobody started (or that was stopped on purpose) is skipped, not failed: a crashed one is
    FATAL or BACKOFF in supervisord, never STOPPED."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from lakehouse.streaming import operations

    [status] = operations.status(settings, domain)
    if status.state == "STOPPED":
        raise AirflowSkipException(
            f"the bronze stream of {domain} is not started; nothing to check "
            f"(start it with `lakehouse stream start --domain {domain}`)"
        )
    found = problems(status)
    if found:
        raise AirflowFailException("; ".join(found))
    print(f"{domain}: stream {status.state}, last bronze commit {status.seconds_since_commit:.0f}s ago")
    return {"domain": domain, "state": status.state, "seconds_since_commit": status.seconds_since_commit}
