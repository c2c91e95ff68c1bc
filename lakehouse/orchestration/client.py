"""A small client of Airflow's REST API (v2), behind `lakehouse trigger` and the tests."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from urllib.parse import quote

import requests

from lakehouse.errors import LakehouseError, ServiceError
from lakehouse.settings import Settings

FINISHED = {"success", "failed"}


class RejectedRequest(LakehouseError):
    """Airflow refused the request (for example params that fail validation): nothing was started."""


class AirflowClient:
    def __init__(self, settings: Settings, timeout_s: float = 30):
        self.base = settings.airflow.url
        self.timeout_s = timeout_s
        self.session = requests.Session()
        try:
            response = self.session.post(
                f"{self.base}/auth/token",
                json={
                    "username": settings.airflow.admin_user,
                    "password": settings.secret("airflow", "admin_password"),
                },
                timeout=timeout_s,
            )
        except requests.ConnectionError as exc:
            raise ServiceError(f"Airflow is not reachable at {self.base}: start it with `make up`") from exc
        if response.status_code >= 300:
            raise ServiceError(f"Airflow refused the login at {self.base}/auth/token: {response.text[:300]}")
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=self.timeout_s, **kwargs)
        if response.status_code in (400, 404, 409, 422):
            raise RejectedRequest(f"Airflow rejected {method} {path} ({response.status_code}): {_detail(response)}")
        if response.status_code >= 300:
            raise ServiceError(f"{method} {path} failed ({response.status_code}): {response.text[:500]}")
        return response.json() if response.content else {}

    def trigger(self, dag_id: str, conf: dict) -> dict:
        """A manual run with params; returns the dag run."""
        return self._call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})

    def backfill(self, dag_id: str, start: datetime, end: datetime, conf: dict) -> dict:
        """Airflow's native backfill: one run per data interval starting in [start, end), each
        with `conf` as its params. Airflow's own bounds are on logical dates, both inclusive."""
        body = {
            "dag_id": dag_id,
            "from_date": start.isoformat(),
            "to_date": (end - timedelta(seconds=1)).isoformat(),
            "dag_run_conf": conf,
            "reprocess_behavior": "completed",
            "max_active_runs": 1,
        }
        return self._call("POST", "/backfills", json=body)

    def runs(self, dag_id: str, **filters) -> list[dict]:
        """Every run of the DAG matching the filters (the list endpoint's query parameters)."""
        found: list[dict] = []
        while True:
            page = self._call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "offset": len(found), **filters})[
                "dag_runs"
            ]
            found += page
            if len(page) < 100:
                return found

    def backfill_runs(self, dag_id: str, start: datetime, end: datetime) -> list[dict]:
        """The backfill runs whose logical date is in [start, end)."""
        return self.runs(
            dag_id, run_type="backfill", logical_date_gte=start.isoformat(), logical_date_lt=end.isoformat()
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")["task_instances"]

    def wait(self, dag_id: str, runs: list[dict], timeout_s: float = 1800, log=None) -> dict[str, str]:
        """Poll until every run is finished; returns {run_id: state}. `log` gets a line whenever
        the counts change."""
        deadline = time.monotonic() + timeout_s
        wanted, states, last = {r["dag_run_id"] for r in runs}, {}, ""
        since = min(r["run_after"] for r in runs)  # only list runs that can be among them
        while time.monotonic() < deadline:
            listed = self.runs(dag_id, run_after_gte=since)
            states = {r["dag_run_id"]: r["state"] for r in listed if r["dag_run_id"] in wanted}
            if len(states) == len(wanted) and set(states.values()) <= FINISHED:
                return states
            line = ", ".join(f"{s} {list(states.values()).count(s)}" for s in sorted(set(states.values())))
            if log and line != last:
                log(f"  {dag_id}: {line}")
                last = line
            time.sleep(5)
        raise ServiceError(f"{dag_id} runs not finished within {timeout_s:.0f}s: {states}")


def _detail(response: requests.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:500]
    return str(detail)[:1000]
