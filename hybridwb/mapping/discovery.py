"""Schema discovery on the read-only source: tables, row estimates, columns, keys, indexes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, NoSuchTableError

from hybridwb.errors import NotFound
from hybridwb.source import Source


@dataclass
class ColumnInfo:
    name: str
    type: str
    nullable: bool
    comment: str | None = None


@dataclass
class TableInfo:
    name: str
    rows_estimate: int | None
    columns: list[ColumnInfo]
    primary_key: list[str]
    indexes: list[dict[str, Any]] = field(default_factory=list)
    foreign_keys: list[dict[str, Any]] = field(default_factory=list)
    is_view: bool = False
    comment: str | None = None

    def indexed_leading_columns(self) -> set[str]:
        """Columns that lead an index (or the primary key): filtering on them is cheap."""
        lead = {self.primary_key[0]} if self.primary_key else set()
        for index in self.indexes:
            cols = index.get("column_names") or []
            if cols and cols[0]:
                lead.add(cols[0])
        return lead

    def fulltext_columns(self) -> set[str]:
        cols: set[str] = set()
        for index in self.indexes:
            if (index.get("dialect_options") or {}).get("mysql_prefix") == "FULLTEXT" or index.get(
                "type"
            ) == "FULLTEXT":
                cols.update(c for c in index.get("column_names") or [] if c)
        return cols


def row_estimates(source: Source) -> dict[str, int]:
    """Cheap row counts: information_schema on MySQL, COUNT(*) on the small sample."""
    if source.is_sqlite:
        out = {}
        for name in source.table_names():
            df = source.sql(f'SELECT COUNT(*) AS n FROM "{name}"')
            out[name] = int(df["n"].iloc[0])
        return out
    df = source.sql(
        "SELECT TABLE_NAME AS name, TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
    )
    return {
        str(r.name): int(r.n) for r in df.itertuples() if r.n == r.n and r.n is not None
    }  # views: NULL


def describe(source: Source, table: str, estimates: dict[str, int] | None = None) -> TableInfo:
    """Everything the mapping tools need to know about one table or view."""
    insp = inspect(source.engine)
    try:
        columns = insp.get_columns(table)
        views = set(insp.get_view_names())
        pk = insp.get_pk_constraint(table).get("constrained_columns") or []
        indexes = [] if table in views else insp.get_indexes(table)
        fks = [] if table in views else insp.get_foreign_keys(table)
        try:
            comment = insp.get_table_comment(table).get("text")
        except NotImplementedError:
            comment = None
    except NoSuchTableError:
        raise NotFound(
            f"The source has no table {table!r}; list them with wb.mappings.discover().",
            table=table,
        ) from None
    except DBAPIError as exc:
        raise source.translate_error(exc) from exc
    return TableInfo(
        name=table,
        rows_estimate=(estimates or {}).get(table),
        columns=[
            ColumnInfo(c["name"], str(c["type"]), bool(c.get("nullable", True)), c.get("comment"))
            for c in columns
        ],
        primary_key=list(pk),
        indexes=indexes,
        foreign_keys=fks,
        is_view=table in views,
        comment=comment,
    )


def discover(source: Source) -> list[TableInfo]:
    estimates = row_estimates(source)
    return [describe(source, name, estimates) for name in source.table_names()]
