"""The Apache Kafka broker: the embedded one's configuration and storage, and the health check."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from confluent_kafka import KafkaException

from lakehouse.errors import ServiceError
from lakehouse.events.topics import admin
from lakehouse.settings import Settings


def check(settings: Settings, timeout_s: float = 5) -> None:
    try:
        metadata = admin(settings).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ServiceError(
            f"Kafka broker {settings.kafka.bootstrap_servers} is unreachable ({exc.args[0]}): is the stack up (`make up`)?"
        ) from exc
    if not metadata.brokers:
        raise ServiceError(f"Kafka at {settings.kafka.bootstrap_servers} answers but lists no broker yet")


def data_dir(settings: Settings) -> Path:
    return settings.state_dir / "kafka" / "data"


def server_properties(settings: Settings) -> str:
    """KRaft combined mode (broker and controller in one process), one node, on loopback."""
    kafka = settings.kafka
    host = kafka.host
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{kafka.controller_port}",
        "listeners": f"PLAINTEXT://{host}:{kafka.port},CONTROLLER://{host}:{kafka.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{kafka.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir(settings)),
        # One node: internal topics cannot have more replicas than that.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Topics exist only as the domain configuration declares them (`lakehouse topics create`).
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(kafka.max_message_bytes),
        "log.retention.hours": str(kafka.retention_hours),
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as kafka-storage random-uuid).

    Like Kafka's own ``Uuid.randomUuid``, an id starting with ``-`` is drawn again: command-line parsers
    (kafka-storage's among them) would read it as an option, so about one first start in 64 failed.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
