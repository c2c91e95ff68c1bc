"""Realistic events for any configured domain, with duplicates, late, out-of-order and malformed ones.

Pure: it yields records and never touches Kafka (see `send.py`). Field values follow the
domain's `generator.fields` rules, falling back to the contract's types, so a new domain
needs configuration only. Everything is drawn from one seeded RNG, so a run is repeatable.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lakehouse.domains import Domain, FieldRule
from lakehouse.errors import ConfigError

VALID_KINDS = ("valid", "late", "out_of_order")
MALFORMED_KINDS = ("invalid_json", "missing_field", "wrong_type", "oversized")


@dataclass(frozen=True)
class Mix:
    """Fractions of the records of each special kind; the rest are plain valid events."""

    duplicates: float = 0.05
    late: float = 0.03
    out_of_order: float = 0.05
    malformed: float = 0.02

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0 <= value <= 1:
                raise ConfigError(f"fraction of {name} must be between 0 and 1, not {value}")
        if sum(vars(self).values()) > 1:
            raise ConfigError(f"fractions add up to more than 1: {vars(self)}")


@dataclass(frozen=True)
class Record:
    kind: str
    key: bytes | None
    value: bytes
    event_id: str | None  # the dedup key of events that must reach bronze; None for malformed


def roman(number: int) -> str | None:
    if not 1 <= number <= 3999:
        return None
    out = []
    for value, numeral in (
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ):
        count, number = divmod(number, value)
        out.append(numeral * count)
    return "".join(out)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventFactory:
    """Makes one event dict at a time from the domain's generator rules."""

    def __init__(self, domain: Domain, rng: random.Random):
        self.domain = domain
        self.rng = rng

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def fallback(self, name: str) -> object:
        spec = self.domain.contract["properties"][name]
        if "enum" in spec:
            return self.rng.choice(spec["enum"])
        kind = spec.get("type", "string")
        kind = kind[0] if isinstance(kind, list) else kind
        if kind == "integer":
            return self.rng.randint(spec.get("minimum", 0), spec.get("maximum", 1000))
        if kind == "number":
            return round(self.rng.uniform(spec.get("minimum", 0), spec.get("maximum", 1000)), 2)
        if kind == "boolean":
            return self.rng.random() < 0.5
        return "".join(self.rng.choices(string.ascii_lowercase, k=8))

    def apply(self, rule: FieldRule, event: dict) -> None:
        args = rule.args
        if rule.kind == "choices":
            choice = self.rng.choice(args["choices"])
            values = choice if len(rule.fields) > 1 else [choice]
        elif rule.kind == "pool":
            values = [f"{args['pool']}{self.rng.randrange(int(args['size']))}"]
        elif rule.kind == "int":
            low, high = args["int"]
            values = [self.rng.randint(int(low), int(high))]
        elif rule.kind == "roman_of":
            values = [roman(int(event[args["roman_of"]]))]
        else:  # when_null: the kinds are checked when the domain is loaded
            values = [args["then"] if event.get(args["when_null"]) is None else args["else"]]
        event.update(zip(rule.fields, values, strict=True))

    def make(self, event_time: datetime) -> dict:
        event: dict = {}
        covered = {name for rule in self.domain.generator for name in rule.fields}
        for name in self.domain.fields:
            if name == self.domain.dedup_key:
                event[name] = self.new_id()
            elif name == self.domain.event_time_field:
                event[name] = iso(event_time)
            elif name not in covered:
                event[name] = self.fallback(name)
        for rule in self.domain.generator:
            self.apply(rule, event)
        return {name: event[name] for name in self.domain.fields}  # contract order


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def malform(kind: str, event: dict, domain: Domain, rng: random.Random) -> bytes:
    if kind == "invalid_json":
        text = encode(event)
        return text[: rng.randint(1, len(text) - 1)]
    broken = dict(event)
    if kind == "missing_field":
        del broken[rng.choice(domain.contract.get("required", list(event)))]
    elif kind == "wrong_type":
        props = domain.contract["properties"]
        name = rng.choice(list(props))
        broken[name] = "not-a-number" if props[name].get("type") in ("integer", "number") else 12345
    elif kind == "oversized":
        broken["padding"] = "x" * (domain.max_message_bytes + 1)
    return encode(broken)


def generate(
    domain: Domain,
    count: int,
    mix: Mix = Mix(),
    days: float = 0,
    seed: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[Record]:
    """`count` records. With days > 0, event times run evenly over the last `days` days up to
    now (a historical load); with days == 0 they are the clock's time when each is made."""
    rng = random.Random(seed)
    factory = EventFactory(domain, rng)
    start = clock() - timedelta(days=days)
    step = timedelta(days=days) / max(count, 1)
    sent_valid: list[Record] = []
    thresholds = []
    total = 0.0
    for kind, fraction in (
        ("duplicate", mix.duplicates),
        ("late", mix.late),
        ("out_of_order", mix.out_of_order),
        ("malformed", mix.malformed),
    ):
        total += fraction
        thresholds.append((total, kind))
    lateness = domain.allowed_lateness
    for i in range(count):
        draw = rng.random()
        kind = next((k for limit, k in thresholds if draw < limit), "valid")
        if kind == "duplicate" and not sent_valid:
            kind = "valid"
        if kind == "duplicate":
            original = rng.choice(sent_valid)  # possibly much earlier: any event sent so far
            yield Record("duplicate", original.key, original.value, None)
            continue
        now = start + step * i if days else clock()
        if kind == "late":  # far enough behind to be past the allowed lateness: hours or days
            event_time = now - lateness - timedelta(seconds=rng.uniform(3600, 3 * 86400))
        elif kind == "out_of_order":  # behind, but within the allowed lateness
            event_time = now - timedelta(seconds=rng.uniform(1, max(lateness.total_seconds() / 2, 2)))
        else:
            event_time = now
        event = factory.make(event_time)
        key = str(event[domain.message_key]).encode()
        if kind == "malformed":
            bad_kind = rng.choice(MALFORMED_KINDS)
            yield Record(bad_kind, key, malform(bad_kind, event, domain, rng), None)
            continue
        record = Record(kind, key, encode(event), str(event[domain.dedup_key]))
        sent_valid.append(record)
        yield record
