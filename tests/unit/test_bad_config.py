"""Bad configuration fails fast, before any service starts, with a message naming what is wrong
and how to fix it (the cases that need a running stack are in tests/integration/test_bad_config.py)."""

import os
import shutil
import socket

from lakehouse.services.isolated import isolated_environment
from lakehouse.services.supervisor import Supervisor
from lakehouse.settings import PROJECT_ROOT
from tests.helpers import run_cli


def clean_environment(tmp_path) -> dict[str, str]:
    """A user's environment for a stack that is not running, in a state folder of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env.update(isolated_environment(tmp_path / "state"))
    return env


def test_missing_credential(tmp_path):
    env = clean_environment(tmp_path)
    del env["LAKEHOUSE_S3__SECRET_KEY"]
    result = run_cli("up", env=env, timeout=60)
    assert result.returncode == 1
    assert "error: missing credential s3.secret_key" in result.stderr
    assert "LAKEHOUSE_S3__SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state/supervisor").exists()  # nothing was started


def test_port_already_taken(tmp_path):
    env = clean_environment(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env["LAKEHOUSE_KAFKA__PORT"] = str(port)
        result = run_cli("up", env=env, timeout=60)
    assert result.returncode == 1
    assert f"port already in use: 127.0.0.1:{port} (Kafka)" in result.stderr
    assert "LAKEHOUSE_KAFKA__PORT" in result.stderr
    assert not Supervisor(tmp_path / "state").running()


def test_unknown_table_property(tmp_path):
    folder = tmp_path / "catalog"
    shutil.copytree(PROJECT_ROOT / "catalog", folder)
    path = folder / "tables/gold/daily_sales_by_city.yaml"
    path.write_text(path.read_text().replace("write.format.default: parquet", "write.fromat.default: parquet"))
    env = clean_environment(tmp_path)
    env["LAKEHOUSE_CATALOG__DEFINITIONS_DIR"] = str(folder)
    result = run_cli("catalog", "init", env=env, timeout=60)
    assert result.returncode == 1
    assert f"{path}: unknown table property 'write.fromat.default'" in result.stderr


def test_invalid_setting_value(tmp_path):
    env = clean_environment(tmp_path)
    env["LAKEHOUSE_POSTGRES__PORT"] = "five-four-three-two"
    result = run_cli("status", env=env, timeout=60)
    assert result.returncode == 1
    assert "postgres.port" in result.stderr and "LAKEHOUSE_POSTGRES__PORT" in result.stderr
