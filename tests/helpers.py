"""Helpers for tests: private stack environments and running the CLI as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml

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


CLICKS_DOMAIN = """
name: clicks
description: A click on the web shop (defined only in test data).
event_type: page_clicked
topic: {name: clicks.events, partitions: 3, dead_letter: clicks.events.dlq}
message_key: session_id
dedup_key: click_id
event_time_field: clicked_at
allowed_lateness: 15m
freshness_sla: 5m
max_message_bytes: 4096
tables: {bronze: bronze.clicks_events, dead_letter: bronze.dead_letters, silver: silver.clicks}
contract:
  type: object
  additionalProperties: false
  required: [click_id, clicked_at, session_id, page, dwell_ms]
  properties:
    click_id: {type: string, minLength: 8}
    clicked_at: {type: string, format: date-time}
    session_id: {type: string}
    page: {enum: [home, search, product, cart, checkout]}
    dwell_ms: {type: integer, minimum: 0, maximum: 600000}
generator:
  fields:
    session_id: {pool: sess-, size: 300}
"""


def write_clicks_catalog(tmp_path):
    """catalog/ plus a `clicks` domain and its tables, written as configuration only."""
    folder = tmp_path / "catalog"
    shutil.copytree(PROJECT_ROOT / "catalog", folder)
    (folder / "domains/clicks.yaml").write_text(CLICKS_DOMAIN)
    bronze = yaml.safe_load((folder / "tables/bronze/sales_events.yaml").read_text())
    (folder / "tables/bronze/clicks_events.yaml").write_text(yaml.safe_dump({**bronze, "name": "clicks_events"}))
    silver = {
        "namespace": "silver",
        "name": "clicks",
        "columns": [{"name": "click_id", "type": "string"}, {"name": "page", "type": "string"}],
    }
    (folder / "tables/silver/clicks.yaml").write_text(yaml.safe_dump(silver))
    return folder
