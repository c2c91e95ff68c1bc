"""The same Spark job on a standalone master and worker (`spark.standalone: true`) as in local mode.

The stack of the test session runs Spark in local mode; this module adds the embedded Spark
standalone master and worker to it (what `make up` does when the setting is on), runs the
bronze -> silver job through its command line against them, and compares silver with what the
same job computes in local mode from the same bronze rows.
"""

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from pyspark.sql import functions as F

from lakehouse.domains import get_domain
from lakehouse.events.generator import Mix, generate
from lakehouse.services import stack as embedded_stack
from lakehouse.services.ports import free_port
from lakehouse.services.supervisor import Supervisor
from lakehouse.settings import PROJECT_ROOT, load_settings
from tests.integration.test_bronze_to_silver import append, bronze_rows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HOUR = datetime(2025, 6, 1, 7, tzinfo=UTC)  # this module's own ingestion hour


@pytest.fixture(scope="module")
def cluster_env(stack):
    env = {
        "LAKEHOUSE_SPARK__STANDALONE": "true",
        "LAKEHOUSE_SPARK__MASTER_PORT": str(free_port()),
        "LAKEHOUSE_SPARK__MASTER_UI_PORT": str(free_port()),
        "LAKEHOUSE_SPARK__WORKER_UI_PORT": str(free_port()),
        "LAKEHOUSE_SPARK__WORKER_MEMORY": "2g",
        "LAKEHOUSE_SPARK__EXECUTOR_MEMORY": "1g",
        "LAKEHOUSE_SPARK__DRIVER_MEMORY": "1g",
    }
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    settings = load_settings()
    embedded_stack.up(settings, log=lambda line: print(line, file=sys.stderr), apps=False)
    patch.undo()
    yield settings, env
    supervisor = Supervisor(stack.state_dir)
    for name in ("spark-worker", "spark-master"):
        supervisor.stop(name)


def run_job(env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "spark_jobs/bronze_to_silver.py"), "--domain", "sales",
         "--start", HOUR.isoformat(), "--end", (HOUR + timedelta(hours=1)).isoformat()],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def silver(spark, ids):
    frame = spark.table("silver.sales_orders").where(F.col("event_id").isin(ids))
    return sorted(tuple(r) for r in frame.drop("processed_at", "run_id").collect())


def test_bronze_to_silver_on_the_standalone_cluster_equals_local_mode(spark, iceberg_catalog, stack, cluster_env):
    settings, env = cluster_env
    domain = get_domain(stack.definitions_dir, "sales")
    values = [r.value for r in generate(domain, 300, mix=Mix(0, 0, 0, 0), seed=uuid.uuid4().int % 10_000)]
    append(iceberg_catalog, domain, bronze_rows(domain, values, HOUR + timedelta(minutes=7), 0))
    ids = [json.loads(v)["event_id"] for v in values]

    run_job(env)
    on_cluster = silver(spark, ids)
    assert len(on_cluster) == 300
    status = requests.get(f"http://{settings.spark.host}:{settings.spark.master_ui_port}/json/", timeout=5).json()
    assert [app["name"] for app in status["completedapps"]] == ["bronze_to_silver-sales"]

    # the same rows promoted again, in local mode, into silver without them
    listed = ", ".join(f"'{event_id}'" for event_id in ids)
    spark.sql(f"DELETE FROM {domain.tables.silver} WHERE event_id IN ({listed})")
    assert silver(spark, ids) == []
    run_job({"LAKEHOUSE_SPARK__STANDALONE": "false"})
    assert silver(spark, ids) == on_cluster
