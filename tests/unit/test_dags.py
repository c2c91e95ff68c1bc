"""The DAGs in dags/: they import, schedule, and take params as documented, with no cycles.

Parsed with Airflow's own DagBag (no database, no scheduler)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from lakehouse.domains import load_domains
from lakehouse.settings import PROJECT_ROOT

PARAMS = ["domain", "start_date", "end_date", "backfill", "dry_run"]


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("AIRFLOW_HOME", str(home))
    patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    patch.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert bag.import_errors == {}
    yield bag.dags
    patch.undo()


def test_every_dag_imports_with_the_documented_schedule(dags):
    assert sorted(dags) == ["bronze_replay", "gold_daily", "maintenance", "reconcile", "silver_hourly", "stream_health"]
    timetables = {dag_id: dag.timetable for dag_id, dag in dags.items()}
    assert (type(timetables["silver_hourly"]).__name__, timetables["silver_hourly"].expression) == (
        "CronDataIntervalTimetable",
        "0 * * * *",
    )
    assert (type(timetables["gold_daily"]).__name__, timetables["gold_daily"].expression) == (
        "CronDataIntervalTimetable",
        "0 0 * * *",
    )
    assert timetables["maintenance"].expression == "0 3 * * *"
    assert type(timetables["bronze_replay"]).__name__ == "NullTimetable"  # manual only
    assert timetables["stream_health"].delta.total_seconds() == 600
    # reconcile runs after each gold_daily run, on the asset its last task publishes
    assert type(timetables["reconcile"]).__name__ == "AssetTriggeredTimetable"
    assert [a.uri for a in dags["reconcile"].timetable.asset_condition.objects] == ["lakehouse://gold/daily"]
    for dag in dags.values():
        dag.check_cycle()
        assert not dag.catchup


def test_tasks_use_spark_submit_pools_and_retries(dags):
    tasks = {dag_id: {t.task_id: t for t in dag.tasks} for dag_id, dag in dags.items()}
    assert set(tasks["silver_hourly"]) == {"plan", "bronze_to_silver"}
    assert set(tasks["gold_daily"]) == {"plan", "silver_complete", "silver_to_gold", "published"}
    published = tasks["gold_daily"]["published"]
    assert [a.uri for a in published.outlets] == ["lakehouse://gold/daily"]
    assert (published.upstream_task_ids, published.trigger_rule) == ({"silver_to_gold"}, "none_failed")
    assert set(tasks["reconcile"]) == {"plan", "promoted", "reconcile"}
    reconcile = tasks["reconcile"]["reconcile"]
    assert (reconcile.pool, reconcile.upstream_task_ids) == ("lakehouse_gold", {"promoted"})
    assert tasks["reconcile"]["promoted"].mode == "reschedule"
    assert reconcile.partial_kwargs["application"].endswith("spark_jobs/reconcile.py")
    assert set(tasks["bronze_replay"]) == {"plan", "kafka_to_bronze"}
    silver, gold = tasks["silver_hourly"]["bronze_to_silver"], tasks["gold_daily"]["silver_to_gold"]
    assert type(silver).__name__ == "MappedOperator" and silver.operator_name == "SparkJobOperator"
    assert (silver.pool, gold.pool, tasks["bronze_replay"]["kafka_to_bronze"].pool) == (
        "lakehouse_silver",
        "lakehouse_gold",
        "lakehouse_bronze",
    )
    assert silver.partial_kwargs["application"].endswith("spark_jobs/bronze_to_silver.py")
    assert silver.retries == 2 and silver.retry_exponential_backoff
    assert tasks["gold_daily"]["silver_complete"].upstream_task_ids == {"plan"}
    assert tasks["gold_daily"]["silver_to_gold"].upstream_task_ids == {"silver_complete"}  # its jobs come from there
    # maintenance: one task per namespace of catalog/namespaces.yaml, in turn, each in its layer's pool
    maintain = [t for t in dags["maintenance"].topological_sort() if t.task_id.startswith("maintain_")]
    assert [(t.task_id, t.pool, t.upstream_task_ids) for t in maintain] == [
        ("maintain_bronze", "lakehouse_bronze", {"plan_bronze"}),
        ("maintain_silver", "lakehouse_silver", {"plan_silver", "maintain_bronze"}),
        ("maintain_gold", "lakehouse_gold", {"plan_gold", "maintain_silver"}),
        ("maintain_ops", "default_pool", {"plan_ops", "maintain_gold"}),
    ]
    assert all(t.partial_kwargs["application"].endswith("spark_jobs/maintain.py") for t in maintain)


def test_assets_trace_each_domain_from_kafka_through_bronze_and_silver_to_gold(dags):
    from airflow.sdk import Asset

    from lakehouse.orchestration.dag_support import settings, table_asset

    tasks = {t.task_id: t for dag in dags.values() for t in dag.tasks}
    replay, silver, gold = tasks["kafka_to_bronze"], tasks["bronze_to_silver"], tasks["silver_to_gold"]
    domains = load_domains(PROJECT_ROOT / "catalog").values()
    assert domains
    for domain in domains:
        bronze_table, silver_table = table_asset(domain.tables.bronze), table_asset(domain.tables.silver)
        assert domain.topic.name in {a.name for a in replay.inlets}
        assert {bronze_table, table_asset(domain.tables.dead_letter)} <= set(replay.outlets)
        assert bronze_table in silver.inlets and silver_table in silver.outlets
        assert silver_table in gold.inlets and {table_asset(g.table) for g in domain.gold} <= set(gold.outlets)
        assert {bronze_table, silver_table} <= set(tasks["reconcile"].inlets)
    assert table_asset("silver.quarantine") in silver.outlets
    assert table_asset("silver.sales_orders") == Asset(
        name="silver.sales_orders", uri=f"iceberg://{settings().catalog.name}/silver/sales_orders"
    )
    broker = settings().kafka.bootstrap_servers
    assert [a.uri for a in replay.inlets] == [f"kafka://{broker}/{d.topic.name}" for d in domains]
    assert not any(t.outlets for t in dags["maintenance"].tasks)  # it rewrites files, not data
    # Airflow activates an asset only if no other one has its name or its URI.
    assets = {(a.name, a.uri) for t in tasks.values() for a in [*t.inlets, *t.outlets]}
    assert len({name for name, _ in assets}) == len({uri for _, uri in assets}) == len(assets)


def test_a_domains_job_reports_only_its_own_tables_updated(dags, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from lakehouse.orchestration.dag_support import SparkJobOperator, lineage

    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: None)

    def updated(*args: str) -> set[str]:
        job = SparkJobOperator(
            task_id="job", application="job.py", application_args=args, outlets=lineage("silver", "quarantine")
        )
        job.execute({})
        return {a.name for a in job.outlets}

    assert updated("--domain", "sales") == {"silver.sales_orders", "silver.quarantine"}
    assert updated("--domain", "sales", "--dry-run") == set()
    assert updated("--namespace", "silver") == {
        "silver.conversions_requests",
        "silver.sales_orders",
        "silver.quarantine",
    }


def test_param_schemas_and_their_validation(dags):
    domains = [None, *sorted(load_domains(PROJECT_ROOT / "catalog"))]
    for dag_id in ("silver_hourly", "gold_daily", "bronze_replay"):
        params = dags[dag_id].params
        assert list(params.keys()) == PARAMS
        domain = params.get_param("domain")
        assert (domain.value, domain.schema["enum"]) == (None, domains)
        # The select labels "no domain" instead of showing "null" (Airflow 3.3's UI looks the label
        # up under the serialized key, "None" or "null").
        assert domain.schema["values_display"] == {None: "all domains"}
        assert params.get_param("start_date").schema["format"] == "date-time"
        assert all(params.get_param(name).description for name in PARAMS)
    dags["silver_hourly"].params.validate()  # defaults: a scheduled run needs no params
    for value in (None, "sales"):  # a cleared select sends null: every domain
        params = copy.deepcopy(dags["gold_daily"].params)
        params["domain"] = value
        assert params.validate()["domain"] == value

    def refused(dag_id, **values):
        params = copy.deepcopy(dags[dag_id].params)
        with pytest.raises(Exception, match="Invalid input for param|No value passed") as caught:
            for key, value in values.items():
                params[key] = value  # validated on assignment
            params.validate()
        return type(caught.value).__name__

    assert refused("silver_hourly", domain="nope") == "ParamValidationError"
    assert refused("gold_daily", start_date="yesterday") == "ParamValidationError"
    assert refused("silver_hourly", backfill="yes") == "ParamValidationError"
    assert refused("bronze_replay") == "ParamValidationError"  # a replay needs its range


def test_plan_rejects_cross_field_errors_before_any_job(dags):
    from airflow.sdk.exceptions import AirflowFailException

    from lakehouse.orchestration.dag_support import plan_jobs

    hour = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 11, tzinfo=UTC)
    context = {"params": {**dict(dags["silver_hourly"].params), "domain": "sales"},
               "data_interval_start": hour[0], "data_interval_end": hour[1]}  # fmt: skip
    assert plan_jobs(context) == [["--domain", "sales", "--start", hour[0].isoformat(), "--end", hour[1].isoformat()]]
    for every in (None, ""):  # no domain: one job per domain
        assert [args[1] for args in plan_jobs({**context, "params": {**context["params"], "domain": every}})] == [
            "conversions",
            "sales",
        ]
    context["params"].update(start_date="2026-01-02T00:00:00Z", end_date="2026-01-01T00:00:00Z")
    with pytest.raises(AirflowFailException, match="rejected params: end_date .* must be after start_date"):
        plan_jobs(context)


def test_dag_files_do_not_hardcode_credentials():
    for path in (PROJECT_ROOT / "dags").glob("*.py"):
        text = path.read_text()
        assert "password" not in text.lower() and "secret" not in text.lower(), path


def test_reconcile_plans_every_published_window_or_the_manual_params(dags):
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from lakehouse.orchestration.dag_support import GOLD_PUBLISHED, reconcile_jobs

    def published(start: str, end: str, domains: list[str]):
        return SimpleNamespace(extra={"start": start, "end": end, "domains": domains, "backfill": False})

    day, next_day, after = "2026-11-20T00:00:00+00:00", "2026-11-21T00:00:00+00:00", "2026-11-22T00:00:00+00:00"
    empty = {"domain": None, "start_date": None, "end_date": None}
    # two gold_daily runs published while reconcile was busy: both windows are reconciled
    events = {
        GOLD_PUBLISHED: [published(day, next_day, ["sales"]), published(next_day, after, ["sales", "conversions"])]
    }
    assert reconcile_jobs({"params": empty, "triggering_asset_events": events}) == [
        ["--domain", "sales", "--start", day, "--end", next_day],
        ["--domain", "sales", "--start", next_day, "--end", after],
        ["--domain", "conversions", "--start", next_day, "--end", after],
    ]
    # a manual run: its params' window (dates are UTC midnights)
    manual = {"domain": "sales", "start_date": "2026-11-20", "end_date": "2026-11-21"}
    assert reconcile_jobs({"params": manual, "triggering_asset_events": {}}) == [
        ["--domain", "sales", "--start", day, "--end", next_day]
    ]
    with pytest.raises(AirflowFailException, match="give start_date and end_date"):
        reconcile_jobs({"params": empty, "triggering_asset_events": {}})
