"""The data quality gate: a batch validated with Great Expectations before it is published.

Expectations come from the domain's `quality:` section (lakehouse.domains.Quality), in Great
Expectations' own vocabulary (`expect_column_values_to_be_between: {column: ..., min_value: ...}`),
each with a severity: `fail` keeps the batch off `main`, `warn` is recorded only. A gold table
can also declare `matches_silver`: its measures must equal the same aggregates recomputed
from silver (in SQL, apart from the gold job's DataFrame code) for the dates the batch holds.

Every validation is a Checkpoint run in a file Data Context under the state folder, so the
Data Docs (HTML) show each run; every expectation's outcome is also a row of
`ops.quality_results`, which the pipeline-health notebook reads.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from lakehouse.domains import Check, GoldTable
from lakehouse.errors import LakehouseError, QualityGateFailed
from lakehouse.settings import Settings, load_settings

RESULTS = "ops.quality_results"
CONTEXT_DIR_VARIABLE = "LAKEHOUSE_QUALITY_DIR"
SAMPLE_SIZE = 5
DOCS_VALIDATIONS = 200  # the latest validations the Data Docs list
MATCHES_SILVER = "matches_silver"
log = logging.getLogger("lakehouse.quality")


@dataclass(frozen=True)
class Outcome:
    """One expectation's result on one batch."""

    table: str
    expectation: str
    kwargs: dict
    severity: str
    success: bool
    observed: object = None
    unexpected_count: int | None = None
    sample: list | None = None

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        seen = "" if self.observed is None else f"; observed {self.observed}"
        bad = "" if self.unexpected_count is None else f"; {self.unexpected_count} unexpected"
        sample = f"; e.g. {self.sample}" if self.sample else ""
        return f"{self.table}: {self.expectation}({args}) [{self.severity}]{seen}{bad}{sample}"


@dataclass(frozen=True)
class Report:
    table: str
    outcomes: tuple[Outcome, ...]
    docs: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # per batch (asset): reading and validating it

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "fail"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warn"]


def context_dir(settings: Settings | None = None) -> Path:
    """Where the Data Context (suites, results, Data Docs) lives: LAKEHOUSE_QUALITY_DIR, or
    <state>/quality (in Docker mode the state volume)."""
    if os.environ.get(CONTEXT_DIR_VARIABLE):
        return Path(os.environ[CONTEXT_DIR_VARIABLE])
    return (settings or load_settings()).state_dir / "quality"


def docs_index(settings: Settings | None = None) -> Path:
    """The Data Docs' index page (it exists after the first validation)."""
    return context_dir(settings) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def preload() -> threading.Thread:
    """Start importing Great Expectations in a background thread. The import costs about 12 s
    of CPU (it loads every expectation, renderer and data source); a job that will gate calls
    this first, so the import runs while the job's Spark work does, not after it."""

    def load():
        try:
            import great_expectations  # noqa: F401
        except Exception:  # the gate's own import reports it, in the job's thread
            log.debug("background import of great_expectations failed", exc_info=True)

    thread = threading.Thread(target=load, name="preload-great-expectations", daemon=True)
    thread.start()
    return thread


