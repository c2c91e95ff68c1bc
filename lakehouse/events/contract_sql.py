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
WS = r"[ \t\n\r]*"  # JSON's whitespace (Java's \s also matches \x0B and \f)
STRING = r'"(?:[^"\\\x00-\x1F]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+"'
NUMBER = r"-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?"
VALUE = rf"(?:{STRING}|{NUMBER}|true|false|null)"
# What Jackson accepts and Python's json does not, for documents the fast path does not take:
# a root value followed by more than whitespace (Jackson reads the first value and stops).
SCALAR = rf"^{WS}{VALUE}{WS}$"
FLAT_OBJECT_THEN_MORE = rf"^{WS}\{{(?:[^\"{{}}\[\]]|{STRING})*\}}{WS}[^ \t\n\r]"
OBJECT_END = rf"\}}{WS}$"
WHOLE_ARRAY = rf"^{WS}\[(?:.|\n)*\]{WS}$"
# The fast path. A flat document: an object whose values are scalars and whose keys have no
# escapes, exactly as JSON's grammar spells them (possessive quantifiers: linear time).
PLAIN_KEY = r'"[^"\\\x00-\x1F]*+"'
_PAIR = rf"{PLAIN_KEY}{WS}:{WS}{VALUE}"
FLAT = rf"^{WS}\{{{WS}(?:{_PAIR}(?:{WS},{WS}{_PAIR})*+)?{WS}\}}{WS}$"
# A key given twice (Python keeps the last value; such documents take the JSON functions' path).
# About 30 microseconds a record; Flink's LOCATE, a byte-by-byte search, costs more (measured).
DUPLICATE_KEY = rf'(?s)[{{,]{WS}("[^"\\]*+"){WS}:.*[{{,]{WS}\1{WS}:'


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_path(name: str) -> str:
    return f"$.{name}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"$['{name}']"


def _java_pattern(pattern: str) -> str:
    # Python's \Z is Java's \z; everything else the contracts use reads the same in both.
    return pattern.replace(r"\Z", r"\z")


