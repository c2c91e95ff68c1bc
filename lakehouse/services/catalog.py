"""The `catalog init` command's glue: settings -> reachable services -> definitions -> catalog."""

from __future__ import annotations

from collections.abc import Callable

from lakehouse.catalog.definitions import load_definitions, load_namespaces
from lakehouse.catalog.sync import TablePlan, init_catalog
from lakehouse.engines.iceberg import load_catalog
from lakehouse.services import postgres, s3
from lakehouse.settings import Settings


def init_from_settings(
    settings: Settings, dry_run: bool = False, log: Callable[[str], None] = print
) -> list[TablePlan]:
    # Definitions first: a typo in a YAML file is reported without touching any service.
    definitions = load_definitions(settings.definitions_dir)
    namespaces = load_namespaces(settings.definitions_dir)
    # Then the services, so an unreachable endpoint is named instead of failing deep in a client.
    s3.check(settings)
    postgres.check(settings)
    plans = init_catalog(load_catalog(settings), namespaces, definitions, dry_run=dry_run)
    verb = "would" if dry_run else "did"
    for plan in plans:
        changes = ", ".join(plan.changes) or "up to date"
        log(f"  {plan.definition.identifier:<32} {changes if not plan.changes else f'{verb}: {changes}'}")
    return plans
