"""bronze_replay: replay a domain's Kafka topic into bronze, for a range (manual only).

Without `backfill`: recovers what the stream did not commit (from the offsets committed in
bronze up to end_date), e.g. after the stream was down. With `backfill`: re-reads the topic
from the beginning and restores the events whose event time is in [start_date, end_date)
that bronze lacks. Both are Spark jobs on Spark's Kafka source that MERGE INTO bronze on the
dedup key: a replay never duplicates. Then run silver_hourly (or its backfill) over the same
range to promote what was replayed.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from lakehouse.orchestration.dag_support import (
    DEFAULT_ARGS,
    SparkJobOperator,
    lineage,
    plan_spark_jobs,
    run_params,
    spark_submit_kwargs,
)


@dag(
    dag_id="bronze_replay",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=run_params(require_range=True),
    tags=["lakehouse", "bronze"],
    doc_md=__doc__,
)
def bronze_replay():
    SparkJobOperator.partial(
        task_id="kafka_to_bronze",
        pool="lakehouse_bronze",
        inlets=lineage("topic"),
        outlets=lineage("bronze", "dead_letter"),
        **spark_submit_kwargs("kafka_to_bronze"),
    ).expand(application_args=plan_spark_jobs())


bronze_replay()