class _Property:
    """SQL expressions over one contract property. Its parsed form lives in columns of the stages
    (see verdict_query): `p{i}` present, `t{i}` JSON type, `s{i}` scalar text, `d{i}` as a number."""

    def __init__(self, index: int, name: str, spec: dict):
        unknown = set(spec) - SUPPORTED_PROPERTY - {"description", "title"}
        if unknown:
            raise ConfigError(f"contract property {name}: keyword(s) {sorted(unknown)} not supported in Flink SQL")
        self.name, self.spec, self.i = name, spec, index
        self.present, self.type, self.scalar, self.number = f"p{index}", f"t{index}", f"s{index}", f"d{index}"
        key_pattern = r"[\[,]" + re.escape(_json_key(name)) + r"[,\]]"
        self.slow_present = f"REGEXP(doc_keys, {sql_string(key_pattern)})"

    # -- parse stages ------------------------------------------------------------------------
    def fast_raw(self) -> str:
        """The value's JSON text in a flat document: a key can only be where it is quoted and followed by a colon."""
        # The key and its value (REGEXP_SUBSTR caches its pattern, REGEXP_EXTRACT compiles it per call)
        pattern = re.escape(_json_key(self.name)) + WS + ":" + WS + VALUE
        return f"CASE WHEN doc_flat THEN REGEXP_SUBSTR(txt, {sql_string(pattern)}) END AS kv{self.i}"

    def fast_value(self) -> str:
        """The value's text: the first value after the key and colon."""
        rest = f"SUBSTRING(kv{self.i} FROM CHAR_LENGTH({sql_string(_json_key(self.name))}) + 1)"
        return f"CASE WHEN doc_flat THEN REGEXP_SUBSTR({rest}, {sql_string(VALUE)}) END AS r{self.i}"

    def slow_wrapped(self) -> str:
        """JSON_QUERY(..., WITH ARRAY WRAPPER): '["text"]', '[5]', '[[...]]', ... (documents that are not flat)."""
        return f"CASE WHEN NOT doc_flat THEN JSON_QUERY(txt, {sql_string(json_path(self.name))} WITH ARRAY WRAPPER) END AS w{self.i}"

    def parsed(self) -> list[str]:
        r, w = f"r{self.i}", f"w{self.i}"
        fast_type = (
            f"CASE WHEN SUBSTRING({r} FROM 1 FOR 1) = '\"' THEN 'string' WHEN {r} IN ('true', 'false') THEN 'boolean'"
            f" WHEN {r} = 'null' THEN 'null' ELSE 'number' END"
        )
        slow_type = (
            f"CASE WHEN {w} IS NULL OR {w} = '[null]' THEN 'null' WHEN SUBSTRING({w} FROM 1 FOR 2) = '[\"' THEN 'string'"
            f" WHEN SUBSTRING({w} FROM 1 FOR 2) = '[[' THEN 'array' WHEN SUBSTRING({w} FROM 1 FOR 2) = '[{{' THEN 'object'"
            f" WHEN {w} IN ('[true]', '[false]') THEN 'boolean' ELSE 'number' END"
        )
        # a string without escapes is its text between the quotes; with escapes, JSON decodes it
        fast_scalar = (
            f"CASE WHEN SUBSTRING({r} FROM 1 FOR 1) = '\"' AND POSITION('\\' IN {r}) = 0 THEN SUBSTRING({r} FROM 2 FOR CHAR_LENGTH({r}) - 2)"
            f" WHEN SUBSTRING({r} FROM 1 FOR 1) = '\"' THEN JSON_VALUE(CONCAT('[', {r}, ']'), '$[0]') ELSE {r} END"
        )
        return [
            f"CASE WHEN doc_flat THEN {r} IS NOT NULL ELSE COALESCE({self.slow_present}, FALSE) END AS {self.present}",
            f"CASE WHEN doc_flat THEN {fast_type} ELSE {slow_type} END AS {self.type}",
            f"CASE WHEN doc_flat THEN {fast_scalar} ELSE JSON_VALUE({w}, '$[0]') END AS {self.scalar}",
        ]

    def numeric(self) -> list[str]:
        n = f"TRY_CAST({self.scalar} AS DOUBLE)"
        # Python: an int, or a float with an integral finite value (5.0, 1E2; not 1E400)
        integral = f"(REGEXP({self.scalar}, '^-?[0-9]+$') OR ({n} = FLOOR({n}) AND ABS({n}) <= 1.7976931348623157E308))"
        return [
            f"CASE WHEN {self.type} = 'number' THEN {n} END AS {self.number}",
            f"{self.type} = 'number' AND COALESCE({integral}, FALSE) AS i{self.i}",
        ]

    # -- checks, on the parsed columns -------------------------------------------------------
    def is_type(self, kind: str) -> str:
        if kind in ("string", "array", "object", "boolean", "null", "number"):
            return f"{self.type} = '{kind}'"
        if kind == "integer":
            return f"i{self.i}"
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
        # (code points <= units <= 2 x code points: the regular expression only near the bound)
        units = f"CHAR_LENGTH({self.scalar})"
        points = f"CHAR_LENGTH(REGEXP_REPLACE({self.scalar}, '[\\x{{10000}}-\\x{{10FFFF}}]', '_'))"
        if "minLength" in spec:
            n = int(spec["minLength"])
            short = f"CASE WHEN {units} < {n} THEN TRUE WHEN {units} >= {2 * n} THEN FALSE ELSE {points} < {n} END"
            found.append((f"{text} AND {short}", f"shorter than {n}"))
        if "maxLength" in spec:
            n = int(spec["maxLength"])
            long = f"CASE WHEN {units} <= {n} THEN FALSE WHEN {units} > {2 * n} THEN TRUE ELSE {points} > {n} END"
            found.append((f"{text} AND {long}", f"longer than {n}"))
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
            return f"({self.is_type('boolean')} AND {self.scalar} = '{str(value).lower()}')"
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


def _stage(inner: str, columns: list[str]) -> str:
    """SELECT *, columns FROM inner, each column computed once per record. Flink merges stacked
    projections and so would compute an expression once per reference; the expression list of a
    one-element UNNEST is evaluated once (a correlate, chained to its input)."""
    exprs = [c.rsplit(" AS ", 1) for c in columns]
    row = ", ".join(e for e, _ in exprs)
    names = ", ".join(n for _, n in exprs)
    return f"SELECT * FROM ({inner}) CROSS JOIN UNNEST(ARRAY[ROW({row})]) AS stage({names})"


