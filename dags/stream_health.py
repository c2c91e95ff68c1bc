"""stream_health: every 10 minutes, check that each domain's bronze stream is running and
bronze is fresh (its last commit younger than the domain's freshness_sla). Fails loudly,
one task per domain, naming what is wrong and how to fix it. A domain whose stream was never
started, or was stopped on purpose, is skipped (`make up` starts the default domain's).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from lakehouse.orchestration.dag_support import DEFAULT_ARGS, domain_names, settings


@dag(
    dag_id="stream_health",
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["lakehouse", "bronze", "health"],
    doc_md=__doc__,
)
def stream_health():
    @task
    def check(domain: str) -> dict:
        from lakehouse.orchestration.health import check_stream

        return check_stream(settings(), domain)

    check.expand(domain=domain_names())


stream_health()
