"""The streamed row reader (`described.StreamCursor`, `DescribedResult.read_rows`) on the
real server: every batch `fetchmany` gives is what PyMySQL's own streaming cursor gives
for the same statement and batch size, with the same row count, warnings and end state,
across the read buffer's edges and the value lengths where the wire format changes.

Oracle: a plain PyMySQL connection (no hybridwb class) streaming the same statement with
`pymysql.cursors.SSCursor`. A private `hybridwb_sr_<random>` database, written by root.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from hybridwb.source import described, drivers
from tests._mysql import plain_root, root_cursor, scratch_db
from tests.conftest import MYSQL_HOST, MYSQL_PORT
from tests.test_source_lean_driver import _source

pytestmark = pytest.mark.mysql

#: value lengths around the wire format's edges: one length byte below 251, the NULL
#: marker at 251, two bytes up to 65535, three bytes above (PyMySQL's code reads those)
_LENGTHS = [0, 1, 249, 250, 251, 252, 253, 300, 65535, 65536, 70000]


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    with scratch_db("sr", rows=1) as name:
        with root_cursor(name) as cur:
            cur.execute(
                "CREATE TABLE w (id INT PRIMARY KEY, s MEDIUMTEXT CHARACTER SET utf8mb4,"
                " b MEDIUMBLOB, n INT, d DECIMAL(12, 3), t DATETIME(6), j JSON,"
                " k VARCHAR(20) CHARACTER SET latin1, e ENUM('x', 'y'), f DOUBLE)"
            )
            rng = random.Random(17)
            rows = []
            for i in range(1, 3001):
                size = rng.choice(_LENGTHS) if i % 7 == 0 else rng.randrange(0, 120)
                text = "".join(rng.choice("aé한\t\\'\"\n") for _ in range(size))
                rows.append(
                    (
                        i,
                        None if i % 11 == 0 else text,
                        None if i % 13 == 0 else bytes(rng.randrange(256) for _ in range(i % 40)),
                        None if i % 5 == 0 else rng.randrange(-(2**31), 2**31),
                        None if i % 6 == 0 else f"{rng.randrange(-(10**8), 10**8)}.{i % 1000:03d}",
                        None if i % 9 == 0 else f"2026-12-05 01:02:{i % 60:02d}.{i:06d}",
                        None if i % 4 == 0 else f'{{"a": [{i}, "é"]}}',
                        None if i % 8 == 0 else "café"[: i % 5],
                        None if i % 10 == 0 else "xy"[i % 2],
                        None if i % 12 == 0 else i / 7,
                    )
                )
            cur.executemany("INSERT INTO w VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
            cur.execute("COMMIT")
        yield name


def _batches(cur: Any, sql: str, size: int) -> dict[str, Any]:
    """Every `fetchmany(size)` until an empty one, and the cursor's state along the way."""
    cur.execute(sql)
    got, states = [], []
    while True:
        rows = cur.fetchmany(size)
        result = cur._result
        states.append(
            (
                cur.rownumber,
                cur.warning_count,
                result.unbuffered_active,
                result.connection is None,
                result.affected_rows,
                result.rows,
            )
        )
        if not rows:
            break
        got.append(list(rows))
    again = cur.fetchmany(size)  # after the end: empty, as PyMySQL's
    return {
        "description": cur.description,
        "batches": got,
        "states": states,
        "again": again,
        "warnings": cur.warning_count,
    }


def _plain(db: str, sql: str, size: int) -> dict[str, Any]:
    conn = plain_root(db)
    try:
        cur = conn.cursor(pymysql.cursors.SSCursor)
        out = _batches(cur, sql, size)
        cur.close()
        return out
    finally:
        conn.close()


@contextlib.contextmanager
def guarded_raw(db: str) -> Iterator[Any]:
    """The driver connection of a source's pooled connection on `db` (guard off, so any
    statement runs); it and the source are closed after."""
    src = _source(db, use_guard=False)
    try:
        raw = src.engine.raw_connection()
        try:
            yield raw.dbapi_connection
        finally:
            raw.close()
    finally:
        src.close()


