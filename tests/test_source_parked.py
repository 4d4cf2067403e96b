"""The read path's own checkout (checkout.py): the connection of the last read is kept aside
and taken back without SQLAlchemy's pool, and still starts every use on a session just set.

As in test_source_roundtrips.py, the account is root (WRITABLE) and the guard is off where a
test makes the parked session writable behind hybridwb's back, so only the session stands
in the way. Oracles: the server's per-session counters, CONNECTION_ID(), the processlist
and the rows of the table counted by root. A private `hybridwb_pk_<random>` database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.engine import URL

from hybridwb.errors import HybridwbError, ReadOnlyViolation
from hybridwb.source import Source, drivers
from hybridwb.source.engine import PENDING_KEY
from hybridwb.source.rawguard import internal
from tests._mysql import root as _root
from tests._mysql import row_count as _rows
from tests._mysql import scratch_db, threads_left
from tests.conftest import MYSQL_HOST, MYSQL_PORT

pytestmark = pytest.mark.mysql

DRIVERS = ["pymysql", "mysqldb"]
SETS = (
    "SELECT VARIABLE_VALUE AS n FROM information_schema.SESSION_STATUS "
    "WHERE VARIABLE_NAME = 'COM_SET_OPTION'"
)
SESSION = (
    "SELECT CONNECTION_ID() AS id, @@session.tx_read_only AS ro, @@session.max_statement_time AS t"
)


@pytest.fixture
def db() -> Iterator[str]:
    with scratch_db("pk", rows=2) as name:
        yield name


def _source(db: str, driver: str = "pymysql", *, use_guard: bool = True) -> Source:
    url = URL.create(
        f"mysql+{driver}", username="root", host=MYSQL_HOST, port=MYSQL_PORT, database=db
    )
    return Source(url, use_guard=use_guard, pool_size=2, max_overflow=0)


def _session(src: Source) -> tuple[int, int, float]:
    row = src.records(SESSION)[0]
    return int(row["id"]), int(row["ro"]), float(row["t"])


@pytest.mark.parametrize("driver", DRIVERS)
def test_reads_take_the_parked_connection_without_the_pool_and_set_the_session_each_time(
    db: str, driver: str
) -> None:
    src = _source(db, driver)
    checkouts: list[object] = []
    try:
        first = _session(src)
        src.records(SETS)  # the view list of information_schema is read on the engine
        event.listen(src.engine, "checkout", lambda *a: checkouts.append(a))
        sets = [int(src.records(SETS)[0]["n"]) for _ in range(5)]
        assert [_session(src) for _ in range(3)] == [first] * 3  # one connection, read-only
        with src.one_connection():  # a search's probe and page: one session SET for both
            inside = [int(src.records(SETS)[0]["n"]) for _ in range(3)]
        pooled = len(checkouts)
        with pytest.raises(ReadOnlyViolation):  # still guarded
            src.records("DELETE FROM t")
    finally:
        src.close()
    assert first[1:] == (1, 30.0)
    assert pooled == 0  # the pool was not asked for a connection
    # each read's checkout: the reset sent at checkin restarted the session's counters, then
    # the login's role (`SET ROLE NONE`, round 52) and one session SET; nothing else
    assert sets == [2, 2, 2, 2, 2]
    assert inside[0] == inside[1] == inside[2]
    assert _rows(db) == 2


@pytest.mark.parametrize(
    "how", ["SET SESSION TRANSACTION READ WRITE", "SET SESSION tx_read_only = 0"]
)
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_parked_session_made_writable_is_read_only_at_its_next_use(
    db: str, driver: str, how: str
) -> None:
    # guard off, so only the session refuses the write; mysqlclient has no reset command, so
    # with the guard off its connection is dropped after each statement: guarded there
    unguarded = driver == "pymysql"
    src = _source(db, driver, use_guard=not unguarded)
    try:
        src.sql("SELECT a FROM t")
        (conn,) = src._parking._parked
        record = conn.connection
        raw = record.dbapi_connection
        # the SET sent when it was parked is answered; then the session is changed behind
        # hybridwb's back (as server code would), with no SET of hybridwb's after it
        if record.info.pop(PENDING_KEY, None) is not None:
            drivers.read_reply(raw, reset=True)
        with internal(raw):
            cur = raw.cursor()
            cur.execute(how)
            cur.execute("SET SESSION max_statement_time = 0")
            cur.execute("SELECT @@session.tx_read_only, @@session.max_statement_time")
            assert tuple(int(v) for v in cur.fetchone()) == (0, 0)  # it really is writable
            cur.close()
        if unguarded:
            with pytest.raises(HybridwbError, match="(?i)read.only|READ ONLY"):
                src.sql("INSERT INTO t VALUES (99)")
        seen = _session(src)
    finally:
        src.close()
    assert _rows(db) == 2
    assert seen[1:] == (1, 30.0)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_connection_killed_while_parked_is_replaced_and_read_only(db: str, driver: str) -> None:
    src = _source(db, driver)
    root = _root()
    try:
        killed = _session(src)[0]
        with root.cursor() as cur:
            cur.execute(f"KILL {killed}")
        assert sorted(r["a"] for r in src.records("SELECT a FROM t")) == [1, 2]
        seen = _session(src)
    finally:
        root.close()
        src.close()
    assert seen[0] != killed
    assert seen[1:] == (1, 30.0)


def test_close_drops_the_parked_connection(db: str) -> None:
    src = _source(db)
    parked = _session(src)[0]
    src.close()
    assert threads_left(parked) == 0


def test_a_pool_of_one_parks_nothing(db: str) -> None:
    url = URL.create(
        "mysql+pymysql", username="root", host=MYSQL_HOST, port=MYSQL_PORT, database=db
    )
    src = Source(url, pool_size=1, max_overflow=0)
    try:
        src.records("SELECT a FROM t")
        raw = src.engine.raw_connection()  # the engine's users find the one connection
        raw.close()
    finally:
        src.close()
    assert src._parking._parked == []
