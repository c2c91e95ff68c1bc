"""A private embedded stack on free ports, for tests and benchmarks that must not touch `make up`'s."""

from __future__ import annotations

import secrets
from pathlib import Path

from lakehouse.services.embedded import SEAWEEDFS_INTERNAL
from lakehouse.services.ports import free_port, free_port_block


def isolated_environment(state_dir: Path) -> dict[str, str]:
    """LAKEHOUSE_* variables for a private stack: fresh ports, state folder and credentials."""
    return {
        "LAKEHOUSE_ENV_FILE": str(state_dir.parent / "no.env"),
        "LAKEHOUSE_EMBEDDED__STATE_DIR": str(state_dir),
        "LAKEHOUSE_S3__PORT": str(free_port()),
        "LAKEHOUSE_KAFKA__PORT": str(free_port()),
        "LAKEHOUSE_KAFKA__CONTROLLER_PORT": str(free_port()),
        "LAKEHOUSE_FLINK__REST_PORT": str(free_port()),
        "LAKEHOUSE_FLINK__RPC_PORT": str(free_port()),
        "LAKEHOUSE_POSTGRES__PORT": str(free_port()),
        "LAKEHOUSE_EMBEDDED__SEAWEEDFS_INTERNAL_PORT_BASE": str(free_port_block(len(SEAWEEDFS_INTERNAL))),
        "LAKEHOUSE_S3__ACCESS_KEY": "isolated-" + secrets.token_hex(6),
        "LAKEHOUSE_S3__SECRET_KEY": secrets.token_urlsafe(18),
        "LAKEHOUSE_POSTGRES__PASSWORD": secrets.token_urlsafe(18),
        "LAKEHOUSE_AIRFLOW__PORT": str(free_port()),
        "LAKEHOUSE_AIRFLOW__LOG_SERVER_PORT": str(free_port()),
        "LAKEHOUSE_AIRFLOW__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # Runs only when a test asks for them: no scheduled run competes for the pools.
        "LAKEHOUSE_AIRFLOW__SCHEDULE": "false",
        # Armed failure injection (lakehouse.medallion.runs.fault_point), reaching jobs run by Airflow.
        "LAKEHOUSE_FAULT_DIR": str(state_dir / "faults"),
        "LAKEHOUSE_AIRFLOW__ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "LAKEHOUSE_AIRFLOW__JWT_SECRET": secrets.token_urlsafe(24),
        "LAKEHOUSE_JUPYTER__PORT": str(free_port()),
        "LAKEHOUSE_JUPYTER__TOKEN": secrets.token_hex(16),
    }


def remove_isolated_state(settings) -> None:
    """Delete a stopped private stack's data, including a PostgreSQL cluster kept outside it."""
    import shutil

    from lakehouse.services.embedded import postgres_data_dir

    cluster = postgres_data_dir(settings)
    if not cluster.is_relative_to(settings.state_dir):
        shutil.rmtree(cluster.parent, ignore_errors=True)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
