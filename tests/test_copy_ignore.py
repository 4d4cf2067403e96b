"""`idempotent.copy_ignore` (the Postgres store's `insert_ignore`) under attack: COPY into a
temporary load table, then INSERT ... ON CONFLICT DO NOTHING, on a real PostgreSQL.

The oracle is direct SQL (psycopg) on the tables, or the rows SQLAlchemy Core's
`INSERT ... ON CONFLICT DO NOTHING` writes into a twin table (what the SQLite store's
`insert_ignore` runs). BREAKS found here (fixed): a `Table` with a schema had its load table
made LIKE a same-named table the search path found (or none); a second call in one
transaction failed (its `ON COMMIT DROP` load table still existed); a search path naming
`pg_temp` after `public` sent the rows into a permanent `_load_<name>` and inserted what
that table held; a row leaving out a column with a Python-side default (`id`, `kind`) got
NULL where Core gives the default; a plain `JSON` column's dict could not be sent.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import _stores
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from hybridwb.platform.idempotent import copy_columns, copy_ignore
from hybridwb.platform.store import Store

pytestmark = pytest.mark.postgres

# the shared fixtures (tests/_stores.py): a store on SQLite and PostgreSQL, its oracle
store = _stores.store
oracle = _stores.oracle

_DDL = "(k bigint PRIMARY KEY, a text, n int NOT NULL DEFAULT 5)"


@pytest.fixture
def pg() -> Iterator[tuple[sa.Engine, str]]:
    """An engine on a new database, and its psycopg connection string (the oracle's)."""
    for url in _stores.fresh_pg_database("hybridwb_cpign"):
        engine = sa.create_engine(url)
        try:
            yield engine, f"host=127.0.0.1 user=postgres dbname={url.database}"
        finally:
            engine.dispose()


def _tbl(name: str, schema: str | None = None) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("k", sa.BigInteger, primary_key=True),
        sa.Column("a", sa.Text),
        sa.Column("n", sa.Integer, nullable=False, server_default="5"),
        schema=schema,
    )


def _sql(dsn: str, *statements: str) -> list[Any]:
    """Each statement's rows (None for one that returns none), in autocommit."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        out = []
        for s in statements:
            cur = conn.execute(s)
            out.append(cur.fetchall() if cur.description else None)
        return out


def _ignore(
    conn: sa.Connection, tbl: sa.Table, rows: list[dict[str, Any]], conflict: list[str]
) -> int:
    return copy_ignore(conn, tbl, rows, conflict)


def _columns(
    conn: sa.Connection, tbl: sa.Table, rows: list[dict[str, Any]], conflict: list[str]
) -> int:
    cols = list(rows[0])
    return copy_columns(conn, tbl, cols, [[r[c] for r in rows] for c in cols], conflict)


@pytest.mark.parametrize("public", ["none", "other columns"])
def test_a_table_in_another_schema_gets_the_rows_judged_by_its_own_keys(
    pg: tuple[sa.Engine, str], public: str
) -> None:
    """`Table(..., schema="other")`: the load table is made like `other.mine`, the rows
    go there, and conflicts are judged against its keys, whatever `public.mine` is.
    BREAK (fixed): the LIKE named `mine` without its schema: no such table (search path
    `public`), or `public.mine`'s columns (the COPY failed on a column it lacks).
    Mutation: the schema left out of the LIKE's table → both fail."""
    engine, dsn = pg
    _sql(dsn, f"CREATE SCHEMA other; CREATE TABLE other.mine {_DDL}")
    _sql(dsn, "INSERT INTO other.mine VALUES (2, 'old', 0)")
    if public == "other columns":
        _sql(dsn, "CREATE TABLE public.mine (k bigint PRIMARY KEY, z int)")
        _sql(dsn, "INSERT INTO public.mine VALUES (3, 3)")
    rows = [{"k": k, "a": f"new{k}"} for k in (1, 2, 3)]
    with engine.begin() as conn:
        assert copy_ignore(conn, _tbl("mine", "other"), rows, ["k"]) == 2
    [other] = _sql(dsn, "SELECT * FROM other.mine ORDER BY k")
    assert other == [(1, "new1", 5), (2, "old", 0), (3, "new3", 5)]
    if public == "other columns":
        assert _sql(dsn, "SELECT * FROM public.mine") == [[(3, 3)]]


