"""The Flink virtualenv (PyFlink 2.0) plans the bronze job against the shared catalog.

The job commits through the Iceberg Flink sink, in the JVM; the env keeps PyIceberg 0.8.1 only
because the domain loader checks each domain's tables against `lakehouse.catalog.definitions`,
which is written in PyIceberg's types."""

import os
import subprocess

from lakehouse.services import flink
from lakehouse.settings import PROJECT_ROOT

FLINK_PYTHON = PROJECT_ROOT / ".venv-flink/bin/python"


def test_flink_env_plans_the_bronze_job_on_the_shared_catalog(stack):
    plan = subprocess.run(
        [str(FLINK_PYTHON), "flink_jobs/bronze_ingest.py", "--domain", "sales", "--explain"],
        cwd=PROJECT_ROOT, env={**os.environ, **flink.environment(stack)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr[-3000:]
    # the shared JDBC catalog's bronze tables are the sinks, and the dedup is Flink's own operator
    assert "Deduplicate(keep=[FirstRow], key=[event_id]" in plan.stdout
    assert "lakehouse.bronze.sales_events" in plan.stdout and "lakehouse.bronze.dead_letters" in plan.stdout
