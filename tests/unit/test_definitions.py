"""Table definitions: parsing, validation, and their Iceberg schema/partition/sort form."""

import shutil

import pytest
from pyiceberg.types import DecimalType, LongType, StringType, TimestamptzType

from lakehouse.catalog.definitions import load_definitions, load_namespaces, parse_definition
from lakehouse.errors import CatalogError
from lakehouse.settings import PROJECT_ROOT

BASE = {
    "namespace": "silver",
    "name": "t",
    "columns": [
        {"name": "id", "type": "string", "required": True},
        {"name": "ts", "type": "timestamptz"},
        {"name": "n", "type": "long"},
        {"name": "price", "type": "decimal(10, 2)"},
    ],
    "partition_by": [{"column": "ts", "transform": "hour"}, {"column": "id", "transform": "bucket[8]"}],
    "sort_by": [{"column": "ts"}, {"column": "n", "direction": "desc"}],
    "properties": {"write.parquet.compression-codec": "zstd", "write.metadata.delete-after-commit.enabled": True},
}


def test_project_definitions_load():
    definitions = load_definitions(PROJECT_ROOT / "catalog")
    identifiers = {d.identifier for d in definitions}
    namespaces = {n.name for n in load_namespaces(PROJECT_ROOT / "catalog")}
    assert namespaces == {"bronze", "silver", "gold", "ops"}
    # at least one real table per layer, and the run-audit table
    assert {i.split(".")[0] for i in identifiers} == {"bronze", "silver", "gold", "ops"}
    assert "ops.job_runs" in identifiers


def test_schema_partition_and_sort():
    definition = parse_definition(BASE)
    schema = definition.schema()
    assert [f.name for f in schema.fields] == ["id", "ts", "n", "price"]
    assert schema.find_field("id").required and schema.find_field("id").field_type == StringType()
    assert schema.find_field("ts").field_type == TimestamptzType()
    assert schema.find_field("n").field_type == LongType()
    assert schema.find_field("price").field_type == DecimalType(10, 2)
    spec = definition.partition_spec(schema)
    assert [(f.name, str(f.transform)) for f in spec.fields] == [("ts_hour", "hour"), ("id_bucket", "bucket[8]")]
    order = definition.sort_order(schema)
    assert [(f.source_id, f.direction.value) for f in order.fields] == [(2, "asc"), (3, "desc")]
    assert definition.table_properties() == {
        "format-version": "2",
        "write.parquet.compression-codec": "zstd",
        "write.metadata.delete-after-commit.enabled": "true",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"properties": {"write.parquet.compresion-codec": "zstd"}},
            r"unknown table property 'write.parquet.compresion-codec'",
        ),
        ({"properties": {"format-version": "3"}}, r"format-version is fixed at 2"),
        ({"columns": [{"name": "id", "type": "varchar"}]}, r"unknown column type 'varchar'"),
        (
            {"columns": [{"name": "id", "type": "string"}, {"name": "id", "type": "long"}]},
            r"duplicate columns \['id'\]",
        ),
        ({"partition_by": [{"column": "nope", "transform": "day"}]}, r"partition/sort column 'nope'"),
        ({"partition_by": [{"column": "ts", "transform": "fortnight"}]}, r"fortnight"),
        ({"sort_by": [{"column": "ts", "direction": "sideways"}]}, r"asc or desc"),
        ({"colums": []}, r"unknown keys \['colums'\]"),
        ({"columns": [{"name": "id", "typ": "string"}]}, r"unexpected keyword argument 'typ'"),
    ],
)
def test_invalid_definitions_are_refused_with_the_reason(change, message):
    raw = {**BASE, **change}
    if "columns" in change and not any(c.get("name") == "ts" for c in change["columns"]):
        raw = {**raw, "partition_by": [], "sort_by": []}
    with pytest.raises(CatalogError, match=message):
        parse_definition(raw)


def test_custom_properties_live_under_the_project_prefix():
    definition = parse_definition({**BASE, "properties": {"lakehouse.owner": "data-eng"}})
    assert definition.properties == {"lakehouse.owner": "data-eng"}


def test_file_name_must_match_identifier(tmp_path):
    shutil.copytree(PROJECT_ROOT / "catalog", tmp_path / "catalog")
    src = tmp_path / "catalog/tables/gold/daily_sales_by_city.yaml"
    src.rename(src.with_name("renamed.yaml"))
    with pytest.raises(CatalogError, match=r"renamed.yaml: declares gold.daily_sales_by_city"):
        load_definitions(tmp_path / "catalog")


@pytest.mark.parametrize(
    ("maintenance", "message"),
    [
        ({"closed_on": "nowhere"}, r"maintenance.closed_on 'nowhere' is not a column"),
        ({"orphan_age": "2h"}, r"orphan_age must be at least 24h"),
        ({"retain_snapshots": "a week"}, r"invalid duration 'a week'"),
        ({"retain_last": 0}, r"retain_last >= 1"),
        ({"keep": "7d"}, r"maintenance: unknown keys \['keep'\]"),
    ],
)
def test_wrong_maintenance_policy_is_refused_naming_the_key(maintenance, message):
    raw = {
        "namespace": "ops",
        "name": "t",
        "columns": [{"name": "at", "type": "timestamptz"}],
        "maintenance": maintenance,
    }
    with pytest.raises(CatalogError, match=message):
        parse_definition(raw)


def test_shipped_policies_leave_bronze_open_hours_to_the_stream():
    policies = {d.identifier: d.maintenance for d in load_definitions(PROJECT_ROOT / "catalog")}
    assert policies["bronze.sales_events"].closed_on == "ingested_at"
    assert all(p.orphan_age.days >= 1 and p.retain_snapshots.days >= 7 for p in policies.values())
