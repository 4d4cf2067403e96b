"""The driver-level trims of issue 17 (branch srch4), on the real server:

* PyMySQL results look their column descriptions up by the field packets' bytes
  (described.py): a column whose type, name or character set changed is other bytes, so it
  is described (and its values decoded) afresh; what is reused is what parsing gives.
* The parked connection's session SET is written as a packet made once and its reply read
  without a result object (drivers.py): a SET the server refused is still seen, and the
  session is then set again before the read.
* The query log's ids of a batch come from one read of the system's random source.

Oracles: a plain PyMySQL connection's own parse of the same statement; the server's
session variables and root's row count; the ids' bits. A private `hybridwb_ld_<random>`
database; the account is root (writable), so only the session stands in the way.
"""

from __future__ import annotations

import sqlite3
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import HybridwbError
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store, log_ids
from hybridwb.source import Source, drivers
from hybridwb.source.engine import PENDING_KEY
from hybridwb.source.querylog import QueryLogEntry
from hybridwb.source.rawguard import internal
from tests import _stores
from tests._mysql import plain_root, scratch_db
from tests._mysql import root as _root
from tests._mysql import row_count as _rows
from tests.conftest import MYSQL_HOST, MYSQL_PORT


@pytest.fixture
def db() -> Iterator[str]:
    with scratch_db("ld", rows=2) as name:
        yield name


def _source(db: str, *, use_guard: bool = True) -> Source:
    url = URL.create(
        "mysql+pymysql", username="root", host=MYSQL_HOST, port=MYSQL_PORT, database=db
    )
    return Source(url, use_guard=use_guard, pool_size=2, max_overflow=0)


def _root_do(*sql: str) -> None:
    conn = _root()
    try:
        with conn.cursor() as cur:
            for one in sql:
                cur.execute(one)
    finally:
        conn.close()


def _plain(
    db: str, sql: str, charset: str = "utf8mb4"
) -> tuple[tuple[object, ...], list[tuple[object, ...]]]:
    """The oracle: the description and rows a plain PyMySQL connection parses for `sql`."""
    conn = plain_root(db, charset=charset)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.description, list(cur.fetchall())
    finally:
        conn.close()


@pytest.mark.mysql
def test_a_column_changed_between_two_reads_is_described_and_decoded_afresh(db: str) -> None:
    """Mutation: look the description up by the number of columns (or the statement)
    instead of the packets' bytes: the second read decodes the DECIMAL text as an int
    column's value, or keeps the old name."""
    sql = "SELECT a FROM t ORDER BY a"
    src = _source(db)
    try:
        first = src.sql(sql)
        again = src.sql(sql)  # the same bytes: the description looked up
        _root_do(f"ALTER TABLE `{db}`.t MODIFY a DECIMAL(6, 2)")
        changed = src.records(sql)
        _root_do(f"ALTER TABLE `{db}`.t CHANGE a b VARCHAR(10) CHARACTER SET latin1")
        renamed = src.records("SELECT * FROM t ORDER BY b")
        raw = src.engine.raw_connection()  # the same guarded connection class, buffered
        try:
            cur = raw.cursor()
            cur.execute("SELECT b FROM t ORDER BY b")
            described = cur.description
            cur.close()
        finally:
            raw.close()
    finally:
        src.close()
    assert list(first["a"]) == list(again["a"]) == [1, 2]
    assert changed == [{"a": Decimal("1.00")}, {"a": Decimal("2.00")}]
    assert renamed == [{"b": "1.00"}, {"b": "2.00"}]
    assert described == _plain(db, "SELECT b FROM t ORDER BY b")[0]


@pytest.mark.mysql
def test_a_reused_description_is_what_pymysql_parses(db: str) -> None:
    """Every column kind of a result, read three times on one connection (parsed once,
    then looked up twice), gives PyMySQL's own description and values each time."""
    sql = (
        "SELECT a, CAST(a AS CHAR) AS s, CAST(a AS BINARY) AS bin, a * 1.5 AS d, "
        "CAST('2026-12-05 01:02:03' AS DATETIME) AS ts, NULL AS n, 'é' AS e FROM t ORDER BY a"
    )
    src = _source(db)
    seen = []
    try:
        for _ in range(3):
            raw = src.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute(sql)
                seen.append((cur.description, list(cur.fetchall())))
                cur.close()
            finally:
                raw.close()
    finally:
        src.close()
    assert seen == [_plain(db, sql)] * 3


@pytest.mark.mysql
def test_a_refused_session_set_of_a_parked_connection_is_seen_and_set_again(db: str) -> None:
    """The SET sent when the connection was parked failed at the server (here: replaced by
    a SET the server refuses, after the session was made writable behind hybridwb's back):
    its error reply must be read as an error, so the next read sets the session itself.
    Guard off: only the session refuses the write. Mutation: `read_reply` takes any reply
    as an OK (the error packet not raised) -> the write gets through."""
    src = _source(db, use_guard=False)
    try:
        src.sql("SELECT a FROM t")
        (conn,) = src._parking._parked
        record = conn.connection
        raw = record.dbapi_connection
        policy = record.info.pop(PENDING_KEY)
        drivers.read_reply(raw)  # the SET sent at parking: answered
        with internal(raw):
            cur = raw.cursor()
            cur.execute("SET SESSION tx_read_only = 0, SESSION max_statement_time = 0")
            cur.close()
            assert drivers.send_only(raw, "SET SESSION no_such_variable_hybridwb = 1")
        record.info[PENDING_KEY] = policy  # as if the parking SET had been that one
        with pytest.raises(HybridwbError, match="(?i)read.only|READ ONLY"):
            src.sql("INSERT INTO t VALUES (99)")
        row = src.records("SELECT @@session.tx_read_only AS ro, @@session.max_statement_time AS t")
    finally:
        src.close()
    assert _rows(db) == 2
    assert (int(row[0]["ro"]), float(row[0]["t"])) == (1, 30.0)


