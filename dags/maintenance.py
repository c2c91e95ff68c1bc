"""maintenance: daily table maintenance with Iceberg's Spark procedures, one task per layer.

Each table's `maintenance:` policy (catalog/tables/) says what to do: compaction of closed
partitions (rewrite_data_files), rewrite_manifests, expire_snapshots within the retention
window, remove_orphan_files older than the minimum age. A layer's task takes the layer's pool,
so it never runs next to that layer's MERGEs; the stream only appends to bronze, which
compaction of closed hours does not conflict with. The task log has each table's data files,
average file size, snapshots and manifests before and after. `lakehouse maintain` does the
same by hand (with --dry-run to see what would go).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from lakehouse.catalog.definitions import load_namespaces
from lakehouse.orchestration.dag_support import DEFAULT_ARGS, SparkJobOperator, settings, spark_submit_kwargs
from lakehouse.services.airflow import POOLS

NAMESPACES = [n.name for n in load_namespaces(settings().definitions_dir)]


@dag(
    dag_id="maintenance",
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "namespaces": Param(
            NAMESPACES,
            type="array",
            items={"type": "string", "enum": NAMESPACES},
            title="Layers",
            description="The namespaces whose tables to maintain (default: all).",
        )
    },
    tags=["lakehouse", "maintenance"],
    doc_md=__doc__,
)
def maintenance():
    @task
    def plan(namespace: str) -> list[list[str]]:
        """The layer's job arguments, or none (its task is skipped) when the run leaves it out."""
        chosen = get_current_context()["params"]["namespaces"]
        return [["--namespace", namespace]] if namespace in chosen else []

    # No outlets: compaction and expiry rewrite files, not data. As outlets, every table would show
    # maintenance as its producer in the Assets view, with an update event each night.
    previous = None
    for namespace in NAMESPACES:
        pool = f"lakehouse_{namespace}"
        job = SparkJobOperator.partial(
            task_id=f"maintain_{namespace}",
            trigger_rule="none_failed",  # a layer left out (skipped) does not skip the next one
            **({"pool": pool} if pool in POOLS else {}),
            **spark_submit_kwargs("maintain"),
        ).expand(application_args=plan.override(task_id=f"plan_{namespace}")(namespace))
        if previous is not None:  # one Spark application at a time on this machine's cluster
            previous >> job
        previous = job


maintenance()
