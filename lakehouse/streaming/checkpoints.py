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


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest completed checkpoint (a chk-N folder with its _metadata written) of any job run."""
    completed = [meta.parent for meta in folder.glob("*/chk-*/_metadata")]
    if not completed:
        return None
    return max(completed, key=lambda chk: (chk.stat().st_mtime, int(chk.name.split("-")[1])))


def latest_restore_point(settings: Settings, domain: str) -> Path | None:
    """The newest complete savepoint or retained checkpoint of the domain's job: what a new
    submission resumes from (a savepoint from `stream stop`, or the last checkpoint of a job
    the cluster lost)."""
    candidates = [meta.parent for meta in savepoint_dir(settings, domain).glob("savepoint-*/_metadata")]
    checkpoint = latest_checkpoint(checkpoint_dir(settings, domain))
    if checkpoint:
        candidates.append(checkpoint)
    if not candidates:
        return None
    return max(candidates, key=lambda path: (path / "_metadata").stat().st_mtime)


def consumer_group(domain: str) -> str:
    """The Kafka consumer group of the domain's stream job (offsets committed on checkpoint)."""
    return f"lakehouse-bronze-{domain}"


def dlq_transaction_prefix(domain: str) -> str:
    """The transactional id prefix of the job's dead-letter topic writer."""
    return f"lakehouse-dlq-{domain}"
