"""Attack round 30 (branch atk30a): layer two on its own, on each driver.

mysqlclient turns the client's multi-statements capability on unless it is told not to
(`multi_statements=True` is its default), PyMySQL leaves it off. With it on, one text is
several statements to the server, run one after another in one round trip: with the guard
off, `SET SESSION tx_read_only = 0; INSERT ...` made the READ ONLY session writable and
committed the INSERT before hybridwb's read-back could see anything, so "the session alone
stops writes" held on PyMySQL only. The source's connections are now opened with
`multi_statements=False` on mysqlclient too. The oracle is root on a second connection
(the table's rows).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy.engine import make_url

from hybridwb.errors import HybridwbError
from hybridwb.source import Source

pytestmark = pytest.mark.mysql

HOST, PORT = "127.0.0.1", 3306
DRIVERS = pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])


@pytest.fixture
def victim() -> Iterator[tuple[str, pymysql.Connection]]:
    try:
        root = pymysql.connect(
            ssl_disabled=True, host=HOST, port=PORT, user="root", autocommit=True
        )
    except pymysql.err.OperationalError:
        pytest.skip("MariaDB not running")
    db = f"hybridwb_r30l_{secrets.token_hex(4)}"
    cur = root.cursor()
    cur.execute(f"CREATE DATABASE {db}")
    cur.execute(f"CREATE TABLE {db}.t (a INT) ENGINE=InnoDB")
    try:
        yield db, root
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        root.close()


def _rows(root: pymysql.Connection, db: str) -> int:
    cur = root.cursor()
    cur.execute(f"SELECT COUNT(*) FROM {db}.t")
    return int(cur.fetchone()[0])


STACKED = [
    pytest.param("SET SESSION tx_read_only = 0; INSERT INTO t VALUES (5)", id="set-then-insert"),
    pytest.param(
        "SET SESSION TRANSACTION READ WRITE; INSERT INTO t VALUES (6)", id="read-write-then-insert"
    ),
    pytest.param(
        "SELECT 1; SET SESSION tx_read_only = 0; INSERT INTO t VALUES (7)", id="select-first"
    ),
]


@DRIVERS
@pytest.mark.parametrize("sql", STACKED)
def test_the_session_alone_stops_a_stacked_write_on_every_driver(
    victim: tuple[str, pymysql.Connection], driver: str, sql: str
) -> None:
    """Guard off, writable root: the server must read the text as one statement (and
    refuse it), so no second statement runs on a session the first made writable."""
    pytest.importorskip("MySQLdb" if driver == "mysqldb" else "pymysql")
    db, root = victim
    url = make_url(f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4")
    src = Source(url, use_guard=False, pool_size=1)
    try:
        with pytest.raises(HybridwbError):
            src.sql(sql)
        assert src.records("SELECT @@tx_read_only AS ro")[0]["ro"] == 1
    finally:
        src.close()
    assert _rows(root, db) == 0  # the oracle: nothing committed


@DRIVERS
def test_a_source_connection_has_multi_statements_off(
    victim: tuple[str, pymysql.Connection], driver: str
) -> None:
    pytest.importorskip("MySQLdb" if driver == "mysqldb" else "pymysql")
    db, _ = victim
    url = make_url(f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4")
    src = Source(url, pool_size=1)
    try:
        with src.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            flags = int(raw.client_flag)  # both drivers keep the capabilities asked for
    finally:
        src.close()
    assert not flags & pymysql.constants.CLIENT.MULTI_STATEMENTS


SET_THEN_WRITE = [
    pytest.param("SET STATEMENT tx_read_only = 0 FOR INSERT INTO t VALUES (8)", id="set-statement"),
    pytest.param(
        "BEGIN NOT ATOMIC SET SESSION tx_read_only = 0; INSERT INTO t VALUES (9); END",
        id="compound-statement",
    ),
    pytest.param("CALL set_then_write()", id="call"),
]


@DRIVERS
@pytest.mark.parametrize("sql", SET_THEN_WRITE)
@pytest.mark.xfail(
    strict=True,
    reason="residue: one statement that SETs the session writable before it writes (MariaDB's "
    "SET STATEMENT ... FOR, a compound statement, a procedure) writes whatever the session "
    "says; only the guard (which refuses each) and the grants stop it",
)
def test_residue_one_statement_that_sets_then_writes_passes_the_session_alone(
    victim: tuple[str, pymysql.Connection], driver: str, sql: str
) -> None:
    pytest.importorskip("MySQLdb" if driver == "mysqldb" else "pymysql")
    db, root = victim
    root.cursor().execute(
        f"CREATE PROCEDURE {db}.set_then_write() "
        "BEGIN SET SESSION tx_read_only = 0; INSERT INTO t VALUES (10); END"
    )
    url = make_url(f"mysql+{driver}://root@{HOST}:{PORT}/{db}?charset=utf8mb4")
    src = Source(url, use_guard=False, pool_size=1)
    try:
        with contextlib.suppress(HybridwbError):
            src.sql(sql)
    finally:
        src.close()
    assert _rows(root, db) == 0


def test_the_guard_refuses_each_statement_that_sets_then_writes() -> None:
    from hybridwb.errors import ReadOnlyViolation
    from hybridwb.source import guard

    for text in (
        "SET STATEMENT tx_read_only = 0 FOR INSERT INTO t VALUES (8)",
        "BEGIN NOT ATOMIC SET SESSION tx_read_only = 0; INSERT INTO t VALUES (9); END",
        "CALL set_then_write()",
        "set statement tx_read_only=0 for select 1",
        "(SET STATEMENT max_statement_time = 0 FOR SELECT 1)",
        "/* x */ SET STATEMENT max_statement_time = 0 FOR SELECT 1",
    ):
        with pytest.raises(ReadOnlyViolation):
            guard.check(text)