def verdict_query(domain: Domain, source: str) -> str:
    """SELECT *, reason, detail, payload, event_id, event_time, ... FROM `source` (see the module doc).

    Records go through stages: decode; recognise a flat document (an object of scalars, the shape
    of every valid event) with one regular expression, whose values further regular expressions
    read (about 4 microseconds each); anything else is parsed with the JSON functions (about
    60 microseconds each), so malformed records cost more than valid ones.
    """
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
    for name in required:  # required but undeclared: only its presence is checked
        if name not in props:
            props[name] = _Property(len(props), name, {})
    extra_allowed = schema.get("additionalProperties", True)
    if extra_allowed not in (True, False):
        raise ConfigError(f"{domain.source}: additionalProperties must be true or false in Flink SQL")
    known_pair = "(?:" + "|".join(re.escape(_json_key(n)) for n in props) + ")" + WS + ":" + WS + VALUE
    flat_known = rf"^{WS}\{{{WS}(?:{known_pair}(?:{WS},{WS}{known_pair})*+)?{WS}\}}{WS}$"

    contract: list[tuple[str, str, str]] = []  # (condition, reason, detail)
    contract += [(f"NOT {props[n].present}", "missing_field", f"{n}: required") for n in required]
    for prop in props.values():
        condition = prop.wrong_type()
        if condition:
            contract.append((condition, "wrong_type", f"{prop.name}: not of type {' or '.join(prop.types)}"))
    for prop in props.values():
        contract += [(c, "contract_violation", d) for c, d in prop.violations()]
    if extra_allowed is False:
        contract.append(("doc_extra", "contract_violation", "additional properties"))

    event_time = props[domain.event_time_field].scalar
    ordered = [
        ("`value` IS NULL OR nbytes = 0", "empty", "the record has no value"),
        (
            f"nbytes > {domain.max_message_bytes}",
            "oversized",
            f"more bytes than max_message_bytes {domain.max_message_bytes}",
        ),
        ("NOT utf8", "invalid_encoding", "not UTF-8"),
        ("NOT doc_json", "invalid_json", "not JSON"),
        ("NOT doc_object", "not_an_object", "JSON, but not an object"),
        *contract,
        # what fastjsonschema's date-time accepts and Python's fromisoformat does not
        (
            f"SUBSTRING({event_time} FROM 18 FOR 2) = '60' OR SUBSTRING({event_time} FROM CHAR_LENGTH({event_time}) FOR 1) = 'z'",
            "invalid_event_time",
            "not a time",
        ),
    ]
    slow_json = (
        f"(txt IS JSON AND ((txt IS JSON OBJECT AND REGEXP(txt, {sql_string(OBJECT_END)})"
        f" AND NOT REGEXP(txt, {sql_string(FLAT_OBJECT_THEN_MORE)}))"
        f" OR (NOT txt IS JSON OBJECT AND (REGEXP(txt, {sql_string(SCALAR)}) OR REGEXP(txt, {sql_string(WHOLE_ARRAY)})))))"
    )
    present_count = " + ".join(f"CASE WHEN {p.present} THEN 1 ELSE 0 END" for p in props.values()) or "0"
    decoded = _stage(
        f"SELECT * FROM {source}",
        [
            "DECODE(`value`, 'UTF-8') AS txt",
            "CHAR_LENGTH(DECODE(`value`, 'ISO-8859-1')) AS nbytes",
            "ENCODE(DECODE(`value`, 'UTF-8'), 'UTF-8') = `value` AS utf8",
        ],
    )
    shaped = _stage(
        decoded,
        [
            f"COALESCE(REGEXP(txt, {sql_string(FLAT)}) AND NOT REGEXP(txt, {sql_string(DUPLICATE_KEY)}), FALSE) AS doc_flat"
        ],
    )
    extracted = _stage(
        shaped,
        [
            f"CASE WHEN doc_flat THEN TRUE ELSE COALESCE({slow_json}, FALSE) END AS doc_json",
            "CASE WHEN doc_flat THEN TRUE ELSE COALESCE(txt IS JSON OBJECT, FALSE) END AS doc_object",
            "CASE WHEN NOT doc_flat THEN JSON_QUERY(txt, '$.keys()') END AS doc_keys",
            f"CASE WHEN doc_flat THEN NOT REGEXP(txt, {sql_string(flat_known)}) END AS fast_extra",
            *(p.fast_raw() for p in props.values()),
            *(p.slow_wrapped() for p in props.values()),
        ],
    )
    valued = _stage(extracted, [p.fast_value() for p in props.values()])
    parsed = _stage(valued, [c for p in props.values() for c in p.parsed()])
    numbers = _stage(
        parsed,
        [
            *(c for p in props.values() for c in p.numeric()),
            f"CASE WHEN doc_flat THEN fast_extra ELSE CAST(JSON_VALUE(doc_keys, '$.length()') AS INT) > {present_count} END AS doc_extra",
        ],
    )
    # the number of the first failed check, then its reason and detail from that number
    failed = _stage(numbers, [f"{_case([(c, str(i)) for i, (c, _, _) in enumerate(ordered)])} AS failed_check"])
    # reason and detail from that number in the final projection: a CASE on one column is cheap
    # to repeat wherever Flink inlines it, and a stage less saves copying every column once more
    reason = " ".join(f"WHEN {i} THEN {sql_string(r)}" for i, (_, r, _) in enumerate(ordered))
    detail = " ".join(f"WHEN {i} THEN {sql_string(d)}" for i, (_, _, d) in enumerate(ordered))
    return f"""
SELECT *, CASE failed_check {reason} END AS reason, CASE failed_check {detail} END AS detail,
    DECODE(`value`, 'UTF-8') AS payload, {props[domain.dedup_key].scalar} AS event_id,
    CASE WHEN failed_check IS NULL THEN {event_time_sql(event_time)} END AS event_time
FROM ({failed})"""


