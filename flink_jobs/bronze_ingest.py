"""Kafka -> bronze Iceberg, effectively once, for one domain (PyFlink 2.0, on the session cluster).

Submitted by the domain's keeper (`lakehouse stream start`, see lakehouse/streaming/keeper.py)
as `flink run --python flink_jobs/bronze_ingest.py --domain sales`. What it does, per record of the domain's topic:
- checks it against the domain's contract; a rejected record becomes a row of the dead-letter
  table (raw payload, reason, topic, partition, offset) and a message on the dead-letter topic;
- drops an event_id seen before (keyed state with a TTL);
- flags it late when its event time is behind the per-partition watermark (max event time
  minus the domain's allowed lateness), and keeps it;
- buffers it in checkpointed state; every flush interval the buffer is appended to Iceberg
  with the Kafka offsets it covers recorded in the snapshot, and rows at or below the
  committed offsets are dropped first. The broker has no transactions, so this is what makes
  replays after a crash or restart exact.
State lives in RocksDB with checkpoints in the state folder; Flink restarts a failed task from
the latest checkpoint, a resubmission resumes from the newest savepoint or retained
checkpoint, and a job without either starts from the offsets committed in bronze.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pyflink.common import Configuration, Types
from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import OutputTag, StreamExecutionEnvironment
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import KafkaRecordSerializationSchema, KafkaSink
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor
from pyflink.table import StreamTableEnvironment

from lakehouse.domains import Domain, get_domain
from lakehouse.engines.iceberg import load_catalog
from lakehouse.events.contracts import check_record, parse_event_time
from lakehouse.settings import Settings, load_settings
from lakehouse.streaming.checkpoints import checkpoint_dir
from lakehouse.streaming.iceberg_commit import append_exactly_once, committed_offsets
from lakehouse.streaming.rows import KafkaMeta, bronze_row, dead_letter_row
from lakehouse.streaming.watermarks import PartitionWatermarks

log = logging.getLogger("bronze_ingest")
DEAD_LETTERS = OutputTag("dead-letters", Types.STRING())


class IngestFunction(KeyedProcessFunction):
    """Validate, dedup, flag late, buffer and commit. Keyed by a constant so that its buffer,
    dedup map and watermarks are checkpointed keyed state of one task."""

    def __init__(self, domain_name: str, definitions_dir: str, flush_interval_s: float, dedup_ttl_s: int):
        self.domain_name = domain_name
        # The client's definitions folder travels with the function: the TaskManager's Python
        # workers do not share the submitting process's environment.
        self.definitions_dir = definitions_dir
        self.flush_interval_ms = int(flush_interval_s * 1000)
        self.dedup_ttl_s = dedup_ttl_s

    def open(self, runtime_context: RuntimeContext) -> None:
        self.settings: Settings = load_settings()
        self.domain: Domain = get_domain(Path(self.definitions_dir), self.domain_name)
        self.contract = self.domain.validator()
        catalog = load_catalog(self.settings)
        self.bronze = catalog.load_table(self.domain.tables.bronze)
        self.dead_letters = catalog.load_table(self.domain.tables.dead_letter)
        # Dedup state expires by generations instead of Flink's state TTL, which makes PyFlink
        # map state about 7x slower: ids go into the active generation; every dedup_ttl the
        # other one is cleared and becomes active. An id is remembered for ttl to 2 x ttl.
        self.generations = [
            runtime_context.get_map_state(MapStateDescriptor(f"seen_event_ids_{i}", Types.STRING(), Types.BOOLEAN()))
            for i in (0, 1)
        ]
        self.rotation = runtime_context.get_state(ValueStateDescriptor("seen_rotation", Types.PICKLED_BYTE_ARRAY()))
        self.buffer = runtime_context.get_list_state(ListStateDescriptor("buffer", Types.PICKLED_BYTE_ARRAY()))
        self.marks = runtime_context.get_state(ValueStateDescriptor("watermarks", Types.PICKLED_BYTE_ARRAY()))
        # Python-side mirrors of keyed state, (re)loaded from it on the first element after a
        # (re)start, so reads stay in Python. Seen ids reach the map state in one put_all per
        # flush; between flushes the checkpointed buffer holds them, and a restore takes both.
        self.seen: list[set[str]] | None = None
        self.active = 0
        self.watermarks: PartitionWatermarks | None = None
        self.flush_at: int | None = None

    def _load(self) -> None:
        if self.rotation.value() is None:
            self.rotation.update((0, time.time()))
        self.active, self.rotated_at = self.rotation.value()
        self.seen = [set(generation.keys()) for generation in self.generations]
        self.seen[self.active].update(row["event_id"] for kind, row in self.buffer.get() or [] if kind == "bronze")
        self.watermarks = PartitionWatermarks(
            self.domain.allowed_lateness, self.domain.topic.partitions, self.marks.value() or {}
        )

    def process_element(self, row, ctx: KeyedProcessFunction.Context):
        if self.seen is None:
            self._load()
        topic, partition, offset, timestamp_ms, value = row[0], row[1], row[2], row[3], row[4]
        meta = KafkaMeta(topic, partition, offset, timestamp_ms)
        verdict = check_record(self.domain, self.contract, value)
        if not verdict.valid:
            letter = dead_letter_row(self.domain, verdict, value, meta, datetime.now(UTC))
            self.buffer.add(("dead_letter", letter))
            message = {**letter, "kafka_timestamp": timestamp_ms, "failed_at": letter["failed_at"].isoformat()}
            yield DEAD_LETTERS, json.dumps(message)
        else:
            event_id = str(verdict.event[self.domain.dedup_key])
            if event_id in self.seen[0] or event_id in self.seen[1]:
                # no row, but the committed offsets must still move past it
                self.buffer.add(("seen", (topic, partition, offset)))
            else:
                # into the dedup map state with the next flush; until then the buffer holds it
                self.seen[self.active].add(event_id)
                event_ms = int(parse_event_time(verdict.event[self.domain.event_time_field]).timestamp() * 1000)
                late = self.watermarks.observe(partition, event_ms)
                self.buffer.add(
                    ("bronze", bronze_row(self.domain, verdict.event, value, meta, late, datetime.now(UTC)))
                )
        if self.flush_at is None:
            self.flush_at = ctx.timer_service().current_processing_time() + self.flush_interval_ms
            ctx.timer_service().register_processing_time_timer(self.flush_at)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        self.flush_at = None
        if self.seen is None:
            self._load()
        self.flush()
        self._rotate_seen()
        return iter(())

    def _rotate_seen(self) -> None:
        if time.time() - self.rotated_at < self.dedup_ttl_s:
            return
        retired = 1 - self.active
        self.generations[retired].clear()
        self.seen[retired] = set()
        self.active, self.rotated_at = retired, time.time()
        self.rotation.update((self.active, self.rotated_at))

    def flush(self) -> None:
        items = list(self.buffer.get() or [])
        if not items:
            return
        started = time.monotonic()
        now = datetime.now(UTC)
        bronze_rows = [{**row, "ingested_at": now} for kind, row in items if kind == "bronze"]
        letters = [row for kind, row in items if kind == "dead_letter"]
        # Bronze's committed offsets are the stream's position, so they must move past records
        # that made no bronze row too: duplicates and dead letters. Dead letters commit first:
        # if the bronze commit then fails, the records are read again and found committed there.
        progress: dict[str, dict[int, int]] = {}
        positions = [item for kind, item in items if kind == "seen"]
        positions += [(row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]) for row in letters]
        for topic, partition, offset in positions:
            parts = progress.setdefault(topic, {})
            parts[partition] = max(parts.get(partition, -1), offset)
        dead = append_exactly_once(self.dead_letters, letters) if letters else 0
        appended = append_exactly_once(self.bronze, bronze_rows, progress=progress or None)
        if bronze_rows:
            self.generations[self.active].put_all([(row["event_id"], True) for row in bronze_rows])
        self.buffer.clear()
        self.marks.update(self.watermarks.max_event_ms)
        log.info(
            "committed %d bronze rows (%d buffered, %d duplicates), %d dead letters in %.2fs",
            appended,
            len(bronze_rows),
            len(items) - len(bronze_rows) - len(letters),
            dead,
            time.monotonic() - started,
        )


def source_sql(settings: Settings, domain: Domain, start_offsets: dict[int, int]) -> str:
    if start_offsets:
        specific = ";".join(f"partition:{p},offset:{o + 1}" for p, o in sorted(start_offsets.items()))
        startup = f"'scan.startup.mode' = 'specific-offsets', 'scan.startup.specific-offsets' = '{specific}'"
    else:
        startup = "'scan.startup.mode' = 'earliest-offset'"
    return f"""
        CREATE TEMPORARY TABLE kafka_source (
            `value` BYTES,
            `topic` STRING METADATA VIRTUAL,
            `partition` INT METADATA VIRTUAL,
            `offset` BIGINT METADATA VIRTUAL,
            `kafka_ts` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
        ) WITH (
            'connector' = 'kafka',
            'topic' = '{domain.topic.name}',
            'properties.bootstrap.servers' = '{settings.kafka.bootstrap_servers}',
            'properties.group.id' = 'lakehouse-bronze-{domain.name}',
            'properties.session.timeout.ms' = '6000',
            {startup},
            'format' = 'raw'
        )"""


def build(settings: Settings, domain: Domain, flush_interval_s: float, dedup_ttl_s: int):
    """The job graph. Submitted to the session cluster by the keeper with `flink run`, which
    also passes the savepoint or checkpoint to resume from (`--fromSavepoint`); the connector
    and Iceberg jars are on the cluster's classpath."""
    checkpoints = checkpoint_dir(settings, domain.name)
    config = Configuration()
    config.set_string("state.backend.type", "rocksdb")
    config.set_string("execution.checkpointing.interval", f"{int(settings.flink.checkpoint_interval_s * 1000)}ms")
    config.set_string("execution.checkpointing.dir", f"file://{checkpoints}")
    config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    config.set_string("execution.checkpointing.num-retained", "3")
    config.set_string("restart-strategy.type", "exponential-delay")
    config.set_string("table.local-time-zone", "UTC")
    config.set_string("python.fn-execution.bundle.time", "1000")
    config.set_string("python.map-state.write-cache-size", "100000")
    config.set_string("python.state.cache-size", "100000")
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env)

    # Where to start without restored state; with it, the Kafka source's state wins.
    bronze = load_catalog(settings).load_table(domain.tables.bronze)
    start_offsets = committed_offsets(bronze).get(domain.topic.name, {})
    t_env.execute_sql(source_sql(settings, domain, start_offsets))
    records = t_env.to_data_stream(
        t_env.sql_query(
            "SELECT `topic`, `partition`, `offset`, "
            "CAST(TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 3), kafka_ts) AS BIGINT) * 1000 "
            "+ MOD(EXTRACT(MILLISECOND FROM kafka_ts), 1000) "
            "AS kafka_ts_ms, `value` FROM kafka_source"
        )
    )
    ingested = records.key_by(lambda _row: 0, key_type=Types.INT()).process(
        IngestFunction(domain.name, str(settings.definitions_dir), flush_interval_s, dedup_ttl_s),
        output_type=Types.STRING(),
    )
    sink = (
        KafkaSink.builder()
        .set_bootstrap_servers(settings.kafka.bootstrap_servers)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(domain.topic.dead_letter)
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
        .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
        .build()
    )
    ingested.get_side_output(DEAD_LETTERS).sink_to(sink)
    return env, start_offsets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", default=None, help="domain name (default: the default domain)")
    parser.add_argument("--flush-interval", type=float, default=2.0, help="seconds between Iceberg commits")
    parser.add_argument("--dedup-ttl", type=int, default=7 * 86400, help="seconds an event_id is remembered")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    settings = load_settings()
    domain = get_domain(settings.definitions_dir, args.domain)
    env, offsets = build(settings, domain, args.flush_interval, args.dedup_ttl)
    where = f"bronze offsets {offsets}" if offsets else "the earliest offsets"
    log.info("submitting bronze ingestion of %s (without restored state: from %s)", domain.topic.name, where)
    client = env.execute_async(f"bronze-ingest-{domain.name}")
    log.info("submitted job %s", client.get_job_id())
    return 0


if __name__ == "__main__":
    sys.exit(main())
