"""Layer two on its own: the READ ONLY session with its time limit, guard off, root account.

(Layer one alone is the corpus run in `test_readonly_corpus.py` with
`read_only_session=False`; layer three alone is `test_readonly_grants.py`, where
`test_connection` runs with the guard and the read-only session switched off.)

With no guard and a writable account, only the server's READ ONLY transaction and its
statement time limit stand between a statement and the data. The oracle is direct PyMySQL.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pymysql
import pytest

from hybridwb.errors import QueryTimeout, ReadOnlyViolation
from hybridwb.source import Source
from tests._mysql import plain_root
from tests.conftest import admin_url

pytestmark = pytest.mark.mysql


@pytest.fixture(scope="module")
def victim(mysql_db: str) -> Iterator[tuple[str, pymysql.Connection]]:
    conn = plain_root(mysql_db, charset="utf8mb4", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS hb_layer_inno, hb_layer_isam")
        cur.execute("CREATE TABLE hb_layer_inno (n INT PRIMARY KEY) ENGINE = InnoDB")
        cur.execute("CREATE TABLE hb_layer_isam (n INT PRIMARY KEY) ENGINE = MyISAM")
        cur.execute("INSERT INTO hb_layer_inno VALUES (1)")
        cur.execute("INSERT INTO hb_layer_isam VALUES (1)")
        cur.execute("DROP FUNCTION IF EXISTS hb_layer_write")
        cur.execute(
            "CREATE FUNCTION hb_layer_write() RETURNS INT MODIFIES SQL DATA "
            "BEGIN INSERT INTO hb_layer_isam VALUES (2); RETURN 1; END"
        )
        cur.execute("DROP FUNCTION IF EXISTS hb_layer_rw")
        cur.execute(
            "CREATE FUNCTION hb_layer_rw() RETURNS INT "
            "BEGIN SET SESSION TRANSACTION READ WRITE; SET SESSION max_statement_time = 0; "
            "RETURN 1; END"
        )
    yield mysql_db, conn
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS hb_layer_inno, hb_layer_isam")
        cur.execute("DROP FUNCTION IF EXISTS hb_layer_write")
        cur.execute("DROP FUNCTION IF EXISTS hb_layer_rw")
    conn.close()


@pytest.fixture
def session_only(victim: tuple[str, pymysql.Connection]) -> Iterator[Source]:
    source = Source(admin_url(victim[0]), use_guard=False, statement_timeout=1, pool_size=1)
    yield source
    source.close()


def _state(conn: pymysql.Connection) -> tuple:
    with conn.cursor() as cur:
        cur.execute("CHECKSUM TABLE hb_layer_inno, hb_layer_isam, customers")
        sums = cur.fetchall()
        cur.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "ORDER BY 1"
        )
        return sums, cur.fetchall()


WRITES = {
    "insert-innodb": "INSERT INTO hb_layer_inno VALUES (5)",
    "insert-myisam": "INSERT INTO hb_layer_isam VALUES (5)",
    "update": "UPDATE customers SET grade = 'X' WHERE customer_id = 1",
    "delete": "DELETE FROM hb_layer_inno",
    "replace": "REPLACE INTO hb_layer_inno VALUES (1)",
    "stored-function-writes-myisam": "SELECT hb_layer_write()",
    "insert-select": "INSERT INTO hb_layer_inno SELECT customer_id + 100 FROM customers LIMIT 3",
}


@pytest.mark.parametrize("sql", WRITES.values(), ids=WRITES.keys())
def test_session_alone_refuses_writes(
    sql: str, session_only: Source, victim: tuple[str, pymysql.Connection]
) -> None:
    before = _state(victim[1])
    with pytest.raises(ReadOnlyViolation) as info:
        session_only.sql(sql)
    assert type(info.value) is ReadOnlyViolation
    assert _state(victim[1]) == before


def test_session_alone_survives_a_function_that_makes_it_writable(
    session_only: Source, victim: tuple[str, pymysql.Connection]
) -> None:
    before = _state(victim[1])
    with contextlib.suppress(ReadOnlyViolation):  # refused outright is fine too
        session_only.sql("SELECT hb_layer_rw()")
    with pytest.raises(ReadOnlyViolation):
        session_only.sql("INSERT INTO hb_layer_inno VALUES (9)")
    with pytest.raises(QueryTimeout):
        session_only.sql("SELECT SLEEP(5)")
    assert _state(victim[1]) == before


def test_session_alone_ends_sleep_beyond_the_limit(session_only: Source) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        session_only.sql("SELECT SLEEP(5)")
    assert time.monotonic() - started < 3


def test_session_alone_keeps_its_limits_on_the_pooled_connection(session_only: Source) -> None:
    for _ in range(2):  # the same pooled connection, checked out twice
        rows = session_only.records("SELECT @@tx_read_only AS ro, @@max_statement_time AS t")
        assert rows == [{"ro": 1, "t": 1.0}]
