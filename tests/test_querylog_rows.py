"""The query log records each statement as its row (issue 17, branch srch6).

The read path hands the log a plain tuple per statement (`QueryLog.record_row`) and the
SQLite store writes such rows as they are (`Store.write_query_log_rows`), the text of each
time made up to the second once per second of a batch (`sqlite_times`). What is kept must
not change: every entry as it was recorded (`entries`, a sink that only takes entries), and
in the store the rows SQLAlchemy Core writes for the same entries.

Oracles: `QueryLogEntry` objects made by hand; the SQLite file read with sqlite3, against
the same entries written again by Core and the time's text written out by hand; the
MariaDB statements' own outcome (rows, error) for the read path.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import HybridwbError
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store, sqlite_time
from hybridwb.source import Source
from hybridwb.source.querylog import QueryLog, QueryLogEntry
from tests import _stores
from tests._mysql import scratch_db
from tests.conftest import MYSQL_HOST, MYSQL_PORT

KST = timezone(timedelta(hours=9))

#: one batch: times in one second, the next second, the same clock time on other days, a
#: whole second, the last microsecond, another offset, naive, year 999, a leap day
TIMES = [
    datetime(2026, 12, 5, 6, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 12, 5, 6, 0, 0, 123457, tzinfo=UTC),
    datetime(2026, 12, 5, 6, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 12, 5, 6, 0, 1, 999999, tzinfo=UTC),
    datetime(2026, 12, 6, 6, 0, 0, 5, tzinfo=UTC),
    datetime(2025, 12, 5, 6, 0, 0, 5, tzinfo=UTC),
    datetime(2026, 12, 5, 6, 0, 0, 5, tzinfo=KST),
    datetime(2026, 12, 5, 15, 0, 0, 5, tzinfo=KST),
    datetime(2026, 12, 5, 6, 0, 0, 5),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 12, 5, 6, 1, 0, 7, tzinfo=UTC),
]


def _entries() -> list[QueryLogEntry]:
    return [
        QueryLogEntry(
            f"db{i % 2}",
            f"SELECT ? AS q{i:02d}",
            i + 0.25,
            i,
            "error" if i % 3 == 0 else "success",
            "The query failed." if i % 3 == 0 else None,
            "mysql" if i % 2 else "sqlite-sample",
            at,
        )
        for i, at in enumerate(TIMES)
    ]


def _store(tmp_path: Path) -> Store:
    store = Store(
        SqlBackend(URL.create("sqlite", database=str(tmp_path / "platform.db"))), actor="tester"
    )
    store.init()
    return store


def _stored(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT id, timestamp, database, query, execution_time, result_count, status, "
            "error_message, kind, typeof(execution_time), typeof(timestamp) FROM query_logs "
            "ORDER BY query"
        ).fetchall()


def _hand_text(at: datetime) -> str:
    """The UTC wall clock of `at` (a naive time is UTC), written out field by field."""
    offset = at.utcoffset()
    if offset is not None:
        at = at.replace(tzinfo=None) - offset
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d} "
        f"{at.hour:02d}:{at.minute:02d}:{at.second:02d}.{at.microsecond:06d}"
    )


def test_a_batch_over_many_seconds_is_stored_as_core_writes_it(tmp_path: Path) -> None:
    """One batch recorded through the log (rows, as the read path records them) and
    written by its sink, the SQLite store: each row is Core's row for the same entry, each
    time the wall time written out by hand. Mutations: the second's text made once per
    minute, or once per clock time (the day left out), or for the first time of the batch
    only -> fail."""
    store = _store(tmp_path)
    log = QueryLog(batch_size=len(TIMES))
    log.sink = store
    entries = _entries()
    for e in entries:
        log.record_row(e.as_row())
    assert log.pending == 0  # the full batch went to the store
    fast = _stored(tmp_path / "platform.db")
    _stores.rewrite_logs_with_core(store, fast, entries)
    again = _stored(tmp_path / "platform.db")
    store.close()
    assert again == fast
    assert [r[1] for r in fast] == [_hand_text(e.timestamp) for e in entries]
    assert [r[1] for r in fast] == [sqlite_time(e.timestamp) for e in entries]
    assert [r[2:9] for r in fast] == [
        (e.database, e.query, e.executionTime, e.resultCount, e.status, e.errorMessage, e.kind)
        for e in entries
    ]
    assert {uuid.UUID(str(r[0])).version for r in fast} == {7}


def test_a_sink_that_takes_entries_gets_every_entry_as_recorded() -> None:
    """A sink with only `write_query_logs` (the protocol's method) is handed
    `QueryLogEntry`s equal to those recorded, by `record` or as rows, in order; `entries`
    holds the same, bounded by `maxlen`. Mutations: the rows handed over as they are, or
    the fields in another order -> fail."""

    class Keeps:
        def __init__(self) -> None:
            self.got: list[QueryLogEntry] = []

        def write_query_logs(self, entries: list[QueryLogEntry]) -> None:
            self.got += entries

    entries = _entries()
    log = QueryLog(maxlen=5, batch_size=4)
    sink = Keeps()
    log.sink = sink
    for i, e in enumerate(entries):
        if i % 2:
            log.record(e)
        else:
            log.record_row(e.as_row())
    assert log.flush() == len(entries) % 4
    assert sink.got == entries
    assert all(type(e) is QueryLogEntry for e in sink.got)
    assert list(log.entries) == entries[-5:] and len(log) == 5
    assert log.entries[-1].as_dict() == entries[-1].as_dict()


@pytest.fixture
def mysql_db() -> Iterator[str]:
    with scratch_db("qlr", rows=3) as name:
        yield name


@pytest.mark.mysql
def test_every_statement_a_source_runs_reaches_the_store_as_recorded(
    mysql_db: str, tmp_path: Path
) -> None:
    """Statements read on MariaDB (rows, none, a failed one) are logged by the read path as
    rows, and the SQLite store keeps each: its normalized text, status, error, row count,
    database, kind, time as SQLAlchemy stores it and a version-7 id of that millisecond.
    Mutations: the store's row method writing nothing, or the error status dropped -> fail."""
    url = URL.create(
        "mysql+pymysql", username="root", host=MYSQL_HOST, port=MYSQL_PORT, database=mysql_db
    )
    store = _store(tmp_path)
    src = Source(url, pool_size=2, max_overflow=0)
    src.querylog = QueryLog(batch_size=2)
    src.querylog.sink = store
    try:
        assert len(src.records("SELECT a FROM t WHERE a >= :x ORDER BY a", {"x": 2})) == 2
        assert src.records("SELECT a FROM t WHERE a = 99") == []
        with pytest.raises(HybridwbError):
            src.records("SELECT no_such_column FROM t")
        assert src.querylog.flush() == 1
    finally:
        src.close()
    entries = list(src.querylog.entries)
    stored = _stored(tmp_path / "platform.db")
    store.close()
    assert [e.status for e in entries] == ["success", "success", "error"]
    assert [e.resultCount for e in entries] == [2, 0, 0]
    assert entries[0].query == "SELECT a FROM t WHERE a >= : x ORDER BY a"
    assert entries[1].query == "SELECT a FROM t WHERE a = ?"
    by_query = {r[3]: r for r in stored}
    assert len(stored) == 3 and set(by_query) == {e.query for e in entries}
    for e in entries:
        row = by_query[e.query]
        assert row[1] == _hand_text(e.timestamp)
        assert row[2:9] == (
            e.database,
            e.query,
            e.executionTime,
            e.resultCount,
            e.status,
            e.errorMessage,
            e.kind,
        )
        assert e.timestamp.tzinfo is UTC and e.kind == "mysql" and e.database == mysql_db
        made = uuid.UUID(str(row[0]))
        assert made.version == 7
        assert made.int >> 80 == int(e.timestamp.timestamp() * 1000)
