"""Reconciliation: for an interval of ingestion time, each layer holds exactly what the one
below it says it should. Writes one row per check to ops.reconciliation and fails on drift,
naming the first diverging keys.

- kafka_bronze: the topic's records in the offset range the interval covers (per partition,
  from Kafka's offsets for the interval's start and end) = bronze rows + dead letters at those
  coordinates + duplicates (records at coordinates neither holds whose event id bronze holds
  at another one). A record in none of them never arrived; a row at a coordinate Kafka has no
  committed record at came from nowhere. Records past the stream's position are not yet
  ingested: the check fails as incomplete (retry later), not as drift.
- bronze_silver: the events of bronze rows (or silver rows) ingested in the interval, = silver
  rows + events only quarantined, value for value: silver and quarantine are recomputed from
  every bronze row of those events with the silver transformations and compared. An event
  with a bronze row ingested after the interval is left to the interval that row is in (it is
  still settling here).
- silver_gold: gold's rows of every date touched in the interval (event dates of the silver
  rows ingested in it) = the same aggregates recomputed in SQL from silver (the quality gate's
  `matches_silver` query, not the gold job's DataFrame code), against the silver snapshot the
  last gold run of that date read (a later silver change is the next gold run's, not drift).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.domains import Domain
from lakehouse.errors import DriftFound, LakehouseError, TopicMissing
from lakehouse.events.read import end_offsets
from lakehouse.jobs import AUDIT, JobRequest
from lakehouse.medallion import bronze_to_silver, gold, kafka_to_bronze, quality, silver, silver_to_gold
from lakehouse.medallion.runs import RunResult, job_run, timed
from lakehouse.settings import Settings, load_settings

JOB = "reconcile"
TABLE = "ops.reconciliation"
COORDINATES = kafka_to_bronze.COORDINATES
KEYS_SHOWN = 10  # diverging keys kept in the table and the log, per check
# Silver columns a recomputation cannot reproduce: when and by which run a row was written.
RUN_COLUMNS = ("processed_at", "run_id")
log = logging.getLogger("lakehouse.jobs")


@dataclass
class Check:
    """One reconciliation check: what the layer below says (expected), what the layer holds
    (actual), and the keys of the rows that differ."""

    name: str
    table: str
    expected: int
    actual: int
    keys: list[str]
    drift: int
    details: dict = field(default_factory=dict)
    incomplete: str | None = None  # why the check could not be completed yet

    @property
    def passed(self) -> bool:
        return self.drift == 0 and self.incomplete is None

    def describe(self) -> str:
        verdict = "ok" if self.passed else ("INCOMPLETE" if self.incomplete else "DRIFT")
        text = (
            f"{self.name} {self.table}: expected {self.expected}, actual {self.actual}, drift {self.drift} [{verdict}]"
        )
        if self.keys:
            text += f"; first diverging keys: {', '.join(self.keys)}"
        if self.incomplete:
            text += f"; {self.incomplete}"
        return text


def _coordinate(row) -> str:
    return f"{row.kafka_topic}/{row.kafka_partition}/{row.kafka_offset}"


def _in_ranges(first: dict[int, int], last: dict[int, int]) -> F.Column:
    """Rows whose (partition, offset) lies in one of the per-partition ranges (inclusive)."""
    condition = F.lit(False)
    for partition in sorted(last):
        if last[partition] >= first[partition]:
            condition = condition | (
                (F.col("kafka_partition") == partition)
                & F.col("kafka_offset").between(first[partition], last[partition])
            )
    return condition


def kafka_bronze(spark: SparkSession, settings: Settings, domain: Domain, start: datetime, end: datetime) -> Check:
    topic = domain.topic.name
    try:
        before = end_offsets(settings, topic, int(start.timestamp() * 1000))
    except TopicMissing:
        return _without_topic(spark, domain, start, end)
    last = end_offsets(settings, topic, int(end.timestamp() * 1000))
    first = {p: before.get(p, -1) + 1 for p in last}
    reached = kafka_to_bronze.position(spark, settings, domain)
    records = (
        kafka_to_bronze.read_topic(spark, settings, topic, first, last)
        .mapInArrow(kafka_to_bronze.judge(domain), kafka_to_bronze.JUDGED_SPARK)
        .select(*COORDINATES, "event_id")
        .cache()
    )
    try:
        bronze = spark.table(domain.tables.bronze).where(F.col("kafka_topic") == topic)
        held = (
            bronze.where(_in_ranges(first, last))
            .select(*COORDINATES, F.lit("bronze").alias("held_by"))
            .unionByName(
                spark.table(domain.tables.dead_letter)
                .where((F.col("domain") == domain.name) & (F.col("kafka_topic") == topic) & _in_ranges(first, last))
                .select(*COORDINATES, F.lit("dead_letters").alias("held_by"))
            )
            .cache()
        )
        reached_col = F.lit(-1)
        for partition, offset in reached.items():
            reached_col = F.when(F.col("kafka_partition") == partition, F.lit(offset)).otherwise(reached_col)
        not_held = records.join(held, COORDINATES, "left_anti").withColumn(
            "_pending", F.col("kafka_offset") > reached_col
        )
        known = bronze.select(F.col("event_id").alias("_known")).distinct()
        verdicts = not_held.join(known, not_held.event_id == known._known, "left").select(
            *COORDINATES,
            F.when(F.col("_known").isNotNull(), "duplicate")
            .when(F.col("_pending"), "pending")
            .otherwise("missing")
            .alias("held_by"),
        )
        extra = held.join(records, COORDINATES, "left_anti").select(*COORDINATES, F.lit("extra").alias("held_by"))
        outcome = (
            held.join(records.select(*COORDINATES), COORDINATES, "left_semi").unionByName(verdicts).unionByName(extra)
        )
        counts = {
            (r.kafka_partition, r.held_by): r["count"]
            for r in outcome.groupBy("kafka_partition", "held_by").count().collect()
        }
        diverging = outcome.where(F.col("held_by").isin("missing", "extra")).orderBy(*COORDINATES)
        keys = [f"{r.held_by} {_coordinate(r)}" for r in diverging.limit(KEYS_SHOWN).collect()]
    finally:
        records.unpersist()

    def total(kind: str) -> int:
        return sum(n for (_, k), n in counts.items() if k == kind)

    partitions = {
        str(p): {
            "from_offset": first[p],
            "to_offset": last[p],
            **{
                kind: counts.get((p, kind), 0) for kind in ("bronze", "dead_letters", "duplicate", "missing", "pending")
            },
        }
        for p in sorted(last)
    }
    pending = total("pending")
    return Check(
        name="kafka_bronze",
        table=domain.tables.bronze,
        expected=sum(n for (_, k), n in counts.items() if k != "extra"),
        actual=total("bronze") + total("dead_letters") + total("duplicate") + total("extra"),
        keys=keys,
        drift=total("missing") + total("extra"),
        details={"partitions": partitions, "duplicates": total("duplicate"), "pending": pending},
        incomplete=(
            f"{pending} records of {topic} are past the stream's position {reached}: not yet ingested, run again later"
            if pending
            else None
        ),
    )


def _without_topic(spark: SparkSession, domain: Domain, start: datetime, end: datetime) -> Check:
    """A domain whose topic was never created (the demo creates only its own): Kafka holds no
    record, so every bronze row or dead letter of that topic ingested in the interval is drift."""
    topic = domain.topic.name
    held = (
        spark.table(domain.tables.bronze)
        .where((F.col("kafka_topic") == topic) & _ingested_in(start, end))
        .select(*COORDINATES)
        .unionByName(
            spark.table(domain.tables.dead_letter)
            .where((F.col("domain") == domain.name) & (F.col("kafka_topic") == topic))
            .where((F.col("failed_at") >= F.lit(start)) & (F.col("failed_at") < F.lit(end)))
            .select(*COORDINATES)
        )
    )
    count = held.count()
    keys = [f"extra {_coordinate(r)}" for r in held.orderBy(*COORDINATES).limit(KEYS_SHOWN).collect()]
    return Check(
        name="kafka_bronze",
        table=domain.tables.bronze,
        expected=0,
        actual=count,
        keys=keys,
        drift=count,
        details={"partitions": {}, "duplicates": 0, "pending": 0, "topic": f"{topic} does not exist on the broker"},
    )


def _ingested_in(start: datetime, end: datetime) -> F.Column:
    return (F.col("ingested_at") >= F.lit(start)) & (F.col("ingested_at") < F.lit(end))


def bronze_silver(spark: SparkSession, domain: Domain, start: datetime, end: datetime) -> Check:
    bronze = spark.table(domain.tables.bronze)
    silver_table = spark.table(domain.tables.silver)
    settling = bronze.where(F.col("ingested_at") >= F.lit(end)).select("event_id")
    events = (
        bronze.where(_ingested_in(start, end))
        .select("event_id")
        .unionByName(silver_table.where(_ingested_in(start, end)).select("event_id"))
        .distinct()
        .join(settling, "event_id", "left_anti")
        .cache()
    )
    try:
        rows = bronze.join(events, "event_id", "left_semi")
        conformed = silver.conform(silver.parse(rows, domain), domain, JOB)
        valid, rejected = silver.split_by_rules(conformed, domain)
        columns = [c for c in silver_table.columns if c not in RUN_COLUMNS]
        expected = silver.dedup(valid).select(*columns).cache()
        actual = silver_table.join(events, "event_id", "left_semi").select(*columns).cache()
        quarantine = spark.table(bronze_to_silver.QUARANTINE).where(F.col("domain") == domain.name)
        expected_q = silver.quarantine_rows(rejected, domain).select("event_id", *COORDINATES)
        actual_q = quarantine.join(events, "event_id", "left_semi").select("event_id", *COORDINATES)
        differ = (
            expected.exceptAll(actual)
            .select("event_id", F.lit("silver").alias("where"))
            .unionByName(actual.exceptAll(expected).select("event_id", F.lit("silver").alias("where")))
            .unionByName(expected_q.exceptAll(actual_q).select("event_id", F.lit("quarantine").alias("where")))
            .unionByName(actual_q.exceptAll(expected_q).select("event_id", F.lit("quarantine").alias("where")))
            .distinct()
            .cache()
        )
        only_quarantined = actual_q.select("event_id").distinct().join(actual, "event_id", "left_anti").count()
        silver_rows = actual.count()
        drift = differ.select("event_id").distinct().count()
        keys = [f"{r['where']} event_id={r.event_id}" for r in differ.orderBy("event_id").limit(KEYS_SHOWN).collect()]
        return Check(
            name="bronze_silver",
            table=domain.tables.silver,
            expected=events.count(),
            actual=silver_rows + only_quarantined,
            keys=keys,
            drift=drift,
            details={
                "silver_rows": silver_rows,
                "quarantined_events": only_quarantined,
                "settling_later": settling.join(
                    bronze.where(_ingested_in(start, end)).select("event_id"), "event_id", "left_semi"
                )
                .distinct()
                .count(),
            },
        )
    finally:
        for frame in (events, expected, actual, differ):
            frame.unpersist()


def gold_snapshots(spark: SparkSession, domain: Domain, dates: list) -> dict:
    """For each date, the silver snapshot the last successful gold run recomputing it read
    (None: no such run recorded one; then silver's main)."""
    runs = (
        spark.table(AUDIT)
        .where((F.col("job") == "silver_to_gold") & (F.col("domain") == domain.name) & (F.col("status") == "success"))
        .where(~F.col("dry_run"))
        .select("details", "started_at")
        .orderBy("started_at")
        .collect()
    )
    wanted = {d.isoformat(): d for d in dates}
    chosen: dict = dict.fromkeys(dates)
    for run in runs:  # oldest first: a later run overrides
        details = json.loads(run.details or "{}")
        for text in details.get("dates", []):
            if text in wanted:
                chosen[wanted[text]] = details.get("silver_snapshot")
    return chosen


def expected_rows_query(spec, silver_source: str, dates: list) -> str:
    """The gold rows silver implies for `dates`: every group, or for a ranked table the groups
    its rank keeps."""
    query = quality.silver_query(spec, silver_source, dates)
    rank = spec.rank
    if not rank or not rank.keep:
        return query
    return (
        f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {', '.join(rank.within)} "
        f"ORDER BY {', '.join(rank.order_by)}) AS _rank FROM ({query})) WHERE _rank <= {rank.keep}"
    )


def silver_gold(spark: SparkSession, domain: Domain, start: datetime, end: datetime) -> list[Check]:
    dates = silver_to_gold.touched_dates(spark, domain, start, end, backfill=False)
    by_snapshot: dict = {}
    for day, snapshot in gold_snapshots(spark, domain, dates).items():
        by_snapshot.setdefault(snapshot, []).append(day)
    checks = []
    for spec in domain.gold:
        view = f"reconcile_{spec.table.replace('.', '_')}"
        expected = actual = 0
        diverging: list[DataFrame] = []
        for snapshot, days in sorted(by_snapshot.items(), key=lambda item: min(item[1])):
            source = domain.tables.silver + (f" VERSION AS OF {snapshot}" if snapshot else "")
            gold.in_dates(spark.table(spec.table), days).createOrReplaceTempView(view)
            expected += spark.sql(expected_rows_query(spec, source, days)).count()
            actual += spark.table(view).count()
            diverging.append(
                spark.sql(quality.matches_silver_query(spec, source, days).replace("{batch}", view)).cache()
            )
        drift = sum(frame.count() for frame in diverging)
        keys = []
        for frame in diverging:
            for row in frame.orderBy(*spec.grain).limit(KEYS_SHOWN - len(keys)).collect():
                keys.append(", ".join(f"{k}={row[k]}" for k in spec.grain))
            frame.unpersist()
        checks.append(
            Check(
                name="silver_gold",
                table=spec.table,
                expected=expected,
                actual=actual,
                keys=keys,
                drift=drift,
                details={"dates": [d.isoformat() for d in dates], "silver_snapshots": sorted(map(str, by_snapshot))},
            )
        )
    return checks


def record(spark: SparkSession, checks: list[Check], result: RunResult) -> None:
    checked_at = datetime.now(UTC)
    schema = spark.table(TABLE).schema
    rows = [
        {
            "run_id": result.run_id,
            "domain": result.domain,
            "interval_start": result.start,
            "interval_end": result.end,
            "check_name": check.name,
            "table_name": check.table,
            "expected": check.expected,
            "actual": check.actual,
            "drift": check.drift,
            "passed": check.passed,
            "first_keys": json.dumps(check.keys),
            "details": json.dumps({**check.details, "incomplete": check.incomplete}, default=str),
            "checked_at": checked_at,
        }
        for check in checks
    ]
    spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema=schema).writeTo(
        TABLE
    ).append()


