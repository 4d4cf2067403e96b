"""Attack round 27 on the source's fast paths: a source connection that the server drops
must never come back as a fresh session the guard and the session SET did not see.

mysqlclient's `ping(True)` (deprecated, but still accepted) turns on libmysqlclient's
MYSQL_OPT_RECONNECT for the life of the connection: from then on, a statement sent on a
connection the server has dropped (KILL, wait_timeout, a restart) reconnects inside the C
library and runs on a new session with the server's defaults — writable, no statement time
limit, no `sql_select_limit`, the server's global sql_mode — before any Python code can see
it. PyMySQL's reconnect goes through `connect()`, which hybridwb marks (round 3);
mysqlclient's reconnect happens in C, where nothing can. So the guarded mysqlclient
connection refuses `ping(True)`.

Oracle: the rows of a table, counted by root (a view whose function INSERTs into it). The
account is a private one with every privilege on a private database, so only the session
stands in the way of a write.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import warnings
from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import HybridwbError, ReadOnlyViolation
from hybridwb.source import Source
from tests._mysql import as_root, root
from tests.conftest import MYSQL_HOST, MYSQL_PORT

pytestmark = pytest.mark.mysql

pytest.importorskip("MySQLdb")


@pytest.fixture
def writer() -> Iterator[tuple[str, str, str]]:
    """(database, user, password): a private database with `t`, a table `w` that a view's
    function writes to (`v_write`), and an account with ALL on the database."""
    tag = secrets.token_hex(4)
    db, user, password = f"hybridwb_a27_{tag}", f"a27_{tag}", secrets.token_hex(8)
    conn = root()
    cur = conn.cursor()
    for sql in (
        f"CREATE DATABASE `{db}`",
        f"CREATE TABLE `{db}`.t (a INT) ENGINE=InnoDB",
        f"INSERT INTO `{db}`.t VALUES (1), (2)",
        f"CREATE TABLE `{db}`.w (a INT) ENGINE=InnoDB",
        f"CREATE FUNCTION `{db}`.ins() RETURNS INT MODIFIES SQL DATA "
        f"BEGIN INSERT INTO `{db}`.w VALUES (1); RETURN 1; END",
        f"CREATE VIEW `{db}`.v_write AS SELECT `{db}`.ins() AS y",
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT ALL ON `{db}`.* TO '{user}'@'%'",
    ):
        cur.execute(sql)
    try:
        yield db, user, password
    finally:
        cur.execute("SELECT id FROM information_schema.processlist WHERE user = %s", (user,))
        for (thread,) in cur.fetchall():
            with contextlib.suppress(pymysql.err.OperationalError):
                cur.execute(f"KILL CONNECTION {int(thread)}")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()


def source_url(db: str, user: str, password: str, driver: str = "mysqldb") -> URL:
    """The private account's URL on the private database."""
    return URL.create(
        f"mysql+{driver}",
        username=user,
        password=password,
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        database=db,
    )


def _source(db: str, user: str, password: str, driver: str = "mysqldb") -> Source:
    return Source(source_url(db, user, password, driver), pool_size=2, max_overflow=0)


def _written(db: str) -> int:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{db}`.w")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def view_that_unsets(db: str, view: str) -> None:
    """As root: a function that makes the session writable, and `view` (a new view, or a
    table dropped first) that calls it."""
    as_root(
        f"CREATE FUNCTION `{db}`.unset() RETURNS INT "
        "BEGIN SET SESSION tx_read_only = 0; RETURN 1; END",
        f"CREATE VIEW `{db}`.{view} AS SELECT `{db}`.unset() AS x",
    )


def read_then_write_pinned(src: Source, first: str) -> None:
    """On one pinned connection (`one_connection()`, a search's probe and page): `first`,
    then the read of `v_write` (whose function INSERTs into `w`); a refusal is fine."""
    with contextlib.suppress(HybridwbError), src.one_connection():
        src.records(first)
        src.records("SELECT y FROM v_write")


def _kill(thread: int) -> None:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"KILL CONNECTION {int(thread)}")
    finally:
        conn.close()
    time.sleep(0.1)  # the server closes the socket


def _ping_reconnect(dbapi: object) -> None:
    """What a notebook keeping a raw connection alive does (refused or not)."""
    with contextlib.suppress(HybridwbError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        dbapi.ping(True)  # type: ignore[attr-defined]


def test_a_raw_mysqlclient_connection_refuses_ping_with_reconnect(
    writer: tuple[str, str, str],
) -> None:
    """Before: `ping(True)` on `wb.engine.raw_connection()`, then the server drops the
    connection; the next guarded SELECT of a view reconnected inside libmysqlclient and ran
    on a fresh, writable session: the view's INSERT committed. Mutation: drop
    `GuardedMySQLdb.ping` in rawguard.py -> the row is written (and `ping(True)` passes)."""
    db, user, password = writer
    src = _source(db, user, password)
    try:
        raw = src.engine.raw_connection()
        try:
            dbapi = raw.dbapi_connection
            dbapi.ping()  # a plain ping (what SQLAlchemy's pre-ping sends) still works
            refused = None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    dbapi.ping(True)
            except ReadOnlyViolation as exc:
                refused = str(exc)
            _kill(dbapi.thread_id())
            cur = dbapi.cursor()
            with contextlib.suppress(Exception):  # the connection is gone: an error
                cur.execute("SELECT y FROM v_write")
                cur.fetchall()
        finally:
            raw.invalidate()
            raw.close()
    finally:
        src.close()
    assert _written(db) == 0
    assert refused is not None and "reconnect" in refused


def test_a_pinned_read_after_the_server_dropped_the_connection_never_runs_writable(
    writer: tuple[str, str, str],
) -> None:
    """The product path: a pooled connection once pinged with reconnect, then pinned by
    `one_connection()` (a search's probe and page); the server drops it between the two
    reads. Before: the second read reconnected in C and ran on a writable session with no
    time limit (the view's INSERT committed). Mutation: drop `GuardedMySQLdb.ping` -> the
    row is written."""
    db, user, password = writer
    src = _source(db, user, password)
    try:
        raw = src.engine.raw_connection()
        _ping_reconnect(raw.dbapi_connection)
        raw.close()  # back to the pool
        src.records("SELECT a FROM t")  # the view list is read once, here
        with contextlib.suppress(HybridwbError), src.one_connection():
            me = int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])
            _kill(me)
            src.records("SELECT y FROM v_write")
    finally:
        src.close()
    assert _written(db) == 0
