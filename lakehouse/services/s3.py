"""S3 client access and checks (the embedded SeaweedFS here, MinIO in Docker mode)."""

from __future__ import annotations

import urllib3
from minio import Minio
from minio.error import S3Error

from lakehouse.errors import ServiceError
from lakehouse.settings import Settings


def client(settings: Settings) -> Minio:
    # Fail within seconds instead of minio's default minutes of retries on a dead endpoint.
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=30), retries=urllib3.Retry(total=1))
    return Minio(
        f"{settings.s3.host}:{settings.s3.port}",
        access_key=settings.secret("s3", "access_key"),
        secret_key=settings.secret("s3", "secret_key"),
        secure=False,
        region=settings.s3.region,
        http_client=http,
    )


def check(settings: Settings) -> None:
    """Raise ServiceError unless the endpoint answers and accepts the credentials."""
    try:
        client(settings).list_buckets()
    except S3Error as exc:
        raise ServiceError(
            f"S3 endpoint {settings.s3.endpoint} refused the credentials ({exc.code}): check "
            "LAKEHOUSE_S3__ACCESS_KEY / LAKEHOUSE_S3__SECRET_KEY"
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ServiceError(
            f"S3 endpoint {settings.s3.endpoint} is unreachable ({type(exc).__name__}): is the stack up "
            "(`make up`), and are LAKEHOUSE_S3__HOST / LAKEHOUSE_S3__PORT right?"
        ) from exc


def ensure_buckets(settings: Settings) -> list[str]:
    """Create the project's buckets if missing; return the ones created."""
    s3 = client(settings)
    created = []
    for bucket in (settings.s3.warehouse_bucket,):
        if not s3.bucket_exists(bucket):
            s3.make_bucket(bucket)
            created.append(bucket)
    return created
