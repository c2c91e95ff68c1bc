"""A domain's contract checked in the JVM: the same verdicts as `contracts.check_record`, in Flink.

The check is one Java table function of the project's own (jvm/functions, built by `make setup`):
`LATERAL TABLE(lakehouse_check_contract(value, '<spec>'))` parses the record once with Jackson
and applies fastjsonschema's semantics in `check_record`'s order. The spec is the domain's
contract, written here from its YAML as a literal of the query, so one class serves every domain
and a new domain is still only YAML. Keywords the Java side does not implement raise a
ConfigError naming them, so a contract is never checked more loosely in the stream than in Python.

Why a Java function and not SQL expressions: the contract compiled to Flink's built-in JSON and
regular-expression functions (this module's predecessor, up to 0462494) cost about 135
microseconds a record and held the job at 5-7k records/s on 2 cores; the one-pass parse costs a
few microseconds. A Python UDF, even vectorized, would add the Python worker and Arrow transfer
on every record.
"""

from __future__ import annotations

import json
from pathlib import Path

from lakehouse.domains import Domain
from lakehouse.errors import ConfigError

SUPPORTED_ROOT = {"type", "required", "properties", "additionalProperties"}
SUPPORTED_PROPERTY = {
    "type",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "enum",
}
ANNOTATIONS = {"$schema", "description", "title"}
JSON_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
CHECK = "lakehouse_check_contract"
WATERMARK_TIME = "lakehouse_watermark_time"
CLASSES = {CHECK: "io.github.lakehouse.flink.CheckContract", WATERMARK_TIME: "io.github.lakehouse.flink.WatermarkTime"}
# what the table function returns, in order (see CheckContract.java)
VERDICT_COLUMNS = ("reason", "detail", "payload", "event_id", "event_time")


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_property(domain: Domain, name: str, spec: dict) -> None:
    unknown = set(spec) - SUPPORTED_PROPERTY - ANNOTATIONS
    if unknown:
        raise ConfigError(f"{domain.source}: contract property {name}: keyword(s) {sorted(unknown)} not supported")
    kinds = spec.get("type", [])
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind not in JSON_TYPES:
            raise ConfigError(
                f"{domain.source}: contract property {name}: unknown type {kind!r} (known: {', '.join(JSON_TYPES)})"
            )
    if spec.get("format", "date-time") != "date-time":
        raise ConfigError(f"{domain.source}: contract property {name}: format {spec['format']!r} not supported")
    for value in spec.get("enum", []):
        if not (value is None or isinstance(value, bool | int | float | str)):
            raise ConfigError(f"{domain.source}: contract property {name}: enum value {value!r} not supported")


def spec(domain: Domain) -> str:
    """The JSON the Java check is built from: the contract and the domain's record rules."""
    schema = domain.contract
    unknown = set(schema) - SUPPORTED_ROOT - ANNOTATIONS
    if unknown:
        raise ConfigError(f"{domain.source}: contract keyword(s) {sorted(unknown)} not supported")
    if schema.get("type", "object") != "object":
        raise ConfigError(f"{domain.source}: the contract must describe an object")
    properties = schema.get("properties", {})
    required = list(schema.get("required", []))
    for name, prop in properties.items():
        _check_property(domain, name, prop)
    if (
        domain.event_time_field not in required
        or properties.get(domain.event_time_field, {}).get("format") != "date-time"
    ):
        raise ConfigError(
            f"{domain.source}: the event time field {domain.event_time_field} must be required and have"
            " format: date-time, so that the stream can parse it"
        )
    if domain.dedup_key not in required:
        raise ConfigError(f"{domain.source}: the dedup key {domain.dedup_key} must be required")
    if schema.get("additionalProperties", True) not in (True, False):
        raise ConfigError(f"{domain.source}: additionalProperties must be true or false")
    return json.dumps(
        {
            "schema": schema,
            "max_message_bytes": domain.max_message_bytes,
            "event_time_field": domain.event_time_field,
            "dedup_key": domain.dedup_key,
        },
        separators=(",", ":"),
    )


def register(env, jar: Path) -> None:
    """Make the functions known to a TableEnvironment; `USING JAR` ships the jar with the job."""
    if not jar.is_file():
        raise ConfigError(f"{jar} is missing: run `make setup` (it builds jvm/functions)")
    for name, cls in CLASSES.items():
        env.execute_sql(f"CREATE TEMPORARY SYSTEM FUNCTION {name} AS '{cls}' LANGUAGE JAVA USING JAR '{jar.as_uri()}'")


def verdict_query(domain: Domain, source: str) -> str:
    """SELECT every column of `source` (which has a BYTES column `value`) plus the verdict:
    reason (NULL when valid, else `check_record`'s reason code), detail, payload (the value as
    text), event_id (the dedup key) and event_time (TIMESTAMP_LTZ(6), UTC; NULL unless valid)."""
    columns = ", ".join(VERDICT_COLUMNS)
    return (
        f"SELECT s.*, {', '.join(f'v.{c}' for c in VERDICT_COLUMNS)} FROM {source} AS s,"
        f" LATERAL TABLE({CHECK}(s.`value`, {sql_string(spec(domain))})) AS v({columns})"
    )


def watermark_time_sql(value: str, field: str) -> str:
    """A record's event time for the watermark, to the millisecond, from the raw value (in the
    source table's DDL, before any check): TIMESTAMP_LTZ(3), epoch when there is none to read."""
    return f"{WATERMARK_TIME}({value}, {sql_string(field)})"
