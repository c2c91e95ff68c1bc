"""Create each domain's topic and dead-letter topic from the configuration (idempotent)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from lakehouse.domains import Domain
from lakehouse.errors import ServiceError
from lakehouse.settings import Settings


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, "socket.timeout.ms": 5000})


def topic_config(settings: Settings, dead_letter: bool = False) -> dict[str, str]:
    """Explicit configuration of every topic the lakehouse creates (nothing left to broker defaults).

    A record up to kafka.max_message_bytes reaches the stream, which dead-letters one above the
    domain's max_message_bytes as `oversized`; a larger one is refused by the broker when it is
    produced (the producer's delivery report says MSG_SIZE_TOO_LARGE). A dead letter carries the
    raw record plus its reason and coordinates, so its topic takes twice that.
    """
    size = settings.kafka.max_message_bytes * (2 if dead_letter else 1)
    return {
        "max.message.bytes": str(size),
        "retention.ms": str(settings.kafka.retention_hours * 3600 * 1000),
        "cleanup.policy": "delete",
        "message.timestamp.type": "CreateTime",  # event producers' time: what replays select by
        "min.insync.replicas": "1",
    }


def ensure_topics(settings: Settings, domains: list[Domain]) -> dict[str, str]:
    """Returns {topic: 'created' | 'exists' | 'updated'}: an existing topic gets the declared
    configuration where it differs; one with fewer partitions than declared is an error."""
    client = admin(settings)
    existing = client.list_topics(timeout=10).topics
    wanted = {}
    for domain in domains:
        wanted[domain.topic.name] = (domain.topic.partitions, topic_config(settings))
        wanted[domain.topic.dead_letter] = (1, topic_config(settings, dead_letter=True))
    result = {}
    for name, (partitions, _config) in wanted.items():
        if name in existing:
            have = len(existing[name].partitions)
            if have < partitions:
                raise ServiceError(f"topic {name} has {have} partitions, the domain configuration wants {partitions}")
            result[name] = "updated" if _align_config(client, name, _config) else "exists"
    to_create = [
        NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)
        for name, (partitions, config) in wanted.items()
        if name not in result
    ]
    if to_create:
        for name, future in client.create_topics(to_create).items():
            try:
                future.result(30)
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ServiceError(f"could not create topic {name}: {exc.args[0].str()}") from exc
                result[name] = "exists"
    return result


def _align_config(admin, topic: str, wanted: dict[str, str]) -> bool:
    """Set the declared values an existing topic lacks; returns whether anything changed."""
    resource = ConfigResource("topic", topic)
    current = admin.describe_configs([resource])[resource].result(30)
    changes = [
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        for key, value in wanted.items()
        if key not in current or current[key].value != value
    ]
    if not changes:
        return False
    admin.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=changes)])[resource].result(30)
    return True
