"""bronze_replay: replay a domain's Kafka topic into bronze, for a range (manual only).

Without `backfill`: recovers what the stream did not commit (from the offsets committed in
bronze up to end_date), e.g. after the stream was down. With `backfill`: re-reads the topic
from the beginning and restores the events whose event time is in [start_date, end_date)
that bronze lacks. Both merge on event_id: a replay never duplicates. Then run silver_hourly
(or its backfill) over the same range to promote what was replayed.
"""

from __future__ import annotations

import shlex
import sys
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, get_current_context, task

from lakehouse.orchestration.dag_support import DEFAULT_ARGS, plan_jobs, run_params, settings


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
    @task
    def plan() -> list[str]:
        """Check the params and name the replays: one per domain."""
        job = settings().project_root / "spark_jobs/kafka_to_bronze.py"
        return [shlex.join([sys.executable, str(job), *args]) for args in plan_jobs(get_current_context())]

    BashOperator.partial(task_id="kafka_to_bronze", pool="lakehouse_bronze").expand(bash_command=plan())


bronze_replay()
