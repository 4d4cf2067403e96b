"""Attack round 18 on two guarantees, on the real servers, each against an oracle that
uses no hybridwb code.

(1) A read through the guarded PyMySQL connection (`drivers.unbuffered_cursor`, the
source's `records`/`sql`) gives what plain PyMySQL's `SSCursor` gives for the same
statement: description, every `fetchmany(n)` batch, `rownumber`, `warning_count`, the
same error (type and code) at the same point, and a connection that runs the next
statement. Values of every MariaDB kind, row sizes at every offset of the client's read
buffer, rows split over several packets (16 MB), 1 and 400 columns, mixes of
fetchone/fetchmany/fetchall/nextset, errors mid-result, KILL QUERY/KILL CONNECTION
mid-fetch, replies damaged deep inside a stream.

(2) Rows COPied into the store read back as written: `copy_columns` with `Same` columns
in every position and values of every kind, against psycopg's own `copy.write_row` into
a twin table; the `conflict` path; a schema-qualified table; two COPYs with `conflict`
in one transaction.

Private `hybridwb_a18_<random>` MariaDB databases and `hybridwb_copy18_<random>`
PostgreSQL databases.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import gc
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from hybridwb.platform.idempotent import Same, _rows_of, copy_columns, copy_tuples
from hybridwb.source import Source, described, drivers
from tests._mysql import no_streamed_result_left_active, plain_root, root_cursor, scratch_db
from tests._mysql import root as _root
from tests._stores import fresh_pg_database
from tests.test_attack_described_round17 import _Proxy
from tests.test_source_lean_driver import _source

# ---------------------------------------------------------------------------------------
# (1) the guarded PyMySQL connection against plain PyMySQL
# ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_streamed_result_left_active() -> Iterator[None]:
    with no_streamed_result_left_active():
        yield


_KINDS = (
    "id INT PRIMARY KEY, bit1 BIT(1), bit64 BIT(64), g GEOMETRY, pt POINT, y YEAR,"
    " tm TIME(6), tm0 TIME, d DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL,"
    " dec65 DECIMAL(65, 0), dec30 DECIMAL(65, 30), j JSON, e ENUM('a', 'b', ''),"
    " st SET('x', 'y', 'z'), bl LONGBLOB, tb TINYBLOB, mt MEDIUMTEXT CHARACTER SET utf8mb4,"
    " u4 VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,"
    " l1 VARCHAR(40) CHARACTER SET latin1 COLLATE latin1_bin, bn BINARY(4),"
    " vb VARBINARY(300), f FLOAT, db DOUBLE, ti TINYINT UNSIGNED, bi BIGINT UNSIGNED,"
    " sbi BIGINT, ch CHAR(3) CHARACTER SET ascii, ui INET6, uu UUID"
)

_KIND_ROWS = [
    "1, b'1', b'1111111111111111111111111111111111111111111111111111111111111111',"
    " ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'), POINT(1.5, -2), 1901,"
    " '-838:59:59.999999', '838:59:59', '0000-00-00', '0000-00-00 00:00:00.000000',"
    " '1970-01-01 00:00:01.000', REPEAT('9', 65), CONCAT('-', REPEAT('9', 35), '.',"
    " REPEAT('9', 30)), '{\"k\": [1, \"\\\\u00e9\", null, 1e308]}', '', 'x,z',"
    " x'00ff00', '', REPEAT('\U0001f600', 1000), '\U0001f600\U0001f9d1\u200d\U0001f4bb',"
    " 'caf\u00e9 \u00ff', x'00000000', x'', -0.0, 1e308, 255, 18446744073709551615,"
    " -9223372036854775808, 'abc', '::1', '00000000-0000-0000-0000-000000000000'",
    "2, b'0', b'0', NULL, NULL, 2155, '-00:00:00.000001', '-00:00:01', '2026-02-28',"
    " '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', 0, 0, 'null', 'b', '',"
    " REPEAT(x'ab', 70000), x'', '', '', '', x'01020304', REPEAT(x'ff', 300), 3.4e38,"
    " -1e-308, 0, 0, 9223372036854775807, '', 'ffff::1', 'ffffffff-ffff-ffff-ffff-ffffffffffff'",
    "3, NULL, NULL, NULL, NULL, 0, '00:00:00', NULL, '2026-01-00', '2026-00-00 01:02:03',"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL",
]


@pytest.fixture(scope="module")
def mdb() -> Iterator[str]:
    """A database with a table `k` of every kind of value and a procedure of two results."""
    with scratch_db("a18", rows=3) as name:
        with root_cursor(name) as cur:
            cur.execute("SET SESSION sql_mode = ''")  # zero dates stored as written
            cur.execute(f"CREATE TABLE k ({_KINDS}) CHARACTER SET utf8mb4")
            for row in _KIND_ROWS:
                cur.execute(f"INSERT INTO k VALUES ({row})")
            cur.execute(
                "CREATE PROCEDURE two() BEGIN SELECT 1 AS a; SELECT 'x' AS b, NULL AS c; END"
            )
        yield name


def _trace(cur: Any, conn: Any, sql: str, ops: list[Any]) -> list[Any]:
    """What a cursor shows for `sql` under the operations `ops` (an int: `fetchmany(n)`;
    "one", "all", "next", "many": fetchmany until empty), an error's type and code where
    it is raised, then what the same connection gives for the next statement."""
    out: list[Any] = []
    try:
        cur.execute(sql)
        out.append(("executed", cur.description, cur.rownumber, cur.warning_count))
        for op in ops:
            if op == "one":
                got: Any = cur.fetchone()
            elif op == "all":
                got = list(cur.fetchall())
            elif op == "next":
                got = cur.nextset()
            elif op == "many":
                got = []
                while rows := cur.fetchmany(97):
                    got.append(list(rows))
            else:
                got = list(cur.fetchmany(op))
            out.append((op, got, cur.description, cur.rownumber, cur.warning_count))
    except pymysql.err.Error as exc:
        out.append(("error", type(exc), exc.args[0]))
    with contextlib.suppress(Exception):
        cur.close()
    try:
        check = conn.cursor()
        check.execute("SELECT 42")
        out.append(("next statement", check.fetchall()))
    except pymysql.err.Error as exc:
        out.append(("next statement error", type(exc), exc.args[0]))
    return out


def _plain_trace(db: str, sql: str, ops: list[Any]) -> list[Any]:
    conn = plain_root(db)
    try:
        return _trace(conn.cursor(pymysql.cursors.SSCursor), conn, sql, ops)
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _guarded_trace(db: str, sql: str, ops: list[Any]) -> list[Any]:
    src = _source(db, use_guard=False)
    try:
        raw = src.engine.raw_connection()
        try:
            cur = drivers.unbuffered_cursor(raw.dbapi_connection)
            assert type(cur) is described.StreamCursor
            return _trace(cur, raw.dbapi_connection, sql, ops)
        finally:
            raw.invalidate()
    finally:
        src.close()


def _same(db: str, sql: str, ops: list[Any]) -> list[Any]:
    want = _plain_trace(db, sql, ops)
    got = _guarded_trace(db, sql, ops)
    assert got == want
    return want


@pytest.mark.mysql
def test_the_guard_leaves_no_streamed_result_of_the_test_active() -> None:
    """The autouse guard above (`no_streamed_result_left_active`): a PyMySQL result left
    streaming inside it, reachable or not, is inactive after it, so its `__del__` reads
    nothing in a later test. Oracle: the result's own flag. Mutation: the guard's reset
    loop removed, 1 of 1 fails."""
    conn = _root()
    try:
        with no_streamed_result_left_active():
            cur = conn.cursor(pymysql.cursors.SSCursor)
            cur.execute("SELECT seq FROM mysql.seq_1_to_1000")
            cur.fetchone()
            result = conn._result
            assert result is not None and result.unbuffered_active
        assert not result.unbuffered_active
    finally:
        conn.close()


@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_values_of_every_mariadb_kind_stream_as_pymysql_streams_them(mdb: str, size: int) -> None:
    """BIT, GEOMETRY/POINT, YEAR, negative and fractional TIME, zero and partly zero dates,
    DECIMAL(65), JSON, ENUM/SET (empty too), BLOBs, 4-byte utf8mb4, latin1/binary
    collations, INET6/UUID, extreme floats and ints, NULL in every column: the same
    batches, description, row number and warnings as plain PyMySQL, each batch size."""
    trace = _same(mdb, "SELECT * FROM k ORDER BY id", [size] * 4 + ["one", size])
    assert sum(len(step[1]) for step in trace[1:5]) == 3
    # the same values through expressions (types the server derives, not stored)
    _same(
        mdb,
        "SELECT id, bit64 | 0 AS b, CONCAT(u4, l1) AS c, ST_AsBinary(g) AS wkb,"
        " tm + INTERVAL 0 SECOND AS t2, JSON_EXTRACT(j, '$.k') AS je, dec30 * 1 AS m,"
        " CAST(mt AS BINARY) AS raw FROM k ORDER BY id",
        [size] * 4,
    )


@pytest.mark.mysql
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_rows_of_every_length_straddle_the_read_buffer_at_every_offset(mdb: str, size: int) -> None:
    """Rows whose lengths step by one byte from 0 to 9,000 (every offset of an 8 KB read
    buffer at which a row can begin and end, a length prefix split from its value), with
    NULLs between, then values at the wire format's length edges (250-253, 65535/65536,
    16 MB-1 and over, split over several packets): the same batches as PyMySQL."""
    _same(
        mdb,
        "SELECT seq, IF(seq % 17 = 0, NULL, REPEAT(CHAR(65 + seq % 26), seq)) AS v,"
        " IF(seq % 5 = 0, NULL, seq) AS n FROM seq_0_to_9000",
        ["many"] if size == 1000 else [size] * 50 + ["all"],
    )
    edges = [0, 1, 250, 251, 252, 253, 254, 65535, 65536, 65537, 16777210, 16777211, 16777212]
    sql = " UNION ALL ".join(
        f"SELECT {i} AS i, REPEAT('\u00e9', {n} DIV 2) AS v, {n} AS n" for i, n in enumerate(edges)
    )
    _same(mdb, sql + " UNION ALL SELECT 99, NULL, REPEAT('b', 16777000)", [size] * 20)


@pytest.mark.mysql
def test_one_column_and_four_hundred_columns_stream_as_pymysql(mdb: str) -> None:
    """A result of 1 column (and of 0 rows) and of 400 columns of mixed kinds, names
    with 4-byte characters and duplicates: the same description and batches."""
    _same(mdb, "SELECT seq FROM seq_1_to_3000", [1, 0, 500, "many"])
    _same(mdb, "SELECT seq FROM seq_1_to_3000 WHERE seq < 0", [1, "one", "all"])
    cols = ", ".join(
        f"IF(seq % {i % 7 + 2} = 0, NULL, {('seq', 'REPEAT(CHAR(97 + seq % 26), seq)', 'seq / 3', 'NOW(6) - INTERVAL seq DAY')[i % 4]}) AS `c{i % 390}\U0001f600`"
        for i in range(400)
    )
    _same(mdb, f"SELECT {cols} FROM seq_1_to_60", [1, 3, 50, "all"])


_OPS: list[list[Any]] = [
    [0, "one", 0, 3, "one", "all", 2, 0, "one", "all"],  # fetchmany(0), after the end
    ["all", "all", 5, "one", 1],
    [-1, 2, -5, "one"],
    ["one", "one", "all", "one", 0],
    [3, "next", "one", "all"],  # nextset on a single result
    [10000, 10000, 1],
]


@pytest.mark.mysql
@pytest.mark.parametrize("ops", _OPS, ids=[str(i) for i in range(len(_OPS))])
def test_mixing_fetchone_fetchmany_fetchall_on_one_cursor_is_what_pymysql_does(
    mdb: str, ops: list[Any]
) -> None:
    """fetchmany(0), negative sizes, fetches after the end, fetchone/fetchmany/fetchall
    mixed, nextset: each step's rows, description, row number and warnings as PyMySQL's."""
    _same(mdb, "SELECT seq, CAST(CONCAT(seq, 'x') AS SIGNED) AS w FROM seq_1_to_10", ops)


@pytest.mark.mysql
@pytest.mark.filterwarnings("ignore:Previous unbuffered result was left incomplete")
@pytest.mark.parametrize(
    "ops",
    [
        ["all", "next", "all", "next", "all", "next", "one"],
        [1, 1, "next", 5, "next", "next"],
        ["one"],  # the rest of the results left unread: the next statement
        [],
        ["next", "next", "next", "one"],
    ],
)
def test_a_procedure_of_several_results_streams_as_pymysql(mdb: str, ops: list[Any]) -> None:
    """CALL of a procedure with two result sets (and the final OK): nextset, and results
    left unread before the next statement, as PyMySQL."""
    _same(mdb, "CALL two()", ops)


@pytest.mark.mysql
@pytest.mark.parametrize("at", [1, 2, 97, 2999, 3000])
def test_an_error_at_row_n_raises_after_the_same_rows(mdb: str, at: int) -> None:
    """A subquery returning two rows at row N (first, second, a batch edge, the last but
    one, the last), rows large enough to span read buffers: the error after the same
    batches, and the connection reads the next statement."""
    sql = (
        f"SELECT seq, IF(seq = {at}, (SELECT 1 UNION SELECT 2), REPEAT('r', seq % 3000)) AS v"
        " FROM seq_1_to_3000"
    )
    for ops in (["many"], [1] * 5 + ["all"], ["one", 96, "all"]):
        trace = _same(mdb, sql, ops)
        assert trace[-2][0] == "error" and trace[-2][2] == 1242


@pytest.mark.mysql
def test_max_statement_time_hit_mid_stream_is_what_pymysql_raises(mdb: str) -> None:
    """max_statement_time reached after rows were sent: PyMySQL's error at the same point
    (or the same rows: whichever PyMySQL gives, the guarded connection gives)."""
    sql = (
        "SET STATEMENT max_statement_time = 0.3 FOR"
        " SELECT seq, SLEEP(IF(seq = 700, 1, 0)) AS s FROM seq_1_to_1000"
    )
    for ops in (["many"], [1000], [1] * 800):
        _same(mdb, sql, ops)


def _kill_trace(conn: Any, cur: Any, how: str) -> list[Any]:
    """Stream a big result, read a little, have root KILL the query or the connection,
    read on: the error, whether the rows read are exactly the result's prefix, and what
    the next statement on the connection gives."""
    out: list[Any] = []
    seen: list[Any] = []
    cur.execute("SELECT seq, REPEAT('k', 2000) AS v FROM seq_1_to_2000000")
    seen += cur.fetchmany(10)
    killer = _root()
    try:
        with killer.cursor() as kc:
            kc.execute(f"KILL {how} {conn.thread_id()}")
    finally:
        killer.close()
    time.sleep(0.3)
    try:
        while rows := cur.fetchmany(1000):
            seen += rows
        out.append(("ended", None))
    except pymysql.err.Error as exc:
        out.append(("error", type(exc), exc.args[0]))
    out.append(("prefix", seen == [(i, "k" * 2000) for i in range(1, len(seen) + 1)]))
    cur._result = None
    with contextlib.suppress(Exception):
        cur.close()
    try:
        check = conn.cursor()
        check.execute("SELECT 42")
        out.append(("next", check.fetchall()))
    except pymysql.err.Error as exc:
        out.append(("next error", type(exc), exc.args[0]))
    return out


@pytest.mark.mysql
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("how", ["QUERY", "CONNECTION"])
def test_kill_mid_fetch_raises_what_pymysql_raises(mdb: str, how: str) -> None:
    """KILL QUERY / KILL CONNECTION from root while a result is being fetched: the same
    error (type and code), the rows read before it exactly the result's prefix, and the
    same answer to the next statement (an error after KILL CONNECTION, the statement's
    rows after KILL QUERY)."""
    conn = plain_root(mdb)
    try:
        want = _kill_trace(conn, conn.cursor(pymysql.cursors.SSCursor), how)
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    src = _source(mdb, use_guard=False)
    try:
        raw = src.engine.raw_connection()
        try:
            got = _kill_trace(
                raw.dbapi_connection, drivers.unbuffered_cursor(raw.dbapi_connection), how
            )
        finally:
            raw.invalidate()
    finally:
        src.close()
    assert got == want
    assert want[0][0] == "error" and want[1] == ("prefix", True)


@pytest.mark.mysql
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("mode", ["seq", "seq0", "cut", "cut-header"])
@pytest.mark.parametrize("at", [3, 40, 119, 120, 306])
def test_a_reply_damaged_deep_in_a_stream_raises_what_pymysql_raises(
    mdb: str, mode: str, at: int
) -> None:
    """The reply damaged at packet N of a 300-row stream whose rows (0-9,000 bytes) cross
    the read buffer's edges, and in a row split over two packets (over 16 MB, packet
    packets 119 and 120; the last EOF at 306): fetchmany(7) gives the same rows then the same error as PyMySQL's."""
    sql = (
        "SELECT seq, IF(seq = 115, REPEAT('h', 16777210), REPEAT('s', seq * 31)) AS v,"
        " 'DAMAGE_ME' AS m FROM seq_1_to_300"
    )

    def outcome(conn: Any, cur: Any) -> object:
        seen: list[Any] = []
        try:
            cur.execute(sql)
            while rows := cur.fetchmany(7):
                seen.append(list(rows))
            return ("rows", seen)
        except pymysql.err.Error as exc:
            return (type(exc), exc.args[0], conn._sock is None, seen)
        finally:
            cur._result = None
            with contextlib.suppress(Exception):
                cur.close()

    proxy = _Proxy(mode, at)
    try:
        conn = plain_root(mdb, host="127.0.0.1", port=proxy.port)
        try:
            want = outcome(conn, conn.cursor(pymysql.cursors.SSCursor))
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        url = URL.create(
            "mysql+pymysql", username="root", host="127.0.0.1", port=proxy.port, database=mdb
        )
        src = Source(url, use_guard=False, pool_size=2, max_overflow=0)
        try:
            raw = src.engine.raw_connection()
            try:
                got = outcome(raw.dbapi_connection, drivers.unbuffered_cursor(raw.dbapi_connection))
            finally:
                raw.invalidate()
        finally:
            src.close()
    finally:
        proxy.close()
        gc.collect()
    assert got == want
    assert want[0] != "rows"  # the damage is seen


