"""`lakehouse catalog init`: make the catalog match the definitions, idempotently.

Missing namespaces and tables are created. Existing tables get the compatible changes
(new optional columns, type widenings, required -> optional, docs, sort order, properties).
Every table's plan is computed before anything is written: if any change is incompatible
(a dropped column, a narrowed type, a changed partition spec...) nothing is changed at all.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.transforms import parse_transform
from pyiceberg.types import DecimalType, DoubleType, FloatType, IcebergType, IntegerType, LongType

from lakehouse.catalog.definitions import FORMAT_VERSION, Namespace, TableDefinition
from lakehouse.errors import CatalogError


def widening_allowed(old: IcebergType, new: IcebergType) -> bool:
    """Iceberg's legal type promotions."""
    if old == new:
        return True
    if isinstance(old, IntegerType) and isinstance(new, LongType):
        return True
    if isinstance(old, FloatType) and isinstance(new, DoubleType):
        return True
    return (
        isinstance(old, DecimalType)
        and isinstance(new, DecimalType)
        and old.scale == new.scale
        and new.precision > old.precision
    )


@dataclass
class TablePlan:
    definition: TableDefinition
    create: bool = False
    add_columns: list[str] = field(default_factory=list)
    update_columns: list[str] = field(default_factory=list)
    set_properties: dict[str, str] = field(default_factory=dict)
    replace_sort_order: bool = False
    incompatible: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[str]:
        if self.create:
            return ["create table"]
        out = [f"add column {c}" for c in self.add_columns]
        out += [f"update column {c}" for c in self.update_columns]
        out += [f"set {k}={v}" for k, v in self.set_properties.items()]
        out += ["replace sort order"] if self.replace_sort_order else []
        return out


def plan_table(definition: TableDefinition, table: Table | None) -> TablePlan:
    plan = TablePlan(definition)
    if table is None:
        plan.create = True
        return plan
    current = table.schema()
    wanted = definition.schema()
    current_names = {f.name for f in current.fields}
    for column in wanted.fields:
        if column.name not in current_names:
            if column.required:
                plan.incompatible.append(f"new column {column.name!r} is required: existing rows have no value for it")
            else:
                plan.add_columns.append(column.name)
            continue
        existing = current.find_field(column.name)
        if not widening_allowed(existing.field_type, column.field_type):
            plan.incompatible.append(
                f"column {column.name!r} would change type {existing.field_type} -> {column.field_type}, "
                "which is not an Iceberg type promotion"
            )
        if column.required and not existing.required:
            plan.incompatible.append(f"column {column.name!r} would become required; existing rows may hold nulls")
        if (
            existing.field_type != column.field_type
            or (existing.required and not column.required)
            or (existing.doc or None) != (column.doc or None)
        ):
            plan.update_columns.append(column.name)
    for name in sorted(current_names - {f.name for f in wanted.fields}):
        plan.incompatible.append(
            f"column {name!r} exists in the table but not in the definition (columns are never dropped automatically)"
        )
    if table.format_version != FORMAT_VERSION:
        plan.incompatible.append(
            f"table has format-version {table.format_version}, definitions require {FORMAT_VERSION}"
        )
    if plan.incompatible:
        return plan
    if not same_partitioning(definition, table):
        plan.incompatible.append(
            f"partition spec would change from {table.spec()} to {[(p.column, p.transform) for p in definition.partition_by]}; "
            "partition evolution is not applied automatically (rewrite the table or evolve it by hand)"
        )
    if not same_sort_order(definition, table):
        plan.replace_sort_order = True
    props = table.properties
    plan.set_properties = {k: v for k, v in definition.properties.items() if props.get(k) != v}
    return plan


def same_partitioning(definition: TableDefinition, table: Table) -> bool:
    schema = table.schema()
    current = [(schema.find_column_name(f.source_id), str(f.transform)) for f in table.spec().fields]
    wanted = [
        (f.column, str(definition.partition_spec(schema).fields[i].transform))
        for i, f in enumerate(definition.partition_by)
    ]
    return current == wanted


def same_sort_order(definition: TableDefinition, table: Table) -> bool:
    schema = table.schema()
    current = [(f.source_id, str(f.transform), f.direction) for f in table.sort_order().fields]
    wanted = [(f.source_id, str(f.transform), f.direction) for f in definition.sort_order(schema).fields]
    return current == wanted


def apply_plan(catalog: Catalog, plan: TablePlan, table: Table | None) -> None:
    definition = plan.definition
    if plan.create:
        schema = definition.schema()
        catalog.create_table(
            definition.identifier,
            schema=schema,
            partition_spec=definition.partition_spec(schema),
            sort_order=definition.sort_order(schema),
            properties=definition.table_properties(),
        )
        return
    if not plan.changes:
        return
    wanted = definition.schema()
    # One transaction per table: the table moves to its new state in a single commit, or not at all.
    with table.transaction() as tx:
        if plan.add_columns or plan.update_columns:
            with tx.update_schema() as update:
                for name in plan.add_columns:
                    column = wanted.find_field(name)
                    update.add_column(name, column.field_type, doc=column.doc)
                for name in plan.update_columns:
                    column = wanted.find_field(name)
                    update.update_column(name, field_type=column.field_type, required=column.required, doc=column.doc)
        if plan.replace_sort_order:
            with tx.update_sort_order() as update:
                for sort in definition.sort_by:
                    method = update.asc if sort.direction == "asc" else update.desc
                    method(sort.column, parse_transform(sort.transform), sort.null_order)
        if plan.set_properties:
            tx.set_properties(plan.set_properties)


def load_table(catalog: Catalog, identifier: str) -> Table | None:
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def init_catalog(
    catalog: Catalog, namespaces: list[Namespace], definitions: list[TableDefinition], dry_run: bool = False
) -> list[TablePlan]:
    """Bring the catalog in line with the definitions; returns the plan of every table."""
    existing_namespaces = {ns[0] for ns in catalog.list_namespaces()}
    tables = {
        d.identifier: load_table(catalog, d.identifier) if d.namespace in existing_namespaces else None
        for d in definitions
    }
    plans = [plan_table(d, tables[d.identifier]) for d in definitions]
    refused = [f"{p.definition.identifier}: {reason}" for p in plans for reason in p.incompatible]
    if refused:
        raise CatalogError("incompatible change refused, nothing was changed:\n  " + "\n  ".join(refused))
    if dry_run:
        return plans
    for namespace in namespaces:
        if namespace.name not in existing_namespaces:
            with contextlib.suppress(NamespaceAlreadyExistsError):
                catalog.create_namespace(
                    namespace.name, {"comment": namespace.description} if namespace.description else {}
                )
    for plan in plans:
        apply_plan(catalog, plan, tables[plan.definition.identifier])
    return plans
