"""gold_daily: recompute each domain's gold tables for the dates touched that day (Spark MERGE INTO).

A scheduled run covers its day, [00:00, 24:00) UTC of ingestion time: it first waits until
silver_hourly (or any successful bronze -> silver run, per the ops.job_runs audit) has
promoted every hour of the day that holds bronze rows, then recomputes every event date
touched by silver rows ingested that day, so late events correct their own, older date (a
domain with no silver rows ingested that day starts no Spark job). A successful run publishes
the `lakehouse://gold/daily` asset with its window, which schedules the reconcile DAG. With params:
[start_date, end_date) instead of the day; with `backfill`, the dates that range covers are
recomputed from silver as it is (no waiting).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, PokeReturnValue, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from lakehouse.orchestration.dag_support import (
    DEFAULT_ARGS,
    GOLD_PUBLISHED,
    SparkJobOperator,
    lineage,
    plan_jobs,
    plan_spark_jobs,
    run_params,
    settings,
    spark_submit_kwargs,
    window_of,
)


@dag(
    dag_id="gold_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    params=run_params(),
    tags=["lakehouse", "gold"],
    doc_md=__doc__,
)
def gold_daily():
    @task.sensor(poke_interval=60, timeout=6 * 3600, mode="reschedule")
    def silver_complete() -> PokeReturnValue:
        """Silver has promoted every hour of the window, for every domain of the run. Returns the
        jobs to run: the domains with silver rows ingested in the window (all, for a backfill)."""
        from lakehouse.orchestration.readiness import silver_gaps

        context = get_current_context()
        window = window_of(context)
        missing = (
            {} if window.backfill else {d: silver_gaps(settings(), d, window.start, window.end) for d in window.domains}
        )
        missing = {d: gaps for d, gaps in missing.items() if gaps}
        for domain, gaps in missing.items():
            print(
                f"{domain}: silver not yet promoted for",
                ", ".join(f"[{a.isoformat()}, {b.isoformat()})" for a, b in gaps),
            )
        if missing:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=plan_jobs(context, source="silver"))

    # plan checks the params before anything waits; the sensor then names the jobs that have input.
    ready = silver_complete()
    plan_spark_jobs() >> ready
    jobs = SparkJobOperator.partial(
        task_id="silver_to_gold",
        pool="lakehouse_gold",
        inlets=lineage("silver"),
        outlets=lineage("gold"),
        **spark_submit_kwargs("silver_to_gold"),
    ).expand(application_args=ready)

    # none_failed: a day with nothing to recompute (no mapped job) is published too.
    @task(outlets=[GOLD_PUBLISHED], trigger_rule="none_failed")
    def published() -> None:
        """Announce the run's window to the reconcile DAG (scheduled on this asset); a dry run
        announces nothing."""
        context = get_current_context()
        window = window_of(context)
        if window.dry_run:
            raise AirflowSkipException("dry run: gold did not change")
        context["outlet_events"][GOLD_PUBLISHED].extra = {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "domains": list(window.domains),
            "backfill": window.backfill,
        }

    jobs >> published()


gold_daily()
