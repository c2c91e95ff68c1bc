"""A private embedded stack for benchmarks: free ports, temporary state, removed afterwards,
so a benchmark never touches the data of `make up`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def private_stack(**environment: str) -> Iterator:
    """Yields the Settings of a started stack with an initialised catalog. `environment` adds
    LAKEHOUSE_* overrides (e.g. LAKEHOUSE_SPARK__DRIVER_MEMORY)."""
    state = Path(tempfile.mkdtemp(prefix="lakehouse-bench-")) / "state"
    from lakehouse.services.isolated import isolated_environment, remove_isolated_state

    os.environ.update(isolated_environment(state))
    os.environ.update(environment)
    from lakehouse.services import stack
    from lakehouse.services.catalog import init_from_settings
    from lakehouse.settings import load_settings

    settings = load_settings()
    print(f"private stack in {state}")
    try:  # a start that fails halfway still stops what it started
        stack.up(settings, log=print, apps=False)
        init_from_settings(settings, log=lambda _line: None)
        yield settings
    finally:
        stack.down(settings)
        remove_isolated_state(settings)
