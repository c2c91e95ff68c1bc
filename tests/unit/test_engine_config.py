"""Spark and PyIceberg are configured from the same settings and point at the same catalog."""

import pytest

from lakehouse.engines.iceberg import catalog_properties
from lakehouse.engines.spark import catalog_conf


@pytest.fixture
def settings(clean_env, monkeypatch):
    from lakehouse.settings import load_settings

    monkeypatch.setenv("LAKEHOUSE_S3__ACCESS_KEY", "ak")
    monkeypatch.setenv("LAKEHOUSE_S3__SECRET_KEY", "sk/with+odd@chars")
    monkeypatch.setenv("LAKEHOUSE_POSTGRES__PASSWORD", "p@ss:word/1")
    monkeypatch.setenv("LAKEHOUSE_POSTGRES__PORT", "5555")
    return load_settings()


def test_both_engines_share_catalog_database_and_warehouse(settings):
    spark = catalog_conf(settings)
    pyiceberg = catalog_properties(settings)
    prefix = f"spark.sql.catalog.{settings.catalog.name}"
    assert spark[f"{prefix}.uri"] == "jdbc:postgresql://127.0.0.1:5555/iceberg_catalog"
    from sqlalchemy.engine import make_url

    url = make_url(pyiceberg["uri"])
    assert (url.host, url.port, url.database) == ("127.0.0.1", 5555, "iceberg_catalog")
    # each engine's connections are named in pg_stat_activity
    assert url.query["application_name"] == "lakehouse-pyiceberg"
    assert spark[f"{prefix}.jdbc.ApplicationName"] == "lakehouse-spark"
    assert spark[f"{prefix}.warehouse"] == pyiceberg["warehouse"] == "s3://lakehouse/warehouse"
    assert spark[f"{prefix}.s3.endpoint"] == pyiceberg["s3.endpoint"] == "http://127.0.0.1:9000"
    assert spark[f"{prefix}.jdbc.schema-version"] == "V1"
    assert pyiceberg["pool_pre_ping"] == "true"


def test_password_with_url_characters_is_escaped(settings):
    from sqlalchemy.engine import make_url

    url = make_url(catalog_properties(settings)["uri"])
    assert url.password == "p@ss:word/1"
    assert url.username == "lakehouse"


def test_the_settings_spark_submit_is_given_hold_no_credential(settings):
    from lakehouse.engines.spark import session_conf, spark_conf

    shared, full = session_conf(settings), spark_conf(settings)
    assert shared.items() <= full.items()  # one home: the session is built from the same settings
    secrets = ("ak", "sk/with+odd@chars", "p@ss:word/1")
    assert set(shared.values()).isdisjoint(secrets)
    assert not [v for v in shared.values() for s in secrets[1:] if s in v]
    assert set(secrets) <= set(full.values())
