"""The driver-level guard's own refusals (source/rawguard.py), on both drivers.

The attack rounds (test_attack_readonly_round2/3) prove the guard in `query()`; these prove
the calls that would change the connection behind it: each is refused with a one-line
message and, read back through root or the connection itself, nothing changed.
"""

from __future__ import annotations

import contextlib
import secrets
import types
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from sqlalchemy.engine import make_url

from hybridwb.errors import HybridwbError, ReadOnlyViolation
from hybridwb.source import rawguard
from hybridwb.source.source import Source

pytestmark = pytest.mark.mysql

HOST, PORT = "127.0.0.1", 3306
DRIVERS = pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])


def _root() -> pymysql.Connection:
    return pymysql.connect(ssl_disabled=True, host=HOST, port=PORT, user="root", autocommit=True)


@pytest.fixture
def db() -> Iterator[str]:
    try:
        root = _root()
    except pymysql.err.OperationalError:
        pytest.skip("MariaDB not running")
    name = f"hybridwb_rg_{secrets.token_hex(4)}"
    root.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        root.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        root.close()


@contextlib.contextmanager
def _raw(db: str, driver: str) -> Iterator[Any]:
    src = Source(make_url(f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4"))
    try:
        raw = src.engine.raw_connection()
        try:
            yield raw.dbapi_connection
        finally:
            raw.close()
    finally:
        src.close()


def _one(dbapi: Any, sql: str) -> Any:
    cur = dbapi.cursor()
    cur.execute(sql)
    row = cur.fetchone()
    cur.close()
    return row[0]


def _refused(call: Any) -> str:
    """The one-line message `call` is refused with."""
    with pytest.raises(ReadOnlyViolation) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def _says(what: str) -> str:
    return f"Refused: {what} on a source connection; hybridwb only reads."


def test_mysqlclient_calls_that_change_the_connection_are_refused(db: str) -> None:
    """Mutation: drop any one of GuardedMySQLdb's overrides (kill, shutdown, change_user,
    set_server_option, dump_debug_info) -> mysqlclient's own call runs (a killed root
    session, another user, multi-statements on); each message is exact (it names the call)."""
    root = _root()
    victim = _root()
    try:
        with _raw(db, "mysqldb") as dbapi:
            calls = [
                (lambda: dbapi.kill(victim.thread_id()), "KILL"),
                (lambda: dbapi.shutdown(), "SHUTDOWN"),
                (lambda: dbapi.change_user("nobody", "", db), "changing the user"),
                (lambda: dbapi.set_server_option(0), "changing a server option"),
                (lambda: dbapi.dump_debug_info(), "dump_debug_info (it writes the server's log)"),
            ]
            for call, what in calls:
                assert _refused(call) == _says(what)
            assert _one(dbapi, "SELECT CURRENT_USER()").startswith("root@")
            assert _one(dbapi, "SELECT @@tx_read_only") == 1
        cur = root.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE id = %s",
            (victim.thread_id(),),
        )
        assert cur.fetchone() == (1,), "the root session was killed"
    finally:
        victim.close()
        root.close()


@DRIVERS
def test_changing_the_default_database_is_refused(db: str, driver: str) -> None:
    with _raw(db, driver) as dbapi:
        assert _refused(lambda: dbapi.select_db("mysql")) == _says("changing the default database")
        assert _one(dbapi, "SELECT DATABASE()") == db


@pytest.mark.parametrize(
    "driver,charset",
    [(d, c) for d in ("pymysql", "mysqldb") for c in ("utf8mb4", "utf8", "utf8mb3")]
    # mysqlclient passes the name to Python's codecs as given: "UTF8MB4" is no codec
    + [("pymysql", "UTF8MB4")],
)
def test_a_utf8_character_set_is_allowed(db: str, driver: str, charset: str) -> None:
    """The guard reads literals as utf8mb4: utf8 (= utf8mb3, a subset) may be chosen; the
    session then reads it (checked on the connection itself).
    Mutation: a name left out of _CHARSETS, or no `.lower()` -> refused."""
    with _raw(db, driver) as dbapi:
        dbapi.set_character_set(charset)
        assert _one(dbapi, "SELECT @@character_set_client").startswith("utf8")


@DRIVERS
def test_another_character_set_is_refused_and_the_session_keeps_utf8mb4(
    db: str, driver: str
) -> None:
    with _raw(db, driver) as dbapi:
        assert _refused(lambda: dbapi.set_character_set("latin1")) == _says(
            "the character set 'latin1' (the guard reads utf8mb4)"
        )
        assert _one(dbapi, "SELECT @@character_set_client") == "utf8mb4"


@DRIVERS
def test_statement_bytes_are_guarded_as_utf8_text(db: str, driver: str) -> None:
    """Mutation: guard only str statements -> bytes DO GET_LOCK(..) takes the lock (read as
    root); refuse every bytes statement -> the bytes SELECT fails."""
    root = _root()
    lock = f"rg_{secrets.token_hex(3)}"
    try:
        with _raw(db, driver) as dbapi:
            assert _refused(lambda: dbapi.query(b"SELECT '\xff'")) == _says(
                "a statement that is not UTF-8 text"
            )
            with pytest.raises(ReadOnlyViolation):
                dbapi.query(f"DO GET_LOCK('{lock}', 0)".encode())
            cur = dbapi.cursor()
            cur.execute(b"SELECT '\xea\xb9\x80'")  # a Hangul syllable, as UTF-8 bytes
            assert cur.fetchone()[0] == "김"
            cur = root.cursor()
            cur.execute("SELECT IS_USED_LOCK(%s)", (lock,))
            assert cur.fetchone() == (None,)
    finally:
        root.close()


def test_an_unsupported_driver_is_refused_by_name() -> None:
    for module, name in [(types.ModuleType("psycopg"), "psycopg"), (object(), "?")]:
        with pytest.raises(HybridwbError) as caught:
            rawguard.connection_class(module)
        assert str(caught.value) == f"The source driver {name} is not supported; use PyMySQL."


def test_the_mysqlclient_class_is_made_once() -> None:
    import MySQLdb

    first = rawguard.connection_class(MySQLdb)
    assert rawguard.connection_class(MySQLdb) is first
    assert issubclass(first, MySQLdb.connections.Connection)
    assert rawguard.connection_class(pymysql) is rawguard.GuardedPyMySQL


def test_marks_on_a_plain_connection_do_nothing() -> None:
    """hybridwb's helpers accept a connection that is not guarded (no state): no error."""
    plain = object()
    rawguard.approve(plain, "SELECT 1")
    rawguard.mark_reassert(plain)
    rawguard.session_set(plain)
    rawguard.arm(plain, lambda raw, full: None, ())
    with rawguard.internal(plain):
        pass


@DRIVERS
def test_with_the_guard_off_an_unvetted_statement_still_sets_the_session_again(
    db: str, driver: str
) -> None:
    """Source(use_guard=False) switches off the check in query(), not the session: a raw
    statement that makes the session writable is followed by the full session SET, so the
    next write is refused by the server (rows counted as root).
    Mutation: `state.dirty = False` on the unguarded path -> the INSERT lands."""
    root = _root()
    try:
        root.cursor().execute(f"CREATE TABLE {db}.t (a INT)")
        src = Source(
            make_url(f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4"), use_guard=False
        )
        try:
            raw = src.engine.raw_connection()
            try:
                dbapi = raw.dbapi_connection
                dbapi.query("SET SESSION tx_read_only = 0")
                with contextlib.suppress(Exception):  # the server's read-only refusal
                    dbapi.query("INSERT INTO t VALUES (5)")
                assert _one(dbapi, "SELECT @@tx_read_only") == 1
            finally:
                raw.close()
        finally:
            src.close()
        cur = root.cursor()
        cur.execute(f"SELECT COUNT(*) FROM {db}.t")
        assert cur.fetchone() == (0,), "the unguarded connection wrote"
    finally:
        root.close()


def _set_statements(dbapi: Any, counter: str = "COM_SET_OPTION") -> int:
    """The session's count of SET statements (or another `counter`), read past the guard
    (no restore first). A reset (COM_RESET_CONNECTION) starts the counts again."""
    with rawguard.internal(dbapi):
        return int(
            _one(
                dbapi,
                "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
                f"WHERE VARIABLE_NAME = '{counter}'",
            )
        )


@DRIVERS
def test_a_checkout_owes_no_second_session_set(db: str, driver: str) -> None:
    """An unvetted raw statement leaves the session owed a SET; the checkout's SET pays it,
    so the next statement goes alone (the server's own count of SET statements).
    Mutation: session_set does nothing -> the next statement sets the session once more."""
    src = Source(
        make_url(f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4"),
        pool_size=1,
        max_overflow=0,
    )
    try:
        raw = src.engine.raw_connection()
        _one(raw.dbapi_connection, "SELECT 1")  # not approved: guarded here, SET owed
        raw.close()
        raw = src.engine.raw_connection()  # the same connection, set again at checkout
        try:
            dbapi = raw.dbapi_connection
            before = _set_statements(dbapi)
            selects = _set_statements(dbapi, "COM_SELECT")
            assert _one(dbapi, "SELECT 2") == 2
            assert _set_statements(dbapi) == before
            # SELECT 2 and the two counts: nothing reset the counts in between
            assert _set_statements(dbapi, "COM_SELECT") == selects + 3
            _one(dbapi, "SELECT 3")  # unvetted too: the next statement resets (round 52)
            # and sets the session: the counts start again (SELECT 3 and this count)
            assert _set_statements(dbapi, "COM_SELECT") <= 2
        finally:
            raw.close()
    finally:
        src.close()


@DRIVERS
def test_the_guard_is_back_after_hybridwb_sets_the_session_again(db: str, driver: str) -> None:
    """Setting the session again after an unvetted statement runs hybridwb's statements
    inside two nested `internal()` blocks; once both end, the guard is on again: a raw
    `SET SESSION tx_read_only = 0` is refused and the INSERT after it writes nothing (rows
    counted as root). Mutation: `state.internal = 1` for `+= 1` -> the count ends at -1 and
    every later statement passes unguarded."""
    root = _root()
    try:
        root.cursor().execute(f"CREATE TABLE {db}.t (a INT)")
        with _raw(db, driver) as dbapi:
            _one(dbapi, "SELECT 1")  # unvetted: the session is set again before the next
            _one(dbapi, "SELECT 2")
            assert _refused(lambda: _one(dbapi, "SET SESSION tx_read_only = 0"))
            with contextlib.suppress(Exception):
                _one(dbapi, "INSERT INTO t VALUES (5)")
        cur = root.cursor()
        cur.execute(f"SELECT COUNT(*) FROM {db}.t")
        assert cur.fetchone() == (0,), "the raw connection wrote"
    finally:
        root.close()


@DRIVERS
def test_only_the_approved_text_passes_unchecked(db: str, driver: str) -> None:
    """An approval covers that exact text: another statement sent next is guarded.
    Mutation: `approved is not None or text == approved` -> the SET passes and the INSERT
    after it lands (rows counted as root)."""
    root = _root()
    try:
        root.cursor().execute(f"CREATE TABLE {db}.t (a INT)")
        with _raw(db, driver) as dbapi:
            rawguard.approve(dbapi, "SELECT 1")
            assert _refused(lambda: _one(dbapi, "SET SESSION tx_read_only = 0"))
            with contextlib.suppress(Exception):
                _one(dbapi, "INSERT INTO t VALUES (5)")
        cur = root.cursor()
        cur.execute(f"SELECT COUNT(*) FROM {db}.t")
        assert cur.fetchone() == (0,), "the raw connection wrote"
    finally:
        root.close()


@DRIVERS
def test_after_the_session_is_set_again_approved_statements_go_alone(db: str, driver: str) -> None:
    """The SET after an unvetted statement pays what was owed: approved statements that follow
    on the same connection send no SET of their own (the server's count of SET statements).
    Mutation: `_restore` leaves dirty/reassert True -> each of them sets the session again."""
    with _raw(db, driver) as dbapi:
        _one(dbapi, "SELECT 1")  # unvetted: the next statement sets the session first
        rawguard.approve(dbapi, "SELECT 2")
        assert _one(dbapi, "SELECT 2") == 2
        before = _set_statements(dbapi)
        for n in range(3, 6):
            rawguard.approve(dbapi, f"SELECT {n}")  # as the statement-level guard does
            assert _one(dbapi, f"SELECT {n}") == n
        assert _set_statements(dbapi) == before
