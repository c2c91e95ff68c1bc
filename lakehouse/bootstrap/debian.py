"""Debian packages: Java 17, the PostgreSQL server, Maven (it fetches the jars from Maven Central)."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

from lakehouse.bootstrap.common import SetupError, run, say

# package -> a file that proves it is installed (glob)
REQUIRED = {
    "openjdk-17-jre-headless": "/usr/lib/jvm/java-17-openjdk-*/bin/java",
    "postgresql": "/usr/lib/postgresql/*/bin/postgres",
    "maven": "/usr/share/maven/bin/mvn",
}


def missing_packages() -> list[str]:
    return [pkg for pkg, probe in REQUIRED.items() if not glob.glob(probe)]


def ensure(_root: Path) -> None:
    missing = missing_packages()
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise SetupError(
            f"missing Debian packages: {', '.join(missing)}. "
            f"Install them with: sudo apt-get update && sudo {' '.join(command)}"
        )
    if shutil.which("apt-get") is None:
        raise SetupError(f"missing packages {', '.join(missing)} and no apt-get on this machine")
    say(f"[setup] installing Debian packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    fix = "check network access to the Debian mirrors, then run `make setup` again"
    run(["apt-get", "update", "-qq"], "apt-get update", fix, env=env)
    run(command, "apt-get install", fix, env=env)
    still = missing_packages()
    if still:
        raise SetupError(f"apt-get ran but these are still missing: {', '.join(still)}")
