"""The contract checked in Flink (the Java table function) judges the shared corpus exactly as the Python contract does."""

import base64
import json
import subprocess
from datetime import UTC

import pytest

from lakehouse.domains import load_domains
from lakehouse.events.contracts import Contract, check_record, parse_event_time
from lakehouse.settings import PROJECT_ROOT
from tests.contract_corpus import corpus

pytestmark = pytest.mark.slow

DOMAINS = load_domains(PROJECT_ROOT / "catalog")


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_flink_contract_gives_the_python_verdict_record_by_record(name, tmp_path):
    domain = DOMAINS[name]
    values = corpus(domain)
    records = tmp_path / "records.jsonl"
    records.write_text(
        "".join(
            json.dumps({"id": i, "value": None if v is None else base64.b64encode(v).decode()}) + "\n"
            for i, v in enumerate(values)
        )
    )
    verdicts = tmp_path / "verdicts.jsonl"
    result = subprocess.run(
        [
            str(PROJECT_ROOT / ".venv-flink/bin/python"),
            str(PROJECT_ROOT / "flink_jobs/check_contract.py"),
            f"--domain={name}",
            f"--input={records}",
            f"--output={verdicts}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sql = {row["id"]: row for row in map(json.loads, verdicts.read_text().splitlines())}
    assert len(sql) == len(values)

    contract = Contract(domain.contract)
    differences, reasons = [], set()
    for i, value in enumerate(values):
        verdict = check_record(domain, contract, value)
        reasons.add(verdict.reason)
        expected = (verdict.reason, None, None)
        if verdict.valid:
            event_time = parse_event_time(verdict.event[domain.event_time_field]).astimezone(UTC)
            expected = (None, str(verdict.event[domain.dedup_key]), event_time.strftime("%Y-%m-%d %H:%M:%S.%f"))
        got = (
            (sql[i]["reason"], sql[i]["event_id"], sql[i]["event_time"])
            if verdict.valid
            else (sql[i]["reason"], None, None)
        )
        if verdict.valid:  # the watermark's time, read before the checks, is the event time to the millisecond
            got += (sql[i]["watermark_time"],)
            expected += (event_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],)
        if got != expected:
            differences.append((i, value[:120] if value else value, expected, got))
    assert differences == []
    # the corpus exercises every reason code the Python contract has
    assert reasons >= {
        None, "empty", "oversized", "invalid_encoding", "invalid_json", "not_an_object",
        "missing_field", "wrong_type", "contract_violation", "invalid_event_time",
    }  # fmt: skip