def run(spark: SparkSession, request: JobRequest, settings: Settings | None = None) -> list[Check]:
    """Reconcile the domain's layers for [start, end) of ingestion time; record every check;
    raise DriftFound on drift, LakehouseError when the stream has not ingested the interval yet."""
    settings = settings or load_settings()
    domain, start, end = request.domain, request.start, request.end
    with job_run(spark, JOB, request, tables=[]) as result:
        checks = []
        with timed(result, "kafka_bronze"):
            checks.append(kafka_bronze(spark, settings, domain, start, end))
        with timed(result, "bronze_silver"):
            checks.append(bronze_silver(spark, domain, start, end))
        if domain.gold:
            with timed(result, "silver_gold"):
                checks.extend(silver_gold(spark, domain, start, end))
        record(spark, checks, result)
        for check in checks:
            log.log(logging.INFO if check.passed else logging.ERROR, "%s %s: %s", JOB, domain.name, check.describe())
        result.rows_read = sum(c.expected for c in checks)
        result.details["checks"] = {f"{c.name} {c.table}": "ok" if c.passed else "failed" for c in checks}
        drifted = [c for c in checks if c.drift]
        if drifted:
            raise DriftFound(
                f"reconciliation of {domain.name} [{start.isoformat()}, {end.isoformat()}) found drift: "
                + "; ".join(c.describe() for c in drifted)
                + f" (all checks in {TABLE}, run {result.run_id})"
            )
        waiting = [c for c in checks if c.incomplete]
        if waiting:
            raise LakehouseError("; ".join(c.describe() for c in waiting))
    return checks


def main(argv: list[str] | None = None) -> int:
    """`lakehouse reconcile` and spark_jobs/reconcile.py: --domain D --start T --end T."""
    from lakehouse.medallion.cli import job_main

    def job(settings: Settings, request: JobRequest) -> list[Check]:
        from lakehouse.engines.spark import get_spark

        return run(get_spark(settings, f"{JOB}-{request.domain.name}"), request, settings=settings)

    return job_main(__doc__, job, argv, batch_options=False)