@cache
def _context(root: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # job logs, not terminals
    # The Data Docs index reads every stored validation on each build: without a limit the gate
    # slows down with every run ever made (ops.quality_results keeps the whole history).
    site = context.list_data_docs_sites()["local_site"]
    if site["site_index_builder"].get("validation_results_limit") != DOCS_VALIDATIONS:
        site["site_index_builder"]["validation_results_limit"] = DOCS_VALIDATIONS
        context.update_data_docs_site("local_site", site)
    return context


def silver_query(spec: GoldTable, silver: str, dates: list[date]) -> str:
    """The gold table's rows recomputed from silver in SQL, for `dates`."""
    grain = ", ".join(spec.grain)
    measures = ", ".join(f"{expr} AS {name}" for name, expr in spec.measures.items())
    days = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
    return f"SELECT {grain}, {measures} FROM {silver} WHERE event_date IN ({days}) GROUP BY {grain}"


def matches_silver_query(spec: GoldTable, silver: str, dates: list[date]) -> str:
    """Gold rows (the batch) whose measures differ from silver's, or that silver does not
    have; for a table without a rank (all groups kept), also silver's groups gold lacks."""
    on = " AND ".join(f"g.{k} <=> s.{k}" for k in spec.grain)
    differ = " OR ".join(f"NOT (g.{m} <=> s.{m})" for m in spec.measures)
    join = "LEFT JOIN" if spec.rank else "FULL OUTER JOIN"
    keys = ", ".join(f"coalesce(g.{k}, s.{k}) AS {k}" for k in spec.grain)
    pairs = ", ".join(f"g.{m} AS gold_{m}, s.{m} AS silver_{m}" for m in spec.measures)
    return (
        f"SELECT {keys}, {pairs} FROM {{batch}} g {join} ({silver_query(spec, silver, dates)}) s ON {on} WHERE {differ}"
    )


def suite_expectations(checks: tuple[Check, ...]) -> list:
    """Great Expectations Expectation objects for the checks (an unknown type or argument
    fails here, naming it)."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.metadata_types import FailureSeverity

    severity = {"fail": FailureSeverity.CRITICAL, "warn": FailureSeverity.WARNING}
    expectations = []
    for check in checks:
        try:
            config = ExpectationConfiguration(type=check.type, kwargs=check.kwargs, severity=severity[check.severity])
            expectations.append(config.to_domain_obj())
        except Exception as exc:  # GX raises several types for an unknown name or argument
            raise LakehouseError(f"invalid expectation {check.type}({check.kwargs}): {exc}") from exc
    return expectations


def matches_silver_expectation(against: str):
    """The cross-table check, in Great Expectations' terms: the batch of gold rows that differ
    from silver's aggregates (matches_silver_query) has no row."""
    import great_expectations as gx
    from great_expectations.expectations.metadata_types import FailureSeverity

    return gx.expectations.ExpectTableRowCountToEqual(
        value=0,
        severity=FailureSeverity.CRITICAL,
        description=f"{MATCHES_SILVER}: measures equal the aggregates over {against}",
        meta={"name": MATCHES_SILVER, "against": against},
    )


@dataclass(frozen=True)
class Batch:
    """One validation: `frame` against `expectations`, reported under `table`; `asset` names it
    in the Data Context and Data Docs. With `rows_are_unexpected` (a batch of differences), a
    failed expectation's sample is the batch's first rows."""

    table: str
    asset: str
    frame: DataFrame
    expectations: list
    rows_are_unexpected: bool = False


def validate(
    spark: SparkSession, batches: list[Batch], run_id: str, pandas_max_rows: int | None = None
) -> list[Report]:
    """Run each batch's expectations as a Checkpoint, then build the Data Docs of all of them
    once; one Report per table, in the order of `batches`.

    Only the columns the expectations name are read (all of them when one judges the table as
    a whole or has a row condition). A batch of at most `pandas_max_rows` rows (settings
    quality.pandas_max_rows) is collected through Arrow, in the one Spark job that reads it,
    and validated with GX's pandas data source: for the batches a run produces (an hour of
    silver, a day of gold) that is several times faster than the Spark data source, which runs
    Spark jobs per expectation. A larger batch (a long backfill) is cached and stays in Spark.
    (Reading the batches side by side, a thread each, measured no faster: the cross-table
    checks' aggregations already keep every core busy.)"""
    from great_expectations.core.run_identifier import RunIdentifier

    if pandas_max_rows is None:
        pandas_max_rows = load_settings().quality.pandas_max_rows
    context = _context(str(context_dir()))
    outcomes: dict[str, list[Outcome]] = {b.table: [] for b in batches}
    seconds: dict[str, dict[str, float]] = {b.table: {} for b in batches}
    built = []
    for batch in batches:
        if not batch.expectations:
            continue
        started = time.monotonic()
        data = _collect(batch, pandas_max_rows)
        kind = "pandas" if isinstance(data, pd.DataFrame) else "spark"
        try:
            checkpoint = _checkpoint(context, kind, batch.asset, batch.expectations)
            result = checkpoint.run(batch_parameters={"dataframe": data}, run_id=RunIdentifier(run_name=run_id))
            for identifier, validation in result.run_results.items():
                built.append(identifier)
                outcomes[batch.table].extend(_outcome(batch, data, item) for item in validation.results)
        finally:
            if kind == "spark":
                data.unpersist()
        seconds[batch.table][batch.asset] = round(time.monotonic() - started, 2)
    if built:
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        suites = {ExpectationSuiteIdentifier(name=i.expectation_suite_identifier.name) for i in built}
        context.build_data_docs(resource_identifiers=[*built, *suites])
    docs = docs_index().as_uri() if built else None
    return [Report(table, tuple(found), docs, seconds[table]) for table, found in outcomes.items()]


def _collect(batch: Batch, pandas_max_rows: int):
    """The batch's columns that its expectations name, as a pandas DataFrame when it has at
    most `pandas_max_rows` rows (one Spark job), else as a cached Spark DataFrame."""
    frame = batch.frame
    columns = expectation_columns(batch.expectations, frame.columns)
    if columns is not None:
        frame = frame.select(*columns)
    with warnings.catch_warnings():  # pyspark 3.5's Arrow conversion uses APIs pandas 3 deprecates
        warnings.filterwarnings("ignore", module="pyspark")
        data = frame.limit(pandas_max_rows + 1).toPandas()
    return data if len(data) <= pandas_max_rows else frame.cache()


def expectation_columns(expectations: list, columns: list[str]) -> list[str] | None:
    """The columns (of `columns`, in their order) the expectations name; None when one of them
    needs the whole table (a table-level expectation, or one with a row condition)."""
    named: set[str] = set()
    for expectation in expectations:
        kwargs = expectation.configuration.kwargs
        if kwargs.get("row_condition"):
            return None
        found = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        found += kwargs.get("column_list") or []
        if not found:
            return None
        named.update(found)
    return [c for c in columns if c in named]


def _checkpoint(context, kind: str, asset_name: str, expectations: list):
    """The asset's Checkpoint in the Data Context, its suite updated to `expectations`."""
    from great_expectations.checkpoint import Checkpoint
    from great_expectations.core import ExpectationSuite, ValidationDefinition

    source_name = f"lakehouse_{kind}"
    try:
        source = context.data_sources.get(source_name)
    except (KeyError, ValueError):
        add = context.data_sources.add_pandas if kind == "pandas" else context.data_sources.add_spark
        source = add(name=source_name)
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(name=asset_name)
    try:
        batch_definition = asset.get_batch_definition("batch")
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe("batch")
    name = f"{asset_name}_{kind}"
    suite = context.suites.add_or_update(
        ExpectationSuite(name=asset_name, expectations=[copy.copy(e) for e in expectations])
    )
    definition = context.validation_definitions.add_or_update(
        ValidationDefinition(name=name, data=batch_definition, suite=suite)
    )
    return context.checkpoints.add_or_update(
        Checkpoint(
            name=name,
            validation_definitions=[definition],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
        )
    )


def _outcome(batch: Batch, data, item) -> Outcome:
    """One expectation's result; `data` is what it judged (a pandas or a Spark DataFrame)."""
    config = item.expectation_config
    meta = config.meta or {}
    details = item.result or {}
    sample = [_plain(v) for v in details.get("partial_unexpected_list") or []] or None
    if not item.success and batch.rows_are_unexpected:
        if isinstance(data, DataFrame):
            sample = [r.asDict() for r in data.limit(SAMPLE_SIZE).collect()]
        else:
            sample = [{k: _plain(v) for k, v in r.items()} for r in data.head(SAMPLE_SIZE).to_dict("records")]
    return Outcome(
        table=batch.table,
        expectation=meta.get("name", config.type),
        kwargs={"against": meta["against"]}
        if "against" in meta
        else {k: v for k, v in config.kwargs.items() if k != "batch_id"},
        severity="warn" if str(config.severity.value) == "warning" else "fail",
        success=bool(item.success),
        observed=details.get("observed_value"),
        unexpected_count=details.get("unexpected_count"),
        sample=sample,
    )


def _plain(value):
    """A sample value as the Spark data source reports it: pandas gives NaN or NaT for a null,
    numpy scalars for numbers and its own Timestamp for a timestamp."""
    if value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if type(value).__module__ == "numpy" else value


def gate(
    spark: SparkSession,
    batches: list[Batch],
    run_id: str,
    job: str,
    domain: str,
    branch: str | None,
    details: dict,
) -> list[Report]:
    """Validate, record in ops.quality_results (one commit for all batches) and in `details`
    (the run's audit row); the caller publishes when `enforce` does not raise."""
    reports = validate(spark, batches, run_id)
    record(spark, reports, run_id, job, domain, branch)
    for report in reports:
        details.setdefault("quality", {})[report.table] = {
            "expectations": len(report.outcomes),
            "failed": [o.expectation for o in report.failed],
            "warnings": [o.expectation for o in report.warnings],
            "branch": branch,
            "seconds": report.seconds,
        }
    return reports


def record(spark: SparkSession, reports: list[Report], run_id: str, job: str, domain: str, branch: str | None) -> None:
    """Append the reports' outcomes to ops.quality_results (one row per expectation)."""
    checked_at = datetime.now(UTC)
    rows = [
        (
            run_id,
            job,
            domain,
            report.table,
            branch,
            o.expectation,
            json.dumps(o.kwargs, default=str),
            o.severity,
            o.success,
            None if o.observed is None else json.dumps(o.observed, default=str),
            o.unexpected_count,
            json.dumps(o.sample, default=str) if o.sample else None,
            checked_at,
        )
        for report in reports
        for o in report.outcomes
    ]
    if rows:
        spark.createDataFrame(rows, schema=spark.table(RESULTS).schema).writeTo(RESULTS).append()


def enforce(report: Report) -> None:
    """Log the outcome; raise QualityGateFailed when a `fail` expectation failed."""
    for outcome in report.warnings:
        log.warning("quality warning: %s", outcome.describe())
    if report.docs:
        log.info("Data Docs: %s", report.docs)
    if report.failed:
        lines = "\n  ".join(o.describe() for o in report.failed)
        raise QualityGateFailed(
            f"quality gate failed for {report.table} ({len(report.failed)} of {len(report.outcomes)} "
            f"expectations):\n  {lines}"
        )
    log.info("quality gate passed for %s: %d expectations", report.table, len(report.outcomes))
