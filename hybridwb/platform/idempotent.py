"""Idempotent writes: inserts that skip an existing key, and the re-check that tells a
retried write which rows are its own.

Every row hybridwb writes carries an id made by the client (or a natural key). After a
lost commit acknowledgement the retry finds the row already there; comparing the stored
row with the intended one (key and plain columns) tells "my earlier try wrote it" from
"someone else's row", so the caller is told the truth: saved, or already taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import groupby, repeat
from typing import Any, NamedTuple

from sqlalchemy import JSON, Column, ColumnDefault, Connection, MetaData, Table, and_, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from hybridwb.errors import drop_frames
from hybridwb.platform.times import StoreTime, labelled


class KeyExists(Exception):
    """A COPY straight into a table met a row whose key exists: the caller writes the rows
    again, skipping existing keys. It carries no text: the driver's detail quotes the key
    (a customer's e-mail address, say)."""


def identity(tbl: Table, row: dict[str, Any]) -> Any:
    """A WHERE matching `row` exactly on its key and its plain (non-JSON) columns."""
    cols = [c for c in tbl.columns if c.name in row and not isinstance(c.type, JSON)]
    return and_(*(c == row[c.name] for c in cols))


def is_ours(conn: Connection, tbl: Table, row: dict[str, Any]) -> bool:
    stmt = select(func.count()).select_from(tbl).where(identity(tbl, row))
    return int(conn.execute(stmt).scalar_one()) == 1


def count_ours(conn: Connection, tbl: Table, rows: list[dict[str, Any]]) -> int:
    """How many of `rows` are in the table as written by this call (by id when there is one)."""
    if "id" in tbl.c and all("id" in r for r in rows):
        found = 0
        for start in range(0, len(rows), 1000):
            ids = [r["id"] for r in rows[start : start + 1000]]
            stmt = select(func.count()).select_from(tbl).where(tbl.c.id.in_(ids))
            found += int(conn.execute(stmt).scalar_one())
        return found
    return sum(is_ours(conn, tbl, r) for r in rows)


def copy_ignore(
    conn: Connection, tbl: Table, rows: list[dict[str, Any]], conflict: list[str]
) -> int:
    """Insert `rows` skipping those whose `conflict` key exists (Postgres): `copy_columns`
    of their values, the rows Core's INSERT ... ON CONFLICT DO NOTHING would write (what
    the SQLite store runs). A column a row leaves out gets its Python-side default (a value,
    or a function, per row, handed the row's parameters as Core's context hands them), or
    its SQL expression (`func.now()`), evaluated in the INSERT as Core puts it there; else,
    when no row names it, the table's server default, else NULL; a JSON column's values go
    as JSON. Returns how many rows were inserted."""
    if not rows:
        return 0
    inline = {c.name: c.default.arg for c in tbl.columns if _sql_default(c)}  # type: ignore[union-attr]
    if not inline:
        return _copy_ignore(conn, tbl, rows, conflict, {})
    # the rows that leave out the same SQL-expression columns go together, runs in order
    # (a key repeated in the batch: the first kept), each with those expressions in its
    # INSERT
    inserted = 0
    for missing, run in groupby(rows, key=lambda row: tuple(n for n in inline if n not in row)):
        exprs = {name: inline[name] for name in missing}
        inserted += _copy_ignore(conn, tbl, list(run), conflict, exprs)
    return inserted


def _copy_ignore(
    conn: Connection,
    tbl: Table,
    rows: list[dict[str, Any]],
    conflict: list[str],
    exprs: dict[str, Any],
) -> int:
    from psycopg.types.json import Json

    named = set().union(*rows)
    cols: list[str] = []
    columns: list[list[Any]] = []
    computed: dict[int, dict[str, Any]] = {}  # row -> the defaults a function made for it
    for c in tbl.columns:
        name = c.name
        if name in exprs:
            continue  # no row of these names it: its expression, in the INSERT
        fill = _fill(c)
        if name not in named and fill is None:
            continue  # the server's default, or NULL
        values = [row.get(name) for row in rows]
        if fill is not None:
            for i in [i for i, row in enumerate(rows) if name not in row]:
                made = computed.setdefault(i, {})
                made[name] = values[i] = fill(_RowContext(rows[i], made))
        if isinstance(c.type, StoreTime):  # a naive time is UTC, as Core binds it
            values = [labelled(v) for v in values]
        impl = c.type.dialect_impl(conn.dialect)
        if isinstance(impl, JSON):  # a None the row gives is JSON's null, as Core writes it
            keep = not impl.none_as_null
            values = [
                Json(v) if v is not None or (keep and name in row) else None
                for v, row in zip(values, rows, strict=True)
            ]
        cols.append(name)
        columns.append(values)
    return copy_columns(conn, tbl, cols, columns, conflict, exprs=exprs)


class _RowContext:
    """What a column default's function gets in place of Core's execution context: the
    row's parameters so far (its own values, then the defaults made for it in column
    order), as `get_current_parameters()` gives them."""

    __slots__ = ("made", "row")

    def __init__(self, row: dict[str, Any], made: dict[str, Any]) -> None:
        self.row = row
        self.made = made

    @property
    def current_parameters(self) -> dict[str, Any]:
        return {**self.row, **self.made}

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict[str, Any]:
        return self.current_parameters


def _sql_default(column: Column[Any]) -> bool:
    """Whether the column's Python-side default is a SQL expression (Core renders it into
    the INSERT; no value to COPY)."""
    default = column.default
    return isinstance(default, ColumnDefault) and default.is_clause_element


def _fill(column: Column[Any]) -> Callable[[Any], Any] | None:
    """A column's Python-side default as a function of the row's context (a value, or
    Core's function of the execution context); None for none, or a SQL expression
    (`_sql_default`)."""
    default = column.default
    if not isinstance(default, ColumnDefault) or default.is_clause_element:
        return None
    arg = default.arg
    return (lambda _: arg) if default.is_scalar else arg


def uuid7_texts(n: int, at: datetime | None = None) -> list[str]:
    """`n` version-7 UUIDs as text (RFC 9562: the Unix time in milliseconds, then 74
    bits), the client-made ids of a batch of rows without a `uuid.UUID` object per row
    (COPY sends text anyway).

    Time first, so ids grow with the time they were made: a batch's ids land at the right
    edge of the primary key's index, a few pages, where random (version 4) ids land each
    on a leaf page of its own anywhere in an index as large as the whole send history,
    which the server must then find, dirty and, after each checkpoint, write to the WAL
    whole. The 74 bits are RFC 9562's fixed-length counter (section 6.2, method 1): 26
    random bits for the batch, then a 48-bit counter started at a random value and
    counted up by one per id, so a batch's ids are distinct and in order, each made by
    one `%` formatting; two batches of the same millisecond share ids only if their 26
    bits match and their counters' ranges meet (for batches of 5,000: about 1 in 10^18)."""
    import os
    import time

    ms = int((at.timestamp() if at is not None else time.time()) * 1000)
    head = f"{ms & (2**48 - 1):012x}"
    random = int.from_bytes(os.urandom(10))
    # version 7 in the 13th digit, 12 random bits, variant 10 and 14 random bits
    a, b = (random >> 68) & 0xFFF, 0x8000 | ((random >> 54) & 0x3FFF)
    start = (random & (2**48 - 1)) % (2**48 - max(n, 1) + 1)  # counting up stays in 48 bits
    line = f"{head[:8]}-{head[8:12]}-7{a:03x}-{b:04x}-%012x"
    return list(map(line.__mod__, range(start, start + n)))


def timestamptz_text(at: datetime) -> str:
    """A timezone-aware time as COPY text for a `timestamptz` column (ISO 8601 with its
    offset: the same instant whatever the session's time zone). A batch of rows stamped
    with one time sends this text for each, instead of psycopg dumping the datetime per
    row (about half of a send record's COPY cost). A naive time is refused: the server
    would read it in the session's time zone."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a COPY timestamp needs a time zone")
    return at.isoformat()


#: COPY's text format: a backslash, newline, carriage return or tab in a value is written
#: as its escape (every other character stands for itself); a NULL is `\\N`
_COPY_SPECIAL = ("\\", "\n", "\r", "\t")
_COPY_KINDS = {str, int, type(None)}  # `type` is exact: a bool is not an int here
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


class Same(NamedTuple):
    """A COPY column whose value is the same in every row (a batch's run, workflow,
    time): checked and escaped once, and written into the text between the other
    columns' values (`copy_columns_text`)."""

    value: Any


def copy_text(rows: list[tuple[Any, ...]]) -> str | None:
    """The COPY text (format `text`) of `rows` whose values are all `str`, `int` or None
    (`copy_columns_text` of their columns)."""
    if not rows:
        return ""
    return copy_columns_text(list(zip(*rows, strict=True)))


def copy_columns_text(columns: Sequence[Sequence[Any] | Same]) -> str | None:
    """The COPY text (format `text`) of the rows these columns make, their values all
    `str`, `int` or None, built column by column: a column's values are checked as one
    text for characters to escape (nearly always none, so nearly no value is escaped one
    by one), a `Same` column once, then the lines are joined at once. The rows are then
    sent in one write, where psycopg's `write_row` formats each row and flushes every 32
    kB, each flush a wait on the server, and with it a wait for the interpreter lock that
    other threads of the run hold meanwhile. None (the caller writes row by row, as
    psycopg dumps them) when a value is of another type, or a text holds a NUL, which no
    Postgres text can hold: the server's error, as before."""
    _height(columns)
    texts: list[tuple[bool, Any]] = []  # (same in every row, its text or the texts)
    for column in columns:
        same = isinstance(column, Same)
        values: Sequence[Any] = (column.value,) if isinstance(column, Same) else column
        kinds = set(map(type, values))
        if not kinds <= _COPY_KINDS:  # bool, datetime, ...: psycopg dumps them
            return None
        plain = kinds == {str}
        joined = "".join(values if plain else ("" if v is None else str(v) for v in values))
        if "\x00" in joined:
            return None
        if any(c in joined for c in _COPY_SPECIAL):  # rare: each value escaped
            values = tuple("\\N" if v is None else str(v).translate(_COPY_ESCAPE) for v in values)
        elif not plain:
            values = tuple("\\N" if v is None else str(v) for v in values)
        texts.append((same, values[0] if same else values))
    # each line: the columns' texts, the `Same` ones and the tabs between merged into
    # one text that `repeat` gives every line
    parts: list[Iterable[str]] = []
    between = ""
    for i, (same, text) in enumerate(texts):
        between += "\t" if i else ""
        if same:
            between += text
            continue
        if between:
            parts.append(repeat(between))
        parts.append(text)
        between = ""
    parts.append(repeat(between + "\n"))
    # as long as the varying columns, all of one length (`_height`)
    return "".join(map("".join, zip(*parts, strict=False)))


def _height(columns: Sequence[Sequence[Any] | Same]) -> int:
    """How many rows `columns` make; a ValueError unless one column varies and all that
    vary have that many values."""
    heights = {len(c) for c in columns if not isinstance(c, Same)}
    if len(heights) != 1:
        raise ValueError("COPY columns: one at least must vary, all that vary of one length")
    return heights.pop()


def _rows_of(columns: Sequence[Sequence[Any] | Same]) -> list[tuple[Any, ...]]:
    """The rows `columns` make (a `Same` column's value in each)."""
    n = _height(columns)
    return list(
        zip(*(repeat(c.value, n) if isinstance(c, Same) else c for c in columns), strict=True)
    )


def copy_tuples(
    conn: Connection,
    tbl: Table,
    cols: list[str],
    rows: list[tuple[Any, ...]],
    conflict: list[str] | None = None,
) -> None:
    """COPY rows (tuples in `cols` order) into `tbl` (Postgres): `copy_columns` of their
    columns."""
    copy_columns(conn, tbl, cols, list(zip(*rows, strict=True)), conflict)


def copy_columns(
    conn: Connection,
    tbl: Table,
    cols: list[str],
    columns: Sequence[Sequence[Any] | Same],
    conflict: list[str] | None = None,
    *,
    text: str | bytes | None = None,
    exprs: Mapping[str, Any] | None = None,
) -> int:
    """COPY the rows `columns` make (in `cols` order; `Same` for a value every row has)
    into `tbl` (Postgres). With `conflict`, rows whose key exists are skipped (COPY into a
    temporary table, then INSERT ... ON CONFLICT DO NOTHING); without, straight into the
    table, where a duplicate key fails the COPY. `text`: their `copy_columns_text`, when
    the caller made it already (in another thread; bytes: encoded as the session's client
    encoding). Returns how many rows were written
    (with `conflict`, inserted). `exprs`: columns to fill with a SQL expression each in
    the INSERT (`conflict` only)."""
    from psycopg import sql
    from psycopg.errors import UniqueViolation

    raw: Any = conn.connection.dbapi_connection  # psycopg's connection (its cursor is a context)
    assert raw is not None
    names = sql.SQL(", ").join(map(sql.Identifier, cols))
    # the table in its schema, if it names one (not a same-named table the search path
    # finds first); the `conflict` path's load table named in the session's own temporary
    # schema everywhere, never a same-named table of a schema the search path puts first
    target = sql.Identifier(*filter(None, (tbl.schema, tbl.name)))
    load = f"_load_{tbl.name}"
    into = target if conflict is None else sql.Identifier("pg_temp", load)
    try:
        with raw.cursor() as cur:
            if conflict is not None:
                # a load table an earlier call of this transaction left (it is dropped
                # only at commit) goes first, in the same round trip
                # (a column an expression fills in the INSERT is never loaded: it may be
                # NULL there)
                cur.execute(
                    sql.SQL(
                        "DROP TABLE IF EXISTS {0};"
                        " CREATE TEMPORARY TABLE {0} (LIKE {1} INCLUDING DEFAULTS) ON COMMIT DROP"
                    ).format(into, target)
                    + sql.SQL("").join(
                        sql.SQL("; ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                            into, sql.Identifier(name)
                        )
                        for name in exprs or ()
                    )
                )
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(into, names)) as copy:
                if text is None:
                    text = copy_columns_text(columns) if columns else ""
                if text is not None:
                    copy.write(text)
                else:
                    for row in _rows_of(columns):
                        copy.write_row(row)
            copied = int(cur.rowcount)
    except UniqueViolation as exc:
        if conflict is not None:  # not a key of these rows: the store's errors() says it
            raise
        drop_frames(exc)
        raise KeyExists from None
    if conflict is None:
        return copied
    loaded = Table(load, MetaData(), *(Column(c, tbl.c[c].type) for c in cols), schema="pg_temp")
    exprs = exprs or {}
    stmt = (
        pg_insert(tbl)
        .from_select([*cols, *exprs], select(*loaded.c, *exprs.values()))
        .on_conflict_do_nothing(index_elements=conflict)
        .execution_options(preserve_rowcount=True)
    )
    return int(conn.execute(stmt).rowcount)