_RECORD_SQL = [
    "SELECT * FROM k ORDER BY id",
    "SELECT seq, REPEAT('x', seq) AS v FROM seq_0_to_600",
    "SELECT seq FROM seq_1_to_5 WHERE seq < 0",
    "SELECT ST_AsText(g) AS g, bit64, dec30, tm, d FROM k ORDER BY id",
]


@pytest.mark.mysql
@pytest.mark.parametrize("sql", _RECORD_SQL)
def test_source_records_and_sql_are_plain_pymysqls_rows(mdb: str, sql: str) -> None:
    """`Source.records` and `Source.sql` (guarded source) give the rows and column names
    plain PyMySQL's buffered cursor gives (the DataFrame's values compared as objects)."""
    conn = plain_root(mdb)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            want = [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()
    src = _source(mdb, use_guard=True)
    try:
        records = src.records(sql)
        frame = src.sql(sql)
    finally:
        src.close()
    for w, r in zip(want, records, strict=True):
        assert [(n, type(v), v) for n, v in zip(names, w, strict=True)] == [
            (n, type(v), v) for n, v in r.items()
        ]
    assert all(list(r) == names for r in records)
    # the DataFrame: what pandas builds from PyMySQL's rows (NULLs as NaN/NaT, an int
    # column with a NULL as floats), dtypes included
    pd.testing.assert_frame_equal(frame, pd.DataFrame(want, columns=names))


# ---------------------------------------------------------------------------------------
# (2) COPY into the store against psycopg's own write_row
# ---------------------------------------------------------------------------------------

_COLS = ["k", "a", "b", "c", "d"]
_DDL = "(k bigint PRIMARY KEY, a text, b text, c text, d text)"

_TEXTS = [
    "",
    "\\N",
    "\\.",
    "\\",
    "a\tb\tc",
    "\n",
    "\r",
    "\r\n\\.\r\n",
    "x\\ny",
    "\U0001f600\U0001f9d1\u200d\U0001f4bb",
    "\x01\x7f\x85\u2028\u2029\x0b\x0c",
    "NULL",
    "end\\",
    "\\\\N",
    None,
]


@pytest.fixture
def pg() -> Iterator[tuple[sa.Engine, str]]:
    for url in fresh_pg_database("hybridwb_copy18"):
        engine = sa.create_engine(url)
        try:
            yield (
                engine,
                url.render_as_string(hide_password=False).replace(
                    "postgresql+psycopg", "postgresql"
                ),
            )
        finally:
            engine.dispose()


def _tbl(name: str, cols: list[str] = _COLS, schema: str | None = None) -> sa.Table:
    return sa.Table(name, sa.MetaData(), *(sa.Column(c) for c in cols), schema=schema)


def _oracle(url: str, ddl: str, cols: list[str], rows: list[tuple[Any, ...]]) -> Any:
    """psycopg's own COPY of `rows` (write_row) into a fresh twin table, read back; or
    the exception type it fails with."""
    with psycopg.connect(url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS twin; CREATE TABLE twin {ddl}")
        conn.commit()
        try:
            with conn.cursor() as cur, cur.copy(f"COPY twin ({', '.join(cols)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
            conn.commit()
        except Exception as exc:
            return type(exc)
        return conn.execute(f"SELECT {', '.join(cols)} FROM twin ORDER BY 1").fetchall()


def _ours(engine: sa.Engine, url: str, ddl: str, cols: list[str], columns: list[Any]) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS mine; CREATE TABLE mine {ddl}")
    try:
        with engine.begin() as conn:
            copy_columns(conn, _tbl("mine", cols), cols, columns)
    except Exception as exc:
        return type(exc)
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT {', '.join(cols)} FROM mine ORDER BY 1").fetchall()


def _layouts(texts: list[Any], shared: Any) -> list[list[Any]]:
    """`Same(shared)` in every position (the key always varies), two and three in a row,
    and every column but the key shared."""
    n = len(texts)
    keys = list(range(n))
    rev = texts[::-1]
    return [
        [keys, Same(shared), texts, rev, texts],
        [keys, texts, Same(shared), rev, texts],
        [keys, texts, rev, Same(shared), texts],
        [keys, texts, rev, texts, Same(shared)],
        [keys, Same(shared), Same(shared), texts, rev],
        [keys, texts, Same(shared), Same(shared), Same(shared)],
        [keys, Same(shared), Same(shared), Same(shared), Same(shared)],
        [keys, Same(shared), texts, Same(shared), rev],
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("shared", _TEXTS, ids=repr)
def test_same_in_every_position_reads_back_as_psycopg_writes_it(
    pg: tuple[sa.Engine, str], shared: Any
) -> None:
    """Each awkward text (tab, newline, CR, backslash, `\\N`, `\\.`, controls, Unicode
    line separators, emoji, NULL) as a `Same` in every position and runs of several, the
    other columns awkward texts too: what psycopg's write_row writes, row for row."""
    engine, url = pg
    texts = [_TEXTS[i % len(_TEXTS)] for i in range(3 * len(_TEXTS))]
    for columns in _layouts(texts, shared):
        rows = _rows_of(columns)
        want = _oracle(url, _DDL, _COLS, rows)
        assert isinstance(want, list) and len(want) == len(texts)
        assert _ours(engine, url, _DDL, _COLS, columns) == want == rows


@pytest.mark.postgres
def test_a_same_column_first_before_the_key_reads_back(pg: tuple[sa.Engine, str]) -> None:
    """`Same` as the very first column (nothing before it on a line)."""
    engine, url = pg
    cols = ["a", "k", "b"]
    ddl = "(a text, k bigint, b text)"
    for shared in ("\\N", "\t", None, "x\ny", ""):
        columns = [Same(shared), list(range(5)), ["p", "\\", None, "", "\r"]]
        want = _oracle(url, ddl, cols, _rows_of(columns))
        got = _ours(engine, url, ddl, cols, columns)
        assert got == want, shared


_KINDED_DDL = (
    "(k numeric PRIMARY KEY, b boolean, f double precision, y bytea, t timestamptz,"
    " d date, n numeric, u uuid, x text)"
)
_KINDED_COLS = ["k", "b", "f", "y", "t", "d", "n", "u", "x"]
_UTC = dt.UTC


_OTHER_KINDS: list[Any] = [
    True,
    False,
    1.5,
    float("inf"),
    float("nan"),
    -0.0,
    b"\x00\\\t\n\xff",
    b"",
    dt.datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=_UTC),
    dt.date(1, 1, 1),
    decimal.Decimal("-0.000000000000000000000000000001"),
    decimal.Decimal("NaN"),
    uuid.UUID(int=0),
    2**63,
    -(2**200),
    10**4000,
    10**5000,
]


@pytest.mark.postgres
# ids by type and position: a hash-based id differs between xdist workers (a NaN's hash is
# its identity, bytes and dates are salted per process), which stops the whole run
@pytest.mark.parametrize(
    "value", _OTHER_KINDS, ids=[f"{type(v).__name__}{i}" for i, v in enumerate(_OTHER_KINDS)]
)
def test_values_of_other_kinds_shared_or_varying_read_back_as_psycopg_writes_them(
    pg: tuple[sa.Engine, str], value: Any
) -> None:
    """bool, float (inf, nan, -0.0), bytes (NUL, backslash), datetime, date, Decimal,
    UUID, ints past 64 bits and of 4,000 digits: shared and varying, in the column of
    their kind (the others NULL) and in a text column: as psycopg writes them."""
    engine, url = pg
    kind = {
        bool: "b",
        float: "f",
        bytes: "y",
        dt.datetime: "t",
        dt.date: "d",
        decimal.Decimal: "n",
        uuid.UUID: "u",
        int: "n",
    }[type(value)]
    keys = [1, 2, 3]
    for where in (kind, "x"):
        for columns in (
            [keys, *(Same(value) if c == where else Same(None) for c in _KINDED_COLS[1:])],
            [keys, *([value, None, value] if c == where else [None] * 3 for c in _KINDED_COLS[1:])],
        ):
            want = _oracle(url, _KINDED_DDL, _KINDED_COLS, _rows_of(columns))
            got = _ours(engine, url, _KINDED_DDL, _KINDED_COLS, columns)
            assert repr(got) == repr(want), (where, columns)  # NaN: by its spelling


@pytest.mark.postgres
def test_zero_rows_and_unequal_columns(pg: tuple[sa.Engine, str]) -> None:
    """Zero rows (with shared columns too) write nothing; varying columns of unequal
    length are a ValueError and write nothing (never rows cut short), also by tuples."""
    engine, url = pg
    assert _ours(engine, url, _DDL, _COLS, [[], Same("x"), [], Same(None), []]) == []
    assert _ours(engine, url, _DDL, _COLS, []) == []
    for columns in (
        [[1, 2, 3], ["a", "b"], Same("x"), ["c", "d", "e"], Same(1)],
        [[1, 2], ["a", "b", "c"], ["a", "b"], ["a", "b"], ["a", "b"]],
        [[1, 2], [True, False, True], ["a", "b"], ["a", "b"], ["a", "b"]],  # row by row
        [[], ["a"], [], [], []],
    ):
        assert _ours(engine, url, _DDL, _COLS, columns) is ValueError
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM mine").fetchone() == (0,)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS mine; CREATE TABLE mine {_DDL}")
    with pytest.raises(ValueError), engine.begin() as conn:
        copy_tuples(conn, _tbl("mine"), _COLS, [(1, "a", "b", "c", "d"), (2, "a", "b", "c")])


@pytest.mark.postgres
def test_the_conflict_path_skips_existing_keys_and_writes_the_rest_as_written(
    pg: tuple[sa.Engine, str],
) -> None:
    """With `conflict`, rows whose key exists are skipped (the existing row unchanged),
    the new ones read back as psycopg writes them, shared awkward texts included."""
    engine, url = pg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE mine {_DDL}")
        conn.execute("INSERT INTO mine VALUES (2, 'old', 'old', 'old', 'old')")
    texts = [_TEXTS[i % len(_TEXTS)] for i in range(6)]
    columns = [list(range(6)), Same("\\N\t"), texts, Same(None), texts[::-1]]
    with engine.begin() as conn:
        copy_columns(conn, _tbl("mine"), _COLS, columns, ["k"])
    rows = [r for r in _rows_of(columns) if r[0] != 2]
    want = _oracle(url, _DDL, _COLS, [*rows, (2, "old", "old", "old", "old")])
    with psycopg.connect(url) as conn:
        got = conn.execute("SELECT * FROM mine ORDER BY 1").fetchall()
    assert got == want


@pytest.mark.postgres
def test_two_conflict_copies_into_one_table_in_one_transaction(
    pg: tuple[sa.Engine, str],
) -> None:
    """Two pages with `conflict` into one table in one transaction: both pages' rows,
    the first page's not written twice, and a permanent table named as the load table
    left alone. BREAK found in round 18 (fixed): the second call failed, its temporary
    load table existing until commit (DuplicateTable).
    Mutations: no DROP before the CREATE → fails (DuplicateTable); the DROP without
    `pg_temp.` → fails (the permanent `_load_mine` dropped)."""
    engine, url = pg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE mine {_DDL}")
        conn.execute("CREATE TABLE public._load_mine (z int); INSERT INTO _load_mine VALUES (7)")
    with engine.begin() as conn:
        copy_columns(
            conn, _tbl("mine"), _COLS, [[1, 2], Same("a"), ["x", "y"], Same(None), Same("")], ["k"]
        )
        copy_columns(
            conn, _tbl("mine"), _COLS, [[2, 3], Same("b"), ["x", "y"], Same(None), Same("")], ["k"]
        )
    with psycopg.connect(url) as conn:
        got = conn.execute("SELECT k, a FROM mine ORDER BY 1").fetchall()
        kept = conn.execute("SELECT z FROM public._load_mine").fetchall()
    assert got == [(1, "a"), (2, "a"), (3, "b")]
    assert kept == [(7,)]


@pytest.mark.postgres
@pytest.mark.parametrize("conflict", [None, ["k"]])
def test_a_table_in_another_schema_gets_the_rows(
    pg: tuple[sa.Engine, str], conflict: list[str] | None
) -> None:
    """A `Table` with a schema: the rows go into that schema's table, not into a
    same-named table the search path finds. BREAK found in round 18 (fixed): the COPY
    (and the `conflict` path's LIKE) named the table without its schema.
    Mutation: the schema left out of the COPY's table → both fail."""
    engine, url = pg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA other; CREATE TABLE other.mine {_DDL}")
        conn.execute("CREATE TABLE public.mine (k bigint PRIMARY KEY, a int)")  # not the twin
    columns = [[1, 2], Same("a"), ["x", "y"], Same(None), Same("")]
    with engine.begin() as conn:
        copy_columns(conn, _tbl("mine", schema="other"), _COLS, columns, conflict)
    with psycopg.connect(url) as conn:
        other = conn.execute("SELECT * FROM other.mine ORDER BY 1").fetchall()
        public = conn.execute("SELECT * FROM public.mine ORDER BY 1").fetchall()
    assert (other, public) == (_rows_of(columns), [])
