"""The Flink virtualenv (PyFlink 2.0, PyIceberg 0.8.1) reads the same settings and catalog."""

import json
import os
import subprocess
import uuid

import pyarrow as pa
import pytest

from lakehouse.settings import PROJECT_ROOT

pytestmark = pytest.mark.services

FLINK_PYTHON = PROJECT_ROOT / ".venv-flink/bin/python"

APPEND_FROM_FLINK_ENV = """
import json, sys
import pyarrow as pa, pyflink, pyiceberg
from lakehouse.settings import load_settings
from lakehouse.engines.iceberg import load_catalog
table = load_catalog(load_settings()).load_table(sys.argv[1])
before = table.scan().to_arrow().num_rows
table.append(pa.table({"id": pa.array([10, 11], pa.int64()), "v": ["from", "flink-env"]}),
             snapshot_properties={"kafka.offsets": "0:11"})
print(json.dumps({"pyiceberg": pyiceberg.__version__, "pyarrow": pa.__version__, "before": before}))
"""


def test_flink_env_appends_to_a_table_of_the_shared_catalog(stack, iceberg_catalog):
    name = f"bronze.flinkenv_{uuid.uuid4().hex[:8]}"
    data = pa.table({"id": pa.array([1], pa.int64()), "v": ["main-env"]})
    iceberg_catalog.create_table(name, schema=data.schema).append(data)

    result = subprocess.run(
        [str(FLINK_PYTHON), "-c", APPEND_FROM_FLINK_ENV, name],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"pyiceberg": "0.8.1", "pyarrow": "16.1.0", "before": 1}

    table = iceberg_catalog.load_table(name)
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == [1, 10, 11]
    assert table.current_snapshot().summary["kafka.offsets"] == "0:11"
