"""What a domain's stream is called wherever it appears: its keeper's supervisord program (and
so its log, `.state/logs/<program>.log`), its Flink job, its Kafka consumer group and its
dead-letter writer's transactional ids."""

from __future__ import annotations


def program_name(domain: str) -> str:
    """The supervisord program of the domain's keeper (lakehouse.services.keeper)."""
    return f"stream-{domain}"


def job_name(domain: str) -> str:
    """The domain's job on the Flink cluster."""
    return f"bronze-ingest-{domain}"


def consumer_group(domain: str) -> str:
    """The Kafka consumer group of the domain's stream job (offsets committed on checkpoint)."""
    return f"lakehouse-bronze-{domain}"


def dlq_transaction_prefix(domain: str) -> str:
    """The transactional id prefix of the job's dead-letter topic writer."""
    return f"lakehouse-dlq-{domain}"
