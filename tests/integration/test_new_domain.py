"""A domain that exists only as configuration in test data streams into its own bronze table:
catalog init creates its tables, `topics create` its topics, `generate` its events, and the
unchanged Flink job, submitted to the session cluster by its keeper at parallelism 3 over the
topic's 3 partitions, ingests them exactly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lakehouse.events.send import read_event_ids
from lakehouse.services import flink
from lakehouse.streaming.names import job_name
from tests.helpers import run_cli, write_clicks_catalog

pytestmark = pytest.mark.slow


def test_config_only_domain_end_to_end(stack, iceberg_catalog, tmp_path):
    folder = write_clicks_catalog(tmp_path)
    env = {**os.environ, "LAKEHOUSE_CATALOG__DEFINITIONS_DIR": str(folder), "LAKEHOUSE_FLINK__JOB_PARALLELISM": "3"}
    for command in (("catalog", "init"), ("topics", "create", "--domain", "clicks")):
        result = run_cli(*command, env=env)
        assert result.returncode == 0, result.stderr
    manifest_path = tmp_path / "clicks.json"
    result = run_cli(
        "generate", "--domain", "clicks", "--events", "3000", "--seed", "4", "--manifest", str(manifest_path), env=env
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads(manifest_path.read_text())

    # the keeper as `lakehouse stream start` runs it, with this domain's definitions folder
    job = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.services.keeper", "--domain", "clicks"],
        env=env,
        stdout=open(tmp_path / "job.log", "w"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            bronze = iceberg_catalog.load_table("bronze.clicks_events").scan(selected_fields=("event_id",)).to_arrow()
            if bronze.num_rows >= manifest["expected_unique_valid"] or time.monotonic() > deadline:
                break
            assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
            time.sleep(2)
        time.sleep(5)
        running = flink.wait_for_running(stack, job_name("clicks"), timeout_s=60)
        vertices = flink.rest(stack, "GET", f"/jobs/{running['jid']}")["vertices"]
        assert max(v["parallelism"] for v in vertices) == 3  # source, contract and dedup run 3-wide
        ids = iceberg_catalog.load_table("bronze.clicks_events").scan(selected_fields=("event_id",)).to_arrow()
        assert sorted(ids["event_id"].to_pylist()) == sorted(read_event_ids(manifest_path))
        letters = iceberg_catalog.load_table("bronze.dead_letters").scan(selected_fields=("domain",)).to_arrow()
        assert letters["domain"].to_pylist().count("clicks") == manifest["malformed"]
    finally:
        os.killpg(job.pid, signal.SIGTERM)  # stops the job on the cluster with a savepoint
        job.wait(150)
    assert job.returncode == 0, (tmp_path / "job.log").read_text()[-3000:]
    assert "stopped; savepoint at" in (tmp_path / "job.log").read_text()