def _guarded(db: str, sql: str, size: int) -> tuple[dict[str, Any], Any]:
    """`sql` through the source's own streaming cursor, then the next statement on the
    same connection (it must be in step)."""
    with guarded_raw(db) as conn:
        cur = drivers.unbuffered_cursor(conn)
        assert type(cur) is described.StreamCursor
        out = _batches(cur, sql, size)
        cur.close()
        check = conn.cursor()
        check.execute("SELECT COUNT(*) FROM w")
        after = check.fetchall()
    return out, after


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000, 5000])
def test_every_batch_of_every_column_kind_is_what_pymysql_streams(db: str, size: int) -> None:
    """3,000 rows of text (multi-byte, quotes, tabs), bytes, ints, decimals, times, JSON,
    latin1, enums and doubles, with NULLs and values of 0-70,000 bytes spread across the
    read buffer's edges, fetched in batches of each size: the same batches, row count,
    warning count and end-of-result state as PyMySQL's streaming cursor.
    Mutations: a NULL read as an empty value; the buffer's bytes taken one short; the
    result's end state (`connection`) left set; the rows' count not advanced."""
    sql = "SELECT * FROM w ORDER BY id"
    want = _plain(db, sql, size)
    got, after = _guarded(db, sql, size)
    assert sum(len(b) for b in want["batches"]) == 3000
    assert got == want
    assert after == ((3000,),)


@pytest.mark.parametrize("size", [1, 5, 100])
def test_warnings_and_an_empty_result_are_counted_as_pymysql_counts_them(
    db: str, size: int
) -> None:
    """A streamed result whose values raise warnings (a text cast to a number), and one
    with no rows: the warning count after the last batch is PyMySQL's.
    Mutation: the warning count not read when the result ends."""
    for sql in (
        "SELECT id, CAST(CONCAT(id, 'x') AS SIGNED) AS c FROM w WHERE id <= 12 ORDER BY id",
        "SELECT id FROM w WHERE id < 0",
    ):
        want = _plain(db, sql, size)
        got, _ = _guarded(db, sql, size)
        assert got == want
    warned = _plain(
        db, "SELECT CAST(CONCAT(id, 'x') AS SIGNED) FROM w WHERE id <= 12 ORDER BY id", size
    )
    assert warned["warnings"] == 12


def test_a_server_error_mid_stream_raises_as_pymysql_and_the_connection_stays_in_step(
    db: str,
) -> None:
    """A statement that fails after some rows were sent (a row whose value overflows a
    cast in strict mode is an error mid-result): the streaming cursor raises the server's
    error after the same rows as PyMySQL's, and the connection reads the next statement.
    Mutation: an error packet inside the buffer parsed as a row."""
    sql = "SELECT id, IF(id = 1500, (SELECT 1 UNION SELECT 2), id) AS v FROM w ORDER BY id"

    def run(cur: Any) -> tuple[list[Any], Any]:
        cur.execute(sql)
        seen: list[Any] = []
        try:
            while rows := cur.fetchmany(64):
                seen.extend(rows)
        except pymysql.err.Error as exc:
            return seen, (type(exc), exc.args[0])
        return seen, None

    conn = pymysql.connect(
        ssl_disabled=True, host=MYSQL_HOST, port=MYSQL_PORT, user="root", database=db
    )
    try:
        want = run(conn.cursor(pymysql.cursors.SSCursor))
    finally:
        conn.close()
    with guarded_raw(db) as raw:
        got = run(drivers.unbuffered_cursor(raw))
        check = raw.cursor()
        check.execute("SELECT 42")
        after = check.fetchall()
    assert want[1] is not None and len(want[0]) > 64  # the error came mid-result
    assert got == want
    assert after == ((42,),)


def test_a_null_before_long_enough_values_is_a_null(db: str) -> None:
    """A NULL (the length byte 251) followed by at least 251 bytes of other values, where
    reading the marker as a length would still end inside the row: every batch is still
    what PyMySQL gives.
    Mutation: the one-byte length bound moved from 251 to 252 (the NULL read as a 251-byte
    value) → fails."""
    with root_cursor(db) as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS n (id INT PRIMARY KEY, a VARBINARY(300),"
            " b VARBINARY(300), c VARBINARY(300))"
        )
        cur.execute("DELETE FROM n")
        cur.executemany(
            "INSERT INTO n VALUES (%s, %s, %s, %s)",
            [
                (1, None, b"x" * 250, b""),
                (2, None, b"y" * 249, b"z"),
                (3, None, b"\x01" * 250, b"\x00" * 10),
                (4, b"", None, b"w" * 250),
            ],
        )
        cur.execute("COMMIT")
    sql = "SELECT a, b, c FROM n ORDER BY id"
    for size in (1, 4):
        want = _plain(db, sql, size)
        got, _ = _guarded(db, sql, size)
        assert got == want
    assert [r[0] for b in want["batches"] for r in b] == [None, None, None, b""]
