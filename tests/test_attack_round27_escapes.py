# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Attack round 27: a bound value must stay a value, whatever server code left behind.

The guard reads literals with backslash escapes, and every session's sql_mode is pinned
without NO_BACKSLASH_ESCAPES. But a driver does not ask the session how to escape: it
escapes as the server's last *status flags* say (PyMySQL from OK packets, libmariadb from
OK and EOF packets). A stored function that runs `SET sql_mode = 'NO_BACKSLASH_ESCAPES'`
(called by a view the statement reads) sets that flag on the server, and the server keeps
sending it after the function put its caller's sql_mode back — until the next
`SET sql_mode`. The session read-back sees the pinned sql_mode and passes; the driver then
escapes the next bound text by doubling quotes only, and the server reads `\\'` as an
escaped quote: the value ends its literal early and the rest of it is SQL. The final-text
guard admits it (a read), so `name = :n` with `n = "\\' OR 1=1 -- "` returned every row:
values were no longer bound parameters (DESIGN non-negotiable 2).

Oracle: the rows root's own (clean) connection finds for the same value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from pymysql.constants import SERVER_STATUS
from sqlalchemy import text

from hybridwb.errors import HybridwbError
from hybridwb.source import Source
from tests._mysql import root
from tests.test_attack_round27_reconnect import _source, writer  # noqa: F401 (fixture)

pytestmark = pytest.mark.mysql

DRIVERS = pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
#: a value that is SQL once its backslash no longer escapes the quote after it
VALUE = "\\' OR 1=1 -- "


@pytest.fixture
def nbe(writer: tuple[str, str, str]) -> Iterator[tuple[str, str, str]]:
    """The private database with `p` (two people) and a view whose function sets
    NO_BACKSLASH_ESCAPES inside itself (the server restores the caller's sql_mode)."""
    db = writer[0]
    conn = root()
    try:
        with conn.cursor() as cur:
            for sql in (
                f"CREATE TABLE `{db}`.p (name VARCHAR(50), secret VARCHAR(50))",
                f"INSERT INTO `{db}`.p VALUES ('alice', 's1'), ('bob', 's2')",
                f"CREATE FUNCTION `{db}`.f_nbe() RETURNS INT "
                "BEGIN SET sql_mode = 'NO_BACKSLASH_ESCAPES'; RETURN 1; END",
                f"CREATE VIEW `{db}`.v_nbe AS SELECT `{db}`.f_nbe() AS x",
            ):
                cur.execute(sql)
    finally:
        conn.close()
    yield writer


def _oracle(db: str) -> list[tuple[Any, ...]]:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT name, secret FROM `{db}`.p WHERE name = %s", (VALUE,))
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


@DRIVERS
def test_a_bound_value_stays_a_value_on_the_engine_after_a_view_set_nbe(
    nbe: tuple[str, str, str], driver: str
) -> None:
    """`with wb.engine.connect()` (pandas, jupysql's persistent connection). Before: on
    mysqlclient the first statement after the view, on PyMySQL the second, returned both
    rows. Mutation: drop `escape_as_read` in engine._install_final_text_guard -> [mysqldb]
    fails; with `sql_mode` also dropped from the read-only re-assert (engine `_restore`)
    -> both fail."""
    db = nbe[0]
    src = _source(*nbe, driver=driver)
    seen: list[list[tuple[Any, ...]]] = []
    try:
        with src.engine.connect() as conn:
            conn.exec_driver_sql("SELECT x FROM v_nbe").fetchall()
            for _ in range(3):
                rows = conn.execute(
                    text("SELECT name, secret FROM p WHERE name = :n"), {"n": VALUE}
                )
                seen.append([tuple(r) for r in rows])
    finally:
        src.close()
    assert seen == [_oracle(db)] * 3 == [[]] * 3


