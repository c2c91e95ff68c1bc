"""The lakehouse for analysts, without Spark: Iceberg tables read with PyIceberg into Arrow,
queried with DuckDB SQL under their catalog names (`gold.daily_sales_by_city`).

    from lakehouse.analytics import Lakehouse
    lh = Lakehouse()
    lh.sql("SELECT city, sum(revenue_cents) FROM gold.daily_sales_by_city GROUP BY city")

Each query reads the current snapshot of the tables it names (or, with `as_of`, the snapshot
current at that time). Fine for gold-sized data; use Spark for large scans.
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa
from pyiceberg.table import Table

from lakehouse.domains import GoldTable
from lakehouse.engines.iceberg import load_catalog
from lakehouse.errors import ConfigError
from lakehouse.settings import Settings, load_settings


class Lakehouse:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self.catalog = load_catalog(self.settings)
        self.db = duckdb.connect()

    def tables(self) -> list[str]:
        return sorted(
            f"{ns[0]}.{name}" for ns in self.catalog.list_namespaces() for _, name in self.catalog.list_tables(ns)
        )

    def table(self, name: str) -> Table:
        return self.catalog.load_table(name)

    def arrow(self, name: str, snapshot_id: int | None = None) -> pa.Table:
        return self.table(name).scan(snapshot_id=snapshot_id).to_arrow()

    def sql(self, query: str, as_of: datetime | None = None) -> pd.DataFrame:
        """Run DuckDB SQL over the catalog's tables named in `query`, as of now or `as_of`."""
        for name in self.tables():
            if not re.search(rf"\b{re.escape(name)}\b", query):
                continue
            snapshot = self.snapshot_at(name, as_of) if as_of else None
            namespace = name.split(".")[0]
            self.db.execute(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
            data = self.arrow(name, snapshot)  # noqa: F841 (DuckDB reads the local variable by name)
            self.db.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM data")
        return self.db.execute(query).df()

    def snapshots(self, name: str) -> pd.DataFrame:
        """The table's snapshots, oldest first: id, time, operation and row counts."""
        rows = []
        for s in self.table(name).snapshots():
            summary = s.summary.additional_properties if s.summary else {}
            rows.append(
                {
                    "snapshot_id": s.snapshot_id,
                    "committed_at": pd.Timestamp(s.timestamp_ms, unit="ms", tz="UTC"),
                    "operation": s.summary.operation.value if s.summary else None,
                    "added_records": int(summary.get("added-records", 0)),
                    "deleted_records": int(summary.get("deleted-records", 0)),
                    "total_records": int(summary.get("total-records", 0)),
                }
            )
        return pd.DataFrame(rows).sort_values("committed_at", ignore_index=True)

    def snapshot_at(self, name: str, moment: datetime) -> int | None:
        """The snapshot that was current at `moment` (None: the table was empty then)."""
        earlier = [s for s in self.table(name).snapshots() if s.timestamp_ms <= moment.timestamp() * 1000]
        return max(earlier, key=lambda s: s.timestamp_ms).snapshot_id if earlier else None


ADDITIVE = re.compile(r"\s*(count|count_if|sum)\s*\(", re.IGNORECASE)  # measures a sum over dates keeps meaning


def leaders(lh: Lakehouse, spec: GoldTable, limit: int = 5) -> tuple[str, pd.DataFrame]:
    """The groups of a gold table's grain (without event_date) with the most of its last additive
    measure (a count or a sum) over every date, highest first: the `make up` summary. Returns
    that measure's name and the rows."""
    additive = [name for name, expression in spec.measures.items() if ADDITIVE.match(expression)]
    if not additive:
        raise ConfigError(f"gold table {spec.table} has no count or sum measure to rank its rows by")
    keys = ", ".join(spec.grain[1:])
    sums = ", ".join(f"CAST(sum({name}) AS BIGINT) AS {name}" for name in additive)
    return additive[-1], lh.sql(
        f"""
        SELECT {keys}, {sums}, min(event_date) AS first_date, max(event_date) AS last_date
        FROM {spec.table}
        GROUP BY {keys}
        ORDER BY {additive[-1]} DESC, {keys}
        LIMIT {int(limit)}
        """
    )
