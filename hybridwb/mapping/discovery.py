"""Schema discovery on the read-only source: tables, views, columns, keys, indexes, comments.

On MySQL/MariaDB everything comes from `information_schema` with plain SELECTs, so an account
with `GRANT SELECT` and nothing else can discover a schema with views (SQLAlchemy's inspector
sends `SHOW CREATE TABLE`, which needs `SHOW VIEW` on a view). Four queries describe the
whole schema; `describe(table)` runs the same queries filtered to one table. The SQLite sample
is described by SQLAlchemy's inspector (PRAGMAs, no privileges there).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, and_, func, inspect, or_, select
from sqlalchemy import table as table_clause
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DBAPIError, NoSuchTableError, SQLAlchemyError

from hybridwb.errors import NotFound
from hybridwb.source import Source


@dataclass
class ColumnInfo:
    name: str
    type: str  # the column type as the server states it, upper-cased: TINYINT(1), VARCHAR(45)
    nullable: bool
    comment: str | None = None
    # the text a column holds, as the server names it (`latin1`, `euckr`, `utf8mb3`); None
    # for a column that holds no text, or where the server states none (the SQLite sample)
    charset: str | None = None
    # the collation the server compares the text by (`latin1_bin`, `utf8mb4_general_ci`)
    collation: str | None = None


@dataclass
class TableInfo:
    name: str
    rows_estimate: int | None
    columns: list[ColumnInfo]
    primary_key: list[str]
    # {"name", "column_names", "unique", "type"} like SQLAlchemy's inspector
    indexes: list[dict[str, Any]] = field(default_factory=list)
    # {"name", "constrained_columns", "referred_table", "referred_columns"}
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

    def unique_keys(self) -> list[list[str]]:
        """The primary key and every unique index, as column lists: what identifies a row."""
        keys = [list(self.primary_key)] if self.primary_key else []
        keys += [list(i["column_names"]) for i in self.indexes if i.get("unique")]
        return keys

    def is_unique(self, column: str) -> bool:
        """Whether `column` alone identifies a row (a one-column primary key or unique index)."""
        return [column] in self.unique_keys()

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)


# -- information_schema as SQLAlchemy Core tables (only the columns read here) ----------------
_IS = MetaData(schema="information_schema")
_TABLES = Table(
    "TABLES",
    _IS,
    Column("TABLE_SCHEMA", String),
    Column("TABLE_NAME", String),
    Column("TABLE_TYPE", String),
    Column("TABLE_ROWS", Integer),
    Column("TABLE_COMMENT", String),
)
_COLUMNS = Table(
    "COLUMNS",
    _IS,
    Column("TABLE_SCHEMA", String),
    Column("TABLE_NAME", String),
    Column("COLUMN_NAME", String),
    Column("ORDINAL_POSITION", Integer),
    Column("COLUMN_TYPE", String),
    Column("IS_NULLABLE", String),
    Column("COLUMN_COMMENT", String),
    Column("CHARACTER_SET_NAME", String),
    Column("COLLATION_NAME", String),
)
_STATISTICS = Table(
    "STATISTICS",
    _IS,
    Column("TABLE_SCHEMA", String),
    Column("TABLE_NAME", String),
    Column("INDEX_NAME", String),
    Column("NON_UNIQUE", Integer),
    Column("SEQ_IN_INDEX", Integer),
    Column("COLUMN_NAME", String),
    Column("INDEX_TYPE", String),
)
_KEY_USAGE = Table(
    "KEY_COLUMN_USAGE",
    _IS,
    Column("TABLE_SCHEMA", String),
    Column("TABLE_NAME", String),
    Column("CONSTRAINT_NAME", String),
    Column("COLUMN_NAME", String),
    Column("ORDINAL_POSITION", Integer),
    Column("REFERENCED_TABLE_SCHEMA", String),
    Column("REFERENCED_TABLE_NAME", String),
    Column("REFERENCED_COLUMN_NAME", String),
)


def _current(table: Table) -> Any:
    """Rows of an information_schema table about the connection's own database."""
    return table.c.TABLE_SCHEMA == func.database()  # noqa: SIM300 (a column, not a constant)


def _read(source: Source, statement: Any) -> list[Any]:
    """Run one information_schema SELECT on the source, errors translated."""
    try:
        with source.engine.connect() as conn:
            rows = list(conn.execute(statement))
            conn.rollback()
            return rows
    except (DBAPIError, SQLAlchemyError) as exc:
        raise source.translate_error(exc) from None


