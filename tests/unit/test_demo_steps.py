"""The demo's steps and its state file, with the services stubbed: each step is recorded when
done, a run after a failure continues from the first step not recorded, and no load is sent
twice. (tests/integration/test_demo.py runs the same code on the real stack.)"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from lakehouse import demo
from lakehouse.medallion.runs import FAULT_VARIABLE, InjectedFault

NOW = datetime(2026, 5, 20, 23, 0, tzinfo=UTC)  # late in the day: the late wave touches "today"


class Stack:
    """Stand-ins for Kafka, the stream, Airflow and gold: what the demo sent and triggered."""

    def __init__(self, monkeypatch):
        self.sends: list[list[str]] = []  # event ids of each send, in order
        self.promotions = 0
        self.fail_send_after: int | None = None
        self.interrupted: list[str] = []  # event ids of a send that failed midway
        monkeypatch.setattr(demo.streams, "start", lambda _settings, _domain: None)
        monkeypatch.setattr(demo, "send", self.send)
        monkeypatch.setattr(demo, "wait_for_bronze", lambda *_args: None)
        monkeypatch.setattr(demo, "promote", self.promote)
        monkeypatch.setattr(demo, "gold_snapshots", lambda *_args: {"gold.daily_sales_by_city": self.promotions})
        monkeypatch.setattr("lakehouse.orchestration.client.AirflowClient", FakeClient)

    def send(self, _settings, _domain, records, total, progress):
        ids = []
        for index, record in enumerate(records):
            if self.fail_send_after is not None and index == self.fail_send_after:
                self.interrupted = ids
                raise ConnectionError("broker gone mid-send")
            ids.append(record.event_id)
        self.sends.append(ids)
        valid = [i for i in ids if i]
        return {"sent": total, "expected_unique_valid": len(valid), "duplicates": 0, "malformed": total - len(valid),
                "first_offsets": {"0": 0}, "last_offsets": {"0": total - 1},
                "started_at": NOW.isoformat(), "finished_at": NOW.isoformat()}  # fmt: skip

    def promote(self, _settings, _domain, started, _log):
        self.promotions += 1
        return [started.isoformat(), started.isoformat()]


class FakeClient:
    waited: list[tuple[str, ...]] = []

    def __init__(self, _settings):
        pass

    def wait_for_dags(self, dag_ids, log=None):
        FakeClient.waited.append(tuple(dag_ids))


@pytest.fixture
def settings(clean_env, monkeypatch, tmp_path):
    from lakehouse.settings import load_settings

    monkeypatch.setenv("LAKEHOUSE_EMBEDDED__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LAKEHOUSE_DEMO__HISTORY_EVENTS", "400")
    monkeypatch.setenv("LAKEHOUSE_DEMO__LATE_EVENTS", "60")
    monkeypatch.setenv("LAKEHOUSE_DEMO__LIVE_RATE", "0")
    monkeypatch.setenv("LAKEHOUSE_DEMO__NOW", NOW.isoformat())
    FakeClient.waited = []
    return load_settings()


def up(settings, lines: list[str]) -> None:
    """What `lakehouse up` does with the demo."""
    demo.finish(settings, demo.start(settings, log=lines.append), log=lines.append)


@pytest.mark.parametrize("failed_after", demo.STEPS[:-1])
def test_a_run_after_a_failure_continues_from_the_step_that_did_not_finish(settings, monkeypatch, failed_after):
    stack = Stack(monkeypatch)
    monkeypatch.setenv(FAULT_VARIABLE, f"demo-after-{failed_after.replace('_', '-')}")
    with pytest.raises(InjectedFault):
        up(settings, [])
    recorded = demo.read_state(settings)
    assert list(recorded["steps"]) == list(demo.STEPS[: demo.STEPS.index(failed_after) + 1])
    assert "loaded_at" not in recorded

    monkeypatch.delenv(FAULT_VARIABLE)
    lines: list[str] = []
    up(settings, lines)
    state = demo.read_state(settings)
    assert list(state["steps"]) == list(demo.STEPS) and "loaded_at" in state
    assert {step: state["steps"][step] for step in recorded["steps"]} == recorded["steps"]  # kept as recorded
    assert [len(ids) for ids in stack.sends] == [400, 60]  # each load sent once
    assert stack.promotions == 2
    if failed_after == "history_sent":
        assert any("history already sent" in line for line in lines)
    assert not any("sending 400" in line for line in lines)

    again: list[str] = []
    up(settings, again)
    assert any("demo data already loaded" in line for line in again)
    assert len(stack.sends) == 2 and stack.promotions == 2
    assert FakeClient.waited[-1] == ("silver_hourly", "gold_daily")


def test_a_send_interrupted_midway_is_repeated_with_the_same_events(settings, monkeypatch):
    stack = Stack(monkeypatch)
    stack.fail_send_after = 150
    with pytest.raises(ConnectionError):
        up(settings, [])
    assert "history_sent" not in demo.read_state(settings)["steps"]
    stack.fail_send_after = None
    lines: list[str] = []
    up(settings, lines)
    [history, late] = stack.sends
    assert any("again: the last send was interrupted" in line for line in lines)
    # The repeat regenerated the interrupted send's events, so the stream drops those it has.
    assert len(stack.interrupted) == 150 and history[:150] == stack.interrupted
    assert not set(late) & {i for i in history if i}


def test_the_state_records_the_late_waves_dates_and_is_replaced_atomically(settings, monkeypatch):
    Stack(monkeypatch)
    up(settings, [])
    path = demo.state_file(settings, "sales")
    assert [p.name for p in path.parent.iterdir()] == ["sales.json"]  # no temporary file left
    state = json.loads(path.read_text())
    assert state["dated_until"] == NOW.isoformat()
    dates = state["steps"]["late_sent"]["event_dates"]
    assert sum(dates.values()) == state["steps"]["late_sent"]["expected_unique_valid"] == 60
    # Late events are hours to days behind the demo's clock, which is late in its day: today is touched.
    assert all(date.fromisoformat(day) <= NOW.date() for day in dates) and NOW.date().isoformat() in dates
    assert state["steps"]["history_promoted"]["gold_snapshots"] == {"gold.daily_sales_by_city": 1}
    assert state["steps"]["late_promoted"]["gold_snapshots"] == {"gold.daily_sales_by_city": 2}


def test_a_record_written_before_the_steps_existed_counts_as_complete(settings, monkeypatch):
    stack = Stack(monkeypatch)
    legacy = {"domain": "sales", "loaded_at": "2026-11-20T10:00:00+00:00", "history": {"sent": 20000}}
    demo.write_state(settings, legacy)
    lines: list[str] = []
    up(settings, lines)
    assert stack.sends == [] and any("demo data already loaded" in line for line in lines)
