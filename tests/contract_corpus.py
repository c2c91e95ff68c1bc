"""The shared corpus of Kafka record values every contract implementation must judge alike:
generated events (with duplicates, late, out-of-order and malformed ones), 3,000 fuzzed inputs,
raw garbage and the edge cases where JSON parsers differ."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from lakehouse.domains import Domain
from lakehouse.events.generator import Mix, generate

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def fuzzed(domain: Domain, count: int = 3000, seed: int = 7) -> list[bytes]:
    """Random bytes, valid events with bytes flipped, and valid events with a field replaced."""
    rng = random.Random(seed)
    valid = next(generate(domain, 1, mix=Mix(0, 0, 0, 0), seed=1, clock=lambda: NOW)).value
    values = []
    for _ in range(count):
        choice = rng.random()
        if choice < 0.4:
            value = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        elif choice < 0.8:
            cut = bytearray(valid)
            for _ in range(rng.randint(1, 5)):
                cut[rng.randrange(len(cut))] = rng.getrandbits(8)
            value = bytes(cut)
        else:
            event = json.loads(valid)
            event[rng.choice(list(event))] = rng.choice([None, 1.5, -1, [], {}, "", True, "x" * 100, 5.0, 1e300])
            value = json.dumps(event).encode()
        values.append(value)
    return values


def edge_cases(domain: Domain) -> list[bytes | None]:
    event = json.loads(next(generate(domain, 1, mix=Mix(0, 0, 0, 0), seed=2, clock=lambda: NOW)).value)
    text = json.dumps(event)
    time_field = domain.event_time_field

    def with_field(name: str, raw: str) -> bytes:
        return json.dumps({**event, name: "@@"}).replace('"@@"', raw).encode()

    numeric = next((n for n, s in domain.contract["properties"].items() if s.get("type") == "integer"), None)
    cases: list[bytes | None] = [
        None,
        b"",
        b" ",
        b"\x00",
        b"\xff\xfe\x00garbage",
        b"\xed\xa0\x80",  # an encoded surrogate: not UTF-8
        b"{not json",
        b"[1, 2, 3]",
        b"[1] x",
        b'"just a string"',
        b'"s" x',
        b"7",
        b"7 x",
        b"true x",
        b"null",
        b"[" * 3000 + b"]" * 3000,  # deeper than either parser goes
        b"x" * (domain.max_message_bytes + 1),
        b"{}",
        b"{} x",
        text.encode() + b" x",
        text.encode() + b"\x0b",
        text.encode() + b"\n",
        b"\n " + text.encode(),
        text[:-1].encode() + b', "extra": 1}',
        text[:-1].encode() + b', "extra": {"deep": [1, 2]}}',
        text.replace(", ", "} ", 1).encode(),  # the object closes early: the rest is garbage
        text.encode().replace(b"{", b'{"' + domain.dedup_key.encode() + b'": "dup-key-first", ', 1),
        text[:-1].encode() + b', "' + list(event)[-1].encode() + b'": [1]}',  # a key again, last: its value wins
        text[:-1].encode() + b', "extra": 1, "extra": 2}',  # an unknown key twice
        with_field(time_field, '"2026-11-20T10:00:00+05:30"'),  # a half-hour offset
        text.replace(f'"{time_field}": ', f'"{time_field}"  \t\n\n            :\r\n            ').encode(),
        with_field(time_field, '"2026-11-20T10:00:00.250-03:00"'),
        # a key's quoted name inside a string value
        with_field(domain.dedup_key, '"x\\"' + domain.event_time_field + '\\": \\"2026-01-01T00:00:00Z"'),
        with_field(time_field, '"2026-11-20T10:00:00"'),
        with_field(time_field, '"2026-11-20T10:00:00z"'),
        with_field(time_field, '"2026-11-20t10:00:00Z"'),
        with_field(time_field, '"2026-11-20T23:59:60Z"'),
        with_field(time_field, '"2026-02-29T10:00:00Z"'),
        with_field(time_field, '"2028-02-29T10:00:00.123456789+05:30"'),
        with_field(time_field, '"2026-11-20T10:00:00-0830"'),
        with_field(time_field, '"2026-11-20 10:00:00Z"'),
        with_field(time_field, "1763632800"),
        with_field(domain.dedup_key, '"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00"'),
        with_field(domain.dedup_key, '"' + "\U0001f600" * 33 + '"'),
        with_field(domain.dedup_key, '"tab\\tinside\\u0000"'),
        with_field(domain.dedup_key, "NaN"),
    ]
    if numeric:
        for raw in (
            "5.0",
            "1E2",
            "1e400",
            "-0",
            "5.5",
            "123456789012345678901234567890",
            "true",
            '"5"',
            "[5]",
            "Infinity",
        ):
            cases.append(with_field(numeric, raw))
    for name in list(event)[:4]:
        cases.append(json.dumps({k: v for k, v in event.items() if k != name}).encode())
    # each bound of the contract, on it and one past it (off-by-one rules differ here only)
    for name, spec in domain.contract["properties"].items():
        if name == time_field:
            continue
        for n in (spec.get("minLength"), spec.get("maxLength")):
            if n is not None:
                for length in (n - 1, n, n + 1):
                    if length >= 0:
                        cases.append(json.dumps({**event, name: "a" * length}).encode())
        for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if keyword in spec:
                for value in (spec[keyword] - 1, spec[keyword], spec[keyword] + 1, spec[keyword] + 0.5):
                    cases.append(json.dumps({**event, name: value}).encode())
    return cases


def corpus(domain: Domain) -> list[bytes | None]:
    generated = [r.value for r in generate(domain, 3000, mix=Mix(0.05, 0.05, 0.05, 0.2), seed=11, clock=lambda: NOW)]
    return generated + fuzzed(domain) + edge_cases(domain)
