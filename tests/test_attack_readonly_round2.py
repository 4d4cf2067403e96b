"""Attack findings, round 2 (branch break-ro): the read-only guarantee on pooled / pinned
connections, the engine path and jupysql.

Each `test_finding_*` FAILS while the hole is open. The source is a WRITABLE root account, so
only hybridwb's own layers (guard, session) stand between a statement and a write. Oracle:
direct pymysql as root (CHECKSUM TABLE, IS_USED_LOCK) and the @@session values read on the
*same* pooled connection through its raw DB-API cursor (no hybridwb code on that read).
Everything runs in a private `hybridwb_brk_<random>` database that is dropped afterwards.

Root cause shared by findings 1-4: a connection that stays checked out between statements
(`Source.one_connection()`'s pinned connection, a user's `wb.engine.connect()`, jupysql's
persistent connection) trusts that its session is what it was last *set* to
(`record.info[SESSION_KEY]` / the last read-back). Server code can change
`tx_read_only`, `max_statement_time` and `sql_select_limit` mid-statement (a stored function
may run `SET SESSION tx_read_only = 0`); when that statement is not read back afterwards, the
next statement on the same connection runs writable and without a time limit.
"""

from __future__ import annotations

import contextlib
import secrets
import warnings
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pymysql
import pytest
from sqlalchemy.engine import make_url

from hybridwb.errors import ReadOnlyViolation
from hybridwb.source import Source

pytestmark = pytest.mark.mysql

HOST, PORT = "127.0.0.1", 3306
#: a stored function that drops READ ONLY and the time limit of the *calling* session
UNSAFE_BODY = (
    "BEGIN SET SESSION tx_read_only = 0; SET SESSION max_statement_time = 0; RETURN 1; END"
)


def _root() -> pymysql.Connection:
    return pymysql.connect(ssl_disabled=True, host=HOST, port=PORT, user="root", autocommit=True)


@pytest.fixture
def brk() -> Iterator[tuple[str, pymysql.Connection]]:
    try:
        conn = _root()
    except pymysql.err.OperationalError:
        pytest.skip("MariaDB not running")
    db = f"hybridwb_brk_{secrets.token_hex(4)}"
    c = conn.cursor()
    c.execute(f"CREATE DATABASE {db}")
    c.execute(f"CREATE TABLE {db}.t (a INT) ENGINE=InnoDB")
    c.execute(f"INSERT INTO {db}.t VALUES (1), (2)")
    c.execute(f"CREATE FUNCTION {db}.unsafe() RETURNS INT {UNSAFE_BODY}")
    try:
        yield db, conn
    finally:
        c.execute(f"DROP DATABASE IF EXISTS {db}")
        conn.close()


def _url(db: str, driver: str = "pymysql") -> str:
    return f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4"


DRIVERS = pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])


