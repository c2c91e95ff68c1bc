"""Kafka -> bronze Iceberg for one domain: a Flink SQL job generated from the domain's YAML (PyFlink 2.0).

Submitted to the session cluster by the domain's keeper (`lakehouse stream start`, see
lakehouse/services/keeper.py) as `flink run --python flink_jobs/bronze_ingest.py --domain sales`.
One statement set, all in the JVM:
- a Kafka source over the domain's topic (raw value plus topic, partition, offset and timestamp),
  from the consumer group's offsets (committed on checkpoint), or the earliest without any;
- the contract checked by the project's Java table function with the domain's spec
  (lakehouse.events.contract_jvm): a reason code per rejected record;
- event time from the domain's field, a watermark of the domain's allowed lateness, `is_late`
  from Flink's current watermark;
- deduplication on the domain's dedup key (keep the first, state TTL `flink.dedup_ttl_days`), in
  RocksDB with incremental checkpoints;
- valid rows into the bronze table and rejected ones into the dead-letter table through the
  Iceberg Flink sink (FlinkSink, committing on every completed checkpoint), and rejected ones
  onto the dead-letter topic with Kafka transactions (exactly once).
A restart from a checkpoint or savepoint (the keeper passes `--fromSavepoint`) is exact: Kafka
offsets, dedup state and the Iceberg sink's pending files are all in it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from lakehouse.bootstrap.jars import functions_jar
from lakehouse.domains import Domain, get_domain
from lakehouse.engines.iceberg import jvm_catalog_properties
from lakehouse.events.contract_jvm import register, sql_string, verdict_query, watermark_time_sql
from lakehouse.settings import Settings, load_settings
from lakehouse.streaming.checkpoints import checkpoint_dir
from lakehouse.streaming.names import consumer_group, dlq_transaction_prefix

log = logging.getLogger("bronze_ingest")


def _with(options: dict[str, str]) -> str:
    return ",\n    ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in options.items())


def job_config(settings: Settings, domain: Domain) -> dict[str, str]:
    flink = settings.flink
    return {
        "execution.checkpointing.interval": f"{int(flink.checkpoint_interval_s * 1000)}ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": f"file://{checkpoint_dir(settings, domain.name)}",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.incremental": "true",
        "state.backend.type": "rocksdb",
        # nearly every dedup lookup is of an id never seen: a bloom filter answers "absent"
        # without searching each SST file (RocksDB's get was most of the dedup's native time)
        "state.backend.rocksdb.use-bloom-filter": "true",
        # chained operators pass rows on without a copy each (safe: the SQL operators and the
        # Iceberg writer keep no references to a row after processing it)
        "pipeline.object-reuse": "true",
        "restart-strategy.type": "exponential-delay",
        "parallelism.default": str(min(flink.job_parallelism, domain.topic.partitions)),
        "table.local-time-zone": "UTC",
        "table.exec.state.ttl": f"{int(flink.dedup_ttl_days * 86_400_000)} ms",
        "table.exec.source.idle-timeout": "0 ms",
        "pipeline.name": f"bronze-ingest-{domain.name}",
    }


def source_table(settings: Settings, domain: Domain) -> str:
    lateness = domain.allowed_lateness
    hours, rest = divmod(lateness.seconds, 3600)
    lateness_sql = f"INTERVAL '{lateness.days} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{lateness.microseconds // 1000:03d}' DAY TO SECOND(3)"
    options = {
        "connector": "kafka",
        "topic": domain.topic.name,
        "properties.bootstrap.servers": settings.kafka.bootstrap_servers,
        "properties.group.id": consumer_group(domain.name),
        "properties.isolation.level": "read_committed",
        "properties.max.partition.fetch.bytes": str(settings.kafka.max_message_bytes + 1024),
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "format": "raw",
    }
    # The watermark's time comes from the payload's event time field, read before any check
    # (what has none gets epoch, which never moves the watermark forward).
    return f"""
