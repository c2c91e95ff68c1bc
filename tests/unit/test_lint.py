"""The code follows the project's ruff rules (pyproject.toml), so style problems fail CI too."""

import shutil
import subprocess
import sys
from pathlib import Path

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


def lint_imports(root) -> subprocess.CompletedProcess:
    """import-linter with the contracts of `root`'s pyproject.toml, on `root`'s lakehouse package."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def test_imports_go_downward_only_and_without_cycles():
    result = lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    shutil.copytree(PROJECT_ROOT / "lakehouse", tmp_path / "lakehouse", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "lakehouse/domains.py").open("a") as module:
        module.write("\n\ndef _planted():\n    from lakehouse.events import contracts  # noqa: F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "lakehouse.domains is not allowed to import lakehouse.events" in result.stdout
    assert "lakehouse.domains -> lakehouse.events.contracts" in result.stdout


def test_a_unit_test_that_uses_the_stack_stops_the_collection(tmp_path):
    """tests/conftest.py marks tests by folder and refuses a unit test reaching the stack."""
    (tmp_path / "tests/unit").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "tests/conftest.py", tmp_path / "tests/conftest.py")
    (tmp_path / "tests/unit/test_planted.py").write_text("def test_planted(iceberg_catalog):\n    pass\n")
    (tmp_path / "tests/unit/test_fine.py").write_text("def test_fine(tmp_path):\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "unit tests need no services; move these to tests/integration:" in result.stderr
    assert "tests/unit/test_planted.py::test_planted uses iceberg_catalog, settings, stack, stack_env" in result.stderr
    assert "test_fine" not in result.stderr
