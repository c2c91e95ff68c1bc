"""silver_hourly: promote each domain's bronze rows of the hour to silver (Spark MERGE INTO).

Scheduled runs process their data interval, [hh:00, hh+1:00) of ingestion time. A manual run
(Trigger with params) processes exactly [start_date, end_date), by ingestion time, or by event
time with `backfill`. Airflow's native backfill (`airflow backfill create`, the UI's Backfill
button, REST /api/v2/backfills) creates one run per hour, each with the same params.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, dag

from lakehouse.orchestration.dag_support import (
    DEFAULT_ARGS,
    SparkJobOperator,
    lineage,
    plan_spark_jobs,
    run_params,
    spark_submit_kwargs,
)


@dag(
    dag_id="silver_hourly",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    params=run_params(),
    tags=["lakehouse", "silver"],
    doc_md=__doc__,
)
def silver_hourly():
    SparkJobOperator.partial(
        task_id="bronze_to_silver",
        pool="lakehouse_silver",
        inlets=lineage("bronze"),
        outlets=lineage("silver", "quarantine"),
        **spark_submit_kwargs("bronze_to_silver"),
    ).expand(application_args=plan_spark_jobs(source="bronze"))


silver_hourly()
