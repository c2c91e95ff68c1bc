"""Helpers for tests: private stack environments and running the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys

from lakehouse.settings import PROJECT_ROOT


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
