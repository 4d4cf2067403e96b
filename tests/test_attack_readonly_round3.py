"""Attack findings, round 3 (branch ro3): the read-only guarantee against a WRITABLE root account.

Each `test_finding_*` reproduces a write (or a state change) that hybridwb let through and
asserts the oracle: direct pymysql as root (CHECKSUM TABLE, rows, IS_USED_LOCK, files on
disk, global variables), never what hybridwb reports. A finding that is fixed is a plain
test (it failed before the fix: see the mutation named in its docstring); one that is not
fixed is a strict xfail. `test_held_*` are attacks that held, kept as fast guards.
Everything runs in a private `hybridwb_ro3_<random>` database that is dropped afterwards.

Findings:

1. A source URL option runs SQL at login: `?init_command=DELETE ...` (both drivers run it,
   PyMySQL even commits it) or `?read_default_file=my.cnf` whose `init-command` does.
   Fixed: `engine._open_mysql` refuses those options (ConfigError, one line).
2. `SET TRANSACTION READ WRITE` in a function that a view calls leaves every later
   transaction on the connection writable while `@@tx_read_only` still reads 1, so the
   read-back after the statement sees nothing. On a connection that stays checked out
   (`with wb.engine.connect()` + pandas, jupysql's persistent connection, a raw DB-API
   connection) the next statement that reads a writing view commits its INSERT. Fixed:
   after a statement on the engine, the next one on the same connection is preceded by
   `SET SESSION tx_read_only = 1` (rawguard.mark_reassert), which clears it.
3. (round 2 residue) `wb.engine.raw_connection()` and every other way to the driver's
   connection (`conn.connection.dbapi_connection`, jupysql given a DB-API connection,
   `raw.query(...)`) had no guard at all. Fixed: the pooled connections are a subclass of
   the driver's class whose low-level `query()` runs the guard unless the statement-level
   guard approved that exact text (rawguard.py), and an unvetted statement makes the next
   one set the session first.
6. A driver call that turns autocommit off (`autocommit(False)`, or SQLAlchemy's
   `isolation_level` option) stayed on the pooled connection: every later read left a
   transaction open, holding metadata locks that block the production's DDL. Fixed: the
   session SET of every checkout (and of every reset) sets `autocommit = 1`.
4. (not fixed, residue) A view whose function runs `SET GLOBAL ...` (SQL SECURITY DEFINER, a
   privileged definer) changes a global variable of the production server when hybridwb reads
   the view: the view's body is server code the guard never sees, and no read-back covers
   global state.
5. On `Source.one_connection()` (search: probe + page), a view created after the 10 s view
   list was read is not known as one, so nothing resets the pinned session after it:
   finding 2's `SET TRANSACTION READ WRITE` then makes the next pinned statement writable.
   Fixed since: a name not in the list counts as a view; round 27 closed the two exemptions
   left (a name like a Sequence-engine table in another case, a WITH name read out of its
   scope: `test_attack_round27_views.py`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pymysql
import pytest
from sqlalchemy.engine import make_url

import hybridwb
from hybridwb.errors import ConfigError, HybridwbError, ReadOnlyViolation
from hybridwb.source import Source

pytestmark = pytest.mark.mysql

HOST, PORT = "127.0.0.1", 3306
DRIVERS = pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])


def _root() -> pymysql.Connection:
    return pymysql.connect(ssl_disabled=True, host=HOST, port=PORT, user="root", autocommit=True)


def _make_db(conn: pymysql.Connection) -> str:
    db = f"hybridwb_ro3_{secrets.token_hex(4)}"
    c = conn.cursor()
    for sql in (
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.t (a INT) ENGINE=InnoDB",
        f"INSERT INTO {db}.t VALUES (1), (2)",
        f"CREATE TABLE {db}.m (a INT) ENGINE=MyISAM",
        f"INSERT INTO {db}.m VALUES (1), (2)",
        f"CREATE SEQUENCE {db}.s NOCACHE",  # each NEXTVAL shows in the oracle
        f"CREATE TABLE {db}.d (a INT, b INT DEFAULT (NEXTVAL({db}.s))) ENGINE=InnoDB",
        f"INSERT INTO {db}.d (a) VALUES (1)",
        f"CREATE FUNCTION {db}.evil() RETURNS INT MODIFIES SQL DATA "
        f"BEGIN INSERT INTO {db}.t VALUES (99); RETURN 1; END",
        f"CREATE FUNCTION {db}.rw() RETURNS INT BEGIN SET TRANSACTION READ WRITE; RETURN 1; END",
        f"CREATE VIEW {db}.v_rw AS SELECT {db}.rw() AS x",
        f"CREATE VIEW {db}.v_write AS SELECT {db}.evil() AS y",
    ):
        c.execute(sql)
    return db


@pytest.fixture
def ro3() -> Iterator[tuple[str, pymysql.Connection]]:
    try:
        conn = _root()
    except pymysql.err.OperationalError:
        pytest.skip("MariaDB not running")
    db = _make_db(conn)
    try:
        yield db, conn
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {db}")
        conn.close()


def _url(db: str, driver: str = "pymysql", extra: str = "") -> str:
    return f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4{extra}"


def _state(root: pymysql.Connection, db: str, lock: str = "ro3_lock") -> tuple[Any, ...]:
    """What a write would change, read as root: checksums, the sequence, a named lock."""
    c = root.cursor()
    c.execute(f"CHECKSUM TABLE {db}.t, {db}.m")
    sums = tuple(r[1] for r in c.fetchall())
    c.execute(f"SELECT next_not_cached_value FROM {db}.s")
    seq = c.fetchone()[0]
    c.execute("SELECT IS_USED_LOCK(%s)", (lock,))
    held = c.fetchone()[0]
    c.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (db,))
    return sums, seq, held, c.fetchone()[0]


def _swallow(fn: Any, *args: Any) -> None:
    with contextlib.suppress(HybridwbError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn(*args)


# --- Finding 1: URL options that run SQL at login ----------------------------------------


@DRIVERS
@pytest.mark.parametrize(
    "option",
    ["init_command=INSERT INTO t VALUES (7)", "init_command=SET SESSION tx_read_only = 0"],
    ids=["insert", "set-writable"],
)
def test_finding_url_init_command_is_refused_before_it_runs(ro3, driver: str, option: str) -> None:
    """Mutation: drop the REFUSED_OPTIONS check in engine._open_mysql -> the INSERT commits
    (PyMySQL commits after init_command) and this test fails on the checksum."""
    db, root = ro3
    before = _state(root, db)
    wb = hybridwb.connect(source=_url(db, driver, "&" + option))
    try:
        with pytest.raises(ConfigError, match=r"init_command") as caught:
            wb.sql("SELECT @@tx_read_only AS ro")
        assert "\n" not in str(caught.value)
    finally:
        wb.close()
    assert _state(root, db) == before


def test_finding_url_option_file_with_init_command_is_refused(ro3, tmp_path: Path) -> None:
    db, root = ro3
    cnf = tmp_path / "my.cnf"
    cnf.write_text(f"[client]\ninit-command=INSERT INTO {db}.t VALUES (8)\n")
    before = _state(root, db)
    wb = hybridwb.connect(source=_url(db, extra=f"&read_default_file={cnf}"))
    try:
        with pytest.raises(ConfigError, match="read_default_file"):
            wb.sql("SELECT 1 AS one")
    finally:
        wb.close()
    assert _state(root, db) == before


def test_url_client_flag_cannot_add_multi_statements(ro3) -> None:
    db, _ = ro3
    wb = hybridwb.connect(source=_url(db, extra="&client_flag=65536"))
    try:
        with pytest.raises(ConfigError, match="client_flag"):
            wb.sql("SELECT 1 AS one")
    finally:
        wb.close()


# --- Finding 2: SET TRANSACTION READ WRITE left behind by a view's function ---------------


@DRIVERS
def test_finding_engine_connection_after_set_transaction_read_write_writes(ro3, driver) -> None:
    """Mutation: remove `rawguard.mark_reassert` from engine._install_session_check ->
    the second read_sql commits evil()'s INSERT (checksum of t changes)."""
    db, root = ro3
    before = _state(root, db)
    src = Source(make_url(_url(db, driver)), pool_size=1, max_overflow=0)
    try:
        with src.engine.connect() as conn:
            pd.read_sql("SELECT x FROM v_rw", conn)  # reads back as READ ONLY: passes
            with contextlib.suppress(HybridwbError):
                pd.read_sql("SELECT y FROM v_write", conn)
    finally:
        src.close()
    assert _state(root, db) == before, "the source was written"


