"""Attack round 20 on the query log's row path (branch `srch6`: `QueryLog.record_row`,
`Store.write_query_log_rows`, `sqlite_times`, the workbench's sink).

The guarantee: every statement is one entry with the right content, handed to the platform
store in order, with bounded memory. Oracles: the statements these tests record
themselves, and the store's `query_logs` table read with direct SQL (sqlite3 on the SQLite
file, where the rowid is the order rows were written; psycopg on PostgreSQL), never what
the QueryLog reports.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import URL

from hybridwb.platform import schema
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store
from hybridwb.source import querylog
from hybridwb.source.querylog import LogRow, QueryLog

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")


def _row(n: int, at: datetime | None = None) -> LogRow:
    error = n % 5 == 0
    return (
        f"db{n % 3}",
        f"SELECT ? AS q{n:05d}",
        n + 0.125,
        n % 7,
        "error" if error else "success",
        f"The query failed ({n})." if error else None,
        "mysql" if n % 2 else "sqlite-sample",
        at or datetime(2026, 12, 5, 6, 0, n // 1000 % 60, n % 1000 * 1000, tzinfo=UTC),
    )


def _sqlite_store(tmp_path: Path) -> Store:
    store = Store(
        SqlBackend(URL.create("sqlite", database=str(tmp_path / "platform.db"))), actor="tester"
    )
    store.init()
    return store


def _written_in_order(db: Path) -> list[str]:
    """The stored queries in the order they were written (SQLite's rowid)."""
    with sqlite3.connect(db) as conn:
        return [q for (q,) in conn.execute("SELECT query FROM query_logs ORDER BY rowid")]


# -- order across threads ------------------------------------------------------------------


class _SlowFirstWrite:
    """The store as a sink whose first hand-over is slow (a store under load) or fails
    after a while (a store that went away mid-write); `entered` is set when it starts."""

    def __init__(self, store: Store, fail: bool) -> None:
        self.store = store
        self.fail = fail
        self.calls = 0
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def write_query_log_rows(self, rows: list[LogRow]) -> None:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.entered.set()
            time.sleep(0.4)
            if self.fail:
                raise ConnectionResetError("store went away")
        self.store.write_query_log_rows(rows)


@pytest.mark.parametrize(
    ("fail", "then"),
    [
        (False, "record"),
        (True, "record"),
        (False, "flush"),
        (True, "flush"),
    ],
    ids=["slow-then-record", "failing-then-record", "slow-then-flush", "failing-then-flush"],
)
def test_batches_recorded_in_two_threads_reach_the_store_in_order_once(
    tmp_path: Path, fail: bool, then: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker thread's hand-over of a batch is still in the store (slow, or failing)
    when the main thread's next batch is due (`then="record"`, a search while a workflow
    logs) or the main thread flushes (`then="flush"`, `Workbench.close`): every entry
    reaches the store once, in the order recorded (rowid order on the SQLite file). Bugs
    this catches: a batch taken under the lock and written after it was let go, so a later
    batch (or a flush) overtakes one in flight, and a failed earlier batch is put back
    behind it."""
    monkeypatch.setattr(querylog, "RETRY_AFTER", 0.0)
    store = _sqlite_store(tmp_path)
    sink = _SlowFirstWrite(store, fail)
    log = QueryLog(batch_size=10)
    log.sink = sink  # type: ignore[assignment]  # a sink of rows only
    rows = [_row(n) for n in range(40)]

    def first_batch() -> None:
        for r in rows[:10]:
            log.record_row(r)

    worker = threading.Thread(target=first_batch)
    worker.start()
    assert sink.entered.wait(5)
    if then == "record":
        for r in rows[10:30]:
            log.record_row(r)
    else:
        for r in rows[10:15]:
            log.record_row(r)
        log.flush()
    worker.join(5)
    if then == "record" and not fail:  # the worker handed over what came meanwhile
        assert _written_in_order(tmp_path / "platform.db") == [r[1] for r in rows[:30]]
    for r in rows[30 if then == "record" else 15 :]:
        log.record_row(r)
    log.flush()
    written = _written_in_order(tmp_path / "platform.db")
    store.close()
    assert written == [r[1] for r in rows]


# -- a sink that fails, then recovers; the bound while it is down ---------------------------


class _Flaky:
    """The store as a sink that is down until `up` is set."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.up = False
        self.calls = 0

    def write_query_log_rows(self, rows: list[LogRow]) -> None:
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError("store down")
        self.store.write_query_log_rows(rows)


def test_a_store_down_then_back_gets_the_last_maxlen_entries_in_order_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the store down, 10,000 + 250 statements are recorded (the default bound):
    while it is down the sink is tried once per `RETRY_AFTER`, never per statement; when it
    is back the store holds exactly the last 10,000 entries, in order, each once, each with
    its own content. Bugs this catches: the bound trimming the newest instead of the
    oldest, the hold ignored (the store tried on every statement), the backlog written
    twice or in part."""
    clock = [1000.0]
    monkeypatch.setattr(querylog.time, "monotonic", lambda: clock[0])
    store = _sqlite_store(tmp_path)
    sink = _Flaky(store)
    log = QueryLog()
    log.sink = sink  # type: ignore[assignment]  # a sink of rows only
    rows = [_row(n) for n in range(10_250)]
    for r in rows[:5_000]:
        log.record_row(r)
    assert sink.calls == 1  # held for RETRY_AFTER after the first failure
    clock[0] += querylog.RETRY_AFTER + 1
    for r in rows[5_000:10_100]:
        log.record_row(r)
    assert sink.calls == 2
    sink.up = True
    for r in rows[10_100:10_249]:
        log.record_row(r)  # still held: nothing written yet
    assert sink.calls == 2
    clock[0] += querylog.RETRY_AFTER + 1
    log.record_row(rows[10_249])  # the hold is over: the whole backlog goes
    assert sink.calls == 3 and log.pending == 0
    db = tmp_path / "platform.db"
    assert _written_in_order(db) == [r[1] for r in rows[-10_000:]]
    with sqlite3.connect(db) as conn:
        got = conn.execute(
            "SELECT database, query, execution_time, result_count, status, error_message, "
            "kind, timestamp FROM query_logs ORDER BY rowid"
        ).fetchall()
    store.close()
    want = [(*r[:7], r[7].isoformat(" ", "microseconds")[:26]) for r in rows[-10_000:]]
    assert got == want


# -- the rows each store writes, against Core's --------------------------------------------

#: times a careless caller may log: aware and naive with the same clock fields, a DST fold
#: (both sides) and a time that a DST gap skips, microsecond 0 and 999999, offsets with
#: seconds, one second's clock fields in several zones in one batch, one UTC second's
#: instants with other clock fields
TIMES = [
    datetime(2026, 12, 5, 6, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 12, 5, 6, 0, 0, 999999),
    datetime(2026, 12, 5, 6, 0, 0, 999999, tzinfo=SEOUL),
    datetime(2026, 12, 5, 6, 0, 0, 1, tzinfo=timezone(timedelta(hours=-3, seconds=-17))),
    datetime(2026, 11, 1, 1, 30, 0, 500000, tzinfo=NEW_YORK),
    datetime(2026, 11, 1, 1, 30, 0, 500000, tzinfo=NEW_YORK, fold=1),
    datetime(2026, 11, 1, 1, 30, 0, 500000, fold=1),
    datetime(2026, 3, 8, 2, 30, 0, 0, tzinfo=NEW_YORK),
    datetime(2026, 12, 5, 6, 0, 1, 0, tzinfo=UTC),
    datetime(2026, 12, 5, 6, 0, 0, 999999, tzinfo=UTC),
    datetime(2026, 12, 5, 15, 0, 0, 3, tzinfo=SEOUL),  # the first's UTC second
]


def _batch() -> list[LogRow]:
    return [_row(n, at) for n, at in enumerate(TIMES)]


_COLUMNS = (
    "id, timestamp, database, query, execution_time, result_count, status, error_message, kind"
)


def _core_rewrite(store: Store, ids: list[uuid.UUID], rows: list[LogRow]) -> None:
    """The same rows written again by SQLAlchemy Core's INSERT, under the same ids."""
    core = schema.metadata.tables["query_logs"]
    assert isinstance(store.backend, SqlBackend)
    with store.backend.engine.begin() as conn:
        conn.execute(core.delete())
        for made, r in zip(ids, rows, strict=True):
            conn.execute(
                insert(core).values(
                    id=made,
                    timestamp=r[7],
                    database=r[0],
                    query=r[1],
                    execution_time=r[2],
                    result_count=r[3],
                    status=r[4],
                    error_message=r[5],
                    kind=r[6],
                )
            )


def test_the_sqlite_store_writes_what_core_writes_for_folds_gaps_and_colliding_seconds(
    tmp_path: Path,
) -> None:
    """One batch whose times share clock fields across zones, naive and aware, both sides
    of a DST fold: each stored row (read with sqlite3, `typeof` included) is the row Core
    writes, and each id's first 48 bits are its own instant's millisecond (the fold's two
    sides an hour apart). Bugs this catches: the per-second text cache keyed by anything
    but the clock fields as they are (a UTC instant, the offset), the offset kept, the id's
    millisecond taken from the cached second."""
    store = _sqlite_store(tmp_path)
    rows = _batch()
    store.write_query_log_rows(rows)
    db = tmp_path / "platform.db"
    sql = f"SELECT {_COLUMNS}, typeof(timestamp), typeof(execution_time) FROM query_logs"
    with sqlite3.connect(db) as conn:
        fast = conn.execute(sql + " ORDER BY query").fetchall()
    ids = [uuid.UUID(str(r[0])) for r in fast]
    _core_rewrite(store, ids, rows)
    with sqlite3.connect(db) as conn:
        core = conn.execute(sql + " ORDER BY query").fetchall()
    store.close()
    assert fast == core
    assert [made.int >> 80 for made in ids] == [int(r[7].timestamp() * 1000) for r in rows]
    assert ids[4].int >> 80 == (ids[5].int >> 80) - 3_600_000


@pytest.fixture
def own_pg_db() -> Iterator[URL]:
    """A PostgreSQL database of this test's own (the session's `pg_db` is left at another
    schema revision by other files of the same worker)."""
    from tests import _stores

    yield from _stores.fresh_pg_database("hybridwb_r20", migrated=True)


@pytest.fixture
def pg_store(own_pg_db: URL) -> Iterator[Store]:
    # a session time zone other than UTC: a naive time is read in it, by Core as by COPY
    seoul = own_pg_db.update_query_dict({"options": "-c timezone=Asia/Seoul"})
    store = Store(SqlBackend(seoul), actor="tester")
    try:  # closed however the set-up ends: no connection left to the collector
        store.init()
        assert isinstance(store.backend, SqlBackend)
        with store.backend.engine.begin() as conn:
            conn.execute(schema.metadata.tables["query_logs"].delete())
        yield store
    finally:
        store.close()


@pytest.mark.postgres
def test_the_postgres_store_writes_what_core_writes(pg_store: Store, own_pg_db: URL) -> None:
    """The same batch on the PostgreSQL store (COPY): each row read back with psycopg
    (the time as UTC text) is the row Core's INSERT writes for it, the session's time zone
    Seoul. Bugs this catches: the row's fields mapped to the wrong columns on the Postgres
    branch (the SQLite tests do not reach it), a naive time read in another zone than
    Core's (as UTC)."""
    import psycopg

    rows = _batch()
    pg_store.write_query_log_rows(rows)
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={own_pg_db.database}"
    sql = (
        "SELECT id, to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), "
        "database, query, execution_time, result_count, status, error_message, kind "
        "FROM query_logs ORDER BY query"
    )
    with psycopg.connect(dsn) as conn:
        fast = conn.execute(sql).fetchall()
    assert len(fast) == len(rows)
    _core_rewrite(pg_store, [r[0] for r in fast], rows)
    with psycopg.connect(dsn) as conn:
        core = conn.execute(sql).fetchall()
    assert fast == core
    aware = [r for r in rows if r[7].tzinfo is not None]
    by_query = {r[3]: r for r in fast}
    for r in aware:
        assert by_query[r[1]][1] == r[7].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        assert by_query[r[1]][2:] == r[:7]


# -- a database name longer than the column ------------------------------------------------


@pytest.fixture
def mysql_db() -> Iterator[str]:
    from tests._mysql import scratch_db

    with scratch_db("ql20", rows=3) as name:
        yield name


def _at_least(n: int) -> int:
    """How many of the scratch table's rows (1, 2, 3) are at least `n`."""
    return len([a for a in (1, 2, 3) if a >= n])


@pytest.mark.mysql
@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_source_url_with_a_long_database_name_does_not_stop_the_log(
    kind: str, mysql_db: str, pg_store: Store, tmp_path: Path
) -> None:
    """A careless source URL whose database part is 300 characters (pasted garbage): its
    failed statements share the log with the statements of a good source read after it.
    Both stores (read with direct SQL) then hold every statement once, the long name cut
    to the column's 200 characters, the same on both. Before: the PostgreSQL store
    refused the batch (`character varying(200)`) on every try, so every later statement
    stayed pending behind it until the bound dropped them; the SQLite store kept the whole
    name."""
    from hybridwb.errors import HybridwbError
    from hybridwb.source import Source
    from tests.conftest import MYSQL_HOST, MYSQL_PORT

    store = _sqlite_store(tmp_path) if kind == "sqlite" else pg_store
    log = QueryLog(batch_size=4)
    log.sink = store
    long_name = "garbage" + "x" * 293
    base = URL.create("mysql+pymysql", username="root", host=MYSQL_HOST, port=MYSQL_PORT)
    bad = Source(base.set(database=long_name), pool_size=1, max_overflow=0)
    good = Source(base.set(database=mysql_db), pool_size=1, max_overflow=0)
    bad.querylog = good.querylog = log
    try:
        for n in range(3):
            with pytest.raises(HybridwbError):
                bad.records(f"SELECT a FROM t WHERE a = {n}")
        for n in range(5):
            assert len(good.records("SELECT a FROM t WHERE a >= :n", {"n": n})) == _at_least(n)
        log.flush()
    finally:
        bad.close()
        good.close()
    if kind == "sqlite":
        with sqlite3.connect(tmp_path / "platform.db") as conn:
            got = conn.execute(
                "SELECT database, query, status, result_count FROM query_logs ORDER BY timestamp"
            ).fetchall()
        store.close()
    else:
        import psycopg

        url = store.backend.url  # type: ignore[attr-defined]
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={url.database}") as c:
            got = c.execute(
                "SELECT database, query, status, result_count FROM query_logs ORDER BY timestamp"
            ).fetchall()
    assert got == [(long_name[:200], "SELECT ? FROM ? WHERE ? = ?", "error", 0)] * 3 + [
        (mysql_db, "SELECT a FROM t WHERE a >= : n", "success", _at_least(n)) for n in range(5)
    ]
    assert log.pending == 0 and log.last_error is None


@pytest.mark.mysql
def test_statements_read_in_many_threads_reach_the_store_once_each_in_each_threads_order(
    mysql_db: str, tmp_path: Path
) -> None:
    """Four threads read through one source at once (a search while a workflow's workers
    read), the log handing batches of 7 to the SQLite store as they fill: the store holds
    each thread's 40 statements exactly once, with their row counts, and each thread's in
    the order it ran them (rowid order, their times rising). Bugs this catches: a batch
    taken or put back outside the lock (entries lost or doubled), batches overtaking one
    another between threads."""
    from hybridwb.source import Source
    from tests.conftest import MYSQL_HOST, MYSQL_PORT

    store = _sqlite_store(tmp_path)
    url = URL.create(
        "mysql+pymysql", username="root", host=MYSQL_HOST, port=MYSQL_PORT, database=mysql_db
    )
    src = Source(url, pool_size=4, max_overflow=0)
    src.querylog = QueryLog(batch_size=7)
    src.querylog.sink = store
    failures: list[BaseException] = []

    def reads(k: int) -> None:
        try:
            for n in range(40):
                rows = src.records(f"SELECT a AS thread{k} FROM t WHERE a >= :n", {"n": n % 5})
                assert len(rows) == _at_least(n % 5)
        except BaseException as exc:  # seen by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=reads, args=(k,)) for k in range(4)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads switch often: races show up
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(switch)
    src.querylog.flush()
    src.close()
    assert not failures
    with sqlite3.connect(tmp_path / "platform.db") as conn:
        got = conn.execute(
            "SELECT query, result_count, timestamp, status FROM query_logs ORDER BY rowid"
        ).fetchall()
    store.close()
    assert len(got) == 160
    for k in range(4):
        mine = [r for r in got if r[0] == f"SELECT a AS thread{k} FROM t WHERE a >= : n"]
        assert [r[1] for r in mine] == [_at_least(n % 5) for n in range(40)]
        assert [r[2] for r in mine] == sorted(r[2] for r in mine)
        assert {r[3] for r in mine} == {"success"}


# -- a workbench dropped without close ----------------------------------------------------


def test_statements_of_a_workbench_dropped_without_close_reach_the_store(
    sample_db: Path, tmp_path: Path
) -> None:
    """A careless script: `hybridwb.connect().sql(...)` (the workbench a temporary) and
    `src = hybridwb.connect().source` (reads after the workbench is gone), then the process
    ends. Every statement ran on the source; the store (read with sqlite3) holds each,
    once. Before: none of the four was stored and nothing said so — the atexit hook holds
    the workbench weakly and found it gone, and the sink of a dead workbench returned as if
    it had written the batch."""
    import os
    import subprocess

    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    code = (
        "import gc, hybridwb\n"
        "hybridwb.connect().sql('SELECT 1')\n"
        "src = hybridwb.connect().source\n"
        "gc.collect()\n"
        "for _ in range(3):\n"
        "    src.records('SELECT 2')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDWB_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=120)
    db = tmp_path / ".hybridwb" / "platform.db"
    with sqlite3.connect(db) as conn:
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
        stored = (
            conn.execute("SELECT query FROM query_logs ORDER BY timestamp").fetchall()
            if "query_logs" in tables
            else []
        )
    assert [q for (q,) in stored] == ["SELECT ?"] * 4


def test_the_sink_of_a_collected_workbench_keeps_the_batch(sample_db: Path, tmp_path: Path) -> None:
    """A batch handed to the sink of a workbench collected meanwhile (its hand-over in
    flight while the workbench goes) is kept pending, with a reason, not taken as written.
    Bug this catches: the sink returning as if it wrote the batch (before: it did)."""
    import gc

    import hybridwb

    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    wb = hybridwb.connect(cwd=tmp_path)
    sink = wb.querylog.sink
    del wb
    gc.collect()
    log = QueryLog()
    log.sink = sink
    log.record_row(_row(1))
    assert log.flush() == 0 and log.pending == 1
    assert log.last_error == "The workbench is gone; its query log was not written."
    assert not (tmp_path / ".hybridwb" / "platform.db").exists()
