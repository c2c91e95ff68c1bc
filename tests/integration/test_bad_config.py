"""Bad configuration against a running stack fails fast, with a message naming what is wrong
(the cases that need no service are in tests/unit/test_bad_config.py)."""

import os

from lakehouse.services.ports import free_port
from tests.helpers import run_cli


def test_unreachable_s3_endpoint(stack):
    env = dict(os.environ)
    dead = free_port()
    env["LAKEHOUSE_S3__PORT"] = str(dead)
    result = run_cli("catalog", "init", env=env, timeout=60)
    assert result.returncode == 1
    assert f"S3 endpoint http://127.0.0.1:{dead} is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_s3_credentials(stack):
    env = dict(os.environ)
    env["LAKEHOUSE_S3__SECRET_KEY"] = "wrong"
    result = run_cli("catalog", "init", env=env, timeout=60)
    assert result.returncode == 1
    assert "refused the credentials" in result.stderr
