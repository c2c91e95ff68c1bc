"""`make up` end to end on the test stack: a `lakehouse up` (what `make up` runs after setup)
that fails right after sending the history, a `lakehouse up` that finishes the demo without
sending it again, `lakehouse down`, `lakehouse up` again; then the notebooks run top to bottom
on that data.

Runs last (see conftest): it stops and restarts every service. The demo is scaled down with
LAKEHOUSE_DEMO__* variables and its events dated by a pinned clock; the code path is the one
`make up` takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from lakehouse.demo import read_state
from lakehouse.domains import get_domain
from lakehouse.events.read import end_offsets, group_position
from lakehouse.medallion.runs import FAULT_VARIABLE
from lakehouse.services.supervisor import Supervisor
from lakehouse.settings import PROJECT_ROOT
from lakehouse.streaming.names import consumer_group, program_name

pytestmark = [pytest.mark.slow, pytest.mark.demo, pytest.mark.timeout(2400)]

DEMO_ENV = {
    "LAKEHOUSE_DEMO__HISTORY_EVENTS": "3000",
    "LAKEHOUSE_DEMO__HISTORY_DAYS": "3",
    "LAKEHOUSE_DEMO__LATE_EVENTS": "150",
    "LAKEHOUSE_DEMO__LIVE_RATE": "1",
    # The demo's clock: 23:00 UTC on a day no other test writes. Late in the day, so the late
    # wave (hours to days behind) touches that day itself, "today" for the demo: the case that
    # made the time-travel check depend on the hour it ran at.
    "LAKEHOUSE_DEMO__NOW": "2026-07-15T23:00:00Z",
}
DEMO_TODAY = "2026-07-15"
GOLD = ("gold.daily_sales_by_city", "gold.daily_top_salesmen", "gold.daily_customer_activity")


def lakehouse(*args: str, env: dict | None = None, fails: bool = False) -> str:
    """Its output (with `fails`: stdout and stderr of a run that must fail)."""
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse", *args],
        cwd=PROJECT_ROOT, env={**os.environ, **DEMO_ENV, **(env or {})}, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    print(result.stdout[-4000:], result.stderr[-4000:], file=sys.stderr)
    if fails:
        assert result.returncode != 0, result.stdout[-3000:]
        return result.stdout + result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def gold_state(catalog) -> dict:
    state = {}
    for name in GOLD:
        table = catalog.load_table(name)
        rows = table.scan().to_pandas().drop(columns=["generated_at", "run_id"])
        state[name] = (table.current_snapshot().snapshot_id, rows.sort_values(list(rows.columns), ignore_index=True))
    return state


def run_notebook(name: str) -> dict:
    book = nbformat.read(PROJECT_ROOT / "notebooks" / name, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code")  # committed without outputs
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
    [line] = [o["text"] for o in book.cells[-1].outputs if o.get("name") == "stdout"]
    return json.loads(line)


def quiesce(supervisor: Supervisor, catalog, settings) -> None:
    """Stop the live events and wait until the stream's position (its consumer group's offsets,
    committed with each checkpoint) has reached the end of every partition, and one more
    checkpoint interval, so counts hold still while compared."""
    supervisor.stop("generator-sales")
    ends = end_offsets(settings, "sales.events")
    deadline = time.monotonic() + 180
    while True:
        position = group_position(settings, consumer_group("sales"), "sales.events")
        if all(position.get(p, -1) >= end for p, end in ends.items()):
            time.sleep(settings.flink.checkpoint_interval_s)
            return
        assert time.monotonic() < deadline, f"the stream is at {position}, the topic ends at {ends}"
        time.sleep(1)


@pytest.fixture(scope="module")
def demo(stack, iceberg_catalog):
    # The first `make up` fails once the history is sent (as on a fresh machine whose Airflow
    # refused the first trigger); the next one must pick up from there.
    interrupted = lakehouse("up", env={FAULT_VARIABLE: "demo-after-history-sent"}, fails=True)
    after_failure = read_state(stack)
    first = lakehouse("up")
    before = gold_state(iceberg_catalog)
    lakehouse("down")
    second = lakehouse("up")
    supervisor = Supervisor(stack.state_dir)
    quiesce(supervisor, iceberg_catalog, stack)
    yield SimpleNamespace(interrupted=interrupted, after_failure=after_failure, first=first, second=second,
                          before=before, state=read_state(stack))  # fmt: skip
    supervisor.stop(program_name("sales"))  # leave the stack as the other tests had it


def test_make_up_after_a_failure_continues_without_sending_a_load_twice(demo, iceberg_catalog):
    assert "sending 3000 sales events" in demo.interrupted
    assert "fault injected at demo-after-history-sent" in demo.interrupted
    assert list(demo.after_failure["steps"]) == ["history_sent"] and "loaded_at" not in demo.after_failure
    assert "history already sent" in demo.first and "sending 3000" not in demo.first
    steps = demo.state["steps"]
    assert list(steps) == ["history_sent", "history_promoted", "late_sent", "late_promoted"]
    assert steps["history_sent"] == demo.after_failure["steps"]["history_sent"]  # recorded once, kept

    # Bronze and the dead letters hold one load each at the offsets the loads were sent to: the
    # history from its first offsets up to the late wave's, the late wave up to its last. A
    # history sent twice would have put a second load in between. (Rows other tests appended
    # directly carry made-up offsets and ingestion times long before the demo started.)
    history, late = steps["history_sent"], steps["late_sent"]
    since = demo.state["started"]

    def per_load(name: str, time_column: str) -> tuple[int, int]:
        rows = (
            iceberg_catalog.load_table(name)
            .scan(row_filter=f"kafka_topic == 'sales.events' AND {time_column} >= '{since}'",
                  selected_fields=("kafka_partition", "kafka_offset"))
            .to_arrow()
            .to_pylist()
        )  # fmt: skip
        counts = [0, 0]
        for row in rows:
            partition, offset = str(row["kafka_partition"]), row["kafka_offset"]
            if history["first_offsets"][partition] <= offset < late["first_offsets"].get(partition, 2**62):
                counts[0] += 1
            elif late["first_offsets"].get(partition, 2**62) <= offset <= late["last_offsets"][partition]:
                counts[1] += 1
        return counts[0], counts[1]

    assert per_load("bronze.sales_events", "ingested_at") == (history["expected_unique_valid"],
                                                             late["expected_unique_valid"])  # fmt: skip
    assert per_load("bronze.dead_letters", "failed_at") == (history["malformed"], 0)


def test_up_down_up_keeps_gold(demo, iceberg_catalog):
    assert "gold corrects those dates" in demo.first
    assert "demo data already loaded" in demo.second and "sending 3000" not in demo.second
    for output in (demo.first, demo.second):
        assert (
            "Top country, city, currency by revenue_cents:" in output
            and "Airflow UI" in output
            and "JupyterLab" in output
        )
    assert all(len(rows) > 0 for _snapshot, rows in demo.before.values())
    after = gold_state(iceberg_catalog)
    for name in GOLD:
        assert after[name][0] == demo.before[name][0], f"{name}: new snapshot after the restart"
        pd.testing.assert_frame_equal(after[name][1], demo.before[name][1])


def test_gold_analytics_notebook(demo, iceberg_catalog):
    summary = run_notebook("01_gold_analytics.ipynb")
    cities = iceberg_catalog.load_table("gold.daily_sales_by_city").scan().to_pandas()
    revenue = cities.groupby(["country", "city", "currency"])["revenue_cents"].sum().sort_values(ascending=False)
    want = [[city, round(cents / 100, 2)] for (_country, city, _currency), cents in revenue.head(5).items()]
    assert summary["top_cities"] == want
    salesmen = iceberg_catalog.load_table("gold.daily_top_salesmen").scan().to_pandas()
    latest = salesmen[salesmen["event_date"] == salesmen["event_date"].max()]
    assert summary["latest_date"] == str(salesmen["event_date"].max())
    assert summary["best_salesmen_latest"] == {
        row.country: row.salesman_id for row in latest[latest["sales_rank"] == 1].itertuples()
    }


def test_pipeline_health_notebook(demo, iceberg_catalog):
    summary = run_notebook("02_pipeline_health.ipynb")
    sales = summary["layers"]["sales"]
    bronze = iceberg_catalog.load_table("bronze.sales_events").scan(selected_fields=("event_id",)).to_arrow()
    assert sales["bronze"] == len(bronze) > 0
    letters = iceberg_catalog.load_table("bronze.dead_letters").scan().to_pandas()
    assert sales["dead_letters"] == int((letters["kafka_topic"] == "sales.events").sum()) > 0
    for name in GOLD:
        assert sales[name] == len(iceberg_catalog.load_table(name).scan().to_arrow()) > 0
        assert summary["snapshots"][name] == len(iceberg_catalog.load_table(name).snapshots())
    assert summary["streams"]["sales"] == "RUNNING"
    # The demo's promotions (the last validations, as the demo tests run last) passed their gates.
    sales_domain = get_domain(PROJECT_ROOT / "catalog", "sales")
    assert summary["quality"]["silver.sales_orders"]["expectations"] == len(sales_domain.quality.silver)
    assert all(summary["quality"][table]["failed"] == 0 for table in ["silver.sales_orders", *GOLD])


def test_time_travel_notebook_shows_the_late_correction(demo, iceberg_catalog):
    summary = run_notebook("03_time_travel.ipynb")
    table = iceberg_catalog.load_table("gold.daily_sales_by_city")
    assert summary["snapshots"] == len(table.snapshots()) >= 2
    steps = demo.state["steps"]
    late = steps["late_sent"]["event_dates"]
    assert summary["late_dates"] == sorted(late) and DEMO_TODAY in late  # the demo's "today" was touched
    # Only dates of the late wave were corrected between the demo's two gold snapshots, whatever
    # other runs and tests wrote into gold; the demo's "today" among them.
    assert DEMO_TODAY in summary["corrected_dates"] and set(summary["corrected_dates"]) <= set(late)
    pick = summary["pick"]
    assert pick["event_date"] == min(late, key=lambda day: (-late[day], day))  # the most touched date
    assert pick["event_date"] in summary["corrected_dates"] and pick["late_events"] == late[pick["event_date"]]
    assert (pick["before_snapshot"], pick["after_snapshot"]) == (
        steps["history_promoted"]["gold_snapshots"]["gold.daily_sales_by_city"],
        steps["late_promoted"]["gold_snapshots"]["gold.daily_sales_by_city"],
    )
    assert pick["revenue_before"] != pick["revenue_after"]
    day = date.fromisoformat(pick["event_date"])
    for snapshot, revenue in ((pick["before_snapshot"], pick["revenue_before"]),
                              (pick["after_snapshot"], pick["revenue_after"])):  # fmt: skip
        rows = table.scan(snapshot_id=snapshot).to_pandas()
        assert int(rows.loc[rows["event_date"] == day, "revenue_cents"].sum()) == revenue
