"""Shared fixtures: one embedded stack and one SparkSession per test session.

The test stack runs on free ports with its own state folder and random credentials, so it
never collides with a stack started by `make up` on the same machine.
"""

from __future__ import annotations

import logging
import os
import sys

import pytest

from lakehouse.services.isolated import isolated_environment, remove_isolated_state
from lakehouse.settings import Settings, load_settings


def pytest_collection_modifyitems(items):
    """The demo tests stop and restart every service: they run last."""
    items.sort(key=lambda item: item.get_closest_marker("demo") is not None)


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
