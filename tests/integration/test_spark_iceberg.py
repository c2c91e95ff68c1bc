"""Spark and PyIceberg share one Iceberg catalog on S3: each sees exactly what the other wrote."""

import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from lakehouse.services import postgres, s3

pytestmark = pytest.mark.slow


@pytest.fixture
def table_name(spark):
    name = f"silver.spark_{uuid.uuid4().hex[:8]}"
    yield name
    spark.sql(f"DROP TABLE IF EXISTS {name} PURGE")


def test_spark_merge_then_pyiceberg_reads_then_pyiceberg_appends(spark, iceberg_catalog, stack, table_name):
    spark.sql(
        f"CREATE TABLE {table_name} (id BIGINT, name STRING, amount_cents BIGINT, updated_at TIMESTAMP) "
        "USING iceberg PARTITIONED BY (days(updated_at)) TBLPROPERTIES ('format-version'='2')"
    )
    spark.sql(
        f"INSERT INTO {table_name} VALUES "
        "(1, 'alpha', 100, TIMESTAMP '2026-11-01 10:00:00'), "
        "(2, 'beta', 200, TIMESTAMP '2026-11-01 11:00:00'), "
        "(3, 'gamma', 300, TIMESTAMP '2026-11-02 09:00:00')"
    )
    spark.sql(
        f"""
        MERGE INTO {table_name} t
        USING (SELECT * FROM VALUES
                 (2, 'beta', 250, TIMESTAMP '2026-11-03 08:00:00'),
                 (3, 'gamma', 0, TIMESTAMP '2026-11-03 08:00:00'),
                 (4, 'delta', 400, TIMESTAMP '2026-11-03 09:00:00')
               AS s(id, name, amount_cents, updated_at)) s
        ON t.id = s.id
        WHEN MATCHED AND s.amount_cents = 0 THEN DELETE
        WHEN MATCHED THEN UPDATE SET *
        WHEN NOT MATCHED THEN INSERT *
        """
    )
    expected = {1: ("alpha", 100), 2: ("beta", 250), 4: ("delta", 400)}

    table = iceberg_catalog.load_table(table_name)
    assert table.location().startswith(f"s3://{stack.s3.warehouse_bucket}/")
    rows = table.scan().to_arrow().to_pylist()
    assert {r["id"]: (r["name"], r["amount_cents"]) for r in rows} == expected
    assert table.current_snapshot().summary.operation.value in ("overwrite", "replace", "delete", "append")

    # the data files really are on the S3 server
    prefix = table.location().removeprefix(f"s3://{stack.s3.warehouse_bucket}/") + "/data/"
    objects = list(s3.client(stack).list_objects(stack.s3.warehouse_bucket, prefix=prefix, recursive=True))
    assert any(o.object_name.endswith(".parquet") for o in objects)

    appended = pa.table(
        {
            "id": pa.array([5], pa.int64()),
            "name": ["epsilon"],
            "amount_cents": pa.array([500], pa.int64()),
            "updated_at": pa.array([datetime(2026, 11, 4, 12, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        }
    )
    table.append(appended)
    seen = spark.sql(f"SELECT id, name, amount_cents FROM {table_name} ORDER BY id").collect()
    assert [(r.id, r.name, r.amount_cents) for r in seen] == [
        (1, "alpha", 100),
        (2, "beta", 250),
        (4, "delta", 400),
        (5, "epsilon", 500),
    ]
    # and Spark can MERGE on top of the PyIceberg commit
    spark.sql(f"MERGE INTO {table_name} t USING (SELECT 5 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE")
    assert sorted(r["id"] for r in iceberg_catalog.load_table(table_name).scan().to_arrow().to_pylist()) == [1, 2, 4]


def test_spark_sees_catalog_tables_created_by_definitions(spark):
    columns = [
        r.col_name
        for r in spark.sql("DESCRIBE TABLE bronze.sales_events").collect()
        if r.col_name and not r.col_name.startswith("#")
    ]
    assert columns[:4] == ["event_id", "event_type", "event_time", "payload"]
    props = {r.key: r.value for r in spark.sql("SHOW TBLPROPERTIES bronze.sales_events").collect()}
    assert props["format-version"] == "2"
    assert props["write.parquet.compression-codec"] == "zstd"


def spark_catalog_connections(stack) -> int:
    conn = postgres.connect(stack)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lakehouse-spark'")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def test_caching_and_writing_open_no_catalog_connections(spark, stack, table_name):
    """A long-lived session (this suite, a notebook) caches and writes without end: Spark once
    cached each DataFrame, and re-cached it after each write, in a clone of the session with a
    catalog of its own whose connection was never closed (PostgreSQL ran out of them)."""
    spark.sql(f"CREATE TABLE {table_name} (id BIGINT, day DATE) USING iceberg PARTITIONED BY (day)")
    spark.sql(f"INSERT INTO {table_name} VALUES (0, DATE '2026-11-01')")
    before = spark_catalog_connections(stack)
    assert before >= 1  # the session's own catalog, named so in pg_stat_activity
    for n in range(1, 6):
        cached = spark.table(table_name).cache()
        assert cached.count() == n
        spark.sql(f"INSERT INTO {table_name} VALUES ({n}, DATE '2026-11-0{n}')")  # re-caches `cached`
        cached.unpersist()
    assert spark_catalog_connections(stack) == before
