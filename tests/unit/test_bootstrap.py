"""`make setup`'s artifact step: checksums are enforced, the cache is reused, damage is repaired."""

import hashlib
import subprocess
import sys
import zipfile

import pytest

from lakehouse.bootstrap import artifacts, dotenv
from lakehouse.bootstrap.common import SetupError
from lakehouse.settings import PROJECT_ROOT

TOOL = b"#!/bin/sh\necho tool ok\n"
TOOL_SHA = hashlib.sha256(TOOL).hexdigest()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root whose lock names one binary inside a wheel already in the cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LAKEHOUSE_CACHE_DIR", str(cache))
    wheel_dir = cache / "wheels" / "toolpkg-1.0"
    wheel_dir.mkdir(parents=True)
    with zipfile.ZipFile(wheel_dir / "toolpkg-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("toolpkg/bin/tool", TOOL)
    root = tmp_path / "root"
    (root / "locks").mkdir(parents=True)

    def write_lock(sha=TOOL_SHA, member="toolpkg/bin/tool"):
        (root / "locks/artifacts.toml").write_text(
            f'[[artifact]]\nname = "tool"\ndest = "bin"\npackage = "toolpkg"\nversion = "1.0"\n'
            f'member = "{member}"\nsha256 = "{sha}"\nlicense = "MIT"\n'
        )

    write_lock()
    return root, write_lock


def test_places_verified_artifact_and_repairs_damage(project):
    root, _ = project
    artifacts.ensure(root)
    tool = root / ".artifacts/bin/tool"
    assert subprocess.run([str(tool)], capture_output=True, text=True).stdout == "tool ok\n"
    tool.unlink()
    tool.write_bytes(b"#!/bin/sh\necho tampered\n")
    artifacts.ensure(root)
    assert tool.read_bytes() == TOOL


def test_checksum_mismatch_is_refused(project):
    root, write_lock = project
    write_lock(sha="0" * 64)
    with pytest.raises(SetupError, match=r"tool from toolpkg==1.0 has sha256 [0-9a-f]{64}, expected 0{64}"):
        artifacts.ensure(root)
    assert not (root / ".artifacts/bin/tool").exists()


def test_missing_member_is_named(project):
    root, write_lock = project
    write_lock(member="toolpkg/bin/other")
    with pytest.raises(SetupError, match=r"has no member toolpkg/bin/other"):
        artifacts.ensure(root)


def test_dotenv_gets_random_values_and_is_never_overwritten(tmp_path):
    (tmp_path / ".env.example").write_text((PROJECT_ROOT / ".env.example").read_text())
    dotenv.ensure(tmp_path)
    first = (tmp_path / ".env").read_text()
    assert dotenv.SECRET_MARKER not in first
    assert "LAKEHOUSE_S3__SECRET_KEY=" in first
    values = [line.split("=", 1)[1] for line in first.splitlines() if line.startswith("LAKEHOUSE_")]
    assert len(set(values)) == len(values) == 6
    dotenv.ensure(tmp_path)
    assert (tmp_path / ".env").read_text() == first


def test_dotenv_from_an_older_checkout_gets_only_the_new_variables(tmp_path):
    (tmp_path / ".env.example").write_text((PROJECT_ROOT / ".env.example").read_text())
    (tmp_path / ".env").write_text("LAKEHOUSE_S3__SECRET_KEY=kept\nLAKEHOUSE_POSTGRES__PASSWORD=kept-too")
    dotenv.ensure(tmp_path)
    values = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    assert values["LAKEHOUSE_S3__SECRET_KEY"] == "kept" and values["LAKEHOUSE_POSTGRES__PASSWORD"] == "kept-too"
    assert set(values) == {
        "LAKEHOUSE_S3__ACCESS_KEY",
        "LAKEHOUSE_S3__SECRET_KEY",
        "LAKEHOUSE_POSTGRES__PASSWORD",
        "LAKEHOUSE_AIRFLOW__ADMIN_PASSWORD",
        "LAKEHOUSE_AIRFLOW__JWT_SECRET",
        "LAKEHOUSE_JUPYTER__TOKEN",
    }
    assert dotenv.SECRET_MARKER not in values["LAKEHOUSE_AIRFLOW__JWT_SECRET"]


def test_project_lock_lists_provenance_for_every_artifact():
    lock = artifacts.load_lock(PROJECT_ROOT)
    for entry in lock["artifact"]:
        assert {"package", "version", "member", "sha256", "license", "upstream"} <= set(entry), entry["name"]
    for entry in lock["debian"]:
        assert {"package", "path", "license"} <= set(entry)


def test_second_setup_run_changes_nothing():
    """`make setup` on a set-up clone only verifies: no install, download or rewrite."""
    subprocess.run([sys.executable, "-m", "lakehouse.bootstrap"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    before = {p: p.stat().st_mtime_ns for p in (PROJECT_ROOT / ".artifacts").rglob("*") if p.is_file()}
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse.bootstrap"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[setup] done" in result.stdout
    for word in ("installing", "downloading", "fetching", "creating", "wrote"):
        assert word not in result.stdout
    after = {p: p.stat().st_mtime_ns for p in (PROJECT_ROOT / ".artifacts").rglob("*") if p.is_file()}
    assert after == before
