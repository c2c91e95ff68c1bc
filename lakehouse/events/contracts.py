"""Accept or reject one Kafka record against its domain's contract (pure; used by every consumer)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker

from lakehouse.domains import Domain


class Contract:
    """A domain's JSON Schema, compiled twice: fastjsonschema decides (about 10x faster), jsonschema
    explains a rejection with the failing path.

    Of several failures the reported one is, in this order: a missing required field (in the order
    of `required`), a wrong type, then any other keyword (both in the order of `properties`; extra
    properties last). jsonschema's `best_match` is a heuristic that changes between versions; this
    order is the one the Flink contract check (jvm/functions, lakehouse.events.contract_jvm) implements too.
    """

    def __init__(self, schema: dict):
        self.accepts = fastjsonschema.compile(schema)
        self.explainer = Draft202012Validator(schema, format_checker=FormatChecker())
        self.required = list(schema.get("required", []))
        self.properties = list(schema.get("properties", {}))

    def _rank(self, error) -> tuple[int, int]:
        if error.validator == "required":
            missing = next((n for n in self.required if repr(n) in error.message), None)
            return 0, self.required.index(missing) if missing is not None else len(self.required)
        where = error.absolute_path[0] if error.absolute_path else None
        position = self.properties.index(where) if where in self.properties else len(self.properties)
        return (1 if error.validator == "type" else 2), position

    def violation(self, event: dict) -> tuple[str, str] | None:
        """None if valid, else (reason, detail)."""
        try:
            self.accepts(event)
            return None
        except fastjsonschema.JsonSchemaValueException as fast_error:
            errors = sorted(self.explainer.iter_errors(event), key=self._rank)
            if not errors:
                return "contract_violation", fast_error.message
            error = errors[0]
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            reason = {"required": "missing_field", "type": "wrong_type"}.get(error.validator, "contract_violation")
            return reason, f"{where}: {error.message}"


@dataclass(frozen=True)
class Verdict:
    """`event` is the parsed record when valid; otherwise `reason` is one stable code and `detail` says why."""

    event: dict | None
    reason: str | None = None
    detail: str | None = None

    @property
    def valid(self) -> bool:
        return self.reason is None


def _reject(reason: str, detail: str) -> Verdict:
    return Verdict(None, reason, detail[:500])


def parse_event_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("event time has no UTC offset")
    return parsed


def _not_json(constant: str) -> None:
    # Python's json reads NaN and Infinity; they are not JSON (RFC 8259), and Jackson rejects them
    raise json.JSONDecodeError(f"{constant} is not a JSON number", constant, 0)


def check_record(domain: Domain, contract: Contract, value: bytes | None) -> Verdict:
    """The first failed check wins: empty, oversized, invalid_encoding, invalid_json, not_an_object,
    missing_field, wrong_type, contract_violation, invalid_event_time."""
    if not value:
        return _reject("empty", "the record has no value")
    if len(value) > domain.max_message_bytes:
        return _reject("oversized", f"{len(value)} bytes > max_message_bytes {domain.max_message_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _reject("invalid_encoding", f"not UTF-8: {exc}")
    try:
        event = json.loads(text, parse_constant=_not_json)
    except (json.JSONDecodeError, RecursionError) as exc:
        return _reject("invalid_json", f"not JSON: {exc}")
    if not isinstance(event, dict):
        return _reject("not_an_object", f"JSON {type(event).__name__}, expected an object")
    violation = contract.violation(event)
    if violation is not None:
        return _reject(*violation)
    try:
        parse_event_time(event[domain.event_time_field])
    except (ValueError, TypeError) as exc:
        return _reject("invalid_event_time", f"{domain.event_time_field}: {exc}")
    return Verdict(event)
