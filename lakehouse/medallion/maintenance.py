"""Table maintenance with Iceberg's Spark procedures, by each table's `maintenance:` policy.

A stream that commits every few seconds leaves bronze with many small files and snapshots,
and every MERGE leaves a snapshot and rewritten files: planning and scans slow down by the
hour. For each table, in this order (lakehouse.catalog.definitions.Maintenance):

1. `rewrite_data_files`: compaction of partitions with at least `min_input_files` files
   towards `target_file_mb`, sorted by the table's sort order (bin-packed without one); with
   `closed_on`, only partitions before the current hour / day (whatever the column is
   partitioned by), so the stream's open hour is left alone;
2. `rewrite_manifests`;
3. `expire_snapshots` older than `retain_snapshots`, always keeping the last `retain_last`;
4. orphan files (Iceberg's DeleteOrphanFiles) older than `orphan_age` (at least a day, so
   files of a commit still in flight are never deleted), listed with the S3 FileIO.

Iceberg validates each commit against concurrent ones; a conflicting commit (for example a
MERGE that rewrote the same files) makes the step fail, and the step is retried on the new
state. The DAG also gives each layer's maintenance the layer's pool, so promotions and
maintenance of a layer do not run at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from lakehouse.catalog.definitions import TableDefinition

log = logging.getLogger("lakehouse.maintenance")
ATTEMPTS = 3
CONFLICTS = ("CommitFailedException", "ValidationException", "Cannot commit", "conflict")


@dataclass(frozen=True)
class Health:
    data_files: int
    avg_file_kb: float
    snapshots: int
    manifests: int
    metadata_kb: float  # every manifest any snapshot references

    def line(self) -> str:
        return (
            f"{self.data_files} data files (avg {self.avg_file_kb:,.0f} KB), {self.snapshots} snapshots, "
            f"{self.manifests} manifests ({self.metadata_kb:,.0f} KB)"
        )


@dataclass
class Report:
    table: str
    before: Health
    after: Health | None = None
    steps: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        steps = "; ".join(f"{k}: {v}" for k, v in self.steps.items())
        after = f"\n    after:  {self.after.line()}" if self.after else ""
        return f"{self.table} ({self.seconds:.1f} s)\n    before: {self.before.line()}{after}\n    {steps}"


def health(spark: SparkSession, table: str) -> Health:
    files = spark.sql(
        f"SELECT count(*) AS n, coalesce(avg(file_size_in_bytes), 0) AS s FROM {table}.data_files"
    ).first()
    snapshots = spark.sql(f"SELECT count(*) AS n FROM {table}.snapshots").first().n
    manifests = spark.sql(
        f"SELECT count(*) AS n, coalesce(sum(length), 0) AS b FROM (SELECT DISTINCT path, length FROM {table}.all_manifests)"
    ).first()
    return Health(files.n, files.s / 1024, snapshots, manifests.n, manifests.b / 1024)


def closed_before(definition: TableDefinition, now: datetime) -> datetime | None:
    """The start of the partition of `now` on the policy's `closed_on` column: rows before it
    are in partitions that no longer receive rows in order (hours, days or months)."""
    column = definition.maintenance.closed_on
    if column is None:
        return None
    transform = next((p.transform for p in definition.partition_by if p.column == column), "hour")
    now = now.astimezone(UTC)
    if transform == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if transform == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(minute=0, second=0, microsecond=0)


def _literal(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}+00:00'"


def _call(spark: SparkSession, sql: str) -> list:
    """A procedure call, retried when its commit conflicts with a concurrent one."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return spark.sql(sql).collect()
        except Exception as exc:
            if attempt == ATTEMPTS or not any(c in str(exc) for c in CONFLICTS):
                raise
            log.warning("commit conflict (attempt %d of %d), retrying: %s", attempt, ATTEMPTS, str(exc)[:300])
            time.sleep(2 * attempt)
    raise AssertionError("unreachable")


