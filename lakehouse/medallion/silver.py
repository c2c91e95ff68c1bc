"""Bronze -> silver transformations: pure functions on Spark DataFrames, driven by the domain YAML.

parse -> conform (the domain's `silver.columns` expressions) -> split by `silver.rules`
(first failed rule wins) -> dedup by event_id with a deterministic winner.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.domains import Domain
from lakehouse.errors import ConfigError

JSON_TYPES = {"integer": T.LongType(), "number": T.DoubleType(), "boolean": T.BooleanType(), "string": T.StringType()}
ENVELOPE = ("event_id", "event_time", "payload", "kafka_topic", "kafka_partition", "kafka_offset", "ingested_at")


def payload_schema(domain: Domain) -> T.StructType:
    """A Spark schema for the payload from the contract; fields the envelope already types are skipped."""
    fields = []
    for name, spec in domain.contract.get("properties", {}).items():
        if name in (domain.dedup_key, domain.event_time_field):
            continue
        kind = spec.get("type", "string")
        kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
        fields.append(T.StructField(name, JSON_TYPES.get(kind, T.StringType())))
    return T.StructType(fields)


def parse(bronze: DataFrame, domain: Domain) -> DataFrame:
    """Envelope columns plus the payload's fields as typed columns."""
    parsed = bronze.select(*ENVELOPE, F.from_json("payload", payload_schema(domain)).alias("_p"))
    return parsed.select(*ENVELOPE, "_p.*")


def conform(parsed: DataFrame, domain: Domain, run_id: str, processed_at: Column | None = None) -> DataFrame:
    """The silver columns (domain expressions), plus ingested_at, processed_at and run_id; keeps
    the lineage columns needed for quarantine and dedup (prefixed with _)."""
    if domain.silver is None:
        raise ConfigError(f"domain {domain.name} has no `silver:` section in {domain.source}")
    exprs = [F.expr(expression).alias(name) for name, expression in domain.silver.columns.items()]
    lineage = [F.col(c).alias(f"_{c}") for c in ("payload", "kafka_topic", "kafka_partition", "kafka_offset")]
    return parsed.select(
        *exprs,
        "ingested_at",
        (processed_at if processed_at is not None else F.current_timestamp()).alias("processed_at"),
        F.lit(run_id).alias("run_id"),
        *lineage,
    )


def first_failed_rule(domain: Domain) -> Column:
    """The name of the first rule a row fails (a rule that is NULL fails too), or NULL."""
    rules = domain.silver.rules if domain.silver else {}
    result = F.lit(None).cast("string")
    for name, expression in reversed(list(rules.items())):
        result = F.when(F.coalesce(F.expr(expression), F.lit(False)), result).otherwise(F.lit(name))
    return result


def split_by_rules(conformed: DataFrame, domain: Domain) -> tuple[DataFrame, DataFrame]:
    checked = conformed.withColumn("_rule", first_failed_rule(domain))
    return checked.filter(F.col("_rule").isNull()).drop("_rule"), checked.filter(F.col("_rule").isNotNull())


def dedup(valid: DataFrame) -> DataFrame:
    """One row per event_id: the latest event_time wins; among copies of one version the first to
    arrive wins (earliest ingested_at, then Kafka position), which is also what hourly runs keep
    (a later copy is never newer), so backfills and hourly runs agree."""
    order = Window.partitionBy("event_id").orderBy(
        F.col("event_time").desc(), F.col("ingested_at"), F.col("_kafka_partition"), F.col("_kafka_offset")
    )
    return valid.withColumn("_n", F.row_number().over(order)).filter("_n = 1").drop("_n")


def silver_rows(deduped: DataFrame, silver_columns: list[str]) -> DataFrame:
    return deduped.select(*silver_columns)


def quarantine_rows(rejected: DataFrame, domain: Domain) -> DataFrame:
    return rejected.select(
        F.lit(domain.name).alias("domain"),
        "event_id",
        F.col("_rule").alias("rule"),
        F.col("_payload").alias("payload"),
        F.col("_kafka_topic").alias("kafka_topic"),
        F.col("_kafka_partition").alias("kafka_partition"),
        F.col("_kafka_offset").alias("kafka_offset"),
        "event_time",
        "processed_at",
        "run_id",
    )


def in_days(column: str, days: list[date]) -> str:
    """A SQL predicate: `column` (a UTC timestamp) falls on one of `days`; consecutive days are
    one range, so Iceberg prunes day partitions with it. FALSE when there are none."""
    ranges: list[list[date]] = []
    for day in sorted(days):
        if ranges and ranges[-1][1] == day:
            ranges[-1][1] = day + timedelta(days=1)
        else:
            ranges.append([day, day + timedelta(days=1)])
    if not ranges:
        return "FALSE"
    return (
        "("
        + " OR ".join(
            f"({column} >= TIMESTAMP'{low.isoformat()} 00:00:00+00:00' AND {column} < TIMESTAMP'{high.isoformat()} 00:00:00+00:00')"
            for low, high in ranges
        )
        + ")"
    )