def test_two_calls_in_one_transaction_write_both_and_skip_conflicts(
    pg: tuple[sa.Engine, str],
) -> None:
    """Two calls into one table in one transaction: each returns its own count, the
    second skips the key the first wrote, an existing row is left as it was, and a
    permanent table named as the load table is left alone.
    BREAK (fixed): the second call failed (DuplicateTable: the first call's load table
    lives until commit). Mutations: no DROP before the CREATE → fails; the DROP without
    `pg_temp.` → fails (the permanent `_load_mine` dropped)."""
    engine, dsn = pg
    _sql(dsn, f"CREATE TABLE mine {_DDL}", "INSERT INTO mine VALUES (0, 'old', 0)")
    _sql(dsn, "CREATE TABLE public._load_mine (z int)", "INSERT INTO _load_mine VALUES (7)")
    tbl = _tbl("mine")
    with engine.begin() as conn:
        first = copy_ignore(conn, tbl, [{"k": k, "a": "one"} for k in (0, 1, 2)], ["k"])
        second = copy_ignore(conn, tbl, [{"k": k, "a": "two"} for k in (2, 3)], ["k"])
    assert (first, second) == (2, 1)
    got = _sql(dsn, "SELECT k, a, n FROM mine ORDER BY k", "SELECT z FROM public._load_mine")
    assert got == [[(0, "old", 0), (1, "one", 5), (2, "one", 5), (3, "two", 5)], [(7,)]]


@pytest.mark.parametrize("write", [_ignore, _columns], ids=["copy_ignore", "copy_columns"])
def test_a_search_path_naming_pg_temp_last_reads_no_permanent_load_table(
    pg: tuple[sa.Engine, str], write: Callable[..., int]
) -> None:
    """A session whose search path names `pg_temp` after `public` (as a function's pinned
    path may, or a role's setting): a permanent `public._load_mine` of the same columns
    neither takes the rows nor gives its own.
    BREAK (fixed): the COPY and the INSERT's SELECT named the load table unqualified, so
    they found `public._load_mine`: the rows went there, and its planted row went into
    `mine`. Mutation: the load table unqualified in the COPY and the SELECT → both fail."""
    engine, dsn = pg
    _sql(dsn, f"CREATE TABLE mine {_DDL}", f"CREATE TABLE public._load_mine {_DDL}")
    _sql(dsn, "INSERT INTO public._load_mine VALUES (99, 'planted', 0)")
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL search_path = public, pg_temp")
        assert write(conn, _tbl("mine"), [{"k": 1, "a": "x"}, {"k": 2, "a": "y"}], ["k"]) == 2
    got = _sql(dsn, "SELECT k, a FROM mine ORDER BY k", "SELECT k FROM public._load_mine")
    assert got == [[(1, "x"), (2, "y")], [(99,)]]


_ODD_SCHEMA = 'Sch "x"; DROP'
_ODD_TABLE = "tbl; DROP TABLE mine --" + "ü" * 10 + '"'
_ODD_COLUMNS = ["Key", "a b", "50%", '"q"', "select", "ünï", "%(x)s"]


def _odd_table(name: str, schema: str | None) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column(_ODD_COLUMNS[0], sa.Integer, primary_key=True),
        *(sa.Column(c, sa.Text) for c in _ODD_COLUMNS[1:]),
        schema=schema,
    )


def test_odd_table_schema_and_column_names_are_quoted_everywhere(
    pg: tuple[sa.Engine, str],
) -> None:
    """Schema, table and column names with quotes, spaces, `;`, `%`, `%(x)s`, a keyword,
    non-ASCII letters; and two tables of 63 bytes whose load names (`_load_` + name, cut
    to 63 bytes by the server) are the same, both written in one transaction: each
    table's rows are Core's, the twin's."""
    engine, _ = pg
    long_a, long_b = "t" * 62 + "a", "t" * 62 + "b"
    twins = [(_ODD_SCHEMA, _ODD_TABLE), (None, long_a), (None, long_b), (None, "twin")]
    rows = [{c: f"{c}{i}" for c in _ODD_COLUMNS[1:]} | {"Key": i} for i in range(4)]
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{_ODD_SCHEMA.replace(chr(34), 2 * chr(34))}"')
        for schema, name in twins:
            tbl = _odd_table(name, schema)
            tbl.create(conn)
            conn.execute(sa.insert(tbl), rows[:1])
        inserted = [copy_ignore(conn, _odd_table(n, s), rows, ["Key"]) for s, n in twins[:3]]
        conn.execute(pg_insert(_odd_table("twin", None)).on_conflict_do_nothing(), rows)
    assert inserted == [3, 3, 3]
    with engine.connect() as conn:
        read = [
            conn.execute(sa.select(_odd_table(n, s)).order_by(sa.text("1"))).all() for s, n in twins
        ]
    assert read[0] == read[1] == read[2] == read[3] and len(read[3]) == 4