@DRIVERS
def test_a_bound_value_stays_a_value_on_a_raw_connection_after_a_view_set_nbe(
    nbe: tuple[str, str, str], driver: str
) -> None:
    """A raw DB-API connection (`wb.engine.raw_connection()`, jupysql given one): the
    driver pastes the values in before anything of hybridwb's sees the text, so a text
    escaped for NO_BACKSLASH_ESCAPES is refused (and the session set again) rather than
    sent. Mutation: drop the `escapes_as_read` check in rawguard._admit -> [mysqldb] fails
    (on PyMySQL the full SET owed after the view's statement cleared the flag already)."""
    db = nbe[0]
    src = _source(*nbe, driver=driver)
    seen: list[list[tuple[Any, ...]]] = []
    try:
        raw = src.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SELECT x FROM v_nbe")
            cur.fetchall()
            for _ in range(3):
                with contextlib.suppress(HybridwbError):  # refused: nothing was sent
                    cur.execute("SELECT name, secret FROM p WHERE name = %(n)s", {"n": VALUE})
                    seen.append([tuple(r) for r in cur.fetchall()])
        finally:
            raw.close()
    finally:
        src.close()
    assert seen and all(rows == _oracle(db) == [] for rows in seen), seen


@DRIVERS
def test_a_bound_value_stays_a_value_on_wb_sql_after_a_view_set_nbe(
    nbe: tuple[str, str, str], driver: str
) -> None:
    """The read path (`wb.sql`, search, targets), also on one pinned connection."""
    db = nbe[0]
    src: Source = _source(*nbe, driver=driver)
    query = "SELECT name, secret FROM p WHERE name = :n"
    try:
        src.records("SELECT x FROM v_nbe")
        seen = [src.records(query, {"n": VALUE}) for _ in range(2)]
        with src.one_connection():
            src.records("SELECT x FROM v_nbe")
            seen += [src.records(query, {"n": VALUE}) for _ in range(2)]
    finally:
        src.close()
    assert seen == [_oracle(db)] * 4 == [[]] * 4


def test_a_stale_flag_on_a_pinned_connection_never_escapes_a_reads_values(
    nbe: tuple[str, str, str],
) -> None:
    """The read path's own check, alone: every way for server code to run unseen on a
    pinned connection is closed now (round 27 closed the last two: test_attack_round27_views),
    so the flag is left on the driver by hand, as such code left it. Before (on a view the
    read path did not know): the second read returned both rows on mysqlclient. Mutation:
    drop `escape_as_read` in execute._run_on -> fails."""
    db = nbe[0]
    src: Source = _source(*nbe, driver="pymysql")
    query = "SELECT name, secret FROM p WHERE name = :n"
    try:
        with src.one_connection():
            src.records("SELECT a FROM t")
            raw = src._pinned.conn.connection.dbapi_connection
            raw.server_status |= SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES
            seen = [src.records(query, {"n": VALUE}) for _ in range(2)]
    finally:
        src.close()
    assert seen == [_oracle(db)] * 2 == [[]] * 2


@DRIVERS
def test_a_bound_value_stays_a_value_on_a_pinned_connection_after_a_view_beside_its_with(
    nbe: tuple[str, str, str], driver: str
) -> None:
    """A view made after the schema's list was read, named in the statement both as itself
    and as a WITH entry of another scope: read back now (`own_ctes`), so nothing of the
    function's is left for the next pinned read."""
    db = nbe[0]
    src: Source = _source(*nbe, driver=driver)
    query = "SELECT name, secret FROM p WHERE name = :n"
    try:
        src.records("SELECT a FROM t")  # the schema's list is read (and kept 10 s)
        conn = root()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE VIEW `{db}`.nv AS SELECT `{db}`.f_nbe() AS x")
        finally:
            conn.close()
        with src.one_connection():
            src.records("SELECT x FROM nv, (WITH nv AS (SELECT 1 AS y) SELECT y FROM nv) z")
            seen = [src.records(query, {"n": VALUE}) for _ in range(2)]
    finally:
        src.close()
    assert seen == [_oracle(db)] * 2 == [[]] * 2
