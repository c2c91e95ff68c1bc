"""Where a domain's stream keeps its Flink checkpoints and savepoints, and which to resume from."""

from __future__ import annotations

from pathlib import Path

from lakehouse.settings import Settings


def checkpoint_dir(settings: Settings, domain: str) -> Path:
    path = settings.state_dir / "flink" / domain / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def savepoint_dir(settings: Settings, domain: str) -> Path:
    path = settings.state_dir / "flink" / domain / "savepoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


UNUSABLE = "UNUSABLE"  # a marker file the keeper leaves in a restore point Flink could not restore


def restore_points(settings: Settings, domain: str) -> list[Path]:
    """The domain's complete savepoints and retained checkpoints (folders with their _metadata
    written), newest first, leaving out those marked unusable: what a new submission tries to
    resume from, in order (a savepoint from `stream stop`, or the last checkpoints of a job the
    cluster lost)."""
    found = [meta.parent for meta in savepoint_dir(settings, domain).glob("savepoint-*/_metadata")]
    found += [meta.parent for meta in checkpoint_dir(settings, domain).glob("*/chk-*/_metadata")]
    usable = [path for path in found if not (path / UNUSABLE).exists()]
    return sorted(usable, key=lambda path: ((path / "_metadata").stat().st_mtime, path.name), reverse=True)


def latest_restore_point(settings: Settings, domain: str) -> Path | None:
    points = restore_points(settings, domain)
    return points[0] if points else None


def mark_unusable(point: Path, why: str) -> None:
    """Keep the point for inspection but never try it again."""
    (point / UNUSABLE).write_text(why + "\n")