def _mysql_schema(source: Source, only: str | None = None) -> dict[str, TableInfo]:
    """Every table and view of the current database (or just `only`), in four SELECTs."""

    def scoped(table: Table) -> Any:
        cond = func.database() == table.c.TABLE_SCHEMA
        return and_(cond, table.c["TABLE_NAME"] == only) if only is not None else cond

    tables = _read(
        source,
        select(
            _TABLES.c.TABLE_NAME,
            _TABLES.c.TABLE_TYPE,
            _TABLES.c.TABLE_ROWS,
            _TABLES.c.TABLE_COMMENT,
        )
        .where(scoped(_TABLES))
        .order_by(_TABLES.c.TABLE_NAME),
    )
    out: dict[str, TableInfo] = {}
    for name, kind, rows, comment in tables:
        view = str(kind).upper() == "VIEW"
        out[str(name)] = TableInfo(
            name=str(name),
            rows_estimate=None if view or rows is None else int(rows),
            columns=[],
            primary_key=[],
            is_view=view,
            comment=None if view or not comment else str(comment),
        )
    if not out:
        return out
    for table, column, ctype, nullable, comment, charset, collation in _read(
        source,
        select(
            _COLUMNS.c.TABLE_NAME,
            _COLUMNS.c.COLUMN_NAME,
            _COLUMNS.c.COLUMN_TYPE,
            _COLUMNS.c.IS_NULLABLE,
            _COLUMNS.c.COLUMN_COMMENT,
            _COLUMNS.c.CHARACTER_SET_NAME,
            _COLUMNS.c.COLLATION_NAME,
        )
        .where(scoped(_COLUMNS))
        .order_by(_COLUMNS.c.TABLE_NAME, _COLUMNS.c.ORDINAL_POSITION),
    ):
        if str(table) in out:
            out[str(table)].columns.append(
                ColumnInfo(
                    str(column),
                    str(ctype).upper(),
                    nullable == "YES",
                    comment or None,
                    str(charset) if charset else None,
                    str(collation) if collation else None,
                )
            )
    indexes: dict[tuple[str, str], dict[str, Any]] = {}
    for table, index, non_unique, column, itype in _read(
        source,
        select(
            _STATISTICS.c.TABLE_NAME,
            _STATISTICS.c.INDEX_NAME,
            _STATISTICS.c.NON_UNIQUE,
            _STATISTICS.c.COLUMN_NAME,
            _STATISTICS.c.INDEX_TYPE,
        )
        .where(scoped(_STATISTICS))
        .order_by(_STATISTICS.c.TABLE_NAME, _STATISTICS.c.INDEX_NAME, _STATISTICS.c.SEQ_IN_INDEX),
    ):
        if str(table) not in out:
            continue
        if index == "PRIMARY":
            out[str(table)].primary_key.append(str(column))
            continue
        entry = indexes.setdefault(
            (str(table), str(index)),
            {"name": str(index), "column_names": [], "unique": not int(non_unique), "type": itype},
        )
        entry["column_names"].append(str(column))
    for (table, _), entry in indexes.items():
        out[table].indexes.append(entry)
    for table, fks in _mysql_foreign_keys(source, scoped).items():
        if table in out:
            out[table].foreign_keys += fks
    return out


def _mysql_foreign_keys(source: Source, scoped: Any) -> dict[str, list[dict[str, Any]]]:
    """`{table: [foreign key, ...]}` from KEY_COLUMN_USAGE (one SELECT), in the inspector's
    shape; only keys that refer to a table of the same database."""
    fks: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for table, constraint, column, ref_table, ref_column in _read(
        source,
        select(
            _KEY_USAGE.c.TABLE_NAME,
            _KEY_USAGE.c.CONSTRAINT_NAME,
            _KEY_USAGE.c.COLUMN_NAME,
            _KEY_USAGE.c.REFERENCED_TABLE_NAME,
            _KEY_USAGE.c.REFERENCED_COLUMN_NAME,
        )
        .where(
            scoped(_KEY_USAGE),
            _KEY_USAGE.c.REFERENCED_TABLE_NAME.is_not(None),
            func.database() == _KEY_USAGE.c.REFERENCED_TABLE_SCHEMA,
        )
        .order_by(
            _KEY_USAGE.c.TABLE_NAME, _KEY_USAGE.c.CONSTRAINT_NAME, _KEY_USAGE.c.ORDINAL_POSITION
        ),
    ):
        fk = fks[(str(table), str(constraint))]
        if not fk:
            fk.update(
                name=str(constraint),
                constrained_columns=[],
                referred_table=str(ref_table),
                referred_columns=[],
                referred_schema=None,
            )
        fk["constrained_columns"].append(str(column))
        fk["referred_columns"].append(str(ref_column))
    out: dict[str, list[dict[str, Any]]] = {}
    for (table, _), fk in fks.items():
        out.setdefault(table, []).append(fk)
    return out


