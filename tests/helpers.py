"""Helpers for tests: private stack environments and running the CLI as a user would."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from lakehouse.services.embedded import SEAWEEDFS_INTERNAL
from lakehouse.services.ports import free_port, free_port_block
from lakehouse.settings import PROJECT_ROOT


def stack_environment(state_dir: Path) -> dict[str, str]:
    """LAKEHOUSE_* variables for a private stack: fresh ports, state folder and credentials."""
    return {
        "LAKEHOUSE_ENV_FILE": str(state_dir.parent / "no.env"),
        "LAKEHOUSE_EMBEDDED__STATE_DIR": str(state_dir),
        "LAKEHOUSE_S3__PORT": str(free_port()),
        "LAKEHOUSE_KAFKA__PORT": str(free_port()),
        "LAKEHOUSE_POSTGRES__PORT": str(free_port()),
        "LAKEHOUSE_EMBEDDED__SEAWEEDFS_INTERNAL_PORT_BASE": str(free_port_block(len(SEAWEEDFS_INTERNAL))),
        "LAKEHOUSE_S3__ACCESS_KEY": "test-" + secrets.token_hex(6),
        "LAKEHOUSE_S3__SECRET_KEY": secrets.token_urlsafe(18),
        "LAKEHOUSE_POSTGRES__PASSWORD": secrets.token_urlsafe(18),
    }


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m lakehouse ARGS` as a user would, in a given environment."""
    return subprocess.run(
        [sys.executable, "-m", "lakehouse", *args],
        cwd=PROJECT_ROOT,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
