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
import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from lakehouse.domains import Check, GoldTable
from lakehouse.errors import LakehouseError, QualityGateFailed
from lakehouse.settings import Settings, load_settings

RESULTS = "ops.quality_results"
CONTEXT_DIR_VARIABLE = "LAKEHOUSE_QUALITY_DIR"
SAMPLE_SIZE = 5
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
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items() if k != "unexpected_rows_query")
        seen = "" if self.observed is None else f"; observed {self.observed}"
        bad = "" if self.unexpected_count is None else f"; {self.unexpected_count} unexpected"
        sample = f"; e.g. {self.sample}" if self.sample else ""
        return f"{self.table}: {self.expectation}({args}) [{self.severity}]{seen}{bad}{sample}"


@dataclass(frozen=True)
class Report:
    table: str
    outcomes: tuple[Outcome, ...]
    docs: str | None = None

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


@cache
def _context(root: str):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # job logs, not terminals
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


def suite_expectations(checks: tuple[Check, ...], extra: tuple = ()) -> list:
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
    return [*expectations, *extra]


def gold_extra(spec: GoldTable, silver: str, dates: list[date], matches: bool) -> tuple:
    if not matches:
        return ()
    import great_expectations as gx

    return (
        gx.expectations.UnexpectedRowsExpectation(
            unexpected_rows_query=matches_silver_query(spec, silver, dates),
            description=f"{MATCHES_SILVER}: measures equal the aggregates over {silver}",
            meta={"name": MATCHES_SILVER},
        ),
    )


def validate(
    spark: SparkSession,
    table: str,
    batch: DataFrame,
    expectations: list,
    run_id: str,
) -> Report:
    """Run the expectations on `batch` as a Checkpoint (Data Docs updated), as a Report."""
    from great_expectations.checkpoint import Checkpoint, UpdateDataDocsAction
    from great_expectations.core import ExpectationSuite, ValidationDefinition
    from great_expectations.core.run_identifier import RunIdentifier

    if not expectations:
        return Report(table, ())
    context = _context(str(context_dir()))
    name = table.replace(".", "_")
    try:
        source = context.data_sources.get("lakehouse_spark")
    except (KeyError, ValueError):
        source = context.data_sources.add_spark(name="lakehouse_spark")
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name=name)
    try:
        batch_definition = asset.get_batch_definition("batch")
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe("batch")
    suite = context.suites.add_or_update(ExpectationSuite(name=name, expectations=[copy.copy(e) for e in expectations]))
    definition = context.validation_definitions.add_or_update(
        ValidationDefinition(name=name, data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": batch}, run_id=RunIdentifier(run_name=run_id))
    outcomes = []
    for validation in result.run_results.values():
        for item in validation.results:
            config = item.expectation_config
            details = item.result or {}
            rows = (details.get("details") or {}).get("unexpected_rows")
            outcomes.append(
                Outcome(
                    table=table,
                    expectation=(config.meta or {}).get("name", config.type),
                    kwargs={k: v for k, v in config.kwargs.items() if k not in ("batch_id",)},
                    severity="warn" if str(config.severity.value) == "warning" else "fail",
                    success=bool(item.success),
                    observed=details.get("observed_value"),
                    unexpected_count=details.get("unexpected_count"),
                    sample=(rows[:SAMPLE_SIZE] if rows else details.get("partial_unexpected_list")) or None,
                )
            )
    return Report(table, tuple(_with_samples(spark, batch, o) for o in outcomes), docs_index().as_uri())


def _with_samples(spark: SparkSession, batch: DataFrame, outcome: Outcome) -> Outcome:
    """GX reports a failed query expectation's rows only in COMPLETE format (which would also
    return every unexpected value of the column expectations): fetch a few here."""
    query = outcome.kwargs.get("unexpected_rows_query")
    if outcome.success or outcome.sample or not query:
        return outcome
    batch.createOrReplaceTempView("quality_batch")
    rows = [r.asDict() for r in spark.sql(query.format(batch="quality_batch")).limit(SAMPLE_SIZE).collect()]
    return dataclasses.replace(outcome, sample=rows)


def gate(
    spark: SparkSession,
    table: str,
    batch: DataFrame,
    expectations: list,
    run_id: str,
    job: str,
    domain: str,
    branch: str | None,
    details: dict,
) -> Report:
    """Validate, record in ops.quality_results and in `details` (the run's audit row); the
    caller publishes when `enforce` does not raise."""
    report = validate(spark, table, batch, expectations, run_id)
    record(spark, report, run_id, job, domain, branch)
    details.setdefault("quality", {})[table] = {
        "expectations": len(report.outcomes),
        "failed": [o.expectation for o in report.failed],
        "warnings": [o.expectation for o in report.warnings],
        "branch": branch,
    }
    return report


def record(spark: SparkSession, report: Report, run_id: str, job: str, domain: str, branch: str | None) -> None:
    """Append the report's outcomes to ops.quality_results (one row per expectation)."""
    if not report.outcomes:
        return
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
        for o in report.outcomes
    ]
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