def test_finding_jupysql_cell_after_set_transaction_read_write_writes(
    ro3, monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    db, root = ro3
    before = _state(root, db)
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", _url(db))
    sh = InteractiveShell()
    try:
        sh.run_cell("%load_ext hybridwb")
        assert sh.run_cell("%sql SELECT x FROM v_rw").error_in_exec is None
        sh.run_cell("%sql SELECT y FROM v_write")
        assert _state(root, db) == before, "the source was written"
    finally:
        with contextlib.suppress(Exception):
            sh.run_cell("%unload_ext hybridwb")
        with contextlib.suppress(Exception):
            from sql.connection import ConnectionManager

            ConnectionManager.close_all()
        InteractiveShell.clear_instance()


def test_held_wb_sql_pinned_after_set_transaction_read_write(ro3) -> None:
    """wb.sql reads back and resets (COM_RESET_CONNECTION) after a known view."""
    db, root = ro3
    before = _state(root, db)
    src = Source(make_url(_url(db)), pool_size=2)
    try:
        with src.one_connection():
            _swallow(src.records, "SELECT x FROM v_rw")
            _swallow(src.records, "SELECT y FROM v_write")
    finally:
        src.close()
    assert _state(root, db) == before


# --- Finding 3: the driver's connection itself -------------------------------------------


def _raw_attempts(db: str, lock: str, path: str) -> list[str]:
    return [
        f"SELECT GET_LOCK('{lock}', 0) AS l",
        f"SELECT 1 INTO OUTFILE '{path}'",
        "SET SESSION tx_read_only = 0",
        "DELETE FROM t",
        "INSERT INTO m VALUES (5)",
        "SELECT NEXTVAL(s)",
        f"SELECT {db}.evil()",
        "SELECT y FROM v_write",
    ]


@DRIVERS
@pytest.mark.parametrize("how", ["raw_connection", "dbapi_connection", "query"])
def test_finding_driver_connection_is_guarded(ro3, driver: str, how: str) -> None:
    """Mutation: make rawguard._admit return at once -> DELETE FROM t runs (checksum),
    the file is written and the lock is taken."""
    db, root = ro3
    lock = f"ro3_raw_{secrets.token_hex(3)}"
    path = f"/tmp/hybridwb_ro3_{secrets.token_hex(4)}.txt"
    before = _state(root, db, lock)
    src = Source(make_url(_url(db, driver)), pool_size=1, max_overflow=0)
    try:
        with contextlib.ExitStack() as stack:
            if how == "raw_connection":
                raw = src.engine.raw_connection()
                stack.callback(raw.close)
            else:
                raw = stack.enter_context(src.engine.connect()).connection.dbapi_connection
            refused = 0
            for sql in _raw_attempts(db, lock, path):
                try:
                    if how == "query":
                        raw.query(sql)
                    else:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")  # pandas: "only SQLAlchemy ..."
                            pd.read_sql(sql, raw)
                except ReadOnlyViolation as exc:
                    assert "\n" not in str(exc)
                    refused += 1
                except Exception:  # the server's own refusal also holds
                    pass
        assert refused >= 6, f"only {refused} refused by hybridwb"
        assert not os.path.exists(path), f"INTO OUTFILE wrote {path}"
        assert _state(root, db, lock) == before, "the source was written"
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
        src.close()


def test_finding_jupysql_given_the_raw_connection_is_guarded(
    ro3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jupysql accepts a DB-API connection (`%sql raw`): its statements reach query()."""
    from IPython.core.interactiveshell import InteractiveShell

    db, root = ro3
    before = _state(root, db)
    monkeypatch.setenv("HYBRIDWB_SOURCE_URL", _url(db))
    sh = InteractiveShell()
    try:
        sh.run_cell("%load_ext hybridwb")
        sh.run_cell("import hybridwb; raw = hybridwb.connect().source.engine.raw_connection()")
        sh.run_cell("%sql raw")
        sh.run_cell("%sql SET SESSION tx_read_only = 0")
        sh.run_cell("%sql DELETE FROM t")
        sh.run_cell("%sql INSERT INTO m VALUES (5)")
        assert _state(root, db) == before, "the source was written"
    finally:
        with contextlib.suppress(Exception):
            sh.run_cell("raw.invalidate(); raw.close()")
        with contextlib.suppress(Exception):
            sh.run_cell("%unload_ext hybridwb")
        with contextlib.suppress(Exception):
            from sql.connection import ConnectionManager

            ConnectionManager.close_all()
        InteractiveShell.clear_instance()


@DRIVERS
def test_finding_raw_connection_changes_charset_and_database(ro3, driver: str) -> None:
    db, _ = ro3
    src = Source(make_url(_url(db, driver)), pool_size=1, max_overflow=0)
    try:
        raw = src.engine.raw_connection()
        try:
            with pytest.raises(ReadOnlyViolation, match="character set"):
                raw.dbapi_connection.set_character_set("gbk")
            with pytest.raises(ReadOnlyViolation, match="default database"):
                raw.dbapi_connection.select_db("mysql")
        finally:
            raw.close()
        assert src.records("SELECT DATABASE() AS d, @@character_set_client AS c")[0] == {
            "d": db,
            "c": "utf8mb4",
        }
    finally:
        src.close()


def test_finding_raw_reconnect_gets_a_writable_session(ro3) -> None:
    """A PyMySQL reconnect (ping(reconnect=True)) opens a fresh session with the server's
    defaults (writable, no time limit): it is set before the next statement. Mutation: drop
    `self._hybridwb.dirty = True` in GuardedPyMySQL.connect -> (0, 0.0) and evil() writes."""
    db, root = ro3
    before = _state(root, db)
    src = Source(make_url(_url(db)), pool_size=1, max_overflow=0)
    try:
        raw = src.engine.raw_connection()
        try:
            dbapi = raw.dbapi_connection
            dbapi.close()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                dbapi.ping(reconnect=True)
            cur = dbapi.cursor()
            cur.execute("SELECT @@tx_read_only, @@max_statement_time")
            assert cur.fetchone() == (1, 30.0)
            with contextlib.suppress(Exception):
                cur.execute("SELECT y FROM v_write")
        finally:
            raw.invalidate()
            raw.close()
    finally:
        src.close()
    assert _state(root, db) == before


@DRIVERS
def test_finding_raw_connection_after_a_view_that_unsets_read_only(ro3, driver: str) -> None:
    """An unvetted statement is not read back; the next one sets the session first.
    Mutation: drop `state.dirty = True` at the end of rawguard._admit -> (0, 0.0)."""
    db, root = ro3
    root.cursor().execute(
        f"CREATE FUNCTION {db}.unsafe() RETURNS INT "
        "BEGIN SET SESSION tx_read_only = 0; SET SESSION max_statement_time = 0; RETURN 1; END"
    )
    root.cursor().execute(f"CREATE VIEW {db}.v_unsafe AS SELECT {db}.unsafe() AS z")
    before = _state(root, db)
    src = Source(make_url(_url(db, driver)), pool_size=1, max_overflow=0)
    try:
        raw = src.engine.raw_connection()
        try:
            cur = raw.dbapi_connection.cursor()
            cur.execute("SELECT z FROM v_unsafe")
            cur.fetchall()
            with contextlib.suppress(Exception):
                cur.execute("SELECT y FROM v_write")
            cur.execute("SELECT @@tx_read_only, @@max_statement_time")
            assert cur.fetchone() == (1, 30.0)
        finally:
            raw.close()
    finally:
        src.close()
    assert _state(root, db) == before


# --- Finding 5 (residue): a pinned connection and a view the 10 s list does not know yet ----


def test_finding_pinned_connection_after_an_unknown_view_sets_read_write(ro3) -> None:
    db, root = ro3
    before = _state(root, db)
    src = Source(make_url(_url(db)), pool_size=2)
    try:
        src._views.put(db, ())  # the list was read just before the views existed
        with src.one_connection():
            _swallow(src.records, "SELECT x FROM v_rw")
            _swallow(src.records, "SELECT y FROM v_write")
    finally:
        src.close()
    assert _state(root, db) == before, "the source was written"


# --- Finding 6: autocommit turned off on a pooled connection -----------------------------


def _open_transactions(root: pymysql.Connection, thread_id: int) -> int:
    c = root.cursor()
    c.execute(
        "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = %s",
        (thread_id,),
    )
    return int(c.fetchone()[0])


@DRIVERS
@pytest.mark.parametrize("how", ["autocommit", "isolation_level"])
def test_finding_autocommit_off_leaks_into_the_pool_and_holds_locks(ro3, driver, how) -> None:
    """`autocommit(False)` on the driver's connection (or SQLAlchemy's isolation_level
    option, which turns it off before its refused SET) stayed on the pooled connection:
    every later wb.sql read left a transaction open, holding a metadata lock that blocks the
    production's DDL. Oracle: INNODB_TRX for that connection, and an ALTER TABLE by root
    with lock_wait_timeout = 1. Mutation: drop `autocommit = 1` from engine.session_sql."""
    db, root = ro3
    src = Source(make_url(_url(db, driver)), pool_size=1, max_overflow=0)
    try:
        if how == "autocommit":
            raw = src.engine.raw_connection()
            raw.dbapi_connection.autocommit(False)
            raw.close()
        else:
            with src.engine.connect() as conn:
                _swallow(
                    lambda: (
                        conn.execution_options(isolation_level="SERIALIZABLE")
                        .exec_driver_sql("SELECT 1")
                        .fetchall()
                    )
                )
        thread = int(src.records("SELECT CONNECTION_ID() AS c")[0]["c"])
        src.records("SELECT a FROM t")
        assert _open_transactions(root, thread) == 0, "a read left its transaction open"
        c = root.cursor()
        c.execute("SET SESSION lock_wait_timeout = 1")
        c.execute(f"ALTER TABLE {db}.t COMMENT 'ro3'")  # waits on a held metadata lock
    finally:
        src.close()


# --- Finding 4 (residue): a view's function changes a global variable -------------------


@pytest.mark.xfail(
    strict=True,
    reason="residue: a view's body runs its definer's code (here SET GLOBAL); the guard sees "
    "only the view's name and no read-back covers global state; layer 3 (grants) cannot "
    "see the definer's privileges either",
)
def test_finding_view_function_changes_a_global_variable(ro3) -> None:
    db, root = ro3
    c = root.cursor()
    c.execute("SELECT @@global.max_connections")
    before = c.fetchone()[0]
    c.execute(
        f"CREATE FUNCTION {db}.glob() RETURNS INT "
        f"BEGIN SET GLOBAL max_connections = {before + 1}; RETURN 1; END"
    )
    c.execute(f"CREATE VIEW {db}.v_glob AS SELECT {db}.glob() AS g")
    wb = hybridwb.connect(source=_url(db))
    try:
        _swallow(wb.sql, "SELECT g FROM v_glob")
        c.execute("SELECT @@global.max_connections")
        after = c.fetchone()[0]
        assert after == before, f"max_connections {before} -> {after}"
    finally:
        c.execute(f"SET GLOBAL max_connections = {before}")
        wb.close()


# --- held: a corpus of MariaDB-specific attempts through wb.sql ---------------------------

HELD = [
    "SELECT s.nextval",
    "SELECT {db}.s.nextval",
    "SELECT `s`.`nextval`",
    "SELECT NEXTVAL ( s )",
    "SELECT previous value for s",
    "SELECT DEFAULT(b) FROM d",
    "WITH x AS (SELECT 1) DELETE FROM t",
    "WITH x AS (SELECT 1) UPDATE t SET a = 5",
    "SELECT mysql.get_lock('ro3_lock', 0)",
    "SELECT `GET_LOCK`('ro3_lock', 0)",
    "VALUES (GET_LOCK('ro3_lock', 0))",
    "TABLE t INTO OUTFILE '/tmp/hybridwb_ro3_held'",
    "SELECT 1 INTO\tDUMPFILE '/tmp/hybridwb_ro3_held'",
    "SELECT * FROM t FOR UPDATE SKIP LOCKED",
    "SELECT * FROM (SELECT * FROM t FOR UPDATE) x",
    "SHOW TABLES WHERE 1 = (SELECT a FROM t LIMIT 1 FOR UPDATE)",
    "SHOW TABLES WHERE (SELECT evil())",
    "DESC FORMAT=JSON DELETE FROM t",
    "EXPLAIN FORMAT=JSON ANALYZE DELETE FROM t",
    "ANALYZE FORMAT=JSON SELECT * FROM t",
    "SELECT 1 LIMIT 1 ROWS EXAMINED evil()",
    "SELECT _latin1 'a', GET_LOCK('ro3_lock', 0)",
    "SELECT 1 /* /* */ , GET_LOCK('ro3_lock', 0) */",
    "BEGIN NOT ATOMIC INSERT INTO t VALUES (5); END",
    "EXECUTE IMMEDIATE 'DELETE FROM t'",
    "PREPARE p FROM 'DELETE FROM t'",
    "SELECT y FROM v_write",
    "SELECT COUNT(*) OVER w FROM t WINDOW w AS (ORDER BY evil())",
]


@pytest.fixture(scope="module")
def held_wb() -> Iterator[tuple[Any, str, pymysql.Connection]]:
    try:
        conn = _root()
    except pymysql.err.OperationalError:
        pytest.skip("MariaDB not running")
    db = _make_db(conn)
    wb = hybridwb.connect(source=_url(db), store="sqlite://")
    try:
        yield wb, db, conn
    finally:
        wb.close()
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {db}")
        conn.close()


@pytest.mark.parametrize("sql", HELD)
def test_held(held_wb, sql: str) -> None:
    wb, db, root = held_wb
    before = _state(root, db)
    _swallow(wb.sql, sql.replace("{db}", db))
    assert _state(root, db) == before
    assert not os.path.exists("/tmp/hybridwb_ro3_held")


# --- the driver-level guard's fast path ---------------------------------------------------


@DRIVERS
def test_an_approved_text_is_not_checked_again_in_the_driver(
    ro3, driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wb.sql and the engine approve the exact text they send; query() only compares it.
    Mutation: drop `rawguard.approve(raw, final)` in execute._run_on -> wb.sql's text is
    checked again in the driver (a call is recorded)."""
    from sqlalchemy import text

    from hybridwb.source import rawguard

    db, _ = ro3
    src = Source(make_url(_url(db, driver)), pool_size=1, max_overflow=0)
    try:
        src.records("SELECT 1 AS warm")
        seen: list[str] = []

        class Counting:
            def check(self, sql: str, allowed: tuple[str, ...] = ()) -> Any:
                seen.append(sql)
                return rawguard.VERDICTS_REAL.check(sql, allowed)

        monkeypatch.setattr(rawguard, "VERDICTS_REAL", rawguard.VERDICTS, raising=False)
        monkeypatch.setattr(rawguard, "VERDICTS", Counting())
        src.records("SELECT a FROM t WHERE a = :a", {"a": 5})
        pd.read_sql(text("SELECT a FROM t WHERE a = :a"), src.engine, params={"a": 6})
        assert seen == [], "an approved text was parsed again in the driver"
        raw = src.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SELECT a FROM t WHERE a = 7")
        finally:
            raw.close()
        assert seen == ["SELECT a FROM t WHERE a = 7"]
    finally:
        src.close()


def test_held_allowlisted_function_setting_read_write_cannot_write_in_its_statement(ro3) -> None:
    """Tables a function writes are opened (and refused by READ ONLY) when the statement
    starts, before its SET TRANSACTION READ WRITE runs; on the pinned and the engine
    connection the next statement is READ ONLY again."""
    db, root = ro3
    root.cursor().execute(
        f"CREATE FUNCTION {db}.rwi() RETURNS INT MODIFIES SQL DATA "
        f"BEGIN SET TRANSACTION READ WRITE; INSERT INTO {db}.m VALUES (77); RETURN 1; END"
    )
    before = _state(root, db)
    src = Source(make_url(_url(db)), pool_size=2, allowed_functions=("rw", "rwi"))
    try:
        _swallow(src.records, "SELECT rwi() AS z")
        with src.one_connection():
            _swallow(src.records, "SELECT rw() AS z")
            _swallow(src.records, "SELECT y FROM v_write")
        with src.engine.connect() as conn:
            _swallow(pd.read_sql, "SELECT rw() AS z", conn)
            _swallow(pd.read_sql, "SELECT y FROM v_write", conn)
    finally:
        src.close()
    assert _state(root, db) == before


def test_held_a_metadata_lock_wait_stops_at_the_time_limit(ro3) -> None:
    """A read queued behind another session's LOCK TABLES ... WRITE is stopped by the
    statement time limit (lock_wait_timeout is a year by default)."""
    import time

    from hybridwb.errors import QueryTimeout

    db, _ = ro3
    locker = _root()
    src = Source(make_url(_url(db)), pool_size=1, max_overflow=0)
    try:
        locker.cursor().execute(f"LOCK TABLES {db}.t WRITE")
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            src.records("SELECT a FROM t", timeout=0.5)
        assert time.monotonic() - started < 10
    finally:
        locker.cursor().execute("UNLOCK TABLES")
        locker.close()
        src.close()


def test_held_sqlalchemy_and_pandas_writes_on_the_engine(ro3) -> None:
    from sqlalchemy import Column, Integer, MetaData, Table, delete, insert

    db, root = ro3
    before = _state(root, db)
    src = Source(make_url(_url(db)), pool_size=2)
    md = MetaData()
    t = Table("t", md, Column("a", Integer))
    Table("ro3_new", md, Column("a", Integer))
    engine = src.engine
    attempts = (
        lambda c: pd.DataFrame({"a": [1]}).to_sql("t", c, if_exists="append", index=False),
        lambda c: c.execute(insert(t).values(a=5)),
        lambda c: c.execute(delete(t)),
        lambda c: md.create_all(c),
        lambda c: c.begin_nested(),
        lambda c: c.begin_twophase(),
        lambda c: c.exec_driver_sql("SELECT %s", [(1,), (2,)]),
    )
    try:
        for attempt in attempts:
            with engine.connect() as conn, contextlib.suppress(Exception):
                attempt(conn)
                conn.commit()
    finally:
        src.close()
    assert _state(root, db) == before
