"""Shared fixtures: one embedded stack and one SparkSession per test session.

The test stack runs on free ports with its own state folder and random credentials, so it
never collides with a stack started by `make up` on the same machine.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from lakehouse.services.isolated import isolated_environment, remove_isolated_state
from lakehouse.settings import Settings, load_settings

TESTS = Path(__file__).parent
# The fixtures that start (or point at) the embedded stack; each of them needs stack_env.
SERVICE_FIXTURES = {"stack_env", "settings", "stack", "airflow", "iceberg_catalog", "spark"}


def pytest_collection_modifyitems(items):
    """Markers by folder: tests/integration is `services`, tests/unit is `unit` and may use no
    service fixture; a test with a SparkSession is `spark`. Unit tests run after integration ones
    (so `local_spark` reuses the stack's SparkSession, never the reverse), demo tests last of those."""
    misplaced = []
    for item in items:
        if item.path.is_relative_to(TESTS / "integration"):
            item.add_marker(pytest.mark.services)
        elif item.path.is_relative_to(TESTS / "unit"):
            item.add_marker(pytest.mark.unit)
            if "stack_env" in item.fixturenames:  # a fixture of the file's own named `settings` is fine
                misplaced.append(f"{item.nodeid} uses {', '.join(sorted(SERVICE_FIXTURES & set(item.fixturenames)))}")
        if {"spark", "local_spark"} & set(item.fixturenames):
            item.add_marker(pytest.mark.spark)
    if misplaced:
        raise pytest.UsageError(
            "unit tests need no services; move these to tests/integration:\n  " + "\n  ".join(misplaced)
        )
    items.sort(
        key=lambda item: (item.get_closest_marker("unit") is not None, item.get_closest_marker("demo") is not None)
    )


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No LAKEHOUSE_* variables (not even the test stack's), and an empty .env of the test's own."""
    for key in list(os.environ):
        if key.startswith("LAKEHOUSE_"):
            monkeypatch.delenv(key)
    env_file = tmp_path / ".env"
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", str(env_file))
    return env_file


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory) -> dict[str, str]:
    state_dir = tmp_path_factory.mktemp("stack") / "state"
    env = isolated_environment(state_dir)
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    yield env
    patch.undo()


@pytest.fixture(scope="session")
def settings(stack_env) -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings):
    """The embedded services, up and healthy, with the catalog initialised from catalog/."""
    from lakehouse.services import stack as embedded_stack
    from lakehouse.services.catalog import init_from_settings

    try:  # a start that fails halfway still stops what it started
        embedded_stack.up(settings, log=lambda line: print(line, file=sys.stderr), apps=False)
        init_from_settings(settings, log=lambda line: print(line, file=sys.stderr))
        yield settings
    finally:
        embedded_stack.down(settings)
        remove_isolated_state(settings)


@pytest.fixture
def airflow(stack):
    """Airflow's components on the test stack, started on first use (and again if a test
    stopped the stack), with a logged-in REST client."""
    from lakehouse.orchestration.client import AirflowClient
    from lakehouse.services import stack as embedded_stack

    embedded_stack.up(stack, log=lambda line: print(line, file=sys.stderr), apps=True)
    client = AirflowClient(stack)
    # Healthy is not parsed: tests call the REST API directly, so wait for every DAG of dags/.
    dag_ids = sorted(path.stem for path in (stack.project_root / "dags").glob("*.py"))
    client.wait_for_dags(dag_ids, log=lambda line: print(line, file=sys.stderr))
    return client


@pytest.fixture(scope="session")
def iceberg_catalog(stack):
    from lakehouse.engines.iceberg import load_catalog

    return load_catalog(stack)


@pytest.fixture(scope="session")
def spark(stack):
    from lakehouse.engines.spark import get_spark

    session = get_spark(stack, app_name="lakehouse-tests")
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after
    # pytest closed the stream its log handler writes to ("--- Logging error ---" in every run).
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def local_spark():
    """A SparkSession without the stack, for pure DataFrame transforms: the running one if any
    (the stack's, when integration tests ran first), else a local one. Never before `spark`:
    get_spark's getOrCreate would return this session, whose JVM has no Iceberg jars; hence unit
    tests run after integration ones (pytest_collection_modifyitems)."""
    from pyspark.sql import SparkSession

    from lakehouse.engines.java import ensure_java_home

    running = SparkSession.getActiveSession()
    if running is not None:
        yield running
        return
    ensure_java_home()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python UDFs run in this venv (see get_spark)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("lakehouse-unit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    yield session
    session.stop()
    logging.getLogger("py4j").setLevel(logging.WARNING)