def _session_of(dbapi_conn: Any) -> tuple[int, float]:
    """(@@tx_read_only, @@max_statement_time) read on that very connection, no hybridwb code."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SELECT @@session.tx_read_only, @@session.max_statement_time")
        ro, limit = cur.fetchone()
    finally:
        cur.close()
    return int(ro), float(limit)


def _pinned_raw(src: Source) -> Any:
    return src._pinned.conn.connection.dbapi_connection


# --- Finding 1 ----------------------------------------------------------------------------
# allowed_functions may name a function with its schema (`db.f`): the guard admits
# `SELECT db.f()` (guard._check_call compares the qualified name), but
# execute.may_run_server_code compares each *token* (`f`) with the allowlist (`DB.F`), so the
# statement is not read back. On the pinned connection the next statement runs writable and
# with no time limit.


@DRIVERS
def test_finding_pinned_qualified_allowlisted_function_is_not_read_back(brk, driver) -> None:
    db, _ = brk
    src = Source(make_url(_url(db, driver)), allowed_functions=(f"{db}.unsafe",), pool_size=2)
    try:
        with src.one_connection():
            with pytest.raises(ReadOnlyViolation, match="restored"):  # read back, refused
                src.records(f"SELECT {db}.unsafe() AS x")  # admitted: allowlisted
            raw_seen = _session_of(_pinned_raw(src))
            seen = src.records("SELECT @@tx_read_only AS ro, @@max_statement_time AS t")[0]
        assert raw_seen == (1, 30.0), f"pinned session after the call: {raw_seen}"
        assert (int(seen["ro"]), float(seen["t"])) == (1, 30.0), seen
    finally:
        src.close()


def test_finding_pinned_allowlisted_name_with_a_space_is_not_read_back(brk) -> None:
    """Same hole, other spelling: the guard strips allowlist entries (guard._allowed), the
    read-back decision (may_run_server_code) does not, so `" unsafe"` admits `unsafe()` and
    never matches its token."""
    db, _ = brk
    src = Source(make_url(_url(db)), allowed_functions=(" unsafe",), pool_size=2)
    try:
        with src.one_connection():
            with pytest.raises(ReadOnlyViolation, match="restored"):  # read back, refused
                src.records("SELECT unsafe() AS x")  # admitted: allowlisted
            raw_seen = _session_of(_pinned_raw(src))
        assert raw_seen == (1, 30.0), f"pinned session after the call: {raw_seen}"
    finally:
        src.close()


# --- Finding 2 ----------------------------------------------------------------------------
# SHOW ... WHERE takes any expression, subqueries included. The guard admits it as kind
# "show" (token rules only, no AST), so `Prepared.tables` is empty and `Source.reads_view`
# is False although the subquery reads a view whose body runs a stored function (and
# GET_LOCK). Nothing is read back: on the pinned connection the next statement runs
# writable, without a time limit, and the named lock stays held.


@DRIVERS
def test_finding_show_where_subquery_reads_a_view_unseen_and_is_not_read_back(brk, driver) -> None:
    db, root = brk
    lock = f"brk_show_{secrets.token_hex(3)}"
    root.cursor().execute(
        f"CREATE VIEW {db}.v AS SELECT {db}.unsafe() AS x, GET_LOCK('{lock}', 0) AS l"
    )
    src = Source(make_url(_url(db, driver)), pool_size=2)
    try:
        with src.one_connection():
            with pytest.raises(ReadOnlyViolation, match="restored"):  # SHOW is read back
                src.records("SHOW TABLES WHERE (SELECT x FROM v) = 1")  # admitted by the guard
            raw_seen = _session_of(_pinned_raw(src))
            cur = root.cursor()
            cur.execute("SELECT IS_USED_LOCK(%s)", (lock,))
            held = cur.fetchone()[0]
            seen = src.records("SELECT @@tx_read_only AS ro, @@max_statement_time AS t")[0]
        assert raw_seen == (1, 30.0), f"pinned session after SHOW ... WHERE: {raw_seen}"
        assert (int(seen["ro"]), float(seen["t"])) == (1, 30.0), seen
        assert held is None, f"named lock {lock} held by connection {held}"
    finally:
        src.close()


# --- Finding 3 ----------------------------------------------------------------------------
# A statement that *fails* after server code changed the session is never read back: the
# read-back in execute._run_on (and engine._install_session_check's after_cursor_execute)
# only runs when the statement succeeded, and a non-disconnect error does not drop the
# connection. Here a view (known to Source.reads_view) calls a function that drops READ
# ONLY and the time limit and then SIGNALs an error.

FAILING_BODY = (
    "BEGIN SET SESSION tx_read_only = 0; SET SESSION max_statement_time = 0; "
    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'; RETURN 1; END"
)


@pytest.fixture
def failing_view(brk) -> tuple[str, pymysql.Connection]:
    db, root = brk
    c = root.cursor()
    c.execute(f"CREATE FUNCTION {db}.unsafe_fail() RETURNS INT {FAILING_BODY}")
    c.execute(f"CREATE VIEW {db}.v_fail AS SELECT {db}.unsafe_fail() AS x")
    return db, root


def test_finding_pinned_connection_after_a_failed_view_read_runs_writable(failing_view) -> None:
    db, _ = failing_view
    src = Source(make_url(_url(db)), pool_size=2)
    try:
        assert src.reads_view(src.prepare("SELECT x FROM v_fail"))  # the view IS known
        with src.one_connection():
            with pytest.raises(Exception, match="boom"):
                src.records("SELECT x FROM v_fail")
            raw_seen = _session_of(_pinned_raw(src))
            seen = src.records("SELECT @@tx_read_only AS ro, @@max_statement_time AS t")[0]
        assert raw_seen == (1, 30.0), f"pinned session after the failed read: {raw_seen}"
        assert (int(seen["ro"]), float(seen["t"])) == (1, 30.0), seen
    finally:
        src.close()


def test_finding_engine_connection_after_a_failed_read_stays_writable(failing_view) -> None:
    """pandas.read_sql on a connection of wb.engine (what a notebook keeps open)."""
    db, _ = failing_view
    src = Source(make_url(_url(db)), pool_size=1, max_overflow=0)
    try:
        with src.engine.connect() as conn:
            # the failed statement is read back: the changed session is restored and said
            with pytest.raises(ReadOnlyViolation, match="restored"):
                pd.read_sql("SELECT x FROM v_fail", conn)
            seen = _session_of(conn.connection.dbapi_connection)
        assert seen == (1, 30.0), f"engine connection after the failed read: {seen}"
    finally:
        src.close()


def test_finding_jupysql_connection_after_a_failed_read_stays_writable(
    failing_view, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """A real IPython shell with `%load_ext hybridwb`: jupysql keeps ONE checked-out
    connection of the guarded engine for the whole session, so there is no checkout (and
    no session SET) between `%sql` cells."""
    from IPython.core.interactiveshell import InteractiveShell

    db, _ = failing_view
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", _url(db))
    sh = InteractiveShell()
    try:
        sh.run_cell("%load_ext hybridwb")
        ok = sh.run_cell("%sql SELECT a FROM t")
        assert ok.error_in_exec is None
        failed = sh.run_cell("%sql SELECT x FROM v_fail")
        assert failed.error_in_exec is not None
        from sql.connection import ConnectionManager

        conn = ConnectionManager.current._connection
        seen = _session_of(conn.connection.dbapi_connection)
        assert seen == (1, 30.0), f"jupysql's connection after the failed cell: {seen}"
    finally:
        with contextlib.suppress(Exception):
            sh.run_cell("%unload_ext hybridwb")
        with contextlib.suppress(Exception):
            from sql.connection import ConnectionManager

            ConnectionManager.close_all()
        InteractiveShell.clear_instance()


# --- Finding 4 ----------------------------------------------------------------------------
# engine._install_session_check skips unbuffered cursors (`drivers.is_unbuffered`), assuming
# only `Source` uses them. Any SQLAlchemy user of wb.engine can ask for one
# (`execution_options(stream_results=True)`, `yield_per`), and then a statement that runs
# server code is never read back: the next statement on the connection runs writable and
# without a time limit.


@DRIVERS
def test_finding_engine_stream_results_skips_the_session_read_back(brk, driver) -> None:
    db, _ = brk
    src = Source(
        make_url(_url(db, driver)), allowed_functions=("unsafe",), pool_size=1, max_overflow=0
    )
    try:
        with src.engine.connect() as conn:
            streaming = conn.execution_options(stream_results=True)
            with contextlib.suppress(Exception):  # a refusal here would be the fix
                streaming.exec_driver_sql("SELECT unsafe() AS x").fetchall()
            seen = _session_of(conn.connection.dbapi_connection)
        assert seen == (1, 30.0), f"engine connection after a streamed call: {seen}"
    finally:
        src.close()


# --- held (sanity checks that pass) --------------------------------------------------------


def test_held_unqualified_allowlisted_function_is_read_back_on_the_pinned_connection(
    brk,
) -> None:
    db, _ = brk
    src = Source(make_url(_url(db)), allowed_functions=("unsafe",), pool_size=2)
    try:
        with src.one_connection():
            with contextlib.suppress(Exception):  # ReadOnlyViolation (restored)
                src.records("SELECT unsafe() AS x")
            assert _session_of(_pinned_raw(src)) == (1, 30.0)
    finally:
        src.close()


def test_held_a_known_view_is_read_back_on_the_pinned_connection(brk) -> None:
    db, root = brk
    root.cursor().execute(f"CREATE VIEW {db}.v_ok AS SELECT {db}.unsafe() AS x")
    src = Source(make_url(_url(db)), pool_size=2)
    try:
        with src.one_connection():
            with contextlib.suppress(Exception), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                src.records("SELECT x FROM v_ok")
            assert _session_of(_pinned_raw(src)) == (1, 30.0)
    finally:
        src.close()


# --- Finding 5: the writable session is a real write ----------------------------------------
# The same holes end in a committed write to the source database: a second statement on the
# still-checked-out connection reads a view whose stored function INSERTs. Alone that view is
# refused by READ ONLY (checked first); after a statement that left the session writable,
# the INSERT commits (autocommit), and the read-back after it only restores the session.
# Oracle: CHECKSUM TABLE and the rows, as root.


@pytest.fixture
def write_view(brk) -> tuple[str, pymysql.Connection]:
    db, root = brk
    c = root.cursor()
    c.execute(
        f"CREATE FUNCTION {db}.evil() RETURNS INT MODIFIES SQL DATA "
        f"BEGIN INSERT INTO {db}.t VALUES (99); RETURN 1; END"
    )
    c.execute(f"CREATE VIEW {db}.v_write AS SELECT {db}.evil() AS y")
    c.execute(f"CREATE VIEW {db}.v_unsafe AS SELECT {db}.unsafe() AS x")
    return db, root


def _checksum(root: pymysql.Connection, db: str) -> tuple[int, list[int]]:
    c = root.cursor()
    c.execute(f"CHECKSUM TABLE {db}.t")
    checksum = c.fetchone()[1]
    c.execute(f"SELECT a FROM {db}.t ORDER BY a")
    return checksum, [r[0] for r in c.fetchall()]


def test_finding_pinned_show_where_then_a_view_writes_the_source(write_view) -> None:
    db, root = write_view
    before = _checksum(root, db)
    src = Source(make_url(_url(db)), pool_size=2)
    try:
        with pytest.raises(Exception):  # noqa: B017 - alone, READ ONLY refuses the write
            src.records("SELECT y FROM v_write")
        assert _checksum(root, db) == before
        with src.one_connection():
            with pytest.raises(ReadOnlyViolation, match="restored"):
                src.records("SHOW TABLES WHERE (SELECT x FROM v_unsafe) = 1")
            with contextlib.suppress(Exception):
                src.records("SELECT y FROM v_write")
        assert _checksum(root, db) == before, f"the source was written: {_checksum(root, db)}"
    finally:
        src.close()


def test_finding_jupysql_cell_after_a_failed_cell_writes_the_source(
    write_view, monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    db, root = write_view
    root.cursor().execute(f"CREATE FUNCTION {db}.unsafe_fail() RETURNS INT {FAILING_BODY}")
    root.cursor().execute(f"CREATE VIEW {db}.v_fail AS SELECT {db}.unsafe_fail() AS x")
    before = _checksum(root, db)
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", _url(db))
    sh = InteractiveShell()
    try:
        sh.run_cell("%load_ext hybridwb")
        assert sh.run_cell("%sql SELECT a FROM t").error_in_exec is None
        assert sh.run_cell("%sql SELECT x FROM v_fail").error_in_exec is not None
        sh.run_cell("%sql SELECT y FROM v_write")
        assert _checksum(root, db) == before, f"the source was written: {_checksum(root, db)}"
    finally:
        with contextlib.suppress(Exception):
            sh.run_cell("%unload_ext hybridwb")
        with contextlib.suppress(Exception):
            from sql.connection import ConnectionManager

            ConnectionManager.close_all()
        InteractiveShell.clear_instance()


# --- Finding 6: wb.engine.raw_connection() + pandas.read_sql has no guard at all -------------
# engine.py claims both layers hold "for every caller of the engine (Source, pandas,
# jupysql, the inspector)". The guard and the read-back are SQLAlchemy *statement* events;
# `engine.raw_connection()` (public SQLAlchemy API) hands out the pooled DB-API connection,
# and pandas.read_sql accepts a DB-API connection and calls `cursor.execute` on it directly.
# Only the session SET of the checkout is left, and a statement can undo it. Oracle: the
# rows (CHECKSUM TABLE), a file on the server's disk (INTO OUTFILE) and IS_USED_LOCK, as root.
# Fixed in round 3 (source/rawguard.py): the pooled connections are the driver's class with
# the guard in its low-level query(); tests/test_attack_readonly_round3.py has the rest.


def test_finding_engine_raw_connection_with_pandas_read_sql_is_unguarded(brk) -> None:
    import os

    db, root = brk
    before = _checksum(root, db)
    lock = f"brk_raw_{secrets.token_hex(3)}"
    path = f"/tmp/hybridwb_brk_{secrets.token_hex(4)}.txt"
    src = Source(make_url(_url(db)), pool_size=1, max_overflow=0)
    raw = src.engine.raw_connection()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas: "only SQLAlchemy connectable ..."
            for sql in (
                f"SELECT GET_LOCK('{lock}', 0) AS l",
                f"SELECT 1 INTO OUTFILE '{path}'",
                "SET SESSION tx_read_only = 0",
                "DELETE FROM t",
            ):
                with contextlib.suppress(Exception):  # statements without rows: TypeError
                    pd.read_sql(sql, raw)
        cur = root.cursor()
        cur.execute("SELECT IS_USED_LOCK(%s)", (lock,))
        held = cur.fetchone()[0]
        wrote_file = os.path.exists(path)
        assert not wrote_file, f"INTO OUTFILE wrote {path} on the server"
        assert held is None, f"named lock held by {held}"
        assert _checksum(root, db) == before, f"the source was written: {_checksum(root, db)}"
    finally:
        with contextlib.suppress(Exception):
            os.remove(path)
        raw.invalidate()  # never back to the pool writable
        raw.close()
        src.close()


# --- held (checked by hand against this MariaDB 10.11, not parametrized here) --------------
# * Guard, differential fuzz: 120,000 random SELECTs mixing quotes, backslashes, comment
#   openers (#, --, --x, /*, /*!, */), control characters, NBSP/U+2028/U+3000/U+FEFF,
#   introducers (_binary, N, x, b, 0x, 0b), `$`, `;` around a payload
#   `GET_LOCK(0x62726b,0)`: ~6,700 admitted, none took the lock on a pinned-sql_mode session.
# * Exact text: general_log (log_output=TABLE) for wb.sql with hostile binds (quotes,
#   backslashes, '中\\', U+00A5, `%s %(a)s %%`, \n\r\x1a, valid-UTF-8 bytes, Decimal 1E+5,
#   1e300, -0.0, True, datetime, time) with arrow=False/True, timeout=, limit=, and
#   pandas.read_sql(text(...), wb.engine, params=...) on pymysql AND mysqlclient: every text
#   the final-text guard approved was logged verbatim; the lock was never taken.
# * A stored function cannot leave character_set_client / sql_mode changed (routines restore
#   them), so the "server reads other bytes than the guard" route through server code is shut.
# * Column DEFAULT / generated columns cannot hold GET_LOCK, LOAD_FILE, SLEEP, BENCHMARK,
#   RELEASE_ALL_LOCKS, LAST_INSERT_ID(x), MASTER_GTID_WAIT (ER 1901); DEFAULT(NEXTVAL) and a
#   function creating a TEMPORARY table are refused by READ ONLY.
# * max_statement_time applies to SHOW ... WHERE (subquery) as to SELECT (stopped at 0.3 s).
# * DESCRIBE / SHOW COLUMNS / SHOW CREATE / SHOW INDEX / information_schema.COLUMNS of a view
#   do not run its body; EXPLAIN does (TEMPTABLE views, constant subqueries), but EXPLAIN's
#   tables are parsed, so Source.reads_view sees the view and reads the session back.
# * KILL QUERY on an idle connection does not hit its next statement (MariaDB resets it).
# * Non-pinned Source reads after any of the above: the checkout SET restores READ ONLY and
#   the time limit before the statement (the residue is an idle pooled session only).
# Not a guarantee break, but seen: with pool_size=1, Source.one_connection() + a statement
# naming a table whose schema's view list is not cached waits 30 s for a second connection
# (Source._load_views) and reports "The server rejected the query: QueuePool limit ...".
