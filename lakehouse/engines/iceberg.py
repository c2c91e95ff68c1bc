"""The PyIceberg side of the shared Iceberg JDBC catalog.

Spark's JDBC catalog and PyIceberg's SqlCatalog read and write the same tables in the same
PostgreSQL database, under the same catalog name.
"""

from __future__ import annotations

from urllib.parse import quote

from lakehouse.settings import Settings


def catalog_properties(settings: Settings) -> dict[str, str]:
    pg = settings.postgres
    password = quote(settings.secret("postgres", "password"), safe="")
    return {
        "type": "sql",
        # application_name: pg_stat_activity shows which engine holds each catalog connection
        "uri": (
            f"postgresql+psycopg2://{quote(pg.user, safe='')}:{password}@{pg.host}:{pg.port}/{pg.catalog_database}"
            "?application_name=lakehouse-pyiceberg"
        ),
        "warehouse": settings.s3.warehouse,
        "s3.endpoint": settings.s3.endpoint,
        "s3.access-key-id": settings.secret("s3", "access_key"),
        "s3.secret-access-key": settings.secret("s3", "secret_key"),
        "s3.region": settings.s3.region,
        "s3.path-style-access": "true",
        # long-lived catalogs (the stream, notebooks) must survive a restart of the catalog database
        "pool_pre_ping": "true",
    }


def jvm_catalog_properties(settings: Settings, engine: str) -> dict[str, str]:
    """The shared catalog as Iceberg's Java catalog properties, for Spark (prefixed) and Flink alike;
    `engine` names its connections in pg_stat_activity (`lakehouse-<engine>`)."""
    pg = settings.postgres
    return {
        "type": "jdbc",
        "uri": f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.catalog_database}",
        "jdbc.ApplicationName": f"lakehouse-{engine}",
        "jdbc.user": pg.user,
        "jdbc.password": settings.secret("postgres", "password"),
        # V1 adds the iceberg_type column PyIceberg's SqlCatalog also uses.
        "jdbc.schema-version": "V1",
        # A pooled connection outlives a restart of the catalog database (PostgreSQL ends it with
        # 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now): Iceberg's pool
        # reconnects and retries on these, as it does on the 08xxx connection states.
        "retryable_status_codes": "57P01,57P02,57P03",
        "warehouse": settings.s3.warehouse,
        "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "s3.endpoint": settings.s3.endpoint,
        "s3.path-style-access": "true",
        "s3.access-key-id": settings.secret("s3", "access_key"),
        "s3.secret-access-key": settings.secret("s3", "secret_key"),
        "client.region": settings.s3.region,
        # Several engines commit to the same tables: never serve a stale cached snapshot.
        "cache-enabled": "false",
    }


def load_catalog(settings: Settings):
    """The shared catalog as a PyIceberg `Catalog` (a SqlCatalog on the project's PostgreSQL)."""
    from pyiceberg.catalog import load_catalog as pyiceberg_load_catalog

    return pyiceberg_load_catalog(settings.catalog.name, **catalog_properties(settings))