def test_no_rows_and_rows_whose_keys_all_exist_write_nothing(
    pg: tuple[sa.Engine, str],
) -> None:
    """No rows: 0, nothing written. Every row's key taken (twice the same key too): 0,
    the existing rows unchanged."""
    engine, dsn = pg
    _sql(dsn, f"CREATE TABLE mine {_DDL}", "INSERT INTO mine VALUES (1, 'old', 0), (2, 'old', 0)")
    rows = [{"k": k, "a": "new", "n": 9} for k in (1, 2, 2, 1)]
    with engine.begin() as conn:
        assert copy_ignore(conn, _tbl("mine"), [], ["k"]) == 0
        assert copy_ignore(conn, _tbl("mine"), rows, ["k"]) == 0
    assert _sql(dsn, "SELECT * FROM mine ORDER BY k") == [[(1, "old", 0), (2, "old", 0)]]


def _kinded(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Uuid, primary_key=True, default=uuid.uuid4),
        sa.Column("k", sa.Text, nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("flag", sa.Boolean),
        sa.Column("doc", JSONB),
        sa.Column("plain", sa.JSON),
        sa.Column("kind", sa.String(20), nullable=False, default="mysql"),
        sa.Column("made", sa.Integer, nullable=False, server_default="7"),
    )


_AT = dt.datetime(2026, 12, 5, 21, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))
_DOCS: list[Any] = [{"a": [1, "ü", None]}, [], None, "text", 0, {"t": "a\tb\\N\n"}, True]


def test_rows_of_every_kind_are_what_core_inserts(pg: tuple[sa.Engine, str]) -> None:
    """Rows with a UUID, a time, a bool, JSONB and plain JSON values (objects, lists, a
    text, a number, awkward texts, None: JSON's null, as Core writes it), a key repeated in the batch (the first kept), and
    no `id`, `kind` or `made` (Python-side defaults, a server default): the table holds
    what Core's INSERT ... ON CONFLICT DO NOTHING writes into a twin; the count is the
    rows inserted (Core's executemany gives none).
    BREAKS (fixed): a dict for a plain `JSON` column could not be sent; the missing
    columns were NULL (NotNullViolation) where Core gives their defaults."""
    engine, _ = pg
    rows = [
        {"k": f"k{i % 5}", "at": _AT, "flag": i % 2 == 0, "doc": d, "plain": d}
        for i, d in enumerate(_DOCS)
    ]
    ours, twin = _kinded("ours"), _kinded("twin")
    with engine.begin() as conn:
        ours.metadata.create_all(conn)
        twin.metadata.create_all(conn)
        got = copy_ignore(conn, ours, rows, ["k"])
        conn.execute(pg_insert(twin).on_conflict_do_nothing(index_elements=["k"]), rows)
    cols = [c for c in ours.c if c.name != "id"]
    with engine.connect() as conn:
        read = [
            conn.execute(
                sa.select(
                    *(t.c[c.name] for c in cols), t.c.doc.is_(None), t.c.plain.is_(None)
                ).order_by(t.c.k)
            ).all()
            for t in (ours, twin)
        ]
        ids = conn.execute(sa.select(sa.func.count(sa.distinct(ours.c.id)))).scalar_one()
    assert read[0] == read[1] and (got, len(read[0]), ids) == (5, 5, 5)


def test_a_row_without_a_defaulted_column_gets_its_default_on_either_store(
    store: Store, oracle: _stores.Oracle
) -> None:
    """`insert_ignore` of a query log row without `id`, `result_count` or `kind` writes
    the row with their defaults on SQLite (Core) and on PostgreSQL (`copy_ignore`) alike.
    BREAK (fixed): on PostgreSQL `id` went as NULL (NotNullViolation)."""
    row = {"timestamp": dt.datetime.now(dt.UTC), "query": "SELECT 1", "execution_time": 1.0}
    row |= {"status": "success", "database": "shop"}
    assert store.backend.insert_ignore("query_logs", [row, dict(row)], ["id"]) == 2
    found = oracle.rows("SELECT id, result_count, kind FROM query_logs")
    assert [r[1:] for r in found] == [(0, "mysql")] * 2 and found[0][0] != found[1][0]


