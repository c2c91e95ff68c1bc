"""A small client of Airflow's REST API (v2), behind `lakehouse trigger` and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from urllib.parse import quote

import requests

from lakehouse.errors import LakehouseError, ServiceError
from lakehouse.settings import Settings

FINISHED = {"success", "failed"}
# How long to wait for the dag-processor to register a DAG: its first parse of dags/ after a
# start takes well under a minute on 2 cores; five minutes means the file is not being parsed.
DAG_REGISTRATION_TIMEOUT_S = 300


class RejectedRequest(LakehouseError):
    """Airflow refused the request (for example params that fail validation): nothing was started."""


class AirflowClient:
    poll_s = 2.0  # between checks while waiting for the dag-processor

    def __init__(self, settings: Settings, timeout_s: float = 30):
        self.settings = settings
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

    def dag(self, dag_id: str) -> dict | None:
        """The DAG as Airflow serves it, or None while the dag-processor has not registered it
        (until then every request about the DAG, a trigger included, is refused with 404)."""
        path = f"/dags/{quote(dag_id, safe='')}"
        response = self.session.get(f"{self.base}/api/v2{path}", timeout=self.timeout_s)
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise ServiceError(f"GET {path} failed ({response.status_code}): {response.text[:500]}")
        return response.json()

    def wait_for_dags(
        self,
        dag_ids: Iterable[str],
        timeout_s: float = DAG_REGISTRATION_TIMEOUT_S,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """Until Airflow has registered every DAG (its DAG endpoint answers 200). Right after
        Airflow starts, the api-server is healthy before the dag-processor has parsed dags/, and a
        trigger then fails with 404. A DAG still missing after `timeout_s` is a ServiceError
        naming it, its file and the dag-processor's log."""
        started = time.monotonic()
        missing, reported = list(dict.fromkeys(dag_ids)), None
        while True:
            missing = [dag_id for dag_id in missing if self.dag(dag_id) is None]
            waited = time.monotonic() - started
            if not missing:
                if reported is not None and log:
                    log(f"  Airflow has registered the DAGs after {waited:.0f}s")
                return
            if waited >= timeout_s:
                raise ServiceError(self._not_registered(missing, timeout_s))
            if log and (reported is None or time.monotonic() - reported >= 10):
                log(f"  waiting for Airflow's dag-processor to register {', '.join(missing)} ({waited:.0f}s)")
                reported = time.monotonic()
            time.sleep(max(0.0, min(self.poll_s, timeout_s - waited)))

    def _not_registered(self, missing: list[str], timeout_s: float) -> str:
        from lakehouse.services.airflow import airflow_home
        from lakehouse.services.supervisor import Supervisor

        dags_folder = self.settings.project_root / "dags"
        log_file = Supervisor(self.settings.state_dir).log_file("airflow-dag-processor")
        # Airflow's default child-process log folder: one parse log per DAG file, by day.
        parse_logs = airflow_home(self.settings) / "logs" / "dag_processor" / "latest"
        files = {dag_id: dags_folder / f"{dag_id}.py" for dag_id in missing}
        named = ", ".join(
            f"{dag_id} (dags/{path.name}{'' if path.is_file() else ': no such file'})" for dag_id, path in files.items()
        )
        lines = [
            f"Airflow has not registered the DAG{'s' if len(missing) > 1 else ''} {named} within {timeout_s:g}s: "
            f"its dag-processor has not parsed {'them' if len(missing) > 1 else 'it'}; see the dag-processor's log "
            f"{log_file} (per-file parse logs in {parse_logs}/) and the import errors at {self.base}/dags"
        ]
        for path in files.values():
            error = self.import_error(path.name)
            if error:
                lines.append(f"  Airflow's import error for dags/{path.name}:\n{error}")
        return "\n".join(lines)

    def import_error(self, filename: str) -> str | None:
        """The end of Airflow's import error for a file in dags/, if it reports one."""
        try:
            errors = self._call("GET", "/importErrors", params={"limit": 100})["import_errors"]
        except (LakehouseError, requests.RequestException, KeyError):
            return None  # only a hint for the message: never let it hide the real error
        for error in errors:
            if PurePosixPath(error["filename"]).name == filename:
                trace = error.get("stack_trace", "").strip().splitlines()
                return "\n".join(f"    {line}" for line in trace[-8:])
        return None

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

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The text of one try of a task instance's log."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}"
        content = self._call("GET", path, params={"map_index": map_index}, headers={"Accept": "application/json"})
        lines = content.get("content", "")
        if isinstance(lines, str):
            return lines
        return "\n".join(line.get("event", "") if isinstance(line, dict) else str(line) for line in lines)

    def asset_events(self, **filters) -> list[dict]:
        """Asset events matching the filters (source_dag_id, source_run_id, ...), with their extra."""
        return self._call("GET", "/assets/events", params={"limit": 100, **filters})["asset_events"]

    def mark_failed(self, dag_id: str, run_id: str) -> dict:
        """End a run as failed (its unfinished tasks are skipped), as the UI's "Mark as failed"."""
        return self._call("PATCH", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}", json={"state": "failed"})

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
