"""The embedded broker is Apache Kafka: transactions are isolated, end offsets are exact, and the
domain topics carry the configuration the lakehouse declares."""

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic

from lakehouse.domains import get_domain
from lakehouse.events.read import end_offsets
from lakehouse.events.topics import ensure_topics, topic_config
from lakehouse.services import kafka


def new_topic(settings, partitions=1) -> str:
    name = f"broker-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin(settings)
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    return name


def read_all(settings, topic, isolation: str, expected_at_least: int = 0) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"read-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values, done = [], False
    while not done:
        message = consumer.poll(10)
        assert message is not None, "no end of partition within 10 s"
        if message.error():
            done = message.error().code() == KafkaError._PARTITION_EOF and len(values) >= expected_at_least
        else:
            values.append(message.value())
    consumer.close()
    return values


def test_aborted_transaction_is_invisible_to_read_committed(stack):
    topic = new_topic(stack)
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers, "transactional.id": f"tx-{topic}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"aborted-{i}".encode())
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=f"committed-{i}".encode())
    producer.commit_transaction(30)

    assert read_all(stack, topic, "read_committed", 3) == [f"committed-{i}".encode() for i in range(3)]
    # the aborted records are in the log: a read_uncommitted consumer sees them
    uncommitted = read_all(stack, topic, "read_uncommitted", 8)
    assert [v for v in uncommitted if v.startswith(b"aborted")] == [f"aborted-{i}".encode() for i in range(5)]


def test_end_offset_equals_the_delivered_offsets_right_after_a_send(stack):
    topic = new_topic(stack, partitions=3)
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers, "enable.idempotence": True})
    delivered: dict[int, int] = {}

    def on_delivery(error, message):
        assert error is None, error
        delivered[message.partition()] = max(delivered.get(message.partition(), -1), message.offset())

    for i in range(3000):
        producer.produce(topic, key=f"k{i % 11}", value=b"x", on_delivery=on_delivery)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": stack.kafka.bootstrap_servers, "group.id": "watermarks"})
    highs = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)}
    consumer.close()
    assert highs == {p: o + 1 for p, o in delivered.items()}
    assert end_offsets(stack, topic) == delivered


def test_domain_topics_have_their_declared_configuration(stack):
    sales = get_domain(stack.definitions_dir, "sales")
    ensure_topics(stack, [sales])
    admin = kafka.admin(stack)
    resources = [ConfigResource("topic", sales.topic.name), ConfigResource("topic", sales.topic.dead_letter)]
    configs = {r.name: future.result(30) for r, future in admin.describe_configs(resources).items()}
    main, dead = configs[sales.topic.name], configs[sales.topic.dead_letter]
    limit = stack.kafka.max_message_bytes
    assert int(main["max.message.bytes"].value) == limit > sales.max_message_bytes
    assert int(dead["max.message.bytes"].value) == 2 * limit
    assert int(main["retention.ms"].value) == stack.kafka.retention_hours * 3_600_000
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[sales.topic.name].partitions) == sales.topic.partitions

    # over the domain's limit but within the topic's: accepted (the stream dead-letters it);
    # over the topic's limit: refused by the broker, with a specific error. On a topic of its
    # own with the same configuration: the domain's topic belongs to the stream tests.
    topic = f"limits-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=topic_config(stack))])[
        topic
    ].result(30)
    producer = Producer(
        {"bootstrap.servers": stack.kafka.bootstrap_servers, "message.max.bytes": 4 * limit, "acks": "all"}
    )
    results = {}

    def report(name):
        return lambda error, _message: results.__setitem__(name, error)

    producer.produce(topic, value=b"x" * (sales.max_message_bytes + 1), on_delivery=report("domain"))
    producer.produce(topic, value=b"y" * (limit + 1024), on_delivery=report("topic"))
    producer.flush(30)
    assert results["domain"] is None
    assert results["topic"] is not None and results["topic"].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_a_missing_topic_is_named(stack):
    with pytest.raises(Exception, match="does not exist on the broker"):
        end_offsets(stack, f"missing-{uuid.uuid4().hex[:6]}")


def test_producing_to_a_topic_nobody_declared_fails(stack):
    """Topics come only from the domain configuration: the broker does not create them on use."""
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap_servers, "message.timeout.ms": 5000})
    errors = []
    producer.produce(f"undeclared-{uuid.uuid4().hex[:6]}", value=b"x", on_delivery=lambda e, _m: errors.append(e))
    producer.flush(15)
    assert errors and errors[0] is not None
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._MSG_TIMED_OUT)
