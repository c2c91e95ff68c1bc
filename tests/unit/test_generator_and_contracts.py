"""The generator's mix of records, and the contract check's verdict on every kind of record."""

import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from lakehouse.domains import load_domains
from lakehouse.events.contracts import Contract, check_record, parse_event_time
from lakehouse.events.generator import MALFORMED_KINDS, Mix, generate, roman
from lakehouse.settings import PROJECT_ROOT
from tests.contract_corpus import fuzzed

DOMAINS = load_domains(PROJECT_ROOT / "catalog")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_each_kind_gets_the_verdict_it_should(name):
    domain = DOMAINS[name]
    validator = Contract(domain.contract)
    records = list(generate(domain, 5000, mix=Mix(0.05, 0.05, 0.05, 0.05), days=2, seed=11, clock=lambda: NOW))
    kinds = Counter(r.kind for r in records)
    assert sum(kinds.values()) == 5000
    for kind, expected in (("duplicate", 250), ("late", 250), ("out_of_order", 250)):
        assert abs(kinds[kind] - expected) < 80, kinds
    assert abs(sum(kinds[k] for k in MALFORMED_KINDS) - 250) < 80
    first_seen = {}
    for record in records:
        verdict = check_record(domain, validator, record.value)
        if record.kind in MALFORMED_KINDS:
            assert not verdict.valid
            expected_reasons = {
                "invalid_json": {"invalid_json"},
                "missing_field": {"missing_field"},
                "wrong_type": {"wrong_type", "contract_violation"},
                "oversized": {"oversized"},
            }[record.kind]
            assert verdict.reason in expected_reasons, (record.kind, verdict)
            continue
        assert verdict.valid, verdict.detail
        event_id = verdict.event[domain.dedup_key]
        if record.kind == "duplicate":
            assert first_seen[event_id] == record.value  # the very same message again
        else:
            assert event_id == record.event_id and event_id not in first_seen
            first_seen[event_id] = record.value
    unique_valid = [r for r in records if r.event_id is not None]
    assert len(unique_valid) == kinds["valid"] + kinds["late"] + kinds["out_of_order"]


def test_late_events_are_past_the_allowed_lateness_and_historical_load_spans_the_days():
    domain = DOMAINS["sales"]
    records = list(generate(domain, 3000, mix=Mix(0, 0.1, 0.1, 0), days=3, seed=5, clock=lambda: NOW))
    times = {r.kind: [] for r in records}
    for index, record in enumerate(records):
        times[record.kind].append((index, parse_event_time(json.loads(record.value)["event_time"])))
    step = (3 * 86400) / 3000
    for index, moment in times["late"]:
        nominal = NOW.timestamp() - 3 * 86400 + step * index
        assert nominal - moment.timestamp() > domain.allowed_lateness.total_seconds()
    for index, moment in times["out_of_order"]:
        nominal = NOW.timestamp() - 3 * 86400 + step * index
        assert 0 < nominal - moment.timestamp() <= domain.allowed_lateness.total_seconds()
    valid_times = [m for _, m in times["valid"]]
    assert (max(valid_times) - min(valid_times)).total_seconds() > 2.9 * 86400
    assert max(valid_times) <= NOW


def test_seed_makes_runs_repeatable():
    domain = DOMAINS["sales"]
    first = [r.value for r in generate(domain, 200, seed=42, days=1, clock=lambda: NOW)]
    second = [r.value for r in generate(domain, 200, seed=42, days=1, clock=lambda: NOW)]
    assert first == second


def test_conversions_numerals_match_inputs():
    domain = DOMAINS["conversions"]
    for record in generate(domain, 500, mix=Mix(0, 0, 0, 0), seed=1, clock=lambda: NOW):
        event = json.loads(record.value)
        assert event["output_numeral"] == roman(event["input_number"])
        assert event["status"] == ("ok" if event["output_numeral"] else "error")
    assert roman(1994) == "MCMXCIV" and roman(0) is None and roman(4000) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "invalid_encoding"),
        (b"{not json", "invalid_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (b"[" * 9000 + b"]" * 9000, "oversized"),
        (b"[" * 2000 + b"]" * 2000, "invalid_json"),  # deeper than the parser recurses,
    ],
)
def test_odd_inputs_are_rejected_with_a_reason(value, reason):
    domain = DOMAINS["sales"]
    assert check_record(domain, Contract(domain.contract), value).reason == reason


def test_event_time_without_offset_is_rejected():
    domain = DOMAINS["sales"]
    event = json.loads(next(generate(domain, 1, mix=Mix(0, 0, 0, 0), seed=1)).value)
    event["event_time"] = "2026-11-20T10:00:00"
    verdict = check_record(domain, Contract(domain.contract), json.dumps(event).encode())
    assert verdict.reason in ("invalid_event_time", "contract_violation")


def test_no_input_of_any_shape_raises():
    domain = DOMAINS["sales"]
    validator = Contract(domain.contract)
    for value in fuzzed(domain):
        verdict = check_record(domain, validator, value)
        assert verdict.valid or verdict.reason  # never an exception


def test_flink_contract_refuses_keywords_it_cannot_check():
    from lakehouse.errors import ConfigError
    from lakehouse.events.contract_jvm import spec, verdict_query

    domain = DOMAINS["sales"]
    assert json.loads(spec(domain))["schema"] == domain.contract  # the Java check reads the YAML's contract
    assert "LATERAL TABLE(lakehouse_check_contract(" in verdict_query(domain, "records")
    loose = dataclasses.replace(
        domain, contract={**domain.contract, "properties": {**domain.contract["properties"], "city": {"oneOf": []}}}
    )
    with pytest.raises(ConfigError, match="oneOf"):
        verdict_query(loose, "records")
    untimed = dataclasses.replace(
        domain,
        contract={**domain.contract, "properties": {**domain.contract["properties"], "event_time": {"type": "string"}}},
    )
    with pytest.raises(ConfigError, match="date-time"):
        verdict_query(untimed, "records")


def test_reason_order_is_explicit_missing_then_type_then_other():
    domain = DOMAINS["sales"]
    event = json.loads(next(generate(domain, 1, mix=Mix(0, 0, 0, 0), seed=1)).value)
    event.pop("currency")
    event["quantity"] = "many"
    event["country"] = "germany"
    assert check_record(domain, Contract(domain.contract), json.dumps(event).encode()).reason == "missing_field"
    event["currency"] = "EUR"
    assert check_record(domain, Contract(domain.contract), json.dumps(event).encode()).reason == "wrong_type"
    event["quantity"] = 2
    verdict = check_record(domain, Contract(domain.contract), json.dumps(event).encode())
    assert (verdict.reason, verdict.detail.split(":")[0]) == ("contract_violation", "country")
    nan = json.dumps(event).replace('"quantity": 2', '"quantity": NaN').encode()
    assert b"NaN" in nan
    assert (
        check_record(domain, Contract(domain.contract), nan).reason == "invalid_json"
    )  # not JSON, though Python reads it
