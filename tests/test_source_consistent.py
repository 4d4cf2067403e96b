"""`Source.consistent`: the reads of a block see one moment of the source, in a read-only
transaction that always ends (round 58's BREAK 6, closed in branch `snap58`).

A run reads a batch's rows and then the template's related values by statements of their
own; `Source.consistent` puts both on one pinned connection inside `START TRANSACTION READ
ONLY, WITH CONSISTENT SNAPSHOT` ... `COMMIT` (SQLite: one read transaction). Oracles: root's
own connection (its inserts between the block's reads, `information_schema.innodb_trx` for
the block's CONNECTION_ID, the processlist), sqlite3 on the source file. Limit (not
claimed): a MyISAM table has no snapshot; `test_a_myisam_table_has_no_snapshot` records it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import ConnectionFailed
from hybridwb.source import Source
from tests._mysql import root_cursor, scratch_db
from tests.conftest import ro_url

pytestmark = pytest.mark.mysql

DRIVERS = ["pymysql", "mysqldb"]


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    with scratch_db("snap58", 3) as name:
        with root_cursor(name) as cur:
            cur.execute("CREATE TABLE m (a INT) ENGINE=MyISAM")
            cur.execute("INSERT INTO m VALUES (1), (2), (3)")
        yield name


@pytest.fixture(params=DRIVERS)
def source(db: str, request: pytest.FixtureRequest) -> Iterator[Source]:
    url: URL = ro_url(db).set(drivername=f"mysql+{request.param}")
    src = Source(url, pool_size=2, max_overflow=0)
    yield src
    src.close()


def count(src: Source, table: str = "t", **kwargs: Any) -> int:
    return int(src.records(f"SELECT COUNT(*) AS n FROM {table}", **kwargs)[0]["n"])


def root(db: str, *statements: str) -> list[tuple[Any, ...]]:
    with root_cursor(db) as cur:
        for sql in statements:
            cur.execute(sql)
        return list(cur.fetchall())


def open_transactions(db: str, thread: int) -> list[tuple[Any, ...]]:
    """Root's view of the InnoDB transactions of connection `thread` (and whether each is
    read-only). InnoDB fills `innodb_trx` from a cache refreshed when it is over 0.1 s old
    (`TRX_I_S_CACHE`): read once that long has passed."""
    time.sleep(0.25)
    return root(
        db,
        "SELECT trx_state, trx_is_read_only FROM information_schema.innodb_trx "
        f"WHERE trx_mysql_thread_id = {int(thread)}",
    )


@pytest.fixture
def restore(db: str) -> Iterator[None]:
    yield
    root(db, "DELETE FROM t WHERE a > 3", "DELETE FROM m WHERE a > 3")


def test_reads_in_a_block_see_one_moment_and_the_transaction_ends(
    db: str, source: Source, restore: None
) -> None:
    """Root commits a row between the block's reads: the second read (a statement with a
    lower time limit of its own, so the session is set again between them, without ending
    the snapshot) still counts 3, root sees the block's read-only transaction while it
    runs and none after it; the next read counts 4."""

    def read() -> tuple[int, int, int, list[tuple[Any, ...]]]:
        thread = int(source.records("SELECT CONNECTION_ID() AS c")[0]["c"])
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        during = open_transactions(db, thread)
        return thread, first, count(source, timeout=5), during

    thread, first, second, during = source.consistent(read)
    assert (first, second) == (3, 3)
    assert during == [("RUNNING", 1)]
    assert open_transactions(db, thread) == []
    assert count(source) == 4


class Boom(Exception):
    pass


@pytest.mark.parametrize("pinned", [False, True], ids=["pooled", "in-one-connection"])
@pytest.mark.parametrize("raised", [Boom, KeyboardInterrupt], ids=["exception", "interrupt"])
def test_a_block_that_raises_leaves_no_transaction_open(
    db: str, source: Source, restore: None, raised: type[BaseException], pinned: bool
) -> None:
    """The block raises (an error, Ctrl-C) after a read inside the snapshot: the error
    reaches the caller, root sees no transaction of that connection, and the next read
    (the pool's or the parked connection; inside `one_connection()` the same one, which no
    checkin reset) is in none (`@@in_transaction`, read on it) and sees root's row
    committed meanwhile."""
    seen: list[int] = []

    def read() -> None:
        seen.append(int(source.records("SELECT CONNECTION_ID() AS c")[0]["c"]))
        assert count(source) == 3
        root(db, "INSERT INTO t VALUES (4)")
        raise raised("stop")

    with source.one_connection() if pinned else contextlib.nullcontext():
        with pytest.raises(raised):
            source.consistent(read)
        ended = open_transactions(db, seen[0])
        after = source.records(
            "SELECT @@in_transaction AS t, CONNECTION_ID() AS c, COUNT(*) AS n FROM t"
        )[0]
    assert ended == []
    assert after["t"] == 0 and after["n"] == 4
    assert not pinned or after["c"] == seen[0]
    assert open_transactions(db, int(after["c"])) == []


def test_a_connection_killed_inside_the_block_reads_it_all_again(
    db: str, source: Source, restore: None
) -> None:
    """Root kills the block's connection after its first read and commits a row: the
    second read is not sent alone on another connection (another moment); the block runs
    again on a new connection and snapshot, and both of its reads see the new row."""
    seen: list[tuple[int, int]] = []

    def read() -> tuple[int, int]:
        thread = int(source.records("SELECT CONNECTION_ID() AS c")[0]["c"])
        first = count(source)
        if not seen:
            root(db, f"KILL CONNECTION {thread}", "INSERT INTO t VALUES (4)")
        seen.append((thread, first))
        return first, count(source)

    assert source.consistent(read) == (4, 4)
    assert len(seen) == 2 and seen[0][0] != seen[1][0]
    assert seen[0][1] == 3
    assert open_transactions(db, seen[1][0]) == []


def test_a_commit_that_fails_keeps_the_reads_and_drops_the_connection(
    db: str, source: Source
) -> None:
    """Root kills the connection after the block's last read: its COMMIT fails, the
    reads (all done in the snapshot) are returned, and the connection is dropped: the next
    read is on another, in no transaction."""

    def read() -> tuple[int, int]:
        thread = int(source.records("SELECT CONNECTION_ID() AS c")[0]["c"])
        first = count(source)
        root(db, f"KILL CONNECTION {thread}")
        return thread, first

    thread, first = source.consistent(read)
    after = source.records("SELECT @@in_transaction AS t, CONNECTION_ID() AS c")[0]
    assert first == 3 and after["t"] == 0 and after["c"] != thread


def test_a_lost_connection_inside_one_connection_is_not_read_again_elsewhere(
    db: str, source: Source, restore: None
) -> None:
    """Inside `one_connection()` the block cannot take a new connection: a killed one
    raises, the reads are not finished on another moment."""

    def read() -> tuple[int, int]:
        thread = int(source.records("SELECT CONNECTION_ID() AS c")[0]["c"])
        root(db, f"KILL CONNECTION {thread}", "INSERT INTO t VALUES (4)")
        return count(source), count(source)

    with source.one_connection(), pytest.raises(ConnectionFailed):
        source.consistent(read)
    assert count(source) == 4


def test_a_block_inside_one_connection_ends_its_transaction_there(
    db: str, source: Source, restore: None
) -> None:
    """Inside `one_connection()` the connection stays checked out after the block (no
    checkin's reset ends anything): the block's COMMIT does. Root sees no transaction of
    it, and the next read on it sees root's row committed during the block."""

    def read() -> tuple[int, int]:
        thread = int(source.records("SELECT CONNECTION_ID() AS c")[0]["c"])
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        return thread, first

    with source.one_connection():
        thread, first = source.consistent(read)
        ended = open_transactions(db, thread)
        after = source.records("SELECT COUNT(*) AS n, CONNECTION_ID() AS c FROM t")[0]
    assert first == 3 and ended == []
    assert after == {"n": 4, "c": thread}


def test_a_myisam_table_has_no_snapshot(db: str, source: Source, restore: None) -> None:
    """The limit, recorded: a table of an engine without transactions (MyISAM) is read
    as it is at each statement, inside the block too."""

    def read() -> tuple[int, int]:
        first = count(source, "m")
        root(db, "INSERT INTO m VALUES (4)")
        return first, count(source, "m")

    assert source.consistent(read) == (3, 4)


def test_a_sqlite_sources_block_is_one_read_transaction(tmp_path: Path) -> None:
    """On a SQLite source (a rollback journal) the block's reads share one read
    transaction: a writer between them cannot commit (the file is locked for it), and
    can once the block has ended, normally or by an error."""
    path = tmp_path / "source.db"
    with sqlite3.connect(path) as made:
        made.execute("CREATE TABLE t (a INTEGER)")
        made.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    src = Source(URL.create("sqlite", database=str(path)))

    def write() -> bool:
        writer = sqlite3.connect(path, timeout=0)
        try:
            writer.execute("INSERT INTO t VALUES (4)")
            writer.commit()
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            writer.close()

    def read() -> tuple[int, bool, int]:
        return count(src), write(), count(src)

    try:
        assert src.consistent(read) == (3, False, 3)
        assert write() and count(src) == 4

        def fails() -> None:
            count(src)
            raise Boom("stop")

        with pytest.raises(Boom):
            src.consistent(fails)
        assert write() and count(src) == 5
    finally:
        src.close()
