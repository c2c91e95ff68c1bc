"""`lakehouse trigger` (and the demo, through it) waits until Airflow has registered the DAG
before triggering it, against a fake Airflow REST API whose dag-processor is slow or broken."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lakehouse.errors import ServiceError
from lakehouse.orchestration import trigger
from lakehouse.orchestration.client import AirflowClient


class FakeAirflow:
    """The few endpoints the client uses. A DAG is registered once it has been asked for
    `registered_after` times (None: never); like Airflow, a trigger of an unregistered DAG is a 404."""

    def __init__(self, registered_after: int | None, import_errors: list[dict] | None = None):
        self.registered_after = registered_after
        self.import_errors = import_errors or []
        self.lookups: dict[str, int] = {}
        self.requests: list[str] = []
        self.runs: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                fake.requests.append(f"POST {self.path}")
                if self.path == "/auth/token":
                    return self.reply(201, {"access_token": "token"})
                found = re.fullmatch(r"/api/v2/dags/(\w+)/dagRuns", self.path)
                if found and fake.registered(found[1]):
                    run = {"dag_run_id": f"manual__{len(fake.runs)}", "state": "success",
                           "run_after": "2026-01-01T00:00:00Z", "conf": body["conf"]}  # fmt: skip
                    fake.runs.append(run)
                    return self.reply(200, run)
                return self.reply(404, {"detail": "Dag not found"})

            def do_GET(self):
                fake.requests.append(f"GET {self.path}")
                path = self.path.split("?")[0]
                if path == "/api/v2/importErrors":
                    return self.reply(
                        200, {"import_errors": fake.import_errors, "total_entries": len(fake.import_errors)}
                    )
                if found := re.fullmatch(r"/api/v2/dags/(\w+)", path):
                    fake.lookups[found[1]] = fake.lookups.get(found[1], 0) + 1
                    if fake.registered(found[1]):
                        return self.reply(200, {"dag_id": found[1]})
                    return self.reply(404, {"detail": f"Dag with id {found[1]} was not found"})
                if re.fullmatch(r"/api/v2/dags/(\w+)/dagRuns", path):
                    return self.reply(200, {"dag_runs": fake.runs, "total_entries": len(fake.runs)})
                return self.reply(404, {"detail": "no such endpoint"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def registered(self, dag_id: str) -> bool:
        return self.registered_after is not None and self.lookups.get(dag_id, 0) > self.registered_after


@pytest.fixture
def fake_airflow(clean_env, monkeypatch, tmp_path):
    servers = []

    def start(registered_after, import_errors=None):
        fake = FakeAirflow(registered_after, import_errors)
        servers.append(fake)
        monkeypatch.setenv("LAKEHOUSE_AIRFLOW__PORT", str(fake.port))
        monkeypatch.setenv("LAKEHOUSE_AIRFLOW__ADMIN_PASSWORD", "fake")
        monkeypatch.setenv("LAKEHOUSE_EMBEDDED__STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setattr(AirflowClient, "poll_s", 0.02)
        return fake

    yield start
    for fake in servers:
        fake.server.shutdown()
        fake.server.server_close()


def run_trigger(**options):
    from lakehouse.settings import load_settings

    lines: list[str] = []
    params = {"domain": "sales", "start_date": "2026-01-01T00:00", "end_date": "2026-01-01T03:00"}
    states = trigger.main(load_settings(), "silver_hourly", params, log=lines.append, **options)
    return states, lines


def test_a_trigger_before_the_dag_is_parsed_waits_for_it_then_runs(fake_airflow):
    fake = fake_airflow(registered_after=3)
    states, lines = run_trigger()
    assert states == {"manual__0": "success"}
    assert fake.lookups["silver_hourly"] == 4  # three 404s, then registered
    posts = [r for r in fake.requests if r.startswith("POST /api/v2/")]
    assert posts == ["POST /api/v2/dags/silver_hourly/dagRuns"]  # only once registered: never refused
    assert any("waiting for Airflow's dag-processor to register silver_hourly" in line for line in lines)
    assert any("Airflow has registered the DAGs" in line for line in lines)
    assert fake.runs[0]["conf"]["domain"] == "sales"


def test_the_demo_waits_for_every_dag_it_triggers(fake_airflow):
    from lakehouse.demo import DAGS
    from lakehouse.settings import load_settings

    fake = fake_airflow(registered_after=2)
    lines: list[str] = []
    AirflowClient(load_settings()).wait_for_dags(DAGS, log=lines.append)
    assert DAGS == ("silver_hourly", "gold_daily") and all(fake.lookups[dag_id] == 3 for dag_id in DAGS)
    assert "silver_hourly, gold_daily" in lines[0]


def test_a_dag_that_never_appears_fails_quickly_naming_its_file_and_the_log(fake_airflow, tmp_path):
    error = {"import_error_id": 1, "timestamp": "2026-01-01T00:00:00Z", "filename": "silver_hourly.py",
             "bundle_name": "dags-folder", "stack_trace": "Traceback ...\nModuleNotFoundError: No module named 'nope'"}  # fmt: skip
    fake = fake_airflow(registered_after=None, import_errors=[error])
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        run_trigger(dag_timeout_s=0.3)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "Airflow has not registered the DAG silver_hourly (dags/silver_hourly.py) within 0.3s" in message
    assert str(tmp_path / "state" / "logs" / "airflow-dag-processor.log") in message
    assert str(tmp_path / "state" / "airflow" / "logs" / "dag_processor" / "latest") in message
    assert "ModuleNotFoundError: No module named 'nope'" in message
    assert not [r for r in fake.requests if r.startswith("POST /api/v2/")]  # nothing was triggered
