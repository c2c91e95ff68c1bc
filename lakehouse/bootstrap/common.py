"""Shared helpers for the setup steps (standard library only)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SetupError(RuntimeError):
    """A setup step failed; the message names what failed and how to fix it."""


def say(message: str) -> None:
    print(message, flush=True)


def cache_dir() -> Path:
    """Per-user cache outside the clone, so fresh clones reuse downloads and extractions."""
    if base := os.environ.get("LAKEHOUSE_CACHE_DIR"):
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lakehouse"


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def assignments(text: str, separator: str = "=") -> dict[str, str]:
    """The `key<separator>value` lines of a file (.env: `=`, a pip lock: `==`), comments left out."""
    lines = (line.strip() for line in text.splitlines())
    return dict(line.split(separator, 1) for line in lines if separator in line and not line.startswith("#"))


def run(cmd: list[str], what: str, fix: str, env: dict[str, str] | None = None) -> None:
    """Run a command, streaming its output; raise SetupError naming the step on failure."""
    try:
        completed = subprocess.run(cmd, env=env, stdout=sys.stdout, stderr=sys.stderr)
    except FileNotFoundError as exc:
        raise SetupError(f"{what}: {exc.filename} not found. {fix}") from exc
    if completed.returncode != 0:
        raise SetupError(f"{what}: `{' '.join(cmd)}` exited with {completed.returncode}. {fix}")


def verified(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_of(path) == sha256


def place(source: Path, target: Path) -> None:
    """Hard-link (or copy, across file systems) a verified file from a cache into the clone."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
