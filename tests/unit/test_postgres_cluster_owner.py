"""A PostgreSQL cluster kept outside the state folder (the `postgres` user cannot reach it)
belongs to the state folder that made it, never to a later one at the same path."""

from __future__ import annotations

from types import SimpleNamespace

from lakehouse.services.embedded import claim_outside_cluster


def _cluster(tmp_path, owner_id: str | None):
    data = tmp_path / "var" / "abc" / "postgres"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    if owner_id is not None:
        (data.parent / "state.id").write_text(owner_id)
    return data


def test_a_cluster_left_by_an_earlier_state_folder_at_the_same_path_is_not_reused(tmp_path):
    data = _cluster(tmp_path, "earlier-session")
    settings = SimpleNamespace(state_dir=tmp_path / "state")  # new: it has no id yet
    claim_outside_cluster(settings, data)
    assert not (data / "PG_VERSION").exists()  # removed: initdb makes a cluster with this password
    assert (data.parent / "state.id").read_text() == (settings.state_dir / "postgres.id").read_text()


def test_the_state_folders_own_cluster_is_kept(tmp_path):
    settings = SimpleNamespace(state_dir=tmp_path / "state")
    fresh = tmp_path / "var" / "abc" / "postgres"
    claim_outside_cluster(settings, fresh)  # first start: both carry one new id
    fresh.mkdir()
    (fresh / "PG_VERSION").write_text("15\n")
    claim_outside_cluster(settings, fresh)  # every later start
    assert (fresh / "PG_VERSION").exists()


def test_a_cluster_from_before_ids_is_adopted(tmp_path):
    data = _cluster(tmp_path, None)
    settings = SimpleNamespace(state_dir=tmp_path / "state")
    settings.state_dir.mkdir()
    claim_outside_cluster(settings, data)
    assert (data / "PG_VERSION").exists()
    assert (data.parent / "state.id").read_text() == (settings.state_dir / "postgres.id").read_text()
