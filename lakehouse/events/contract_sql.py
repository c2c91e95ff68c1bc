"""A domain's contract compiled into Flink SQL: the same verdicts as `contracts.check_record`, in the JVM.

`verdict_query(domain, source)` is a SELECT over a relation with a BYTES column `value` (the
Kafka record value). It keeps every column of the source and adds `reason` (NULL when the record is
valid, else the reason code `check_record` gives), `detail`, `payload` (the value as text),
`event_id` (the dedup key) and `event_time` (TIMESTAMP_LTZ(6), UTC). The checks run in
`check_record`'s order; within the contract the first failure is, as there: a missing required
field, then a wrong type (in the order of `properties`), then any other keyword.

Only Flink's built-in functions are used (no Python UDF): the JSON path functions parse the
value, regular expressions cover what Jackson accepts and Python's `json` does not (content after
the top-level value, NaN). Keywords this compiler does not know raise a ConfigError naming them,
so a contract is never checked more loosely in the stream than in Python.
"""

from __future__ import annotations

import re

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
JSON_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
# fastjsonschema's own date-time format (what decides validity in Python), with Python's \Z
# (end of input) spelled as Java's \z.
DATE_TIME = (
    r"^(?:\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]"
    r"|1\d|2[0-8]))|(?:\d\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)(t|T)"
    r"(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?(?:[+-](?:[01]\d|2[0-3]):[0-5]\d|[+-](?:[01]\d|2[0-3])"
    r"[0-5]\d|z|Z)\z"
)
WS = r"[ \t\n\r]"  # JSON's whitespace (Java's \s also matches \x0B and \f)
STRING = r'"(?:[^"\\]|\\.)*"'
# A complete JSON scalar (Jackson ignores what follows a root value after whitespace, Python does not).
SCALAR = rf"^{WS}*(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|{STRING}){WS}*$"
# The top-level object of a document without nested structures, followed by more than whitespace.
FLAT_OBJECT_THEN_MORE = rf"^{WS}*\{{(?:[^\"{{}}\[\]]|{STRING})*\}}{WS}*[^ \t\n\r]"
OBJECT_END = rf"\}}{WS}*$"
WHOLE_ARRAY = rf"^{WS}*\[(?:.|\n)*\]{WS}*$"


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_path(name: str) -> str:
    return f"$.{name}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"$['{name}']"


def _java_pattern(pattern: str) -> str:
    # Python's \Z is Java's \z; everything else the contracts use reads the same in both.
    return pattern.replace(r"\Z", r"\z")