def test_the_session_packet_is_the_one_pymysql_writes() -> None:
    """The SET's packet made once: PyMySQL's COM_QUERY framing (length + 1, sequence 0,
    command 3, the text)."""
    sql = "SET SESSION tx_read_only = 1"
    packet = drivers._query_packet(sql)
    assert packet == struct.pack("<iB", len(sql) + 1, 3) + sql.encode()
    assert drivers._query_packet(sql) is packet  # made once


def test_a_batchs_log_ids_are_distinct_uuid7_in_time_order() -> None:
    """Mutation: every id of a batch from the same 10 random bytes -> equal ids in one
    millisecond (the insert would keep one of them and drop the rest of the log)."""
    at = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    times = [at] * 500 + [at + timedelta(milliseconds=i) for i in range(1, 50)]
    ids = log_ids(times)
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [i.int >> 80 for i in ids] == [int(t.timestamp() * 1000) for t in times]
    assert ids[500:] == sorted(ids[500:])


@pytest.mark.mysql
def test_a_row_longer_than_one_packet_and_an_error_read_whole_by_the_inlined_reader(
    db: str,
) -> None:
    """A row of 17 MB comes in two packets (PyMySQL's loop joins them), and a server error
    packet raises the server's error; the connection stays in step for the next read.
    Mutation: read only the first packet of a long row (the `MAX_PACKET_LEN` branch off)."""
    src = _source(db)
    try:
        row = src.records("SELECT REPEAT('a', 8500000) AS x, REPEAT('b', 8500000) AS y, 7 AS z")
        with pytest.raises(HybridwbError):
            src.records("SELECT no_such_column FROM t")
        after = src.records("SELECT a FROM t ORDER BY a")
    finally:
        src.close()
    assert (len(row[0]["x"]), len(row[0]["y"]), row[0]["z"]) == (8_500_000, 8_500_000, 7)
    assert row[0]["x"] == "a" * 8_500_000 and row[0]["y"] == "b" * 8_500_000
    assert after == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 5, 6, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 5, 6, 0, 0, 999999, tzinfo=UTC),
        datetime(2026, 12, 5, 15, 0, 0, 5, tzinfo=timezone(timedelta(hours=9))),
        datetime(2026, 1, 2, 3, 4, 5, 60),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 12, 5, 6, 0, 0, 123456, tzinfo=UTC),
    ],
    ids=["whole-second", "last-microsecond", "kst", "naive", "year-999", "microseconds"],
)
def test_the_sqlite_query_log_stores_what_core_binds(tmp_path: Path, at: datetime) -> None:
    """The SQLite store's query log rows go as stored values (branch srch4): each row is
    the row SQLAlchemy Core writes for the same entry. Oracle: the SQLite file, with Core
    writing the same entries again. Mutation: the time with its offset kept (no `[:26]`) ->
    `kst`, `whole-second`, `last-microsecond`, `year-999` fail."""
    db = tmp_path / "platform.db"
    store = Store(SqlBackend(URL.create("sqlite", database=str(db))), actor="tester")
    store.init()
    entries = [
        QueryLogEntry("shop", "SELECT ? b", 1.5, 3, "success", timestamp=at),
        QueryLogEntry("shop", "SELECT ? c", 2.25, 0, "error", "The query failed.", "mysql", at),
    ]
    store.write_query_logs(entries)
    fast = _log_rows(db)
    _stores.rewrite_logs_with_core(store, fast, entries)
    again = _log_rows(db)
    store.close()
    assert again == fast
    # the store's own text: the UTC wall clock (a naive time is UTC), no offset
    # (`times.StoreTime`; before, a Seoul time was kept as Seoul's wall clock)
    w = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
    assert fast[0][1] == (
        f"{w.year:04d}-{w.month:02d}-{w.day:02d} "
        f"{w.hour:02d}:{w.minute:02d}:{w.second:02d}.{w.microsecond:06d}"
    )
    assert [uuid.UUID(r[0]).version for r in fast] == [7, 7]


def _log_rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT id, timestamp, database, query, execution_time, result_count, status, "
            "error_message, kind, typeof(execution_time), typeof(timestamp) FROM query_logs "
            "ORDER BY query"
        ).fetchall()


@pytest.mark.mysql
def test_a_streamed_result_left_by_a_closed_connection_goes_without_noise(db: str) -> None:
    """A streamed read whose connection is closed mid-result (killed, a damaged reply)
    leaves PyMySQL's result active; collecting it later must not raise from a closed
    socket (PyMySQL's own `__del__` does: "Exception ignored" in a notebook, a failed
    test wherever the collector runs next). Oracle: `sys.unraisablehook`."""
    import gc
    import sys

    import pymysql.cursors

    src = _source(db)
    raw = src.engine.raw_connection()
    caught: list[object] = []
    hook = sys.unraisablehook
    sys.unraisablehook = caught.append
    try:
        cur = raw.dbapi_connection.cursor(pymysql.cursors.SSCursor)
        cur.execute("SELECT seq FROM seq_1_to_100000")
        assert cur.fetchone() == (1,)
        raw.dbapi_connection._force_close()  # the connection gone, the result still active
        result = raw.dbapi_connection._result
        assert result is not None and result.unbuffered_active
        del cur, result
        raw.dbapi_connection._result = None
        gc.collect()
    finally:
        sys.unraisablehook = hook
        raw.invalidate()
        src.close()
    assert caught == []
