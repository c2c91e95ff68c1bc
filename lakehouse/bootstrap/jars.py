"""JVM artifacts from Maven Central: declared in jvm/pom.xml, locked in locks/jars.toml.

Each group (a profile of the pom: spark, flink, flink-s3, kafka) is resolved by Maven into its
local repository (~/.m2, outside the clone, so every clone on the machine shares the
downloads); every file is checked against the sha256 in the lock and hard-linked (or copied)
into .artifacts/jars/<group>/, which then holds exactly the locked files. A file in Maven's
repository whose checksum does not match is deleted and fetched again, once.

    python3 -m lakehouse.bootstrap.jars relock   # after changing jvm/pom.xml: rewrite the lock
    python3 -m lakehouse.bootstrap.jars ensure spark flink   # only these groups (the Docker images)
    python3 -m lakehouse.bootstrap.jars functions   # build jvm/functions (the project's Flink functions)

Standard library only: it runs before the virtualenvs exist.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from lakehouse.bootstrap.common import PROJECT_ROOT, SetupError, place, say, sha256_of, verified

POM = "jvm/pom.xml"
LOCK = "locks/jars.toml"
JARS_DIR = ".artifacts/jars"
GROUPS = ("spark", "flink", "flink-s3", "kafka")
FUNCTIONS = "jvm/functions"  # the project's own Flink functions (a Maven module), built here
FUNCTIONS_JAR = "lakehouse-flink-functions.jar"
MAVEN_FIX = "check that `mvn` reaches Maven Central (make setup installs Debian's maven), then run `make setup` again"


def maven_repo() -> Path:
    """Maven's local repository: the user's own unless LAKEHOUSE_MAVEN_REPO names another."""
    custom = os.environ.get("LAKEHOUSE_MAVEN_REPO")
    return Path(custom) if custom else Path.home() / ".m2" / "repository"


def load_lock(root: Path) -> dict[str, list[dict]]:
    with open(root / LOCK, "rb") as handle:
        return tomllib.load(handle)["group"]


def group_dir(root: Path, group: str) -> Path:
    return root / JARS_DIR / group


def group_jars(root: Path, group: str) -> list[Path]:
    """The locked jars of one group, as placed by `make setup` (what engines put on classpaths)."""
    entries = load_lock(root).get(group)
    if entries is None:
        raise SetupError(f"{LOCK} has no group {group!r}")
    return [group_dir(root, group) / entry["file"] for entry in entries]


def repo_path(coordinates: str, extension: str = "jar") -> Path:
    """groupId:artifactId:version[:classifier] -> its jar (or pom) in the local repository."""
    group_id, artifact_id, version, *classifier = coordinates.split(":")
    name = "-".join([artifact_id, version, *classifier])
    return maven_repo() / Path(*group_id.split(".")) / artifact_id / version / f"{name}.{extension}"


def run_maven(pom: Path, arguments: list[str], doing: str) -> None:
    """`mvn -f pom arguments`, quiet unless it fails (then the error names what it was doing)."""
    if shutil.which("mvn") is None:
        raise SetupError("mvn not found: apt-get install maven (make setup installs it as root)")
    repo = ["-Dmaven.repo.local=" + str(maven_repo())] if os.environ.get("LAKEHOUSE_MAVEN_REPO") else []
    command = ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(pom), *repo, *arguments]
    # Maven's own output is noise next to the setup's progress lines.
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SetupError(f"{doing}: `{' '.join(command)}` exited with {result.returncode}:\n{tail}\n{MAVEN_FIX}")


def mvn(root: Path, group: str, goal: str, *options: str) -> None:
    """A goal of Maven's dependency plugin over the group's runtime closure."""
    run_maven(root / POM, ["-P", group, goal, "-DincludeScope=runtime", *options], f"resolving the {group} jars")


def ensure_group(root: Path, group: str, entries: list[dict]) -> None:
    folder = group_dir(root, group)
    missing = [e for e in entries if not verified(folder / e["file"], e["sha256"])]
    unresolved = [e for e in missing if not verified(repo_path(e["coordinates"]), e["sha256"])]
    for attempt in (1, 2):
        if not unresolved:
            break
        size = "" if attempt == 2 else f" ({len(unresolved)} of {len(entries)} files)"
        say(f"[setup] fetching the {group} jars from Maven Central{size}")
        mvn(root, group, "dependency:resolve")
        bad = [e for e in unresolved if not verified(repo_path(e["coordinates"]), e["sha256"])]
        for entry in bad:
            path = repo_path(entry["coordinates"])
            if attempt == 1 and path.exists():
                say(f"[setup] {path} does not match its sha256 in {LOCK}: deleted, fetching it again")
                path.unlink()
        unresolved = bad
    if unresolved:
        entry = unresolved[0]
        path = repo_path(entry["coordinates"])
        actual = sha256_of(path) if path.is_file() else "missing"
        raise SetupError(
            f"{entry['coordinates']} ({path}) has sha256 {actual}, expected {entry['sha256']} ({LOCK}). "
            f"If jvm/pom.xml changed on purpose, run `python3 -m lakehouse.bootstrap.jars relock`."
        )
    for entry in missing:
        place(repo_path(entry["coordinates"]), folder / entry["file"])
    # Exactly the locked files: a jar left from an older lock would still be on the classpath.
    wanted = {e["file"] for e in entries}
    for stray in folder.glob("*"):
        if stray.name not in wanted:
            stray.unlink()


def functions_jar(root: Path) -> Path:
    """The jar of jvm/functions (the contract check the bronze job runs), as `make setup` builds it."""
    return root / JARS_DIR / "functions" / FUNCTIONS_JAR


def build_functions(root: Path) -> None:
    """Build jvm/functions with Maven when its sources or locks/flink.txt changed since the last build (a stamp)."""
    flink_lock = (root / "locks/flink.txt").read_text()
    sources = hashlib.sha256(flink_lock.encode())
    for path in sorted(p for p in (root / FUNCTIONS).rglob("*") if p.is_file() and "target" not in p.parts):
        sources.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    jar, digest = functions_jar(root), sources.hexdigest()
    stamp = jar.with_suffix(".sources.sha256")
    if jar.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return
    say(f"[setup] building {FUNCTIONS} (the Flink contract check) with Maven")
    # compiled against the Flink that runs it: PyFlink's version, from its lock
    flink = re.search(r"^apache-flink==([^\s;]+)", flink_lock, re.MULTILINE)
    if flink is None:
        raise SetupError("locks/flink.txt pins no apache-flink")
    run_maven(root / FUNCTIONS / "pom.xml", [f"-Dflink.version={flink.group(1)}", "package"], f"building {FUNCTIONS}")
    place(root / FUNCTIONS / "target" / FUNCTIONS_JAR, jar)
    stamp.write_text(digest + "\n")


def ensure(root: Path, groups: tuple[str, ...] = GROUPS) -> None:
    """Every group (`make setup`), or only `groups` (the Docker images: each takes its own)."""
    lock = load_lock(root)
    unknown = (set(lock) | set(groups)) - set(GROUPS)
    if unknown:
        raise SetupError(f"{LOCK} or the caller names unknown groups {sorted(unknown)}; known: {list(GROUPS)}")
    for group in groups:
        ensure_group(root, group, lock.get(group, []))


# ---- relock: rewrite locks/jars.toml from what the pom resolves to ----


def resolved_coordinates(root: Path, group: str) -> list[str]:
    """The group's runtime closure as groupId:artifactId:version[:classifier]."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
        mvn(root, group, "dependency:list", f"-DoutputFile={out.name}", "-DappendOutput=false")
        lines = Path(out.name).read_text().splitlines()
    result = []
    for line in lines:
        match = re.match(r"^\s*([\w.\-]+):([\w.\-]+):jar:(?:([\w.\-]+):)?([\w.\-]+):(compile|runtime)", line)
        if match:
            group_id, artifact_id, classifier, version, _scope = match.groups()
            # Maven prints group:artifact:type[:classifier]:version:scope
            result.append(":".join([group_id, artifact_id, version] + ([classifier] if classifier else [])))
    return sorted(result)


