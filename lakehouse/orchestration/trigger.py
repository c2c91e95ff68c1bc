"""`lakehouse trigger`: a DAG run with params, or Airflow's native backfill, through the REST API.

The params are checked here with the same rules as the DAG's first task, so a bad range is
refused before anything reaches Airflow; Airflow validates them again against the DAG's
Param schema (a refusal there starts no run either). Right after Airflow starts, the DAG may
not be registered yet: the trigger waits for the dag-processor first (a bounded wait).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from lakehouse.domains import load_domains
from lakehouse.errors import LakehouseError
from lakehouse.orchestration.params import Window, resolve_window
from lakehouse.settings import Settings

SCHEDULED = {"silver_hourly", "gold_daily"}  # the DAGs with data intervals, so with native backfills


def checked_window(settings: Settings, dag_id: str, params: dict, native: bool = False) -> Window:
    """`params` are the DAG's (domain, start_date, end_date, backfill, dry_run), as the UI sends them."""
    if not params.get("start_date") or not params.get("end_date"):
        raise LakehouseError("give --start and --end: the range to process, [start, end)")
    if native and dag_id not in SCHEDULED:
        raise LakehouseError(f"{dag_id} has no schedule, so no native backfill: run it without --native")
    # A native backfill splits the range into one run per data interval: no single run is long.
    longest = timedelta.max if native else timedelta(days=settings.airflow.max_range_days)
    return resolve_window(params, None, None, sorted(load_domains(settings.definitions_dir)), longest)


def main(
    settings: Settings,
    dag_id: str,
    params: dict,
    native: bool = False,
    wait: bool = True,
    log: Callable[[str], None] = print,
    dag_timeout_s: float | None = None,
) -> dict[str, str]:
    """Returns {run_id: state} (states as last seen when not waiting); raises on a refusal or a
    failed run, or when Airflow has not registered the DAG within `dag_timeout_s` (default
    client.DAG_REGISTRATION_TIMEOUT_S)."""
    from lakehouse.orchestration.client import DAG_REGISTRATION_TIMEOUT_S, AirflowClient

    window = checked_window(settings, dag_id, params, native)
    client = AirflowClient(settings)
    client.wait_for_dags(
        [dag_id], timeout_s=DAG_REGISTRATION_TIMEOUT_S if dag_timeout_s is None else dag_timeout_s, log=log
    )
    # No domain (None or ""): the param's default, every domain.
    conf = {"backfill": bool(params.get("backfill")), "dry_run": bool(params.get("dry_run"))}
    conf |= {"domain": params["domain"]} if params.get("domain") else {}
    span = f"[{window.start.isoformat()}, {window.end.isoformat()})"
    if native:
        created = client.backfill(dag_id, window.start, window.end, conf)
        runs = client.backfill_runs(dag_id, window.start, window.end)
        log(f"backfill {created['id']} of {dag_id} over {span}: {len(runs)} runs with params {conf}")
    else:
        conf |= {"start_date": window.start.isoformat(), "end_date": window.end.isoformat()}
        runs = [client.trigger(dag_id, conf)]
        log(f"run {runs[0]['dag_run_id']} of {dag_id} over {span} queued, params {conf}")
    log(f"follow it at {settings.airflow.url}/dags/{dag_id}")
    if not wait:
        return {r["dag_run_id"]: r["state"] for r in runs}
    states = client.wait(dag_id, runs, timeout_s=24 * 3600, log=log)
    failed = sorted(run_id for run_id, state in states.items() if state != "success")
    if failed:
        raise LakehouseError(
            f"{len(failed)} of {len(states)} runs of {dag_id} failed: {', '.join(failed[:5])}; "
            f"see their task logs at {settings.airflow.url}/dags/{dag_id}"
        )
    log(f"{len(states)} runs of {dag_id} succeeded")
    return states
