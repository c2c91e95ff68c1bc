"""The quality gate's configuration: `quality:` in a domain's YAML, checked at load time and
built into Great Expectations expectations, and its verdicts on a DataFrame, without any service."""

from __future__ import annotations

from datetime import date

import pytest

from lakehouse.domains import Check, load_domains, parse_quality
from lakehouse.errors import ConfigError, LakehouseError
from lakehouse.medallion import quality
from lakehouse.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def domains():
    return load_domains(PROJECT_ROOT / "catalog")


def test_every_shipped_expectation_builds_with_its_severity(domains):
    for domain in domains.values():
        built = quality.suite_expectations(domain.quality.silver)
        assert [e.expectation_type for e in built] == [c.type for c in domain.quality.silver]
        assert [str(e.severity.value) for e in built] == [
            {"fail": "critical", "warn": "warning"}[c.severity] for c in domain.quality.silver
        ]
        for spec in domain.gold:  # every gold table is checked, against silver too
            assert domain.quality.gold[spec.table].matches_silver
    matches = quality.matches_silver_expectation("silver.sales_orders VERSION AS OF 1")
    assert (matches.expectation_type, matches.value, str(matches.severity.value)) == (
        "expect_table_row_count_to_equal",
        0,
        "critical",
    )
    assert matches.meta == {"name": quality.MATCHES_SILVER, "against": "silver.sales_orders VERSION AS OF 1"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"silver": [{"expect_a": {}, "expect_b": {}}]}, r"quality.silver: expectation 1 needs exactly one"),
        ({"silver": [{"not_an_expectation": {}}]}, r"needs exactly one `expect_...` key"),
        ({"silver": [{"expect_x": {}, "severity": "error"}]}, r"severity must be fail or warn"),
        ({"silver": [{"expect_x": ["column"]}]}, r"its arguments must be a mapping"),
        ({"gold": {"gold.unknown": {}}}, r"quality.gold.gold.unknown: not a gold table of this domain"),
        ({"gold": {"gold.t": {"expect": []}}}, r"unknown keys \['expect'\]"),
        ({"bronze": []}, r"quality: unknown keys \['bronze'\]"),
    ],
)
def test_wrong_quality_configuration_fails_at_load_naming_the_place(domains, raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_quality(raw, (*domains["sales"].gold, _table("gold.t")), "sales.yaml")


def test_unknown_expectation_or_argument_is_named():
    with pytest.raises(LakehouseError, match="expect_prices_to_be_fair not found"):
        quality.suite_expectations((Check("expect_prices_to_be_fair", {}),))
    with pytest.raises(LakehouseError, match="colum"):
        quality.suite_expectations((Check("expect_column_values_to_not_be_null", {"colum": "city"}),))


def test_cross_table_query_compares_every_measure_null_safely(domains):
    [spec] = [g for g in domains["sales"].gold if g.table == "gold.daily_top_salesmen"]
    query = quality.matches_silver_query(spec, "silver.sales_orders", [date(2025, 1, 1), date(2025, 1, 2)])
    assert "LEFT JOIN" in query  # ranked: gold keeps the top 5, so only gold's rows are compared
    assert "event_date IN (DATE'2025-01-01', DATE'2025-01-02')" in query
    assert all(f"NOT (g.{m} <=> s.{m})" in query for m in spec.measures)
    [by_city] = [g for g in domains["sales"].gold if g.table == "gold.daily_sales_by_city"]
    assert "FULL OUTER JOIN" in quality.matches_silver_query(by_city, "silver.sales_orders", [date(2025, 1, 1)])


def _table(name):
    from lakehouse.domains import GoldTable

    return GoldTable(table=name, grain=("event_date",), measures={"n": "count(*)"})


def test_pandas_and_spark_data_sources_give_the_same_verdicts(local_spark, domains, tmp_path, monkeypatch):
    """Small batches are validated with GX's pandas data source, large ones with its Spark one
    (quality.pandas_max_rows): both must judge a batch alike."""
    monkeypatch.setenv(quality.CONTEXT_DIR_VARIABLE, str(tmp_path / "quality"))
    good = {"order_id": "o-1", "event_id": "e-1", "unit_price_cents": 500, "city": "Paris", "country": "FR"}
    rows = [
        good,
        {**good, "event_id": "e-2", "order_id": None},  # not null: fails
        {**good, "event_id": "e-2", "unit_price_cents": 0},  # unique (e-2 twice) and between: fail
        {**good, "event_id": "e-4", "city": "Springfield", "country": "fr"},  # in set (warn), regex: fail
    ]
    frame = local_spark.createDataFrame(
        [{**r, "quantity": 3} for r in rows],
        "order_id string, event_id string, unit_price_cents bigint, city string, country string, quantity int",
    ).cache()
    batch = quality.Batch(
        "silver.sales_orders",
        "silver_sales_orders_engines",
        frame,
        quality.suite_expectations(domains["sales"].quality.silver),
    )
    try:
        verdicts = {}
        for engine, limit in (("pandas", 10), ("spark", 0)):
            [report] = quality.validate(local_spark, [batch], f"engines-{engine}", pandas_max_rows=limit)
            verdicts[engine] = {
                o.expectation: (o.success, o.unexpected_count, sorted(map(str, o.sample or [])))
                for o in report.outcomes
            }
    finally:
        frame.unpersist()
    assert verdicts["pandas"] == verdicts["spark"]
    assert verdicts["spark"] == {
        "expect_column_values_to_not_be_null": (False, 1, ["None"]),
        "expect_column_values_to_be_unique": (False, 2, ["e-2", "e-2"]),
        "expect_column_values_to_be_between": (False, 1, ["0"]),
        "expect_column_values_to_be_in_set": (False, 1, ["Springfield"]),
        "expect_column_values_to_match_regex": (False, 1, ["fr"]),
        "expect_column_mean_to_be_between": (True, None, []),
    }


def test_the_data_docs_index_lists_a_bounded_number_of_validations(tmp_path):
    """The index reads every validation it lists on each build; unbounded, every gate would get
    slower with each run ever made."""
    context = quality._context(str(tmp_path))
    site = context.list_data_docs_sites()["local_site"]
    assert site["site_index_builder"]["validation_results_limit"] == quality.DOCS_VALIDATIONS
    assert "validation_results_limit: 200" in (tmp_path / "gx/great_expectations.yml").read_text()


def test_the_gate_reads_only_the_columns_its_expectations_name():
    import great_expectations as gx

    columns = ["event_id", "order_id", "city", "country", "quantity"]
    named = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="order_id"),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["country", "city"]),
        gx.expectations.ExpectColumnPairValuesToBeEqual(column_A="event_id", column_B="order_id"),
    ]
    assert quality.expectation_columns(named, columns) == ["event_id", "order_id", "city", "country"]
    # A table-level expectation, or a row condition on another column, needs every column.
    assert (
        quality.expectation_columns([*named, gx.expectations.ExpectTableColumnsToMatchSet(column_set=[])], columns)
        is None
    )
    conditional = gx.expectations.ExpectColumnValuesToNotBeNull(
        column="city", row_condition="quantity > 1", condition_parser="pandas"
    )
    assert quality.expectation_columns([conditional], columns) is None
