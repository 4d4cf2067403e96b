# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""A pinned connection after a read of a table: the next SELECT carries READ ONLY, the time
limit and the row cap itself (MariaDB's `SET STATEMENT ... FOR`), in its own round trip.

Round 29 made the next statement on a pinned connection (a search's probe, then its page)
wait for a whole session SET after a read of a table, since the table may have become a
view whose code changed the session. On MariaDB a SELECT now carries what it must hold
(`session.statement_prefix`): whatever a function left on the session (`tx_read_only = 0`,
`SET TRANSACTION READ WRITE`, `sql_select_limit`, `max_statement_time`), the statement
runs read-only, time-limited and capped; MariaDB restores `sql_mode` and the character
set when a stored routine returns (checked here too, on the server).

Oracle: the rows of the written table counted by root; the session's values as the server
reports them inside the statement (`@@session.*` in its own select list) and after it.
"""

from __future__ import annotations

import pytest

from hybridwb.source import Source
from hybridwb.source.source import RowsCut
from tests._mysql import as_root, root
from tests.test_attack_round27_reconnect import (  # noqa: F401
    _source,
    _written,
    read_then_write_pinned,
    writer,
)

pytestmark = pytest.mark.mysql

#: what a function the replaced table's view calls leaves on the session
LEFT_BEHIND = {
    "tx_read_only=0": "SET SESSION tx_read_only = 0",
    "transaction-read-write": "SET TRANSACTION READ WRITE",
    "session-read-write": "SET SESSION TRANSACTION READ WRITE",
    "limits-off": "SET SESSION sql_select_limit = 1; SET SESSION max_statement_time = 0",
    "mode-and-names": "SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'; "
    "SET SESSION character_set_client = 'gbk'",
    "time-zone": "SET SESSION time_zone = '+11:00'",
}


def _replace_by_view(db: str, body: str) -> None:
    """As root: `t2` was a base table the source listed; now a view whose function runs
    `body` (a table kept under its old name as a compatibility view)."""
    as_root(
        f"DROP TABLE `{db}`.t2",
        f"CREATE FUNCTION `{db}`.meddle() RETURNS INT BEGIN {body}; RETURN 1; END",
        f"CREATE VIEW `{db}`.t2 AS SELECT `{db}`.meddle() AS x",
    )


def _listed_then_replaced(db: str, src: Source, body: str) -> None:
    as_root(f"CREATE TABLE `{db}`.t2 (x INT)", f"INSERT INTO `{db}`.t2 VALUES (1)")
    assert src.records("SELECT x FROM t2") == [{"x": 1}]  # listed: a base table
    _replace_by_view(db, body)


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize("left", list(LEFT_BEHIND), ids=list(LEFT_BEHIND))
def test_the_read_after_a_replaced_table_writes_nothing(
    writer: tuple[str, str, str], driver: str, left: str
) -> None:
    """Pinned: the replaced table read (its function runs), then a view whose function
    INSERTs: nothing committed, whatever the first function left on the session."""
    db = writer[0]
    src = _source(*writer, driver=driver)
    try:
        _listed_then_replaced(db, src, LEFT_BEHIND[left])
        read_then_write_pinned(src, "SELECT x FROM t2")
    finally:
        src.close()
    assert _written(db) == 0


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize("left", list(LEFT_BEHIND), ids=list(LEFT_BEHIND))
def test_the_read_after_a_replaced_table_runs_under_the_policy(
    writer: tuple[str, str, str], driver: str, left: str
) -> None:
    """Pinned: the replaced table read, then a read of `t` (two rows) that selects the
    session's values as the server sees them while it runs: read-only, the policy's time
    limit and cap + 1, both rows (a `sql_select_limit` of 1 left behind would drop one),
    the statement's own sql_mode and character set as the session SET makes them."""
    db = writer[0]
    src = _source(*writer, driver=driver)
    policy = src.policy
    admin = root()
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT @@global.time_zone")
            login_zone = str(cur.fetchone()[0])
    finally:
        admin.close()
    try:
        _listed_then_replaced(db, src, LEFT_BEHIND[left])
        with src.one_connection():
            src.records("SELECT x FROM t2")
            got = src.records(
                "SELECT a, @@session.tx_read_only AS ro, @@session.max_statement_time AS t, "
                "@@session.sql_select_limit AS cap, @@session.sql_mode AS mode, "
                "@@session.character_set_client AS cs, @@session.time_zone AS tz FROM t "
                "ORDER BY a"
            )
    finally:
        src.close()
    assert [r["a"] for r in got] == [1, 2]
    for row in got:
        assert int(row["ro"]) == 1
        assert float(row["t"]) == pytest.approx(policy.timeout)
        assert int(row["cap"]) == policy.select_limit
        assert "NO_BACKSLASH_ESCAPES" not in str(row["mode"])
        assert "ANSI_QUOTES" not in str(row["mode"])
        assert str(row["cs"]) == "utf8mb4"
        assert str(row["tz"]) == login_zone  # a login's (the server's global)


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize("second", ["known-view", "limit-past-cap"])
def test_a_read_with_its_own_limits_after_a_table_read_is_not_refused(
    writer: tuple[str, str, str], driver: str, second: str
) -> None:
    """Pinned: a plain table read, then a read with its own time limit and cap that is
    read back afterwards (it names a view; or its LIMIT passes the cap, so the statement
    is ended and the session read back): it returns its rows under its own limits, not
    the refusal "server code changed the session" (the read-back compared the session
    against a policy the prefix had set for the statement only)."""
    db = writer[0]
    as_root(
        f"CREATE VIEW `{db}`.v_plain AS SELECT a FROM `{db}`.t",
        f"INSERT INTO `{db}`.t SELECT a + 10 FROM `{db}`.t",
    )
    src = _source(*writer, driver=driver)
    try:
        with src.one_connection():
            assert len(src.records("SELECT a FROM t")) == 4
            if second == "known-view":
                got = src.records("SELECT a FROM v_plain ORDER BY a", timeout=7, limit=4)
            else:
                with pytest.warns(RowsCut):
                    frame = src.sql("SELECT a FROM t ORDER BY a LIMIT 100", timeout=7, limit=2)
                got = frame.to_dict("records")
            after = src.records("SELECT a FROM t ORDER BY a")
    finally:
        src.close()
    assert [r["a"] for r in got] == [1, 2, 11, 12][: 4 if second == "known-view" else 2]
    assert [r["a"] for r in after] == [1, 2, 11, 12]
    assert _written(db) == 0