def foreign_keys(source: Source, tables: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The live schema's foreign keys of `tables`, `{table: [fk, ...]}`: on MySQL one
    SELECT on information_schema (a SELECT-only account can read it), on the SQLite sample
    the inspector's PRAGMAs. What the relation graph adds to the mapping's relations."""
    wanted = sorted({t for t in tables if isinstance(t, str) and t})
    if not wanted:
        return {}
    if source.is_sqlite:
        insp = inspect(source.engine)
        try:
            known = set(insp.get_table_names())
            return {t: [dict(fk) for fk in insp.get_foreign_keys(t)] for t in wanted if t in known}
        except DBAPIError as exc:
            raise source.translate_error(exc) from exc

    def scoped(table: Table) -> Any:
        return and_(func.database() == table.c.TABLE_SCHEMA, table.c.TABLE_NAME.in_(wanted))

    return _mysql_foreign_keys(source, scoped)


def _sqlite_describe(source: Source, table: str, estimates: dict[str, int] | None) -> TableInfo:
    insp = inspect(source.engine)
    try:
        views = set(insp.get_view_names())
        columns = insp.get_columns(table)
        pk = insp.get_pk_constraint(table).get("constrained_columns") or []
        indexes = [] if table in views else insp.get_indexes(table)
        fks = [] if table in views else [dict(fk) for fk in insp.get_foreign_keys(table)]
    except NoSuchTableError:
        raise _no_table(table) from None
    except DBAPIError as exc:
        raise source.translate_error(exc) from None
    return TableInfo(
        name=table,
        rows_estimate=(estimates or {}).get(table),
        columns=[
            ColumnInfo(c["name"], str(c["type"]), bool(c.get("nullable", True)), c.get("comment"))
            for c in columns
        ],
        primary_key=list(pk),
        indexes=[
            {
                "name": i.get("name"),
                "column_names": list(i.get("column_names") or []),
                "unique": bool(i.get("unique")),
                "type": None,
            }
            for i in indexes
        ],
        foreign_keys=fks,
        is_view=table in views,
    )


def _no_table(table: str) -> NotFound:
    return NotFound(
        f"The source has no table {table!r}; list them with wb.mappings.discover().", table=table
    )


def row_estimates(source: Source) -> dict[str, int]:
    """Cheap row counts: information_schema on MySQL, COUNT(*) on the small sample."""
    if source.is_sqlite:
        out = {}
        for name in source.table_names():
            count = select(func.count().label("n")).select_from(table_clause(name))
            df = source.sql(str(count.compile(dialect=mysql.dialect())))
            out[name] = int(df["n"].iloc[0])
        return out
    rows = _read(
        source,
        select(_TABLES.c.TABLE_NAME, _TABLES.c.TABLE_ROWS).where(
            _current(_TABLES), _TABLES.c.TABLE_TYPE != "VIEW"
        ),
    )
    return {str(name): int(n) for name, n in rows if n is not None}


def describe(source: Source, table: str, estimates: dict[str, int] | None = None) -> TableInfo:
    """Everything the mapping tools need to know about one table or view."""
    if not isinstance(table, str) or not table:
        raise _no_table(str(table))
    if source.is_sqlite:
        return _sqlite_describe(source, table, estimates)
    found = _mysql_schema(source, only=table).get(table)
    if found is None:
        raise _no_table(table)
    return found


def column_types(source: Source, columns: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """{(table, column): its type as the server states it now} of these columns, in one
    SELECT on information_schema (a column the schema no longer has is left out). Nothing
    is cached: for a check that must see an ALTER made a moment ago."""
    if not columns:
        return {}
    if source.is_sqlite:
        wanted = set(columns)
        return {
            (table, c.name): c.type
            for table in dict.fromkeys(t for t, _ in columns)
            for c in describe(source, table).columns
            if (table, c.name) in wanted
        }
    c = _COLUMNS.c
    pairs = [
        and_(c.TABLE_NAME == t, c.COLUMN_NAME == n)  # noqa: SIM300 (columns, not constants)
        for t, n in dict.fromkeys(columns)
    ]
    rows = _read(
        source,
        select(c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE).where(_current(_COLUMNS), or_(*pairs)),
    )
    # column names compare without case on the server, table names as the file system does
    found = {(str(t), str(n).lower()): str(ctype).upper() for t, n, ctype in rows}
    return {(t, n): found[(t, n.lower())] for t, n in columns if (t, n.lower()) in found}


def discover(source: Source) -> list[TableInfo]:
    """Every table and view of the source, described."""
    if source.is_sqlite:
        estimates = row_estimates(source)
        return [describe(source, name, estimates) for name in source.table_names()]
    return list(_mysql_schema(source).values())
