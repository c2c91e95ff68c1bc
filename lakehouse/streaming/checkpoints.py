"""Where the stream's Flink checkpoints live, and which one to resume from."""

from __future__ import annotations

from pathlib import Path

from lakehouse.settings import Settings


def checkpoint_dir(settings: Settings, domain: str) -> Path:
    path = settings.state_dir / "flink" / domain / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest completed checkpoint (a chk-N folder with its _metadata written) of any job run."""
    completed = [meta.parent for meta in folder.glob("*/chk-*/_metadata")]
    if not completed:
        return None
    return max(completed, key=lambda chk: (chk.stat().st_mtime, int(chk.name.split("-")[1])))