class _Property:
    """SQL expressions over one contract property, on the columns of the parse stage."""

    def __init__(self, index: int, name: str, spec: dict):
        unknown = set(spec) - SUPPORTED_PROPERTY - {"description", "title"}
        if unknown:
            raise ConfigError(f"contract property {name}: keyword(s) {sorted(unknown)} not supported in Flink SQL")
        self.name, self.spec = name, spec
        self.wrapped = f"w{index}"  # JSON_QUERY(..., WITH ARRAY WRAPPER): '["text"]', '[5]', '[[...]]', ...
        key_pattern = r"[\[,]" + re.escape(_json_key(name)) + r"[,\]]"
        self.present = f"REGEXP(keys, {sql_string(key_pattern)})"

    @property
    def parse_column(self) -> str:
        return f"JSON_QUERY(txt, {sql_string(json_path(self.name))} WITH ARRAY WRAPPER) AS {self.wrapped}"

    @property
    def scalar(self) -> str:
        """The value as text: a string unescaped, a number as Jackson writes it."""
        return f"JSON_VALUE({self.wrapped}, '$[0]')"

    @property
    def number(self) -> str:
        return f"TRY_CAST({self.scalar} AS DOUBLE)"

    def is_type(self, kind: str) -> str:
        # never NULL: a NULL inside NOT (...) would make a check silently pass
        return f"COALESCE({self._is_type(kind)}, FALSE)"

    def _is_type(self, kind: str) -> str:
        w = self.wrapped
        if kind == "null":
            return f"({w} IS NULL OR {w} = '[null]')"
        if kind == "string":
            return f"{w} LIKE '[\"%'"
        if kind == "array":
            return f"{w} LIKE '[[%'"
        if kind == "object":
            return f"{w} LIKE '[{{%'"
        if kind == "boolean":
            return f"{w} IN ('[true]', '[false]')"
        number = (
            f"({w} IS NOT NULL AND {w} <> '[null]' AND NOT {w} LIKE '[\"%' AND NOT {w} LIKE '[[%'"
            f" AND NOT {w} LIKE '[{{%' AND {w} NOT IN ('[true]', '[false]'))"
        )
        if kind == "number":
            return number
        if kind == "integer":
            # Python: an int, or a float with an integral finite value (5.0, 1E2; not 1E400)
            return (
                f"({number} AND (REGEXP({self.scalar}, '^-?[0-9]+$') OR ({self.number} = FLOOR({self.number})"
                f" AND ABS({self.number}) <= 1.7976931348623157E308)))"
            )
        raise ConfigError(f"contract property {self.name}: unknown type {kind!r} (known: {', '.join(JSON_TYPES)})")

    @property
    def types(self) -> list[str]:
        kind = self.spec.get("type")
        return [] if kind is None else ([kind] if isinstance(kind, str) else list(kind))

    def wrong_type(self) -> str | None:
        if not self.types:
            return None
        return f"({self.present} AND NOT ({' OR '.join(self.is_type(k) for k in self.types)}))"

    def violations(self) -> list[tuple[str, str]]:
        """(failing condition, detail) per keyword other than type, each only where it applies."""
        spec, found = self.spec, []
        text, number = self.is_type("string"), self.is_type("number")
        # Python counts code points; Java strings count UTF-16 units: count a pair as one
        length = f"CHAR_LENGTH(REGEXP_REPLACE({self.scalar}, '[\\x{{10000}}-\\x{{10FFFF}}]', '_'))"
        if "minLength" in spec:
            found.append((f"{text} AND {length} < {int(spec['minLength'])}", f"shorter than {spec['minLength']}"))
        if "maxLength" in spec:
            found.append((f"{text} AND {length} > {int(spec['maxLength'])}", f"longer than {spec['maxLength']}"))
        if "pattern" in spec:
            pattern = sql_string(_java_pattern(spec["pattern"]))
            found.append((f"{text} AND NOT REGEXP({self.scalar}, {pattern})", f"does not match {spec['pattern']}"))
        if "format" in spec:
            if spec["format"] != "date-time":
                raise ConfigError(f"contract property {self.name}: format {spec['format']!r} not supported")
            found.append((f"{text} AND NOT REGEXP({self.scalar}, {sql_string(DATE_TIME)})", "is not a date-time"))
        for keyword, op in (("minimum", "<"), ("maximum", ">"), ("exclusiveMinimum", "<="), ("exclusiveMaximum", ">=")):
            if keyword in spec:
                found.append(
                    (f"{number} AND {self.number} {op} {float(spec[keyword])!r}", f"{keyword} {spec[keyword]}")
                )
        if "enum" in spec:
            equals = " OR ".join(f"COALESCE({self._equals(v)}, FALSE)" for v in spec["enum"])
            found.append((f"NOT ({equals})", "is not one of the enum"))
        return [(f"({self.present} AND {condition})", f"{self.name}: {detail}") for condition, detail in found]

    def _equals(self, value: object) -> str:
        if value is None:
            return self.is_type("null")
        if isinstance(value, bool):
            return f"{self.wrapped} = '[{str(value).lower()}]'"
        if isinstance(value, int | float):
            return f"({self.is_type('number')} AND {self.number} = {float(value)!r})"
        if isinstance(value, str):
            return f"({self.is_type('string')} AND {self.scalar} = {sql_string(value)})"
        raise ConfigError(f"contract property {self.name}: enum value {value!r} not supported in Flink SQL")


def _json_key(name: str) -> str:
    # as Jackson writes a key in the array of `$.keys()`
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _case(branches: list[tuple[str, str]]) -> str:
    return "CASE " + " ".join(f"WHEN COALESCE({c}, FALSE) THEN {v}" for c, v in branches) + " END"


