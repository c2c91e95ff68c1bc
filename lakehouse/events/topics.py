"""Create each domain's topic and dead-letter topic from the configuration (idempotent)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from lakehouse.domains import Domain
from lakehouse.errors import ServiceError
from lakehouse.services import kafka
from lakehouse.settings import Settings


def ensure_topics(settings: Settings, domains: list[Domain]) -> dict[str, str]:
    """Returns {topic: 'created' | 'exists'}; an existing topic with fewer partitions is an error."""
    admin = kafka.admin(settings)
    existing = admin.list_topics(timeout=10).topics
    wanted = {}
    for domain in domains:
        wanted[domain.topic.name] = domain.topic.partitions
        wanted[domain.topic.dead_letter] = 1
    result = {}
    for name, partitions in wanted.items():
        if name in existing:
            have = len(existing[name].partitions)
            if have < partitions:
                raise ServiceError(f"topic {name} has {have} partitions, the domain configuration wants {partitions}")
            result[name] = "exists"
    to_create = [NewTopic(n, num_partitions=p, replication_factor=1) for n, p in wanted.items() if n not in result]
    if to_create:
        for name, future in admin.create_topics(to_create).items():
            try:
                future.result(30)
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ServiceError(f"could not create topic {name}: {exc.args[0].str()}") from exc
                result[name] = "exists"
    return result
