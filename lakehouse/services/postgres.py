"""PostgreSQL access: the Iceberg JDBC catalog (and, later, Airflow's metadata) live here."""

from __future__ import annotations

import psycopg2
from psycopg2 import sql

from lakehouse.errors import ServiceError
from lakehouse.settings import Settings


def connect(settings: Settings, database: str = "postgres"):
    pg = settings.postgres
    try:
        return psycopg2.connect(
            host=pg.host,
            port=pg.port,
            user=pg.user,
            password=settings.secret("postgres", "password"),
            dbname=database,
            connect_timeout=3,
        )
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = (
            "the password in .env differs from the one the cluster was created with: restore it or `make reset`"
            if "password authentication failed" in reason
            else "is the stack up (`make up`), and are LAKEHOUSE_POSTGRES__HOST / __PORT right?"
        )
        raise ServiceError(f"PostgreSQL at {pg.host}:{pg.port} refused the connection ({reason}): {hint}") from exc


def check(settings: Settings) -> None:
    connect(settings).close()


def ensure_database(settings: Settings, name: str) -> bool:
    """Create database `name` if missing; True when it was created."""
    conn = connect(settings)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()