def verdict_query(domain: Domain, source: str) -> str:
    """SELECT *, reason, detail, payload, event_id, event_time FROM `source` (see the module doc)."""
    schema = domain.contract
    unknown = set(schema) - SUPPORTED_ROOT - {"$schema", "description", "title"}
    if unknown:
        raise ConfigError(f"{domain.source}: contract keyword(s) {sorted(unknown)} not supported in Flink SQL")
    if schema.get("type", "object") != "object":
        raise ConfigError(f"{domain.source}: the contract must describe an object")
    specs = schema.get("properties", {})
    required = list(schema.get("required", []))
    time_spec = specs.get(domain.event_time_field, {})
    if domain.event_time_field not in required or time_spec.get("format") != "date-time":
        raise ConfigError(
            f"{domain.source}: the event time field {domain.event_time_field} must be required and have"
            " format: date-time, so that the stream can parse it"
        )
    if domain.dedup_key not in required:
        raise ConfigError(f"{domain.source}: the dedup key {domain.dedup_key} must be required")
    props = {name: _Property(i, name, spec) for i, (name, spec) in enumerate(specs.items())}
    missing_props = [name for name in required if name not in props]
    for name in missing_props:  # required but undeclared: only its presence is checked
        props[name] = _Property(len(props), name, {})

    contract: list[tuple[str, str, str]] = []  # (condition, reason, detail)
    contract += [(f"NOT {props[n].present}", "missing_field", f"{n}: required") for n in required]
    for prop in props.values():
        condition = prop.wrong_type()
        if condition:
            contract.append((condition, "wrong_type", f"{prop.name}: not of type {' or '.join(prop.types)}"))
    for prop in props.values():
        contract += [(c, "contract_violation", d) for c, d in prop.violations()]
    if schema.get("additionalProperties") is False:
        present = " + ".join(f"CASE WHEN {p.present} THEN 1 ELSE 0 END" for p in props.values()) or "0"
        contract.append(
            (f"CAST(JSON_VALUE(keys, '$.length()') AS INT) > {present}", "contract_violation", "additional properties")
        )
    elif "additionalProperties" in schema and schema["additionalProperties"] is not True:
        raise ConfigError(f"{domain.source}: additionalProperties must be true or false in Flink SQL")

    event_time = props[domain.event_time_field].scalar
    ordered = [
        ("`value` IS NULL OR nbytes = 0", "empty", "the record has no value"),
        (
            f"nbytes > {domain.max_message_bytes}",
            "oversized",
            f"more bytes than max_message_bytes {domain.max_message_bytes}",
        ),
        ("NOT utf8", "invalid_encoding", "not UTF-8"),
        (
            f"NOT (txt IS JSON) OR (txt IS JSON OBJECT AND (NOT REGEXP(txt, {sql_string(OBJECT_END)})"
            f" OR REGEXP(txt, {sql_string(FLAT_OBJECT_THEN_MORE)})))"
            f" OR (NOT txt IS JSON OBJECT AND NOT REGEXP(txt, {sql_string(SCALAR)})"
            f" AND NOT REGEXP(txt, {sql_string(WHOLE_ARRAY)}))",
            "invalid_json",
            "not JSON",
        ),
        ("NOT (txt IS JSON OBJECT)", "not_an_object", "JSON, but not an object"),
        *contract,
        # what fastjsonschema's date-time accepts and Python's fromisoformat does not
        (f"SUBSTRING({event_time} FROM 18 FOR 2) = '60' OR {event_time} LIKE '%z'", "invalid_event_time", "not a time"),
    ]
    reason = _case([(c, sql_string(r)) for c, r, _ in ordered])
    detail = _case([(c, sql_string(d)) for c, _, d in ordered])
    parse_columns = ",\n        ".join(p.parse_column for p in props.values())
    return f"""
SELECT checked.*, CASE WHEN reason IS NULL THEN {_event_time_sql(event_time)} END AS event_time
FROM (
    SELECT parsed.*, {reason} AS reason, {detail} AS detail,
        {props[domain.dedup_key].scalar} AS event_id
    FROM (
        SELECT decoded.*, JSON_QUERY(txt, '$.keys()') AS keys,
            {parse_columns}
        FROM (
            SELECT src.*, DECODE(`value`, 'UTF-8') AS txt, DECODE(`value`, 'UTF-8') AS payload,
                CHAR_LENGTH(DECODE(`value`, 'ISO-8859-1')) AS nbytes,
                ENCODE(DECODE(`value`, 'UTF-8'), 'UTF-8') = `value` AS utf8
            FROM {source} AS src
        ) AS decoded
    ) AS parsed
) AS checked"""


def _event_time_sql(text: str) -> str:
    """The UTC instant of a date-time that passed the checks: local time minus its offset (to microseconds)."""
    local = (
        f"CAST(CONCAT(SUBSTRING({text} FROM 1 FOR 10), ' ', SUBSTRING({text} FROM 12 FOR 8),"
        f" COALESCE(SUBSTRING(REGEXP_EXTRACT({text}, '^.{{19}}(\\.[0-9]+)', 1) FROM 1 FOR 7), ''))"
        " AS TIMESTAMP(6))"
    )
    offset = (
        f"CASE WHEN UPPER({text}) LIKE '%Z' THEN 0 ELSE"
        f" (CASE WHEN REGEXP_EXTRACT({text}, '([+-])[0-9]{{2}}:?[0-9]{{2}}$', 1) = '-' THEN -1 ELSE 1 END)"
        f" * (CAST(REGEXP_EXTRACT({text}, '([0-9]{{2}}):?([0-9]{{2}})$', 1) AS INT) * 60"
        f" + CAST(REGEXP_EXTRACT({text}, '([0-9]{{2}}):?([0-9]{{2}})$', 2) AS INT)) END"
    )
    return f"CAST(TIMESTAMPADD(MINUTE, -({offset}), {local}) AS TIMESTAMP_LTZ(6))"
