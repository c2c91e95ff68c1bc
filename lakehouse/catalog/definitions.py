"""Declarative table definitions (catalog/tables/<namespace>/<table>.yaml) and their Iceberg form.

A definition names its columns (type, required, doc), partition fields, sort order and
table properties. Spark, PyIceberg, Flink, the DAGs and the tests all read tables through
these files, so a schema is written down exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import NullOrder, SortDirection, SortField, SortOrder
from pyiceberg.transforms import Transform, UnknownTransform, parse_transform
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
)

from lakehouse.errors import CatalogError, ConfigError

PRIMITIVES: dict[str, IcebergType] = {
    "string": StringType(),
    "int": IntegerType(),
    "long": LongType(),
    "float": FloatType(),
    "double": DoubleType(),
    "boolean": BooleanType(),
    "date": DateType(),
    "timestamp": TimestampType(),
    "timestamptz": TimestamptzType(),  # what Spark calls TIMESTAMP
    "binary": BinaryType(),
}
DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")

# Iceberg table properties a definition may set. Anything else is a typo until proven otherwise.
KNOWN_PROPERTIES = frozenset(
    {
        "comment",
        "commit.manifest-merge.enabled",
        "commit.manifest.min-count-to-merge",
        "commit.manifest.target-size-bytes",
        "commit.retry.num-retries",
        "commit.retry.min-wait-ms",
        "commit.retry.max-wait-ms",
        "commit.retry.total-timeout-ms",
        "history.expire.max-snapshot-age-ms",
        "history.expire.min-snapshots-to-keep",
        "history.expire.max-ref-age-ms",
        "read.split.target-size",
        "write.format.default",
        "write.parquet.compression-codec",
        "write.parquet.compression-level",
        "write.parquet.row-group-size-bytes",
        "write.parquet.page-size-bytes",
        "write.parquet.dict-size-bytes",
        "write.target-file-size-bytes",
        "write.distribution-mode",
        "write.delete.distribution-mode",
        "write.update.distribution-mode",
        "write.merge.distribution-mode",
        "write.delete.mode",
        "write.update.mode",
        "write.merge.mode",
        "write.delete.isolation-level",
        "write.update.isolation-level",
        "write.merge.isolation-level",
        "write.delete.granularity",
        "write.metadata.delete-after-commit.enabled",
        "write.metadata.previous-versions-max",
        "write.metadata.metrics.default",
        "write.object-storage.enabled",
        "write.spark.fanout.enabled",
        "write.summary.partition-limit",
        "write.wap.enabled",
    }
)
KNOWN_PROPERTY_PREFIXES = ("write.metadata.metrics.column.", "write.parquet.bloom-filter-enabled.column.", "lakehouse.")
FORMAT_VERSION = 2  # PyIceberg cannot write v3 tables; every engine here must be able to write


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    doc: str | None = None

    @property
    def iceberg_type(self) -> IcebergType:
        return parse_type(self.type)


@dataclass(frozen=True)
class PartitionBy:
    column: str
    transform: str = "identity"
    name: str | None = None


@dataclass(frozen=True)
class SortBy:
    column: str
    direction: str = "asc"
    transform: str = "identity"

    @property
    def sort_direction(self) -> SortDirection:
        return SortDirection.ASC if self.direction == "asc" else SortDirection.DESC

    @property
    def null_order(self) -> NullOrder:
        # Spark's defaults: nulls first ascending, last descending.
        return NullOrder.NULLS_FIRST if self.direction == "asc" else NullOrder.NULLS_LAST


DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str | int) -> timedelta:
    """'90s', '15m', '2h', '3d' (or a number of seconds)."""
    if isinstance(text, int):
        return timedelta(seconds=text)
    match = DURATION.match(str(text).strip())
    if not match:
        raise ConfigError(f"invalid duration {text!r}: use a number with s, m, h or d (e.g. 2h)")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Maintenance:
    """How `lakehouse maintain` keeps the table fast and small (Iceberg's Spark procedures).

    - compaction (`rewrite_data_files`, sorted by the table's sort order if it has one, else
      bin-packed) towards `target_file_mb`, of partitions with at least `min_input_files`
      files; with `closed_on`, only rows whose column is before the current hour (so bronze's
      hours that are still being written are left to the stream);
    - `rewrite_manifests`;
    - `expire_snapshots`: snapshots older than `retain_snapshots` go, but never the last
      `retain_last` (the notebooks' time travel needs the window);
    - `remove_orphan_files` older than `orphan_age` (never less than a day, Iceberg's own
      guard: a commit in flight has files no snapshot references yet).
    """

    target_file_mb: int = 128
    min_input_files: int = 5
    closed_on: str | None = None
    retain_snapshots: timedelta = timedelta(days=7)
    retain_last: int = 20
    orphan_age: timedelta = timedelta(days=3)


MIN_ORPHAN_AGE = timedelta(hours=24)  # Iceberg's own guard for remove_orphan_files


def parse_maintenance(raw: dict | None, columns: list[str], where: str) -> Maintenance:
    raw = raw or {}
    known = {"target_file_mb", "min_input_files", "closed_on", "retain_snapshots", "retain_last", "orphan_age"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CatalogError(f"{where}: maintenance: unknown keys {unknown}; allowed: {sorted(known)}")
    try:
        policy = Maintenance(
            target_file_mb=int(raw.get("target_file_mb", Maintenance.target_file_mb)),
            min_input_files=int(raw.get("min_input_files", Maintenance.min_input_files)),
            closed_on=raw.get("closed_on"),
            retain_snapshots=parse_duration(raw.get("retain_snapshots", "7d")),
            retain_last=int(raw.get("retain_last", Maintenance.retain_last)),
            orphan_age=parse_duration(raw.get("orphan_age", "3d")),
        )
    except (ValueError, ConfigError) as exc:
        raise CatalogError(f"{where}: maintenance: {exc}") from exc
    if policy.closed_on is not None and policy.closed_on not in columns:
        raise CatalogError(f"{where}: maintenance.closed_on {policy.closed_on!r} is not a column of the table")
    if policy.orphan_age < MIN_ORPHAN_AGE:
        raise CatalogError(f"{where}: maintenance.orphan_age must be at least 24h (files of commits in flight)")
    if policy.retain_last < 1 or policy.target_file_mb < 1 or policy.min_input_files < 2:
        raise CatalogError(f"{where}: maintenance: retain_last >= 1, target_file_mb >= 1, min_input_files >= 2")
    return policy


@dataclass(frozen=True)
class TableDefinition:
    namespace: str
    name: str
    columns: tuple[Column, ...]
    description: str = ""
    partition_by: tuple[PartitionBy, ...] = ()
    sort_by: tuple[SortBy, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)
    maintenance: Maintenance = Maintenance()
    source: Path | None = None

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{self.name}"

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise CatalogError(f"{self.identifier}: no column {name!r}")

    def schema(self) -> Schema:
        fields = [
            NestedField(field_id=i, name=c.name, field_type=c.iceberg_type, required=c.required, doc=c.doc)
            for i, c in enumerate(self.columns, start=1)
        ]
        return Schema(*fields)

    def partition_spec(self, schema: Schema) -> PartitionSpec:
        fields = []
        for i, part in enumerate(self.partition_by, start=1000):
            transform = parse_transform(part.transform)
            source = schema.find_field(part.column)
            fields.append(
                PartitionField(
                    source_id=source.field_id,
                    field_id=i,
                    transform=transform,
                    name=part.name or partition_field_name(part.column, transform),
                )
            )
        return PartitionSpec(*fields)

    def sort_order(self, schema: Schema) -> SortOrder:
        if not self.sort_by:
            return SortOrder()
        return SortOrder(
            *(
                SortField(
                    source_id=schema.find_field(s.column).field_id,
                    transform=parse_transform(s.transform),
                    direction=s.sort_direction,
                    null_order=s.null_order,
                )
                for s in self.sort_by
            )
        )

    def table_properties(self) -> dict[str, str]:
        return {"format-version": str(FORMAT_VERSION), **self.properties}


def partition_field_name(column: str, transform: Transform) -> str:
    """The names Spark gives partition fields (event_time_hour, id_bucket), so both engines agree."""
    text = str(transform)
    if text == "identity":
        return column
    if text.startswith("bucket"):
        return f"{column}_bucket"
    if text.startswith("truncate"):
        return f"{column}_trunc"
    return f"{column}_{text}"


def parse_type(text: str) -> IcebergType:
    text = text.strip().lower()
    if text in PRIMITIVES:
        return PRIMITIVES[text]
    match = DECIMAL.match(text)
    if match:
        return DecimalType(int(match.group(1)), int(match.group(2)))
    raise CatalogError(f"unknown column type {text!r}; known: {', '.join(PRIMITIVES)}, decimal(p,s)")


def check_property(key: str) -> bool:
    return key in KNOWN_PROPERTIES or key.startswith(KNOWN_PROPERTY_PREFIXES)


def parse_definition(raw: dict, source: Path | None = None) -> TableDefinition:
    where = str(source) if source else "table definition"
    allowed = {"namespace", "name", "description", "columns", "partition_by", "sort_by", "properties", "maintenance"}
    unknown = set(raw) - allowed
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    for key in ("namespace", "name", "columns"):
        if not raw.get(key):
            raise CatalogError(f"{where}: missing {key!r}")
    try:
        columns = tuple(Column(**c) for c in raw["columns"])
        partition_by = tuple(PartitionBy(**p) for p in raw.get("partition_by") or ())
        sort_by = tuple(SortBy(**s) for s in raw.get("sort_by") or ())
    except TypeError as exc:
        raise CatalogError(f"{where}: {exc}") from exc
    properties = {
        str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in (raw.get("properties") or {}).items()
    }
    definition = TableDefinition(
        namespace=raw["namespace"],
        name=raw["name"],
        description=raw.get("description", ""),
        columns=columns,
        partition_by=partition_by,
        sort_by=sort_by,
        properties=properties,
        maintenance=parse_maintenance(raw.get("maintenance"), [c.name for c in columns], where),
        source=source,
    )
    validate(definition, where)
    return definition


def validate(definition: TableDefinition, where: str) -> None:
    names = [c.name for c in definition.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CatalogError(f"{where}: duplicate columns {duplicates}")
    for column in definition.columns:
        try:
            column.iceberg_type  # noqa: B018 - parsing is the check
        except CatalogError as exc:
            raise CatalogError(f"{where}: column {column.name!r}: {exc}") from exc
    for ref in (*definition.partition_by, *definition.sort_by):
        if ref.column not in names:
            raise CatalogError(f"{where}: partition/sort column {ref.column!r} is not a column of the table")
        try:
            transform = parse_transform(ref.transform)
        except ValueError as exc:
            raise CatalogError(f"{where}: {exc}") from exc
        if isinstance(transform, UnknownTransform):
            raise CatalogError(
                f"{where}: unknown transform {ref.transform!r} on {ref.column!r}; "
                "known: identity, year, month, day, hour, bucket[N], truncate[W], void"
            )
    for sort in definition.sort_by:
        if sort.direction not in ("asc", "desc"):
            raise CatalogError(f"{where}: sort direction must be asc or desc, not {sort.direction!r}")
    if "format-version" in definition.properties:
        raise CatalogError(f"{where}: format-version is fixed at {FORMAT_VERSION} for every table; remove it")
    unknown = sorted(k for k in definition.properties if not check_property(k))
    if unknown:
        raise CatalogError(
            f"{where}: unknown table property {', '.join(map(repr, unknown))}. Known Iceberg properties: "
            "https://iceberg.apache.org/docs/latest/configuration/ (custom keys go under 'lakehouse.')"
        )


@dataclass(frozen=True)
class Namespace:
    name: str
    description: str = ""


def load_namespaces(definitions_dir: Path) -> list[Namespace]:
    path = definitions_dir / "namespaces.yaml"
    raw = yaml.safe_load(path.read_text()) or {}
    return [Namespace(name=n["name"], description=n.get("description", "")) for n in raw.get("namespaces", [])]


def load_definitions(definitions_dir: Path) -> list[TableDefinition]:
    """Every tables/<namespace>/<table>.yaml below `definitions_dir`, validated."""
    namespaces = {n.name for n in load_namespaces(definitions_dir)}
    definitions = []
    for path in sorted((definitions_dir / "tables").glob("*/*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
        definition = parse_definition(raw, path)
        if definition.namespace != path.parent.name or definition.name != path.stem:
            raise CatalogError(
                f"{path}: declares {definition.identifier}; the file must be tables/<namespace>/<name>.yaml"
            )
        if definition.namespace not in namespaces:
            raise CatalogError(f"{path}: namespace {definition.namespace!r} is not declared in namespaces.yaml")
        definitions.append(definition)
    return definitions
