"""The Kafka -> bronze batch job on Spark's Kafka source: recover what the stream did not commit,
or replay a range.

Both modes `MERGE INTO` bronze ON the dedup key (only events bronze lacks are inserted) and the
dead letters ON (domain, topic, partition, offset), so a replay never duplicates.

- Recovery (default), for when the stream was down: reads from bronze's position up to the
  last record stamped before `end` (Kafka's offsets for that time). The position is the highest
  Kafka offset per partition that bronze or the dead letters hold, or the stream job's consumer
  group offsets, whichever is further. Records the stream never committed are recovered even if
  stamped before `start`: skipping them would lose them.
- Backfill (--backfill), to repair a bronze range: reads from the earliest offsets up to the
  position and keeps events whose event time is in [start, end) (malformed records: whose Kafka
  timestamp is). What lies beyond the position belongs to the stream.

Records are judged by the Python contract (`events.contracts.check_record`, which the stream's
Java contract check matches record by record) inside `mapInArrow`, one Arrow batch at a time. The first
copy of an event id (lowest partition, offset) wins. An event is late when its time is below
its partition's watermark at that offset (the highest earlier event time minus the allowed
lateness): a batch has no arrival order across partitions, so this is per partition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from lakehouse.domains import Domain
from lakehouse.errors import LakehouseError
from lakehouse.events.contracts import Contract, check_record, parse_event_time
from lakehouse.events.read import end_offsets, group_position
from lakehouse.jobs import JobRequest
from lakehouse.medallion.runs import RunResult, fault_point, job_run
from lakehouse.settings import Settings, load_settings
from lakehouse.streaming.names import consumer_group

JOB = "kafka_to_bronze"
COORDINATES = ["kafka_topic", "kafka_partition", "kafka_offset"]
log = logging.getLogger("lakehouse.jobs")

JUDGED = pa.schema(
    [
        ("kafka_topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("kafka_timestamp", pa.timestamp("us", tz="UTC")),
        ("payload", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("event_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
    ]
)
JUDGED_SPARK = from_arrow_schema(JUDGED)  # the same schema, as mapInArrow's result type


def judge(domain: Domain):
    """The mapInArrow function: each Kafka record with the contract's verdict, its dedup key and
    its UTC event time (valid records), its raw value as text (invalid UTF-8 replaced)."""

    def batches(source: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        contract = Contract(domain.contract)  # compiled once per task, in the Python worker
        for batch in source:
            values = batch["value"].to_pylist()
            reasons, details, ids, times = [], [], [], []
            for value in values:
                verdict = check_record(domain, contract, value)
                reasons.append(verdict.reason)
                details.append(verdict.detail)
                event = verdict.event or {}
                ids.append(str(event[domain.dedup_key]) if verdict.valid else None)
                times.append(parse_event_time(event[domain.event_time_field]) if verdict.valid else None)
            payloads = [None if v is None else v.decode("utf-8", errors="replace") for v in values]
            yield pa.RecordBatch.from_arrays(
                [
                    batch["topic"],
                    batch["partition"].cast(pa.int32()),
                    batch["offset"].cast(pa.int64()),
                    batch["timestamp"].cast(pa.timestamp("us", tz="UTC")),
                    pa.array(payloads, pa.string()),
                    pa.array(reasons, pa.string()),
                    pa.array(details, pa.string()),
                    pa.array(ids, pa.string()),
                    pa.array(times, pa.timestamp("us", tz="UTC")),
                ],
                schema=JUDGED,
            )

    return batches


def bronze_rows(judged: DataFrame, domain: Domain) -> DataFrame:
    """Valid records as bronze rows: the first copy of each event id, late against its partition's
    watermark (pure)."""
    lateness_s = int(domain.allowed_lateness.total_seconds())
    earlier = Window.partitionBy("kafka_partition").orderBy("kafka_offset").rowsBetween(Window.unboundedPreceding, -1)
    first = Window.partitionBy("event_id").orderBy("kafka_partition", "kafka_offset")
    valid = judged.where(F.col("reason").isNull())
    watermark = F.max("event_time").over(earlier) - F.expr(f"INTERVAL {lateness_s} SECONDS")
    return (
        valid.withColumn("is_late", F.coalesce(F.col("event_time") < watermark, F.lit(False)))
        .withColumn("_copy", F.row_number().over(first))
        .where("_copy = 1")
        .select(
            "event_id",
            F.lit(domain.event_type).alias("event_type"),
            "event_time",
            "payload",
            *COORDINATES,
            "kafka_timestamp",
            "is_late",
            F.current_timestamp().alias("ingested_at"),
        )
    )


def dead_letter_rows(judged: DataFrame, domain: Domain) -> DataFrame:
    """Rejected records as dead letters, with reason, detail and coordinates (pure)."""
    return judged.where(F.col("reason").isNotNull()).select(
        F.lit(domain.name).alias("domain"),
        "reason",
        "detail",
        "payload",
        *COORDINATES,
        "kafka_timestamp",
        F.current_timestamp().alias("failed_at"),
    )


def position(spark: SparkSession, settings: Settings, domain: Domain) -> dict[int, int]:
    """The highest offset per partition bronze has dealt with: its own rows and dead letters, or
    the stream job's committed consumer group offsets, whichever is further."""
    topic = domain.topic.name
    held = spark.sql(
        f"""SELECT kafka_partition, max(kafka_offset) AS kafka_offset FROM (
                SELECT kafka_partition, kafka_offset FROM {domain.tables.bronze} WHERE kafka_topic = '{topic}'
                UNION ALL
                SELECT kafka_partition, kafka_offset FROM {domain.tables.dead_letter}
                WHERE domain = '{domain.name}' AND kafka_topic = '{topic}')
            GROUP BY kafka_partition"""
    ).collect()
    found = {row.kafka_partition: row.kafka_offset for row in held}
    try:
        stream = group_position(settings, consumer_group(domain.name), topic)
    except LakehouseError:
        stream = {}
    for partition, offset in stream.items():
        found[partition] = max(found.get(partition, -1), offset)
    return found