def test_copy_columns_counts_the_rows_it_writes(pg: tuple[sa.Engine, str]) -> None:
    """`copy_columns` returns the rows COPied straight into the table, or with `conflict`
    the rows inserted (those whose key exists not counted)."""
    engine, dsn = pg
    _sql(dsn, f"CREATE TABLE mine {_DDL}")
    tbl = _tbl("mine")
    with engine.begin() as conn:
        assert copy_columns(conn, tbl, ["k", "a"], [[1, 2, 3], ["x", "y", "z"]]) == 3
        assert copy_columns(conn, tbl, ["k", "a"], [[3, 4], ["z", "w"]], ["k"]) == 1
    assert _sql(dsn, "SELECT count(*) FROM mine") == [[(4,)]]


def test_rows_naming_different_columns_keep_every_value_on_either_store(
    store: Store, oracle: _stores.Oracle
) -> None:
    """`insert_ignore` of rows that name different columns writes each row's own values,
    a column a row leaves out its default, on SQLite and PostgreSQL alike. BREAK (fixed):
    on SQLite Core's executemany took the columns of the first row, so a value only a
    later row named was dropped (stored as the default), and a row lacking a column the
    first one named failed the whole call."""
    base = {"timestamp": dt.datetime.now(dt.UTC), "execution_time": 1.0, "status": "success"}
    rows = [
        base | {"query": "SELECT 1"},
        base | {"query": "SELECT 2", "result_count": 7, "kind": "search"},
        base | {"query": "SELECT 3", "result_count": 8, "kind": "search"},
        base | {"query": "SELECT 4"},
        base | {"query": "SELECT 5", "kind": "sql"},
    ]
    assert store.backend.insert_ignore("query_logs", rows, ["id"]) == 5
    found = oracle.rows("SELECT query, result_count, kind FROM query_logs ORDER BY query")
    assert found == [
        ("SELECT 1", 0, "mysql"),
        ("SELECT 2", 7, "search"),
        ("SELECT 3", 8, "search"),
        ("SELECT 4", 0, "mysql"),
        ("SELECT 5", 0, "sql"),
    ]


def _defaulted(name: str) -> sa.Table:
    """Defaults Core computes in the INSERT: SQL expressions (`func.now()`, a literal
    column), a callable that reads the row through its execution context, and a server
    default."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("k", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, default=sa.func.now()),
        sa.Column("s", sa.Text, nullable=False, default=sa.literal_column("'a' || 'b'")),
        sa.Column(
            "tens",
            sa.Integer,
            nullable=False,
            default=lambda ctx: ctx.get_current_parameters()["k"] * 10,
        ),
        sa.Column("n", sa.Integer, nullable=False, server_default=sa.text("2 + 3")),
    )


def test_sql_expression_and_context_defaults_are_what_core_inserts(
    pg: tuple[sa.Engine, str],
) -> None:
    """Rows that leave out columns whose default is a SQL expression (`func.now()`, a
    literal column) or a callable reading the row (`ctx.get_current_parameters()`), some
    rows naming them: the table holds what Core's INSERT ... ON CONFLICT DO NOTHING (the
    SQLite store's path) writes into a twin, `now()` being the transaction's time.
    BREAKS (fixed): the SQL-expression columns went as NULL (NotNullViolation), and the
    callable was called with no context (a raw AttributeError)."""
    engine, dsn = pg
    rows: list[dict[str, Any]] = [
        {"k": 1},
        {"k": 2, "s": "given", "at": _AT},
        {"k": 3, "tens": 7},
        {"k": 1, "s": "repeated"},  # the key again: skipped
    ]
    ours, twin = _defaulted("ours"), _defaulted("twin")
    with engine.begin() as conn:
        ours.metadata.create_all(conn)
        twin.metadata.create_all(conn)
        got = copy_ignore(conn, ours, rows, ["k"])
        stmt = pg_insert(twin).on_conflict_do_nothing(index_elements=["k"])
        for row in rows:  # Core, one row at a time (as the SQLite store's groups of rows)
            conn.execute(stmt, row)
        now = conn.execute(sa.select(sa.func.now())).scalar_one()
    read = _sql(dsn, *(f"SELECT k, at, s, tens, n FROM {t} ORDER BY k" for t in ("ours", "twin")))
    assert read[0] == read[1] and got == 3
    assert read[0] == [
        (1, now, "ab", 10, 5),
        (2, _AT, "given", 20, 5),
        (3, now, "ab", 7, 5),
    ]