def licence_of(coordinates: str) -> str:
    """The licence named in the artifact's pom, or in the nearest parent pom that names one."""
    group_id, artifact_id, version = coordinates.split(":")[:3]
    for _ in range(6):
        pom = repo_path(f"{group_id}:{artifact_id}:{version}", "pom")
        if not pom.is_file():
            break
        root = ET.parse(pom).getroot()  # {*}: with or without Maven's namespace
        name = root.find("{*}licenses/{*}license/{*}name")
        if name is not None and name.text:
            return " ".join(name.text.split())
        parent = root.find("{*}parent")
        if parent is None:
            break
        group_id, artifact_id, version = (parent.findtext("{*}" + k) for k in ("groupId", "artifactId", "version"))
    return "unknown"


def relock(root: Path) -> None:
    lines = [
        "# JVM artifacts, resolved from Maven Central by `make setup` (jvm/pom.xml, one profile per",
        "# group) and checked against these sha256s. Rewritten by `python3 -m lakehouse.bootstrap.jars relock`.",
        "",
    ]
    for group in GROUPS:
        coordinates = resolved_coordinates(root, group)
        mvn(root, group, "dependency:resolve")
        say(f"[relock] {group}: {len(coordinates)} files")
        for coordinate in coordinates:
            path = repo_path(coordinate)
            lines += [
                f"[[group.{group}]]",
                f'file = "{path.name}"',
                f'coordinates = "{coordinate}"',
                f'sha256 = "{sha256_of(path)}"',
                f'license = "{licence_of(coordinate)}"',
                "",
            ]
    (root / LOCK).write_text("\n".join(lines))
    say(f"[relock] wrote {root / LOCK}")


def main(argv: list[str], root: Path) -> int:
    if argv == ["relock"]:
        relock(root)
        return 0
    if argv != ["functions"] and argv[:1] != ["ensure"]:
        say("usage: python3 -m lakehouse.bootstrap.jars relock | ensure [GROUP ...] | functions")
        return 2
    try:
        if argv == ["functions"]:
            build_functions(root)
            say(f"[jars] functions: {functions_jar(root)}")
            return 0
        ensure(root, tuple(argv[1:]) or GROUPS)
    except SetupError as exc:
        say(f"[jars] FAILED: {exc}")
        return 1
    for group in argv[1:] or GROUPS:
        say(f"[jars] {group}: {len(load_lock(root)[group])} files in {group_dir(root, group)}, checked against {LOCK}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], PROJECT_ROOT))
