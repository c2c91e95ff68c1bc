"""reconcile: after every gold_daily run, prove each layer holds what the one below it says.

Scheduled on the asset gold_daily publishes (`lakehouse://gold/daily`), for that run's window
and domains, once the window has ended and silver has promoted all of it (a sensor waits):
Kafka records of the interval = bronze + dead letters + duplicates, bronze events = silver +
quarantine (value for value), gold = the aggregates recomputed from silver. Every check is a
row of ops.reconciliation; drift fails the task at once (no retries), naming the first
diverging keys in the log; records the stream has not ingested yet fail it as incomplete, and
the retries try again. A manual run takes `domain`, `start_date` and `end_date` (ingestion
time). `lakehouse reconcile` does the same by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import PokeReturnValue, dag, get_current_context, task

from lakehouse.orchestration.dag_support import (
    DEFAULT_ARGS,
    GOLD_PUBLISHED,
    SparkJobOperator,
    lineage,
    not_yet_reconcilable,
    reconcile_jobs,
    run_params,
    spark_submit_kwargs,
)


@dag(
    dag_id="reconcile",
    schedule=[GOLD_PUBLISHED],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={name: param for name, param in run_params().items() if name in ("domain", "start_date", "end_date")},
    tags=["lakehouse", "reconciliation"],
    doc_md=__doc__,
)
def reconcile():
    @task
    def plan() -> list[list[str]]:
        """The window (of the triggering gold_daily run, or the params) and one job per domain."""
        return reconcile_jobs(get_current_context())

    @task.sensor(poke_interval=60, timeout=6 * 3600, mode="reschedule")
    def promoted(jobs: list[list[str]]) -> PokeReturnValue:
        """Every window has ended and silver has promoted all of it: before that, the layers
        differ by what is still on its way, which is not drift."""
        waiting = not_yet_reconcilable(jobs, datetime.now(UTC))
        for line in waiting:
            print(line)
        return PokeReturnValue(is_done=not waiting, xcom_value=jobs)

    # The gold pool: it reads gold, and never runs beside a gold MERGE. Its inlets are every layer;
    # it writes only ops.reconciliation, bookkeeping like ops.job_runs, which are not assets.
    SparkJobOperator.partial(
        task_id="reconcile",
        pool="lakehouse_gold",
        inlets=lineage("topic", "bronze", "dead_letter", "silver", "quarantine", "gold"),
        **spark_submit_kwargs("reconcile"),
    ).expand(application_args=promoted(plan()))


reconcile()
