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
        "uri": f"postgresql+psycopg2://{quote(pg.user, safe='')}:{password}@{pg.host}:{pg.port}/{pg.catalog_database}",
        "warehouse": settings.s3.warehouse,
        "s3.endpoint": settings.s3.endpoint,
        "s3.access-key-id": settings.secret("s3", "access_key"),
        "s3.secret-access-key": settings.secret("s3", "secret_key"),
        "s3.region": settings.s3.region,
        "s3.path-style-access": "true",
        # long-lived catalogs (the stream, notebooks) must survive a restart of the catalog database
        "pool_pre_ping": "true",
    }


def load_catalog(settings: Settings):
    """The shared catalog as a PyIceberg `Catalog` (a SqlCatalog on the project's PostgreSQL)."""
    from pyiceberg.catalog import load_catalog as pyiceberg_load_catalog

    return pyiceberg_load_catalog(settings.catalog.name, **catalog_properties(settings))
