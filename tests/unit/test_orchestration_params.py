"""How a DAG run's params and data interval become the window the jobs process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lakehouse.errors import LakehouseError
from lakehouse.orchestration.params import InvalidParams, resolve_window

DOMAINS = ["conversions", "sales"]
HOUR = (datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 11, tzinfo=UTC))


def resolve(params, interval=HOUR):
    return resolve_window(params, *interval, DOMAINS, timedelta(days=31))


def test_scheduled_run_processes_its_data_interval_for_every_domain():
    window = resolve({"domain": None, "start_date": None, "end_date": None, "backfill": False, "dry_run": False})
    assert (window.domains, window.start, window.end, window.backfill) == (tuple(DOMAINS), *HOUR, False)
    assert window.job_args("sales") == ["--domain", "sales", "--start", "2026-01-01T10:00:00+00:00",
                                        "--end", "2026-01-01T11:00:00+00:00"]  # fmt: skip


@pytest.mark.parametrize("params", [{"domain": None}, {"domain": ""}, {}])
def test_no_domain_null_or_empty_means_every_domain(params):
    assert resolve(params).domains == tuple(DOMAINS)


def test_a_range_wins_over_the_interval_and_naive_times_are_utc():
    window = resolve({"domain": "sales", "start_date": "2025-12-01", "end_date": "2025-12-03T00:00:00Z",
                      "backfill": True, "dry_run": True})  # fmt: skip
    assert window.domains == ("sales",)
    assert (window.start, window.end) == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2025, 12, 3, tzinfo=UTC))
    assert window.job_args("sales")[-2:] == ["--backfill", "--dry-run"]


@pytest.mark.parametrize(
    ("params", "interval", "message"),
    [
        ({"domain": "nope"}, HOUR, r"unknown domain 'nope'; known domains: conversions, sales"),
        ({"start_date": "2026-01-02"}, HOUR, r"give both start_date and end_date, or neither"),
        ({"start_date": "2026-01-02", "end_date": "2026-01-01"}, HOUR, r"end_date .* must be after start_date"),
        ({"start_date": "2026-01-01", "end_date": "2026-03-01"}, HOUR, r"over the maximum of 31 days"),
        ({"start_date": "yesterday", "end_date": "2026-01-01"}, HOUR, r"start_date 'yesterday' is not an ISO 8601"),
        ({}, (None, None), r"no data interval: give start_date and end_date"),
    ],
)
def test_inconsistent_params_are_refused(params, interval, message):
    with pytest.raises(InvalidParams, match=message):
        resolve(params, interval)


def test_gaps_are_the_uncovered_parts_of_the_window():
    from lakehouse.orchestration.readiness import gaps

    h = [datetime(2026, 1, 1, i, tzinfo=UTC) for i in range(7)]
    assert gaps([(h[0], h[1]), (h[1], h[3]), (h[4], h[6])], h[0], h[5]) == [(h[3], h[4])]
    assert gaps([(h[0], h[6])], h[1], h[5]) == []
    assert gaps([], h[1], h[2]) == [(h[1], h[2])]
    assert gaps([(h[2], h[3])], h[0], h[5]) == [(h[0], h[2]), (h[3], h[5])]


@pytest.mark.parametrize(
    ("dag_id", "start", "end", "native", "message"),
    [
        ("silver_hourly", None, "2026-01-02", False, r"give --start and --end"),
        ("silver_hourly", "2026-01-02", "2026-01-01", False, r"end_date .* must be after start_date"),
        ("silver_hourly", "2026-01-01", "2026-03-01", False, r"over the maximum of 31 days"),
        ("bronze_replay", "2026-01-01", "2026-01-02", True, r"no schedule, so no native backfill"),
    ],
)
def test_lakehouse_trigger_refuses_bad_ranges_before_calling_airflow(clean_env, dag_id, start, end, native, message):
    from lakehouse.orchestration.trigger import checked_window
    from lakehouse.settings import load_settings

    with pytest.raises(LakehouseError, match=message):
        checked_window(load_settings(), dag_id, {"start_date": start, "end_date": end}, native)


@pytest.mark.parametrize("domain", [None, ""])
def test_lakehouse_trigger_without_a_domain_runs_every_domain(clean_env, domain):
    from lakehouse.orchestration.trigger import checked_window
    from lakehouse.settings import load_settings

    params = {"domain": domain, "start_date": "2026-01-01", "end_date": "2026-01-02"}
    window = checked_window(load_settings(), "gold_daily", params)
    assert window.domains == ("conversions", "sales")


def test_a_native_backfill_may_span_more_than_one_runs_maximum(clean_env):
    from lakehouse.orchestration.trigger import checked_window
    from lakehouse.settings import load_settings

    params = {"domain": "sales", "start_date": "2026-01-01", "end_date": "2026-03-01"}
    window = checked_window(load_settings(), "silver_hourly", params, native=True)
    assert (window.domains, window.end - window.start) == (("sales",), timedelta(days=59))
