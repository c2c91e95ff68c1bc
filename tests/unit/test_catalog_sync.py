"""Planning and applying catalog changes, on an in-process SQLite catalog (pure unit tests).

The same behaviour against the real PostgreSQL catalog and S3 is covered in
tests/integration/test_catalog_init.py.
"""

from dataclasses import replace

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.types import LongType

from lakehouse.catalog.definitions import Namespace, parse_definition
from lakehouse.catalog.sync import init_catalog
from lakehouse.errors import CatalogError

NAMESPACES = [Namespace("silver")]


def definition(columns=None, **extra):
    cols = columns or [
        {"name": "id", "type": "string"},
        {"name": "n", "type": "int", "doc": "a number"},
        {"name": "ts", "type": "timestamptz"},
    ]
    return parse_definition({"namespace": "silver", "name": "t", "columns": cols, **extra})


@pytest.fixture
def catalog(tmp_path):
    return SqlCatalog("unit", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/warehouse")


def test_create_then_noop(catalog):
    plans = init_catalog(catalog, NAMESPACES, [definition(partition_by=[{"column": "ts", "transform": "day"}])])
    assert plans[0].changes == ["create table"]
    table = catalog.load_table("silver.t")
    assert table.format_version == 2
    assert [f.name for f in table.spec().fields] == ["ts_day"]
    location = table.metadata_location
    plans = init_catalog(catalog, NAMESPACES, [definition(partition_by=[{"column": "ts", "transform": "day"}])])
    assert plans[0].changes == []
    assert catalog.load_table("silver.t").metadata_location == location


def test_compatible_changes_are_applied_in_one_commit(catalog):
    init_catalog(catalog, NAMESPACES, [definition()])
    before = catalog.load_table("silver.t")
    evolved = definition(
        columns=[
            {"name": "id", "type": "string"},
            {"name": "n", "type": "long", "doc": "a bigger number"},  # int -> long, new doc
            {"name": "ts", "type": "timestamptz"},
            {"name": "city", "type": "string"},  # new column
        ],
        sort_by=[{"column": "ts"}],
        properties={"write.parquet.compression-codec": "zstd"},
    )
    plan = init_catalog(catalog, NAMESPACES, [evolved])[0]
    assert sorted(plan.changes) == sorted(
        ["add column city", "update column n", "set write.parquet.compression-codec=zstd", "replace sort order"]
    )
    after = catalog.load_table("silver.t")
    assert [f.name for f in after.schema().fields] == ["id", "n", "ts", "city"]
    assert after.schema().find_field("n").field_type == LongType()
    assert after.schema().find_field("n").doc == "a bigger number"
    assert after.properties["write.parquet.compression-codec"] == "zstd"
    assert len(after.sort_order().fields) == 1
    assert len(after.metadata.metadata_log) == len(before.metadata.metadata_log) + 1  # one commit
    assert init_catalog(catalog, NAMESPACES, [evolved])[0].changes == []


@pytest.mark.parametrize(
    ("columns", "extra", "reason"),
    [
        (
            [{"name": "id", "type": "string"}, {"name": "ts", "type": "timestamptz"}],
            {},
            r"column 'n' exists in the table but not in the definition",
        ),
        (
            [{"name": "id", "type": "long"}, {"name": "n", "type": "int"}, {"name": "ts", "type": "timestamptz"}],
            {},
            r"'id' would change type string -> long",
        ),
        (
            [
                {"name": "id", "type": "string"},
                {"name": "n", "type": "int", "required": True},
                {"name": "ts", "type": "timestamptz"},
            ],
            {},
            r"'n' would become required",
        ),
        (None, {"partition_by": [{"column": "ts", "transform": "hour"}]}, r"partition spec would change"),
    ],
)
def test_incompatible_change_is_refused_and_nothing_changes(catalog, columns, extra, reason):
    init_catalog(catalog, NAMESPACES, [definition(), replace(definition(), name="u")])
    locations = {name: catalog.load_table(f"silver.{name}").metadata_location for name in ("t", "u")}
    # A compatible change to u next to an incompatible one to t: neither may be applied.
    u_changed = replace(definition(), name="u", properties={"write.format.default": "parquet"})
    with pytest.raises(CatalogError, match=reason):
        init_catalog(catalog, NAMESPACES, [definition(columns=columns, **extra), u_changed])
    assert {name: catalog.load_table(f"silver.{name}").metadata_location for name in ("t", "u")} == locations
