"""The stream_health DAG's verdicts, on stream statuses built by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from lakehouse.orchestration import health
from lakehouse.services import streams
from lakehouse.services.streams import StreamStatus

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)  # the checks' clock, passed in: ages are exact


def status(state="RUNNING", age_s: float | None = 30, sla_s=300, job_state: str | None = "RUNNING") -> StreamStatus:
    last = None if age_s is None else NOW - timedelta(seconds=age_s)
    job = None if job_state is None or state != "RUNNING" else {"id": "j1", "state": job_state, "restarts": 2}
    return StreamStatus("sales", state, 42 if state == "RUNNING" else None, 1000, last, {0: 9}, None, sla_s, job)


def test_a_running_fresh_stream_has_no_problem():
    assert health.problems(status(), NOW) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"age_s": 900}, ["bronze of sales is stale: last commit 900s ago, over its freshness_sla of 300s"]),
        ({"age_s": None}, ["bronze of sales has no commit yet"]),
        ({"state": "FATAL"}, ["the bronze stream of sales is FATAL: start it with `lakehouse stream start"]),
        ({"state": "BACKOFF", "age_s": 901}, ["is BACKOFF", "is stale"]),
        ({"job_state": "RESTARTING"}, ["the Flink job of sales is RESTARTING (restarts: 2)"]),
        ({"job_state": None}, ["the keeper of sales runs but the Flink cluster has no job for it"]),
    ],
)
def test_problems_name_what_is_wrong_and_the_fix(kwargs, expected):
    found = health.problems(status(**kwargs), NOW)
    assert len(found) == len(expected)
    for message, part in zip(found, expected, strict=True):
        assert part in message, message


def test_check_fails_loudly_skips_a_stream_nobody_started_and_passes_a_healthy_one(monkeypatch, clean_env):
    from lakehouse.settings import load_settings

    settings = load_settings()
    for item, outcome in ((status(age_s=900), AirflowFailException), (status(state="STOPPED"), AirflowSkipException)):
        monkeypatch.setattr(streams, "status", lambda _settings, _domain=None, item=item: [item])
        with pytest.raises(outcome, match="sales"):
            health.check_stream(settings, "sales", NOW)
    monkeypatch.setattr(streams, "status", lambda _settings, _domain=None: [status()])
    assert health.check_stream(settings, "sales", NOW) == {
        "domain": "sales",
        "state": "RUNNING",
        "seconds_since_commit": 30,
    }
