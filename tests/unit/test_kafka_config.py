"""The embedded broker's first-start formatting (pure: no broker runs here)."""

import uuid

from lakehouse.services import kafka


def test_cluster_id_never_starts_with_a_dash(monkeypatch):
    # 0xF8 encodes to "-" as the first URL-safe base64 character: kafka-storage would parse such an
    # id as an option ("--cluster-id: expected one argument"), which once failed a whole CI run.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" + bytes(15))])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka.new_cluster_id()
    assert cluster_id == "AQAAAAAAAAAAAAAAAAAAAA"
    assert len(cluster_id) == 22


def test_cluster_ids_are_fresh():
    assert len({kafka.new_cluster_id() for _ in range(200)}) == 200
    assert not any(kafka.new_cluster_id().startswith("-") for _ in range(2000))