CREATE TEMPORARY TABLE kafka_source (
    `value` BYTES,
    `topic` STRING METADATA VIRTUAL,
    `partition` INT METADATA VIRTUAL,
    `offset` BIGINT METADATA VIRTUAL,
    `kafka_timestamp` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
    `proc_time` AS PROCTIME(),
    `rowtime` AS {watermark_time_sql("`value`", domain.event_time_field)},
    WATERMARK FOR `rowtime` AS `rowtime` - {lateness_sql}
) WITH (
    {_with(options)}
)"""


def dead_letter_topic_table(settings: Settings, domain: Domain) -> str:
    options = {
        "connector": "kafka",
        "topic": domain.topic.dead_letter,
        "properties.bootstrap.servers": settings.kafka.bootstrap_servers,
        "sink.delivery-guarantee": "exactly-once",
        "sink.transactional-id-prefix": dlq_transaction_prefix(domain.name),
        # below the broker's transaction.max.timeout.ms (15 min), above a checkpoint and a restart
        "properties.transaction.timeout.ms": "600000",
        "properties.max.request.size": str(settings.kafka.max_message_bytes),
        "format": "json",
        "json.timestamp-format.standard": "ISO-8601",
    }
    return f"""
CREATE TEMPORARY TABLE dead_letter_topic (
    `domain` STRING, `reason` STRING, `detail` STRING, `payload` STRING,
    `kafka_topic` STRING, `kafka_partition` INT, `kafka_offset` BIGINT,
    `kafka_timestamp` BIGINT, `failed_at` STRING
) WITH (
    {_with(options)}
)"""


def build(settings: Settings, domain: Domain) -> tuple[TableEnvironment, StatementSet]:
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in job_config(settings, domain).items():
        env.get_config().set(key, value)
    catalog = settings.catalog.name
    properties = {**jvm_catalog_properties(settings, "flink"), "type": "iceberg"}
    properties["catalog-impl"] = "org.apache.iceberg.jdbc.JdbcCatalog"
    env.execute_sql(f"CREATE CATALOG {catalog} WITH ({_with(properties)})")
    register(env, functions_jar(settings.project_root))
    env.execute_sql(source_table(settings, domain))
    env.execute_sql(dead_letter_topic_table(settings, domain))
    # A plan without Python: the verdict, then late flags from Flink's watermark, computed once.
    env.create_temporary_view(
        "checked",
        env.sql_query(
            f"SELECT *, COALESCE(event_time < CURRENT_WATERMARK(`rowtime`), FALSE) AS is_late"
            f" FROM ({verdict_query(domain, 'kafka_source')})"
        ),
    )
    env.create_temporary_view(
        "unique_valid",
        env.sql_query(
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS first_seen"
            " FROM checked WHERE reason IS NULL) WHERE first_seen = 1"
        ),
    )
    # the records both dead-letter sinks receive, stated once
    env.create_temporary_view("rejected", env.sql_query("SELECT * FROM checked WHERE reason IS NOT NULL"))
    bronze = f"{catalog}.{domain.tables.bronze}"
    letters = f"{catalog}.{domain.tables.dead_letter}"
    statements = env.create_statement_set()
    statements.add_insert_sql(
        f"""INSERT INTO {bronze}
        SELECT event_id, {sql_string(domain.event_type)}, event_time, payload, `topic`, `partition`, `offset`,
            CAST(kafka_timestamp AS TIMESTAMP_LTZ(6)), is_late, CAST(CURRENT_TIMESTAMP AS TIMESTAMP_LTZ(6))
        FROM unique_valid"""
    )
    statements.add_insert_sql(
        f"""INSERT INTO {letters}
        SELECT {sql_string(domain.name)}, reason, detail, payload, `topic`, `partition`, `offset`,
            CAST(kafka_timestamp AS TIMESTAMP_LTZ(6)), CAST(CURRENT_TIMESTAMP AS TIMESTAMP_LTZ(6))
        FROM rejected"""
    )
    statements.add_insert_sql(
        f"""INSERT INTO dead_letter_topic
        SELECT {sql_string(domain.name)}, reason, detail, payload, `topic`, `partition`, `offset`,
            CAST(TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 3), kafka_timestamp) AS BIGINT) * 1000
                + MOD(EXTRACT(MILLISECOND FROM kafka_timestamp), 1000),
            DATE_FORMAT(CURRENT_TIMESTAMP, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
        FROM rejected"""
    )
    return env, statements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", default=None, help="domain name (default: the default domain)")
    parser.add_argument("--explain", action="store_true", help="print the plan instead of submitting")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    settings = load_settings()
    domain = get_domain(settings.definitions_dir, args.domain)
    env, statements = build(settings, domain)
    if args.explain:
        print(statements.explain())
        return 0
    log.info("submitting bronze ingestion of %s", domain.topic.name)
    result = statements.execute()
    client = result.get_job_client()
    log.info("submitted job %s", client.get_job_id() if client else "?")
    return 0


if __name__ == "__main__":
    sys.exit(main())
