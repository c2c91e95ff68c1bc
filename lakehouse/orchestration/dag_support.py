"""What the DAGs in dags/ share: params, retries, pools and the Spark job tasks.

One DAG per layer or duty (silver_hourly, gold_daily, bronze_replay, stream_health,
maintenance, reconcile), each covering every domain of catalog/domains as mapped task
instances: the UI shows one row per layer with one box per domain, and a new domain appears
without a new DAG. The `domain` param narrows a
manual run to one domain.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from functools import cache

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from lakehouse.domains import QUARANTINE, Domain, get_domain, load_domains
from lakehouse.errors import DriftFound, QualityGateFailed
from lakehouse.jobs import command_line
from lakehouse.settings import Settings, load_settings

DEFAULT_ARGS = {
    "owner": "lakehouse",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


@cache
def settings() -> Settings:
    return load_settings()


def domain_names() -> list[str]:
    return sorted(load_domains(settings().definitions_dir))


def run_params(require_range: bool = False) -> dict[str, Param]:
    """The trigger form: validated per field by Airflow before a run exists; the checks across
    fields (end after start, the maximum range) fail the run's first task, before any job."""
    # A required range has no default: the form insists on it, and a trigger without it is refused.
    moment = (
        {"type": "string", "format": "date-time"}
        if require_range
        else {
            "default": None,
            "type": ["null", "string"],
            "format": "date-time",
        }
    )
    max_days = settings().airflow.max_range_days
    return {
        # No domain is null (not ""): Airflow 3.3's select can be cleared, which sets null, and
        # a schema refusing null would then refuse the form. The select shows null by its
        # values_display label (the UI looks the label up under "null" or "None"), not as "null".
        "domain": Param(
            None,
            type=["null", "string"],
            enum=[None, *domain_names()],
            values_display={None: "all domains"},
            title="Domain",
            description="Only this domain (empty: every domain in catalog/domains).",
        ),
        "start_date": Param(
            **moment,
            title="Start (inclusive, UTC)",
            description="With end_date: process exactly [start_date, end_date) instead of the run's data "
            f"interval (at most {max_days} days). Empty: the data interval.",
        ),
        "end_date": Param(
            **moment,
            title="End (exclusive, UTC)",
            description="See start_date.",
        ),
        "backfill": Param(
            False,
            type="boolean",
            title="Backfill by event time",
            description="Select rows by event time instead of ingestion time (re-process a past range).",
        ),
        "dry_run": Param(
            False, type="boolean", title="Dry run", description="Compute and report counts; write nothing."
        ),
    }


# Job exit codes that fail the task at once: a retry would find the same data and fail the same way.
FINAL_EXIT_CODES = {
    QualityGateFailed.exit_code: "quality gate failed: the failed expectations are in the log above; the batch is kept "
    "on its audit branch and main is unchanged. Fix the data (or the expectation), then clear this task.",
    DriftFound.exit_code: "reconciliation found drift: the diverging keys are in the log above and every check is in "
    "ops.reconciliation. Repair the layer (a backfill of the interval), then clear this task.",
}
# What gold_daily publishes when a run has succeeded: the reconcile DAG is scheduled on it and
# reads the run's window from the event's extra.
GOLD_PUBLISHED = Asset(name="lakehouse_gold_daily", uri="lakehouse://gold/daily")


def table_asset(identifier: str) -> Asset:
    """The Asset of the Iceberg table `namespace.table`, named as in SQL. No provider registers
    the iceberg scheme, so Airflow keeps the URI as written (it checks only its form)."""
    namespace, table = identifier.split(".")
    return Asset(name=identifier, uri=f"iceberg://{settings().catalog.name}/{namespace}/{table}")


def domain_assets(domain: Domain) -> dict[str, list[Asset]]:
    """The domain's assets by layer: its topic (in the Kafka provider's kafka://<broker>/<topic>
    scheme, which the provider validates) and its tables."""
    tables = domain.tables
    return {
        "topic": [
            Asset(name=domain.topic.name, uri=f"kafka://{settings().kafka.bootstrap_servers}/{domain.topic.name}")
        ],
        "bronze": [table_asset(tables.bronze)],
        "dead_letter": [table_asset(tables.dead_letter)],
        "silver": [table_asset(tables.silver)],
        "quarantine": [table_asset(QUARANTINE)],
        "gold": [table_asset(g.table) for g in domain.gold],
    }


def lineage(*layers: str) -> list[Asset]:
    """Every domain's assets of `layers`, each once (domains share the dead letters and the
    quarantine): the inlets or outlets of a task mapped over the domains, which Airflow reads at
    parse time, for the task, not per mapped instance."""
    domains = load_domains(settings().definitions_dir).values()
    return list(dict.fromkeys(a for d in domains for layer in layers for a in domain_assets(d)[layer]))


class SparkJobOperator(SparkSubmitOperator):
    """spark-submit a spark_jobs/ script. A failed quality gate or reconciliation fails the task
    at once (FINAL_EXIT_CODES); other failures are retried."""

    def execute(self, context):
        # The outlets name every domain's tables (see lineage): a domain's instance reports only
        # its own as updated (Airflow reads the outlets after execute), and a dry run none.
        args = list(self.application_args or [])
        if "--domain" in args:
            own = domain_assets(get_domain(settings().definitions_dir, args[args.index("--domain") + 1]))
            mine = {a for assets in own.values() for a in assets}
            self.outlets = [] if "--dry-run" in args else [a for a in self.outlets if a in mine]
        try:
            return super().execute(context)
        except AirflowException:
            process = getattr(self._hook, "_submit_sp", None)
            if process is not None and process.returncode in FINAL_EXIT_CODES:
                raise AirflowFailException(FINAL_EXIT_CODES[process.returncode]) from None
            raise


