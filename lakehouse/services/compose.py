"""What Docker mode's Compose services run (docker-compose.yml) that the embedded stack does in-process.

    python -m lakehouse.services.compose s3-init        # the buckets (embedded: after SeaweedFS is healthy)
    python -m lakehouse.services.compose catalog-init   # the catalog database, then `catalog init`
    python -m lakehouse.services.compose health NAME    # a service's healthcheck: the embedded stack's own check

Every one reads the same settings as the embedded stack (config/lakehouse.yaml, .env, the
environment); Compose only overrides the host names (LAKEHOUSE_S3__HOST=s3, ...).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial

from lakehouse.errors import LakehouseError
from lakehouse.settings import Settings, load_settings


# The checks import what they run only when they run: each image has only its own program's dependencies.
def _flink(settings: Settings, taskmanager: bool) -> None:
    from lakehouse.services import flink

    (flink.check_taskmanager if taskmanager else flink.check_jobmanager)(settings)


def _airflow(settings: Settings, component: str) -> None:
    from lakehouse.services.airflow import check

    check(settings, component)


def _jupyter(settings: Settings) -> None:
    from lakehouse.services.embedded import _jupyter_health

    _jupyter_health(settings)


def _spark(settings: Settings, workers: int) -> None:
    from lakehouse.services.embedded import spark_health

    spark_health(settings, workers=workers)


def _kafka(settings: Settings) -> None:
    from lakehouse.services import kafka

    kafka.check(settings)


# Compose service -> the embedded stack's health check of the same program. The third-party images
# (SeaweedFS, PostgreSQL, Kafka) check themselves with their own tools; these are for our images.
CHECKS: dict[str, Callable[[Settings], None]] = {
    "flink-jobmanager": partial(_flink, taskmanager=False),
    "flink-taskmanager": partial(_flink, taskmanager=True),
    "airflow-apiserver": partial(_airflow, component="api-server"),
    "airflow-scheduler": partial(_airflow, component="scheduler"),
    "airflow-dag-processor": partial(_airflow, component="dag-processor"),
    "airflow-triggerer": partial(_airflow, component="triggerer"),
    "jupyterlab": _jupyter,
    "spark-master": partial(_spark, workers=0),
    "spark-worker": partial(_spark, workers=1),
    "generator": _kafka,  # it only needs the broker
}


def wait(what: str, check: Callable[[Settings], None], settings: Settings, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check(settings)
            return
        except LakehouseError:
            if time.monotonic() > deadline:
                raise
            print(f"waiting for {what}", flush=True)
            time.sleep(2)


def s3_init(settings: Settings) -> None:
    from lakehouse.services import s3

    wait("S3", s3.check, settings)
    created = s3.ensure_buckets(settings)
    print(f"buckets created: {', '.join(created)}" if created else "buckets exist already")


def catalog_init(settings: Settings) -> None:
    from lakehouse.services import postgres
    from lakehouse.services.catalog import init_from_settings

    wait("PostgreSQL", postgres.check, settings)
    if postgres.ensure_database(settings, settings.postgres.catalog_database):
        print(f"created database {settings.postgres.catalog_database}")
    init_from_settings(settings, log=print)


def main(argv: list[str]) -> int:
    tasks = {"s3-init": s3_init, "catalog-init": catalog_init}
    if len(argv) == 1 and argv[0] in tasks:
        settings = load_settings()
        try:
            tasks[argv[0]](settings)
        except LakehouseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if len(argv) == 2 and argv[0] == "health" and argv[1] in CHECKS:
        try:
            CHECKS[argv[1]](load_settings())
        except LakehouseError as exc:
            print(f"{argv[1]} unhealthy: {exc}")
            return 1
        return 0
    print(f"usage: python -m lakehouse.services.compose {{{'|'.join(tasks)}}} | health {{{'|'.join(CHECKS)}}}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
