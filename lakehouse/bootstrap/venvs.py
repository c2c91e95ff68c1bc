"""The two virtualenvs, installed exactly from the committed lock files.

Two are needed because apache-flink pins pyarrow<17 while pyiceberg 0.12 needs pyarrow>=18
(see PLATFORM notes). uv installs from the locks; its cache lives outside the clone, so a
fresh clone on a machine that has installed once takes seconds.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lakehouse.bootstrap.common import SetupError, run, say

PYTHON_VERSION = (3, 11)
STAMP = ".lakehouse-installed"
VENVS = ((".venv", "locks/main.txt"), (".venv-flink", "locks/flink.txt"))  # (folder, lock)


def find_python() -> str:
    wanted = f"python{PYTHON_VERSION[0]}.{PYTHON_VERSION[1]}"
    found = shutil.which(wanted) or (sys.executable if sys.version_info[:2] == PYTHON_VERSION else None)
    if found:
        return found
    raise SetupError(
        f"{wanted} not found on PATH. Install Python {wanted[6:]} (Debian: apt-get install python3.11-venv)"
    )


def fingerprint(root: Path, lock: str) -> str:
    digest = hashlib.sha256()
    for name in (lock, "pyproject.toml"):
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def uv_version(root: Path) -> str:
    match = re.search(r"^uv==(\S+)$", (root / "locks/main.txt").read_text(), re.MULTILINE)
    if not match:
        raise SetupError("locks/main.txt must pin uv (it installs the environments)")
    return match.group(1)


def ensure(root: Path) -> None:
    main_uv = root / ".venv/bin/uv"
    for folder, lock in VENVS:
        path = root / folder
        stamp = path / STAMP
        wanted = fingerprint(root, lock)
        if stamp.exists() and stamp.read_text().strip() == wanted:
            continue
        python = path / "bin/python"
        if not python.exists():
            say(f"[setup] creating {folder}")
            run(
                [find_python(), "-m", "venv", str(path)],
                f"creating {folder}",
                "check that python3.11 -m venv works",
            )
        if not main_uv.exists():
            run(
                [str(root / ".venv/bin/python"), "-m", "pip", "install", "-q", f"uv=={uv_version(root)}"],
                "installing uv",
                "check access to PyPI",
            )
        say(f"[setup] installing {lock} into {folder}")
        fix = f"check access to PyPI; to start over delete {folder} and run `make setup`"
        uv = [str(main_uv), "pip"]
        run([*uv, "sync", "--python", str(python), str(root / lock)], f"installing {lock}", fix)
        run(
            [*uv, "install", "--python", str(python), "--no-deps", "-e", str(root)],
            "installing the lakehouse package",
            fix,
        )
        check = subprocess.run(
            [str(python), "-c", "import lakehouse.settings"], cwd="/", capture_output=True, text=True
        )
        if check.returncode != 0:
            raise SetupError(f"{folder} was installed but cannot import lakehouse: {check.stderr.strip()}")
        stamp.write_text(wanted + "\n")