def spark_submit_kwargs(job: str) -> dict:
    """SparkSubmitOperator arguments for a spark_jobs/ script, from the shared configuration.
    Credentials are not among them: the job reads them from its environment (.env) when it
    builds its session (lakehouse.engines.spark.get_spark). spark-submit takes the jars and the
    driver's memory from the same settings (spark.jars, spark.driver.memory)."""
    from lakehouse.engines.spark import session_conf

    config = settings()
    return {
        "application": str(config.project_root / "spark_jobs" / f"{job}.py"),
        "conn_id": "lakehouse_spark",
        "name": f"lakehouse-{job}",
        "conf": {
            **session_conf(config),
            "spark.ui.showConsoleProgress": "false",
            # Task logs keep the job's own summary lines, not Spark's INFO chatter.
            "spark.log.level": "WARN",
        },
        "env_vars": {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable},
    }


def window_of(context, params: dict | None = None):
    """The run's Window (see lakehouse.orchestration.params) from its params (or `params`);
    inconsistent params fail the task without retries, so no job runs."""
    from airflow.sdk.exceptions import AirflowFailException

    from lakehouse.jobs import InvalidParams
    from lakehouse.orchestration.params import resolve_window

    try:
        return resolve_window(
            dict(context["params"] if params is None else params),
            context.get("data_interval_start"),
            context.get("data_interval_end"),
            domain_names(),
            timedelta(days=settings().airflow.max_range_days),
        )
    except InvalidParams as exc:
        raise AirflowFailException(f"rejected params: {exc}") from exc


def plan_jobs(context, source: str | None = None) -> list[list[str]]:
    """The job command lines of the run, one per domain, logged for the task log. With `source`
    (the layer the job reads: "bronze" or "silver"), a run by ingestion time leaves out the
    domains with no rows ingested in its window there: an empty hour starts no Spark job."""
    window = window_of(context)
    jobs = [window.job_args(d) for d in window.domains if source is None or has_input(window, d, source)]
    for args in jobs:
        print("will run:", " ".join(args))
    return jobs


def has_input(window, domain: str, source: str) -> bool:
    """Would the job find anything to read? Always for a backfill (by event time, it rewrites the
    range as it is); otherwise only when `source` holds rows ingested in the window."""
    if window.backfill:
        return True
    from lakehouse.domains import get_domain
    from lakehouse.engines.iceberg import load_catalog
    from lakehouse.orchestration.readiness import has_rows_ingested

    table = getattr(get_domain(settings().definitions_dir, domain).tables, source)
    if has_rows_ingested(load_catalog(settings()).load_table(table), window.start, window.end):
        return True
    print(
        f"{domain}: no {table} rows ingested in [{window.start.isoformat()}, {window.end.isoformat()}): nothing to do"
    )
    return False


@task(task_id="plan")
def plan_spark_jobs(source: str | None = None) -> list[list[str]]:
    """Check the params and name the job runs: one per domain (see plan_jobs)."""
    return plan_jobs(get_current_context(), source)


def reconcile_jobs(context) -> list[list[str]]:
    """The reconcile job command lines, one per domain and window: the windows of the gold_daily
    runs whose published events triggered this run (several, if they came while one ran), or
    the params' window of a manual run."""
    params = dict(context["params"])
    windows: list[tuple[tuple[str, ...], object]] = []
    if not params.get("start_date") and not params.get("end_date"):
        for events in context["triggering_asset_events"].values():
            for event in events:
                extra = event.extra
                window = window_of(context, params | {"start_date": extra["start"], "end_date": extra["end"]})
                chosen = window.domains if params.get("domain") else tuple(extra.get("domains") or window.domains)
                windows.append((chosen, window))
    if not windows:
        window = window_of(context)
        windows.append((window.domains, window))
    jobs: list[list[str]] = []
    for domains, window in windows:
        for domain in domains:
            args = command_line(domain, window.start, window.end)
            if args not in jobs:
                jobs.append(args)
                print("will reconcile:", " ".join(args))
    return jobs


def not_yet_reconcilable(jobs: list[list[str]], now: datetime) -> list[str]:
    """Why each job's window cannot be reconciled yet: it has not ended, or silver has not
    promoted all of it, including what was ingested after a run over it started (per
    ops.job_runs; see readiness.silver_gaps). Empty: all can run."""
    from lakehouse.jobs import parser
    from lakehouse.orchestration.readiness import silver_gaps

    waiting = []
    for args in jobs:
        options = parser("reconcile", batch_options=False).parse_args(args)
        domain, start, end = options.domain, options.start, options.end
        if end > now:
            waiting.append(f"{domain}: the window [{start.isoformat()}, {end.isoformat()}) has not ended yet")
        elif missing := silver_gaps(settings(), domain, start, end, settled=True):
            spans = ", ".join(f"[{a.isoformat()}, {b.isoformat()})" for a, b in missing)
            waiting.append(f"{domain}: silver not yet promoted for {spans}")
    return waiting