def read_topic(spark: SparkSession, settings: Settings, topic: str, first: dict, last: dict) -> DataFrame:
    """Records of `topic` from offset first[p] (-2: the earliest) to last[p] inclusive, through
    Spark's Kafka source, committed records only."""
    start = {str(p): first[p] for p in sorted(last)}
    end = {str(p): max(last[p] + 1, first[p]) for p in sorted(last)}  # never before the start (-2 < 0)
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
        .option("kafka.isolation.level", "read_committed")
        .option("subscribe", topic)
        .option("startingOffsets", json.dumps({topic: start}))
        .option("endingOffsets", json.dumps({topic: end}))
        .load()
    )


def run(spark: SparkSession, request: JobRequest, settings: Settings | None = None) -> RunResult:
    settings = settings or load_settings()
    tables = [request.domain.tables.bronze, request.domain.tables.dead_letter]
    with job_run(spark, JOB, request, tables) as result:
        _replay(spark, settings, request, result)
    return result


def _replay(spark, settings, request: JobRequest, result):
    domain, start, end, backfill = request.domain, request.start, request.end, request.backfill
    topic = domain.topic.name
    committed = position(spark, settings, domain)
    ends = end_offsets(settings, topic, int(end.timestamp() * 1000))
    if backfill:
        if not committed:
            raise LakehouseError(
                f"bronze {domain.tables.bronze} holds nothing of {topic}: there is nothing to backfill from; "
                "run without --backfill to recover the topic from its earliest offsets"
            )
        first = {p: -2 for p in ends}
        last = {p: committed.get(p, -1) for p in ends}
    else:
        first = {p: committed[p] + 1 if p in committed else -2 for p in ends}
        last = ends
    result.details.update(mode="backfill" if backfill else "recovery", from_offsets=first, to_offsets=last)
    log.info("%s %s: reading %s from offsets %s to %s (-2: earliest)", JOB, domain.name, topic, first, last)
    judged = read_topic(spark, settings, topic, first, last).mapInArrow(judge(domain), JUDGED_SPARK)
    if backfill:
        moment = F.when(F.col("reason").isNull(), F.col("event_time")).otherwise(F.col("kafka_timestamp"))
        judged = judged.where((moment >= F.lit(start)) & (moment < F.lit(end)))
    judged = judged.cache()
    try:
        _merge(spark, domain, judged, request.dry_run, result)
    finally:
        judged.unpersist()


def _merge(spark, domain, judged, dry_run, result):
    rows = bronze_rows(judged, domain)
    letters = dead_letter_rows(judged, domain)
    known_ids = spark.table(domain.tables.bronze).select("event_id")
    known_letters = spark.table(domain.tables.dead_letter).where(F.col("domain") == domain.name).select(*COORDINATES)
    fresh = rows.join(known_ids, "event_id", "left_anti").cache()
    fresh_letters = letters.join(known_letters, COORDINATES, "left_anti").cache()
    try:
        result.rows_read = judged.count()
        result.rows_written = rows.count()
        result.rows_quarantined = letters.count()
        result.rows_merged = fresh.count()
        result.details.update(new_dead_letters=fresh_letters.count())
        log.info(
            "%s %s: %d records, %d unique valid events (%d new), %d dead letters (%d new)",
            JOB,
            domain.name,
            result.rows_read,
            result.rows_written,
            result.rows_merged,
            result.rows_quarantined,
            result.details["new_dead_letters"],
        )
        if dry_run:
            result.rows_merged = 0
            return
        # Dead letters first: if the bronze MERGE then fails, the run is rolled back and re-run.
        if result.details["new_dead_letters"]:
            fresh_letters.createOrReplaceTempView("replay_letters")
            spark.sql(
                f"""MERGE INTO {domain.tables.dead_letter} t USING replay_letters s
                    ON t.domain = s.domain AND t.kafka_topic = s.kafka_topic
                       AND t.kafka_partition = s.kafka_partition AND t.kafka_offset = s.kafka_offset
                    WHEN NOT MATCHED THEN INSERT *"""
            )
        fault_point("replay-before-bronze")
        if result.rows_merged:
            # ON the dedup key: an event the stream committed meanwhile is not inserted again.
            fresh.createOrReplaceTempView("replay_rows")
            spark.sql(
                f"""MERGE INTO {domain.tables.bronze} t USING replay_rows s ON t.event_id = s.event_id
                    WHEN NOT MATCHED THEN INSERT *"""
            )
    finally:
        fresh.unpersist()
        fresh_letters.unpersist()
