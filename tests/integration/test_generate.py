"""Topics from the domain configuration, and `lakehouse generate` against the real broker."""

import json
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from lakehouse.domains import get_domain
from lakehouse.events.contracts import Contract, check_record
from lakehouse.events.send import read_event_ids
from lakehouse.services import kafka
from tests.helpers import run_cli


def test_topics_are_created_from_configuration_idempotently(stack):
    first = run_cli("topics", "create")
    assert first.returncode == 0, first.stderr
    second = run_cli("topics", "create")
    assert second.returncode == 0, second.stderr
    states = dict(line.split() for line in second.stdout.splitlines())
    assert states == {
        "sales.events": "exists",
        "sales.events.dlq": "exists",
        "conversions.events": "exists",
        "conversions.events.dlq": "exists",
    }
    topics = kafka.admin(stack).list_topics(timeout=10).topics
    assert len(topics["sales.events"].partitions) == 3
    assert len(topics["conversions.events"].partitions) == 2


def read_all(settings, topic: str, first_offsets: dict[str, int], count: int, timeout_s: float = 90) -> list:
    """The records from the given offsets on: what one send wrote, and nothing another test
    wrote to the topic before it."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"verify-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.assign([TopicPartition(topic, int(p), offset) for p, offset in first_offsets.items()])
    messages = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            messages.append(message)
    extra = consumer.poll(2)  # nothing beyond what the manifest says was sent
    consumer.close()
    assert extra is None or extra.error() is not None
    return messages


def test_generate_sends_exactly_what_the_manifest_says(stack, tmp_path):
    manifest_path = tmp_path / "conversions.json"
    result = run_cli(
        "generate",
        "--domain",
        "conversions",
        "--events",
        "3000",
        "--days",
        "2",
        "--seed",
        "9",
        "--manifest",
        str(manifest_path),
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads(manifest_path.read_text())
    assert manifest["sent"] == manifest["delivered"] == 3000
    assert manifest["expected_unique_valid"] + manifest["duplicates"] + manifest["malformed"] == 3000
    assert manifest["duplicates"] > 0 and manifest["malformed"] > 0 and manifest["kinds"]["late"] > 0

    messages = read_all(stack, "conversions.events", manifest["first_offsets"], 3000)
    assert len(messages) == 3000
    last = {}
    for message in messages:
        last[str(message.partition())] = max(last.get(str(message.partition()), -1), message.offset())
    assert last == {p: o for p, o in manifest["last_offsets"].items()}

    domain = get_domain(stack.definitions_dir, "conversions")
    validator = Contract(domain.contract)
    verdicts = [check_record(domain, validator, m.value()) for m in messages]
    valid_ids = [v.event["event_id"] for v in verdicts if v.valid]
    assert len(valid_ids) - len(set(valid_ids)) == manifest["duplicates"]
    assert sorted(set(valid_ids)) == sorted(read_event_ids(manifest_path))
    assert sum(not v.valid for v in verdicts) == manifest["malformed"]


def test_generate_rejects_an_unknown_domain(stack):
    result = run_cli("generate", "--domain", "nope", "--events", "1")
    assert result.returncode == 1
    assert "unknown domain 'nope'; known domains: conversions, sales" in result.stderr
