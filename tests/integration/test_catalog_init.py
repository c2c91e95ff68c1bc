"""`lakehouse catalog init` against the real catalog (PostgreSQL) and S3."""

import shutil
import uuid

import pytest
import yaml

from lakehouse.settings import PROJECT_ROOT
from tests.helpers import run_cli


def metadata_locations(catalog, definitions_dir):
    from lakehouse.catalog.definitions import load_definitions

    return {d.identifier: catalog.load_table(d.identifier).metadata_location for d in load_definitions(definitions_dir)}


def test_init_twice_is_a_noop(stack, iceberg_catalog):
    before = metadata_locations(iceberg_catalog, PROJECT_ROOT / "catalog")
    result = run_cli("catalog", "init")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines and all(line.rstrip().endswith("up to date") for line in lines), result.stdout
    assert metadata_locations(iceberg_catalog, PROJECT_ROOT / "catalog") == before


@pytest.fixture
def scratch_definitions(tmp_path, monkeypatch):
    """A copy of catalog/ with one extra namespace and table of the test's own."""
    folder = tmp_path / "catalog"
    shutil.copytree(PROJECT_ROOT / "catalog", folder)
    namespace = f"evolution_{uuid.uuid4().hex[:6]}"
    spec = yaml.safe_load((folder / "namespaces.yaml").read_text())
    spec["namespaces"].append({"name": namespace, "description": "test"})
    (folder / "namespaces.yaml").write_text(yaml.safe_dump(spec))
    table = {
        "namespace": namespace,
        "name": "orders",
        "columns": [{"name": "order_id", "type": "string"}, {"name": "quantity", "type": "int"}],
        "partition_by": [{"column": "order_id", "transform": "bucket[4]"}],
    }
    (folder / "tables" / namespace).mkdir()
    path = folder / "tables" / namespace / "orders.yaml"
    path.write_text(yaml.safe_dump(table))
    monkeypatch.setenv("LAKEHOUSE_CATALOG__DEFINITIONS_DIR", str(folder))
    return namespace, path, table


def write(path, table):
    path.write_text(yaml.safe_dump(table))


def test_evolution_applied_and_incompatible_change_refused(stack, iceberg_catalog, scratch_definitions):
    namespace, path, table = scratch_definitions
    identifier = f"{namespace}.orders"
    created = run_cli("catalog", "init")
    assert created.returncode == 0, created.stderr
    assert f"{identifier}" in created.stdout and "create table" in created.stdout
    import pyarrow as pa

    iceberg_catalog.load_table(identifier).append(
        pa.table({"order_id": ["o1", "o2"], "quantity": pa.array([1, 2], pa.int32())})
    )

    table["columns"].append({"name": "city", "type": "string", "doc": "added later"})
    table["columns"][1]["type"] = "long"
    write(path, table)
    evolved = run_cli("catalog", "init")
    assert evolved.returncode == 0, evolved.stderr
    assert "add column city" in evolved.stdout and "update column quantity" in evolved.stdout
    loaded = iceberg_catalog.load_table(identifier)
    assert [f.name for f in loaded.schema().fields] == ["order_id", "quantity", "city"]
    assert str(loaded.schema().find_field("quantity").field_type) == "long"
    rows = loaded.scan().to_arrow().sort_by("order_id").to_pylist()
    assert rows == [{"order_id": "o1", "quantity": 1, "city": None}, {"order_id": "o2", "quantity": 2, "city": None}]

    again = run_cli("catalog", "init")
    assert again.returncode == 0 and f"{identifier}" in again.stdout
    assert "did:" not in again.stdout

    location = iceberg_catalog.load_table(identifier).metadata_location
    table["columns"] = [c for c in table["columns"] if c["name"] != "city"]  # dropping a column
    table["columns"][1]["type"] = "int"  # narrowing a type
    write(path, table)
    refused = run_cli("catalog", "init")
    assert refused.returncode == 1
    assert "incompatible change refused, nothing was changed" in refused.stderr
    assert "column 'city' exists in the table but not in the definition" in refused.stderr
    assert "'quantity' would change type long -> int" in refused.stderr
    assert iceberg_catalog.load_table(identifier).metadata_location == location