def maintain(
    spark: SparkSession, definition: TableDefinition, now: datetime | None = None, dry_run: bool = False
) -> Report:
    """Apply the table's policy (see the module's doc); with dry_run, report what would go."""
    now = now or datetime.now(UTC)
    policy, table = definition.maintenance, definition.identifier
    catalog = spark.conf.get("spark.sql.defaultCatalog")
    t0 = time.monotonic()
    report = Report(table, health(spark, table))
    expire_before = now - policy.retain_snapshots
    orphans_before = now - policy.orphan_age
    if dry_run:
        old = (
            spark.sql(f"SELECT count(*) AS n FROM {table}.snapshots WHERE committed_at < {_literal(expire_before)}")
            .first()
            .n
        )
        report.steps["snapshots that would expire"] = max(0, min(old, report.before.snapshots - policy.retain_last))
    else:
        closed = closed_before(definition, now)
        where = f', where => "{policy.closed_on} < {_literal(closed)}"' if closed else ""
        strategy = "sort" if definition.sort_by else "binpack"
        options = (
            f"map('target-file-size-bytes', '{policy.target_file_mb * 1024 * 1024}', "
            f"'min-input-files', '{policy.min_input_files}')"
        )
        [row] = _call(
            spark,
            f"CALL {catalog}.system.rewrite_data_files(table => '{table}', strategy => '{strategy}', "
            f"options => {options}{where})",
        )
        report.steps["compacted"] = f"{row.rewritten_data_files_count} files into {row.added_data_files_count}"
        [row] = _call(spark, f"CALL {catalog}.system.rewrite_manifests('{table}')")
        report.steps["manifests"] = f"{row.rewritten_manifests_count} into {row.added_manifests_count}"
        [row] = _call(
            spark,
            f"CALL {catalog}.system.expire_snapshots(table => '{table}', older_than => {_literal(expire_before)}, "
            f"retain_last => {policy.retain_last})",
        )
        report.steps["expired"] = (
            f"{row.deleted_data_files_count} data files, {row.deleted_manifest_files_count} manifests, "
            f"{row.deleted_manifest_lists_count} manifest lists"
        )
    orphans = remove_orphan_files(spark, table, orphans_before, dry_run)
    report.steps["orphan files found" if dry_run else "orphan files removed"] = len(orphans)
    report.after = None if dry_run else health(spark, table)
    report.seconds = time.monotonic() - t0
    return report


def remove_orphan_files(spark: SparkSession, table: str, older_than: datetime, dry_run: bool) -> list[str]:
    """Iceberg's DeleteOrphanFiles action, listing through the table's FileIO (S3 prefix
    listing). The action rather than the `remove_orphan_files` procedure, which measures its
    24-hour minimum against the wall clock (so `maintain(now=...)` could not be tested); the
    policy's own minimum (MIN_ORPHAN_AGE, the same 24 hours) guards commits in flight."""
    jvm = spark.sparkContext._jvm
    iceberg_table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, table)
    action = (
        jvm.org.apache.iceberg.spark.actions.SparkActions.get(spark._jsparkSession)
        .deleteOrphanFiles(iceberg_table)
        .olderThan(int(older_than.timestamp() * 1000))
        .usePrefixListing(True)
    )
    if dry_run:  # a Stream.Builder is a java Consumer: it collects the paths instead of deleting them
        action = action.deleteWith(jvm.java.util.stream.Stream.builder())
    return [str(location) for location in action.execute().orphanFileLocations()]


def maintain_all(
    spark: SparkSession,
    definitions: list[TableDefinition],
    dry_run: bool = False,
    log_line: Callable[[str], None] = print,
) -> list[Report]:
    """Every table in turn, each report printed as it finishes."""
    reports = []
    for number, definition in enumerate(definitions, 1):
        log_line(f"[{number}/{len(definitions)}] {definition.identifier}{' (dry run)' if dry_run else ''} ...")
        report = maintain(spark, definition, dry_run=dry_run)
        log_line("  " + report.summary())
        reports.append(report)
    return reports


def main(argv: list[str] | None = None) -> int:
    """`spark_jobs/maintain.py` and `lakehouse maintain`: [--table T]... [--namespace N]... [--dry-run]."""
    import argparse
    import sys

    from lakehouse.catalog.definitions import load_definitions
    from lakehouse.engines.spark import get_spark
    from lakehouse.errors import LakehouseError
    from lakehouse.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", action="append", default=[], help="namespace.name (repeatable; default: all)")
    parser.add_argument("--namespace", action="append", default=[], help="every table of a namespace (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="report snapshots and orphans that would go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        definitions = select(load_definitions(settings.definitions_dir), args.table, args.namespace)
        spark = get_spark(settings, "maintain")
        maintain_all(spark, definitions, dry_run=args.dry_run, log_line=lambda line: print(line, flush=True))
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def select(definitions: list[TableDefinition], tables: list[str], namespaces: list[str]) -> list[TableDefinition]:
    """The named tables and namespaces' tables (all when none is named); an unknown name fails."""
    from lakehouse.errors import ConfigError

    known = {d.identifier for d in definitions}
    unknown = sorted(set(tables) - known) + sorted(set(namespaces) - {d.namespace for d in definitions})
    if unknown:
        raise ConfigError(f"unknown tables or namespaces {unknown}; tables: {', '.join(sorted(known))}")
    if not tables and not namespaces:
        return definitions
    return [d for d in definitions if d.identifier in tables or d.namespace in namespaces]
