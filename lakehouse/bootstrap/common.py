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
    base = os.environ.get("LAKEHOUSE_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "lakehouse"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