def event_time_sql(text: str) -> str:
    """The UTC instant of a date-time that passed the checks: local time minus its offset (to
    microseconds). NULL, never an error, for text that is no date-time. (REGEXP_SUBSTR, not
    REGEXP_EXTRACT: Flink 2.0 compiles REGEXP_EXTRACT's pattern on every call.)"""
    fraction = f"REGEXP_SUBSTR({text}, '(?<=^.{{19}})\\.[0-9]+')"
    local = (
        f"TRY_CAST(CONCAT(SUBSTRING({text} FROM 1 FOR 10), ' ', SUBSTRING({text} FROM 12 FOR 8),"
        f" COALESCE(SUBSTRING({fraction} FROM 1 FOR 7), '')) AS TIMESTAMP(6))"
    )
    zone = f"REGEXP_SUBSTR({text}, '[+-][0-9]{{2}}:?[0-9]{{2}}$')"
    minutes = (
        f"(CASE WHEN SUBSTRING({zone} FROM 1 FOR 1) = '-' THEN -1 ELSE 1 END)"
        f" * (TRY_CAST(SUBSTRING({zone} FROM 2 FOR 2) AS INT) * 60"
        f" + TRY_CAST(SUBSTRING({zone} FROM CHAR_LENGTH({zone}) - 1 FOR 2) AS INT))"
    )
    offset = f"CASE WHEN UPPER(SUBSTRING({text} FROM CHAR_LENGTH({text}) FOR 1)) = 'Z' THEN 0 ELSE {minutes} END"
    return f"CAST(TIMESTAMPADD(MINUTE, -({offset}), {local}) AS TIMESTAMP_LTZ(6))"


def watermark_time_sql(value: str, field: str) -> str:
    """A record's event time for the watermark, to the second, cheaply from the raw value (in the
    source table's DDL, before any check): TIMESTAMP_LTZ(3), epoch when there is none to read.

    Flink evaluates this twice a record (in the source's watermark generator and as the column),
    so it reads the document once, with a pattern that starts with the key (a literal: Java
    searches for it with Boyer-Moore instead of trying a look-behind at every position)."""
    key = re.escape(_json_key(field)) + r'[ \t\n\r]*+:[ \t\n\r]*+"'
    time = r'[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:]{8}(?:[.][0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})"'
    found = f"REGEXP_SUBSTR(DECODE({value}, 'UTF-8'), {sql_string(key + time)})"
    # "yyyy-MM-dd HH:mm:ss" and the zone (XX: Z or +hhmm), for UNIX_TIMESTAMP's pattern: without
    # the key, the fraction, the zone's colon and the closing quote (Flink's REGEXP_REPLACE has no
    # group references)
    strip = sql_string("^" + key + '|[.][0-9]+|:(?=[0-9]{2}"$)|"$')
    text = f"REGEXP_REPLACE(REGEXP_REPLACE({found}, {strip}, ''), '[Tt]', ' ')"
    seconds = f"UNIX_TIMESTAMP({text}, 'yyyy-MM-dd HH:mm:ssXX')"
    return f"TO_TIMESTAMP_LTZ(GREATEST(COALESCE({seconds}, 0), 0) * 1000, 3)"
