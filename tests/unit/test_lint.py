"""The code follows the project's ruff rules (pyproject.toml), so style problems fail CI too."""

import subprocess
import sys

from lakehouse.settings import PROJECT_ROOT


def test_ruff_check_and_format():
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run(
        [*ruff, "check", "lakehouse", "tests", "flink_jobs", "spark_jobs", "benchmarks", "dags"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [*ruff, "format", "--check", "lakehouse", "tests", "flink_jobs", "spark_jobs", "benchmarks", "dags"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout
