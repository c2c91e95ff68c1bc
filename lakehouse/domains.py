"""Event domains as configuration: catalog/domains/<name>.yaml.

A domain declares its topic and dead-letter topic, the event contract (JSON Schema), the
message key, dedup key, event-time field, allowed lateness, and its tables. Everything that
handles events (generator, Flink job, Spark jobs, DAGs, tests) is driven by these files, so
a new domain is a new YAML file (plus its table definitions), not new code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from lakehouse.catalog.definitions import load_definitions, parse_duration
from lakehouse.errors import ConfigError


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    dead_letter: str


@dataclass(frozen=True)
class Rank:
    """Keep the top `keep` rows per `within` group, ranked by `order_by`, numbered in `column`."""

    column: str
    within: tuple[str, ...]
    order_by: tuple[str, ...]
    keep: int | None = None


@dataclass(frozen=True)
class GoldTable:
    """A daily aggregate of the domain's silver table: one row per `grain` (which starts with
    event_date), each measure a Spark SQL aggregate expression over silver columns."""

    table: str
    grain: tuple[str, ...]
    measures: dict[str, str]
    rank: Rank | None = None

    @property
    def columns(self) -> list[str]:
        return [*self.grain, *self.measures, *([self.rank.column] if self.rank else [])]


SEVERITIES = ("fail", "warn")


@dataclass(frozen=True)
class Check:
    """One Great Expectations expectation: its type (`expect_...`), its kwargs, and what a
    failure does: `fail` keeps the batch off `main` and fails the run, `warn` is recorded only."""

    type: str
    kwargs: dict
    severity: str = "fail"


@dataclass(frozen=True)
class GoldQuality:
    """A gold table's expectations, and whether its measures must equal the same aggregates
    recomputed from silver for the dates a run touched."""

    expectations: tuple[Check, ...] = ()
    matches_silver: bool = False


@dataclass(frozen=True)
class Quality:
    silver: tuple[Check, ...] = ()
    gold: dict[str, GoldQuality] = field(default_factory=dict)


def parse_checks(raw: list | None, where: str) -> tuple[Check, ...]:
    """`- expect_x: {kwargs}` entries, each with an optional `severity: fail|warn` (default fail)."""
    checks = []
    for number, entry in enumerate(raw or [], 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expectation {number} must be a mapping like `expect_...: {{column: x}}`")
        severity = entry.get("severity", "fail")
        types = [k for k in entry if k != "severity"]
        if len(types) != 1 or not types[0].startswith("expect_"):
            raise ConfigError(f"{where}: expectation {number} needs exactly one `expect_...` key, got {types}")
        if severity not in SEVERITIES:
            raise ConfigError(f"{where}: expectation {number} ({types[0]}): severity must be fail or warn")
        kwargs = entry[types[0]] or {}
        if not isinstance(kwargs, dict):
            raise ConfigError(f"{where}: expectation {number} ({types[0]}): its arguments must be a mapping")
        checks.append(Check(type=types[0], kwargs=kwargs, severity=severity))
    return tuple(checks)


def parse_quality(raw: dict | None, gold: tuple[GoldTable, ...], where: str) -> Quality:
    raw = raw or {}
    unknown = sorted(set(raw) - {"silver", "gold"})
    if unknown:
        raise ConfigError(f"{where}: quality: unknown keys {unknown} (silver, gold)")
    tables = {}
    known = {g.table for g in gold}
    for table, spec in (raw.get("gold") or {}).items():
        if table not in known:
            raise ConfigError(f"{where}: quality.gold.{table}: not a gold table of this domain ({sorted(known)})")
        extra = sorted(set(spec or {}) - {"expectations", "matches_silver"})
        if extra:
            raise ConfigError(f"{where}: quality.gold.{table}: unknown keys {extra} (expectations, matches_silver)")
        tables[table] = GoldQuality(
            expectations=parse_checks((spec or {}).get("expectations"), f"{where}: quality.gold.{table}"),
            matches_silver=bool((spec or {}).get("matches_silver", False)),
        )
    return Quality(silver=parse_checks(raw.get("silver"), f"{where}: quality.silver"), gold=tables)


# Not in a domain's YAML: one table holds every domain's rows failing their silver rules
# (each row names its domain).
QUARANTINE = "silver.quarantine"


@dataclass(frozen=True)
class Silver:
    """Bronze -> silver: each silver column a Spark SQL expression over the payload's fields and
    the bronze envelope; a row failing a rule (a boolean expression) is quarantined under its name."""

    columns: dict[str, str]
    rules: dict[str, str] = field(default_factory=dict)


def _expressions(raw, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(f"{where}: must map names to Spark SQL expressions (strings)")
    return {str(name): value for name, value in raw.items()}


def parse_silver(raw: dict | None, where: str) -> Silver | None:
    if raw is None:
        return None
    unknown = sorted(set(raw) - {"columns", "rules"})
    if unknown:
        raise ConfigError(f"{where}: silver: unknown keys {unknown} (columns, rules)")
    if not raw.get("columns"):
        raise ConfigError(f"{where}: silver.columns: give each silver column's expression")
    return Silver(
        columns=_expressions(raw["columns"], f"{where}: silver.columns"),
        rules=_expressions(raw.get("rules") or {}, f"{where}: silver.rules"),
    )


# A generator rule's kind and the keys it takes (lakehouse.events.generator applies them).
GENERATOR_RULES = {
    "choices": {"choices"},  # one of the listed values (tuples for several fields at once)
    "pool": {"pool", "size"},  # prefix + a number below size
    "int": {"int"},  # [low, high], inclusive
    "roman_of": {"roman_of"},  # the Roman numeral of another field, null outside 1..3999
    "when_null": {"when_null", "then", "else"},  # `then` if the named field is null, else `else`
}


@dataclass(frozen=True)
class FieldRule:
    """How the generator fills one field, or several together (`city,country: {choices: ...}`)."""

    fields: tuple[str, ...]
    kind: str
    args: dict


def parse_generator(raw: dict | None, contract_fields: list[str], where: str) -> tuple[FieldRule, ...]:
    raw = raw or {}
    unknown = sorted(set(raw) - {"fields"})
    if unknown:
        raise ConfigError(f"{where}: generator: unknown keys {unknown} (fields)")
    rules = []
    for key, rule in (raw.get("fields") or {}).items():
        at = f"{where}: generator.fields.{key}"
        fields = tuple(key.split(","))
        strangers = [name for name in fields if name not in contract_fields]
        if strangers:
            raise ConfigError(f"{at}: {strangers} are not fields of the contract")
        kinds = [kind for kind in GENERATOR_RULES if isinstance(rule, dict) and kind in rule]
        if len(kinds) != 1:
            raise ConfigError(f"{at}: needs exactly one of {sorted(GENERATOR_RULES)}, got {rule!r}")
        wrong = sorted(set(rule) ^ GENERATOR_RULES[kinds[0]])
        if wrong:
            raise ConfigError(f"{at}: a {kinds[0]} rule takes {sorted(GENERATOR_RULES[kinds[0]])}; check {wrong}")
        referenced = rule.get("roman_of", rule.get("when_null"))
        if referenced is not None and referenced not in contract_fields:
            raise ConfigError(f"{at}: {kinds[0]} names {referenced!r}, which is not a field of the contract")
        rules.append(FieldRule(fields, kinds[0], dict(rule)))
    return tuple(rules)


@dataclass(frozen=True)
class DomainTables:
    bronze: str
    dead_letter: str
    silver: str


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    event_type: str
    topic: Topic
    message_key: str
    dedup_key: str
    event_time_field: str
    allowed_lateness: timedelta
    freshness_sla: timedelta
    max_message_bytes: int
    tables: DomainTables
    contract: dict
    generator: tuple[FieldRule, ...] = ()
    silver: Silver | None = None
    gold: tuple[GoldTable, ...] = ()
    quality: Quality = Quality()
    default: bool = False
    source: Path | None = None

    @property
    def fields(self) -> list[str]:
        return list(self.contract.get("properties", {}))


REQUIRED_KEYS = {
    "name",
    "description",
    "event_type",
    "topic",
    "message_key",
    "dedup_key",
    "event_time_field",
    "allowed_lateness",
    "freshness_sla",
    "max_message_bytes",
    "tables",
    "contract",
}
OPTIONAL_KEYS = {"generator", "default", "silver", "gold", "quality"}
GOLD_COLUMNS = ("generated_at", "run_id")  # written by the gold job on every row


def parse_gold(raw: dict | None, where: str) -> tuple[GoldTable, ...]:
    tables = []
    for name, spec in (raw or {}).items():
        try:
            rank = spec.get("rank")
            table = GoldTable(
                table=name,
                grain=tuple(spec["grain"]),
                measures=dict(spec["measures"]),
                rank=Rank(**{**rank, "within": tuple(rank["within"]), "order_by": tuple(rank["order_by"])})
                if rank
                else None,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{where}: gold table {name}: needs grain, measures and optionally rank ({exc})") from exc
        if table.grain[:1] != ("event_date",):
            raise ConfigError(f"{where}: gold table {name}: grain must start with event_date (gold is daily)")
        if table.rank and not set(table.rank.within) <= set(table.grain):
            raise ConfigError(f"{where}: gold table {name}: rank.within must be columns of the grain")
        tables.append(table)
    return tuple(tables)


def parse_domain(raw: dict, source: Path | None = None) -> Domain:
    where = str(source) if source else "domain"
    missing = sorted(REQUIRED_KEYS - set(raw))
    if missing:
        raise ConfigError(f"{where}: missing keys {missing}")
    unknown = sorted(set(raw) - REQUIRED_KEYS - OPTIONAL_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}")
    try:
        Draft202012Validator.check_schema(raw["contract"])
    except SchemaError as exc:
        raise ConfigError(f"{where}: contract is not a valid JSON Schema: {exc.message}") from exc
    try:
        topic = Topic(**raw["topic"])
        tables = DomainTables(**raw["tables"])
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    gold = parse_gold(raw.get("gold"), where)
    domain = Domain(
        name=raw["name"],
        description=raw["description"],
        event_type=raw["event_type"],
        topic=topic,
        message_key=raw["message_key"],
        dedup_key=raw["dedup_key"],
        event_time_field=raw["event_time_field"],
        allowed_lateness=parse_duration(raw["allowed_lateness"]),
        freshness_sla=parse_duration(raw["freshness_sla"]),
        max_message_bytes=int(raw["max_message_bytes"]),
        tables=tables,
        contract=raw["contract"],
        generator=parse_generator(raw.get("generator"), list(raw["contract"].get("properties", {})), where),
        silver=parse_silver(raw.get("silver"), where),
        gold=gold,
        quality=parse_quality(raw.get("quality"), gold, where),
        default=bool(raw.get("default", False)),
        source=source,
    )
    required = set(domain.contract.get("required", []))
    for role in ("message_key", "dedup_key", "event_time_field"):
        name = getattr(domain, role)
        if name not in required:
            raise ConfigError(f"{where}: {role} {name!r} must be a required field of the contract")
    if domain.topic.partitions < 1:
        raise ConfigError(f"{where}: topic.partitions must be at least 1")
    return domain


def load_domains(definitions_dir: Path) -> dict[str, Domain]:
    """All domains under definitions_dir/domains, checked against the table definitions."""
    definitions = {d.identifier: d for d in load_definitions(definitions_dir)}
    domains: dict[str, Domain] = {}
    for path in sorted((definitions_dir / "domains").glob("*.yaml")):
        domain = parse_domain(yaml.safe_load(path.read_text()) or {}, path)
        if domain.name != path.stem:
            raise ConfigError(f"{path}: declares domain {domain.name!r}; the file must be named {domain.name}.yaml")
        gold = [g.table for g in domain.gold]
        wanted = [domain.tables.bronze, domain.tables.dead_letter, domain.tables.silver, *gold]
        undefined = [t for t in wanted if t not in definitions]
        if undefined:
            raise ConfigError(f"{path}: tables {undefined} have no definition under {definitions_dir / 'tables'}")
        for spec in domain.gold:
            defined = {c.name for c in definitions[spec.table].columns}
            missing = [c for c in (*spec.columns, *GOLD_COLUMNS) if c not in defined]
            if missing:
                raise ConfigError(f"{path}: gold table {spec.table} is missing columns {missing} in its definition")
        domains[domain.name] = domain
    topics = [d.topic.name for d in domains.values()] + [d.topic.dead_letter for d in domains.values()]
    clashes = sorted({t for t in topics if topics.count(t) > 1})
    if clashes:
        raise ConfigError(f"topics used by more than one domain: {clashes}")
    defaults = [d.name for d in domains.values() if d.default]
    if len(defaults) > 1:
        raise ConfigError(f"more than one default domain: {defaults}")
    return domains


def get_domain(definitions_dir: Path, name: str | None = None) -> Domain:
    """The named domain, or the default one; an unknown name lists the known ones."""
    domains = load_domains(definitions_dir)
    if name is None:
        defaults = [d for d in domains.values() if d.default]
        if not defaults:
            raise ConfigError("no domain is marked `default: true`; name one with --domain")
        return defaults[0]
    if name not in domains:
        raise ConfigError(f"unknown domain {name!r}; known domains: {', '.join(sorted(domains)) or 'none'}")
    return domains[name]
