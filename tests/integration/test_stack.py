"""The embedded stack: health, status, and a down/up cycle that keeps S3 objects, Kafka records,
a consumer group's committed offsets, and the catalog's tables."""

import io
import time
import uuid

import pyarrow as pa
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from lakehouse.services import kafka, s3
from lakehouse.services import stack as embedded_stack
from lakehouse.services.ports import port_in_use
from lakehouse.services.supervisor import Supervisor


def consume(settings, group: str, topic: str, count: int, timeout_s: float = 60):
    """Read `count` records (or what arrives within the timeout)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    return consumer, _poll(consumer, count, timeout_s)


def _poll(consumer, count, timeout_s):
    records = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            records.append(message)
    return records


def test_services_are_healthy(stack):
    base = {"seaweedfs", "postgres", "kafka", "flink-jobmanager", "flink-taskmanager"}
    report = [item for item in embedded_stack.status(stack) if item.name in base]
    assert {item.name for item in report} == base
    assert all(item.ok for item in report), report
    assert all(item.pid for item in report)


def test_up_when_already_up_is_a_noop(stack):
    pids = {item.name: item.pid for item in embedded_stack.status(stack)}
    embedded_stack.up(stack, log=lambda _line: None, apps=False)
    assert {item.name: item.pid for item in embedded_stack.status(stack)} == pids


def test_restart_keeps_objects_records_offsets_and_tables(stack, iceberg_catalog, spark):
    settings = stack
    # S3 object
    key = f"durability/{uuid.uuid4()}.txt"
    body = b"kept across restarts"
    s3.client(settings).put_object(settings.s3.warehouse_bucket, key, io.BytesIO(body), len(body))

    # Kafka: 3 partitions, 300 keyed records; a group consumes and commits 150 of them
    topic = f"durability-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin(settings)  # must outlive the future it returns
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "enable.idempotence": True})
    sent = {f"value-{i}" for i in range(300)}
    for i in range(300):
        producer.produce(topic, key=f"key-{i % 17}", value=f"value-{i}")
    assert producer.flush(30) == 0
    consumer, first = consume(settings, "durability-group", topic, 150)
    assert len(first) == 150
    # commit exactly the records read: per partition, the offset after the last one read
    last = {}
    for message in first:
        last[message.partition()] = max(last.get(message.partition(), -1), message.offset())
    committed = [TopicPartition(topic, p, o + 1) for p, o in last.items()]
    consumer.commit(offsets=committed, asynchronous=False)
    consumer.close()

    # Iceberg table with data
    table_name = f"bronze.durability_{uuid.uuid4().hex[:8]}"
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "v": ["a", "b", "c"]})
    iceberg_catalog.create_table(table_name, schema=data.schema).append(data)
    assert spark.table(f"{settings.catalog.name}.{table_name}").count() == 3  # the pool holds a connection

    embedded_stack.down(settings)
    assert not Supervisor(settings.state_dir).running()
    assert not port_in_use(settings.s3.host, settings.s3.port)
    assert not port_in_use(settings.kafka.host, settings.kafka.port)
    assert not port_in_use(settings.postgres.host, settings.postgres.port)
    assert not port_in_use(settings.flink.host, settings.flink.rest_port)
    embedded_stack.up(settings, log=lambda _line: None, apps=False)

    assert s3.client(settings).get_object(settings.s3.warehouse_bucket, key).read() == body

    check = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "durability-group"})
    after = check.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    check.close()
    assert {tp.partition: tp.offset for tp in after if tp.offset >= 0} == {tp.partition: tp.offset for tp in committed}

    consumer, everything = consume(settings, f"fresh-{uuid.uuid4().hex[:6]}", topic, 300)
    consumer.close()
    assert sorted(m.value().decode() for m in everything) == sorted(sent)

    consumer, rest = consume(settings, "durability-group", topic, 150)
    consumer.close()
    first_values = {m.value().decode() for m in first}
    rest_values = {m.value().decode() for m in rest[:150]}
    assert len(rest) == 150
    assert first_values | rest_values == sent and not first_values & rest_values

    from lakehouse.engines.iceberg import load_catalog

    reloaded = load_catalog(settings).load_table(table_name).scan().to_arrow()
    assert sorted(reloaded["id"].to_pylist()) == [1, 2, 3]
    assert load_catalog(settings).load_table("bronze.sales_events").schema().find_field("event_id")
    # the session's pooled catalog connection died with PostgreSQL: Spark reconnects, not fails
    assert spark.table(f"{settings.catalog.name}.{table_name}").count() == 3
