"""Kafka-protocol broker checks (Tansu here, Apache Kafka in Docker mode)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from lakehouse.errors import ServiceError
from lakehouse.settings import Settings


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers, "socket.timeout.ms": 5000})


def check(settings: Settings, timeout_s: float = 5) -> None:
    try:
        admin(settings).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ServiceError(
            f"Kafka broker {settings.kafka.bootstrap_servers} is unreachable ({exc.args[0]}): is the stack up (`make up`)?"
        ) from exc
