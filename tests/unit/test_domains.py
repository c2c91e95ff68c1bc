"""Domains as configuration: loading, validation, and a third domain defined only in test data."""

import pytest
import yaml

from lakehouse.domains import get_domain, load_domains, parse_duration
from lakehouse.errors import ConfigError
from lakehouse.events.contracts import Contract, check_record
from lakehouse.events.generator import Mix, generate
from lakehouse.settings import PROJECT_ROOT
from tests.helpers import write_clicks_catalog


@pytest.fixture
def catalog_with_clicks(tmp_path):
    return write_clicks_catalog(tmp_path)


def test_shipped_domains():
    domains = load_domains(PROJECT_ROOT / "catalog")
    assert set(domains) == {"sales", "conversions"}
    assert get_domain(PROJECT_ROOT / "catalog").name == "sales"  # the default
    sales = domains["sales"]
    assert sales.topic.name == "sales.events" and sales.topic.dead_letter == "sales.events.dlq"
    assert sales.dedup_key == "event_id" and sales.event_time_field == "event_time"
    assert sales.allowed_lateness.total_seconds() == 7200
    assert set(sales.fields) >= {"order_id", "customer_id", "salesman_id", "unit_price_cents", "currency"}
    assert set(domains["conversions"].fields) == {
        "event_id",
        "event_time",
        "user_id",
        "input_number",
        "output_numeral",
        "status",
        "latency_ms",
    }


def test_third_domain_needs_configuration_only(catalog_with_clicks):
    domain = get_domain(catalog_with_clicks, "clicks")
    validator = Contract(domain.contract)
    records = list(generate(domain, 500, mix=Mix(duplicates=0, late=0, out_of_order=0, malformed=0), seed=3))
    verdicts = [check_record(domain, validator, r.value) for r in records]
    assert all(v.valid for v in verdicts), [v.detail for v in verdicts if not v.valid][:3]
    assert {v.event["page"] for v in verdicts} <= {"home", "search", "product", "cart", "checkout"}
    assert all(v.event["session_id"].startswith("sess-") for v in verdicts)
    assert all(r.key == v.event["session_id"].encode() for r, v in zip(records, verdicts, strict=True))
    assert len({r.event_id for r in records}) == 500


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("contract"), r"missing keys \['contract'\]"),
        (lambda d: d.update(dedup_key="nope"), r"dedup_key 'nope' must be a required field"),
        (lambda d: d.update(allowed_lateness="two hours"), r"invalid duration 'two hours'"),
        (lambda d: d["contract"].update(type="objekt"), r"contract is not a valid JSON Schema"),
        (lambda d: d["tables"].update(silver="silver.missing"), r"\['silver.missing'\] have no definition"),
        (lambda d: d.update(colour="blue"), r"unknown keys \['colour'\]"),
        (lambda d: d.update(gold={"gold.x": {"grain": ["page"]}}), r"gold table gold.x: needs grain, measures"),
        (
            lambda d: d.update(gold={"gold.x": {"grain": ["page", "event_date"], "measures": {"n": "count(*)"}}}),
            r"gold table gold.x: grain must start with event_date",
        ),
        (
            lambda d: d.update(
                gold={
                    "gold.daily_sales_by_city": {
                        "grain": ["event_date", "city"],
                        "measures": {"orders": "count(*)"},
                        "rank": {"column": "r", "within": ["country"], "order_by": ["orders DESC"]},
                    }
                }
            ),
            r"rank.within must be columns of the grain",
        ),
        (
            lambda d: d.update(gold={"gold.daily_sales_by_city": {"grain": ["event_date"], "measures": {"n": "1"}}}),
            r"gold table gold.daily_sales_by_city is missing columns \['n'\]",
        ),
        # silver and generator are typed when loaded: a wrong key names the file and the key
        (lambda d: d.update(silver={"colums": {"page": "page"}}), r"clicks.yaml: silver: unknown keys \['colums'\]"),
        (lambda d: d.update(silver={"rules": {"r": "true"}}), r"clicks.yaml: silver.columns: give each"),
        (lambda d: d.update(silver={"columns": {"page": 1}}), r"silver.columns: must map names to Spark SQL"),
        (lambda d: d["generator"].update(feilds={}), r"clicks.yaml: generator: unknown keys \['feilds'\]"),
        (
            lambda d: d["generator"]["fields"].update(pages={"choices": ["home"]}),
            r"generator.fields.pages: \['pages'\] are not fields of the contract",
        ),
        (
            lambda d: d["generator"]["fields"].update(page={"choice": ["home"]}),
            r"generator.fields.page: needs exactly one of",
        ),
        (
            lambda d: d["generator"]["fields"].update(session_id={"pool": "s-", "sise": 3}),
            r"generator.fields.session_id: a pool rule takes \['pool', 'size'\]; check \['sise', 'size'\]",
        ),
        (
            lambda d: d["generator"]["fields"].update(page={"when_null": "nope", "then": "a", "else": "b"}),
            r"when_null names 'nope', which is not a field of the contract",
        ),
    ],
)
def test_invalid_domain_is_refused(catalog_with_clicks, edit, message):
    path = catalog_with_clicks / "domains/clicks.yaml"
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message):
        load_domains(catalog_with_clicks)


def test_unknown_domain_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown domain 'nope'; known domains: conversions, sales"):
        get_domain(PROJECT_ROOT / "catalog", "nope")


def test_durations():
    assert parse_duration("90s").total_seconds() == 90
    assert parse_duration("3d").days == 3
    assert parse_duration(30).total_seconds() == 30
