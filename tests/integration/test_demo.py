"""`make up` end to end on the test stack: `lakehouse up` (what `make up` runs after setup),
`lakehouse down`, `lakehouse up` again; then the notebooks run top to bottom on that data.

Runs last (see conftest): it stops and restarts every service. The demo is scaled down with
LAKEHOUSE_DEMO__* variables; the code path is the one `make up` takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from lakehouse.services.supervisor import Supervisor
from lakehouse.settings import PROJECT_ROOT

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.demo, pytest.mark.timeout(2400)]

DEMO_ENV = {
    "LAKEHOUSE_DEMO__HISTORY_EVENTS": "3000",
    "LAKEHOUSE_DEMO__HISTORY_DAYS": "3",
    "LAKEHOUSE_DEMO__LATE_EVENTS": "150",
    "LAKEHOUSE_DEMO__LIVE_RATE": "1",
}
GOLD = ("gold.daily_sales_by_city", "gold.daily_top_salesmen", "gold.daily_customer_activity")


def lakehouse(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse", *args],
        cwd=PROJECT_ROOT, env={**os.environ, **DEMO_ENV}, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    print(result.stdout[-4000:], result.stderr[-4000:], file=sys.stderr)
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


def quiesce(supervisor: Supervisor, catalog) -> None:
    """Stop the live events and wait until the stream has committed what it received (no new
    bronze snapshot for 15 s; it commits every 2 s), so counts hold still while compared."""
    supervisor.stop("generator-sales")
    bronze = catalog.load_table("bronze.sales_events")
    last, since = None, time.monotonic()
    while time.monotonic() - since < 15:
        current = bronze.refresh().current_snapshot().snapshot_id
        if current != last:
            last, since = current, time.monotonic()
        time.sleep(1)


@pytest.fixture(scope="module")
def demo(stack, iceberg_catalog):
    first = lakehouse("up")
    before = gold_state(iceberg_catalog)
    lakehouse("down")
    second = lakehouse("up")
    supervisor = Supervisor(stack.state_dir)
    quiesce(supervisor, iceberg_catalog)
    yield first, second, before
    supervisor.stop("stream-sales")  # leave the stack as the other tests had it


def test_up_down_up_keeps_gold(demo, iceberg_catalog):
    first, second, before = demo
    assert "sending 3000 sales events" in first and "gold corrects those dates" in first
    assert "demo data already loaded" in second and "sending 3000" not in second
    for output in (first, second):
        assert "Top cities by revenue" in output and "Airflow UI" in output and "JupyterLab" in output
    assert all(len(rows) > 0 for _snapshot, rows in before.values())
    after = gold_state(iceberg_catalog)
    for name in GOLD:
        assert after[name][0] == before[name][0], f"{name}: new snapshot after the restart"
        pd.testing.assert_frame_equal(after[name][1], before[name][1])


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


def test_time_travel_notebook_shows_the_late_correction(demo, iceberg_catalog):
    summary = run_notebook("03_time_travel.ipynb")
    table = iceberg_catalog.load_table("gold.daily_sales_by_city")
    assert summary["snapshots"] == len(table.snapshots()) >= 2
    pick = summary["pick"]
    assert (
        pick
        and pick["event_date"] in summary["corrected_dates"]
        and date.fromisoformat(pick["event_date"]) < date.today()
    )
    assert pick["revenue_before"] != pick["revenue_after"]
    after = table.scan(snapshot_id=pick["after_snapshot"]).to_pandas()
    assert (
        int(after.loc[after["event_date"] == date.fromisoformat(pick["event_date"]), "revenue_cents"].sum())
        == (pick["revenue_after"])
    )
