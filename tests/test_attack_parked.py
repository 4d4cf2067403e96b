"""Attacks on the parked connection (checkout.py): state a read or a raw connection leaves
on a session must not reach the next read, and nothing outlives `Source.close()`.

Oracles are the server's: INNODB_TRX (an open transaction and its snapshot), the rows a
read sees after root inserted one, the processlist. A private `hybridwb_ap_<random>`
database; the account is root (writable), so only the session stands in the way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from hybridwb.source import Source
from tests._mysql import root as _root
from tests._mysql import scratch_db, threads_left
from tests.conftest import MYSQL_HOST, MYSQL_PORT

pytestmark = pytest.mark.mysql


@pytest.fixture
def db() -> Iterator[str]:
    with scratch_db("ap", rows=1) as name:
        yield name


def _source(db: str, driver: str = "pymysql") -> Source:
    url = URL.create(
        f"mysql+{driver}", username="root", host=MYSQL_HOST, port=MYSQL_PORT, database=db
    )
    return Source(url, pool_size=2, max_overflow=0)


def _server(sql: str, *args: object) -> int:
    conn = _root()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
            return int(row[0]) if row else cur.rowcount
    finally:
        conn.close()


def test_a_transaction_begun_on_a_raw_connection_ends_before_the_next_read(db: str) -> None:
    """PyMySQL's `begin()` sends BEGIN without `query()`, so the raw guard never sees it,
    and the checkin's `autocommit = 1` changed nothing (it was already 1): the transaction
    stayed open into every later read, which took the connection from the pool and kept it
    parked, all reading one stale snapshot and holding a metadata lock that blocks the
    production's DDL. Mutation: `SESSION autocommit = 0, SESSION autocommit = 1` back to
    `SESSION autocommit = 1` in engine.session_sql."""
    src = _source(db)
    try:
        raw = src.engine.raw_connection()
        raw.dbapi_connection.begin()
        raw.cursor().execute(f"SELECT a FROM `{db}`.t")  # guarded, takes the snapshot
        raw.close()
        _server(f"INSERT INTO `{db}`.t VALUES (2), (3)")  # root, committed
        seen = [len(src.records("SELECT a FROM t")) for _ in range(3)]
        me = int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])
        open_trx = _server(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = %s",
            me,
        )
    finally:
        src.close()
    assert seen == [3, 3, 3]
    assert open_trx == 0


def test_close_while_a_read_holds_the_connection_parks_nothing(db: str) -> None:
    """`close()` from inside `one_connection()` (or from another thread during a read):
    the read then parked its connection in the closed source, where it stayed open (a
    connection of the disposed pool, on the production) until the source was used again.
    Mutation: drop the `epoch` comparison in checkout.Parking._park."""
    src = _source(db)
    with src.one_connection():
        used = int(src.records("SELECT CONNECTION_ID() AS id")[0]["id"])
        src.close()
    parked = list(src._parking._parked)
    left = threads_left(used)
    src.close()
    assert parked == []
    assert left == 0


def test_a_forked_child_never_speaks_on_its_parents_parked_connection(db: str) -> None:
    """A forked child forgot the parked connection by dropping its reference: its garbage
    collection checked it in, and the checkin sent a session SET on the parent's socket.
    The parent then read that SET's OK as the reply to its next SELECT, and every later
    reply was one statement late (rows of the wrong statement, session read-backs of the
    wrong statement). Oracle: the rows of t as root sees them. Mutation: in
    checkout.Parking._take, drop `_FORKED.extend(...)` (the child's references)."""
    import os

    src = _source(db)
    try:
        assert len(src.records("SELECT a FROM t")) == 1  # parked in the parent
        pid = os.fork()
        if pid == 0:  # the child reads once, then exits without any cleanup
            try:
                src.records("SELECT a FROM t")
                import gc

                gc.collect()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        seen = [len(src.records("SELECT a FROM t")) for _ in range(2)]
    finally:
        src.close()
    assert seen == [1, 1]
