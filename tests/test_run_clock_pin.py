"""A workflow run's reads see the server's clock of its freeze (`Source.records(as_of=)`),
and a saved query that samples at random is refused (`targets.determinism`).

Real MariaDB (a scratch database per module, a read-only `Source`); the oracle is the
server's own clock read by root's pymysql. The run-level contract is tested in
tests/test_attack_round49_once.py (a resume after the window, on both stores)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hybridwb.errors import HybridwbError, QueryError, ReadOnlyViolation
from hybridwb.source import execute, guard
from hybridwb.source.execute import clock_sql, with_clock
from hybridwb.source.session import SessionFacts
from hybridwb.targets.determinism import nondeterministic_calls, refuse_nondeterministic
from tests._mysql import as_root, root, scratch_fixtures

db, source = scratch_fixtures("nowpin", 3)
pytestmark = pytest.mark.mysql

PINNED = 1_000_000_000.25  # 2001-09-09 01:46:40.25 UTC


def server_now() -> float:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
            return float(cur.fetchone()[0])
    finally:
        conn.close()


@pytest.fixture(scope="module")
def view(db: str) -> str:
    as_root(
        f"CREATE OR REPLACE VIEW `{db}`.clocked AS SELECT a, UNIX_TIMESTAMP() AS u, "
        f"CURDATE() AS d FROM `{db}`.t"
    )
    return "clocked"


def test_an_as_of_read_sees_that_clock_in_a_statement_and_in_a_view(source: Any, view: str) -> None:
    sql = "SELECT UNIX_TIMESTAMP() AS now_u, UNIX_TIMESTAMP(NOW(6)) AS now6, u FROM " + view
    rows = source.records(sql, limit=10, as_of=PINNED)
    assert {(r["now_u"], float(r["now6"]), r["u"]) for r in rows} == {
        (1_000_000_000, PINNED, 1_000_000_000)
    }
    with source.one_connection():  # a pinned connection: the SessionOwed prefix joined
        for _ in range(3):
            rows = source.records(sql, limit=10, as_of=PINNED)
            assert {r["u"] for r in rows} == {1_000_000_000}
    before = server_now()
    rows = source.records(sql, limit=10)  # no as_of: the server's clock, as it reads
    assert all(before - 1 <= r["u"] <= server_now() + 1 for r in rows)


def test_an_as_of_read_without_the_guard_sees_that_clock_too(db: str, view: str) -> None:
    """A source with its guard off (`use_guard=False`, tests of the other layers) sends the
    prepared text itself: the clock's SET STATEMENT goes before it all the same."""
    from hybridwb.source.source import Source
    from tests.conftest import ro_url

    unguarded = Source(ro_url(db), use_guard=False)
    try:
        rows = unguarded.records("SELECT u FROM " + view, limit=10, as_of=PINNED)
    finally:
        unguarded.close()
    assert {r["u"] for r in rows} == {1_000_000_000}


def test_clock_is_the_servers_and_the_cache_keeps_as_of_reads_apart(source: Any) -> None:
    before = server_now()
    clock = source.clock()
    assert before <= clock <= server_now()
    sql = "SELECT UNIX_TIMESTAMP() AS u"
    first = source.records(sql, cache_ttl=30, as_of=PINNED)
    other = source.records(sql, cache_ttl=30, as_of=PINNED + 100)
    assert (first[0]["u"], other[0]["u"]) == (1_000_000_000, 1_000_000_100)


def test_the_guard_still_refuses_a_write_with_as_of(source: Any) -> None:
    with pytest.raises(ReadOnlyViolation):
        source.records("DELETE FROM t", as_of=PINNED)


@pytest.mark.parametrize(
    "bad",
    [-1, 0, math.nan, math.inf, "1", True, 2.0**31, [1]],
    ids=["negative", "zero", "nan", "inf", "text", "bool", "past-2038", "list"],
)
def test_a_bad_as_of_is_refused_in_one_line(bad: Any) -> None:
    with pytest.raises(QueryError, match="as_of must be epoch seconds") as err:
        clock_sql(SessionFacts(flavour="MariaDB"), bad)
    assert "\n" not in str(err.value)


def test_on_mysql_the_sessions_clock_is_set_around_the_read_and_put_back(
    source: Any, view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MySQL has no SET STATEMENT: the session's `timestamp` is set before the read and
    put back to the server's after it. MariaDB takes the same SETs, so the path is run here
    with MariaDB's own statement clock turned off; on one pinned connection the read after
    sees the server's clock again."""
    monkeypatch.setattr(execute, "STATEMENT_CLOCK", frozenset())
    sql = "SELECT UNIX_TIMESTAMP() AS now_u, u FROM " + view
    with source.one_connection():
        for _ in range(2):
            rows = source.records(sql, limit=10, as_of=PINNED)
            assert {(r["now_u"], r["u"]) for r in rows} == {(1_000_000_000, 1_000_000_000)}
            # a table's read (a view's is followed by a reset of the session, which would
            # put the clock back by itself)
            (row,) = source.records("SELECT UNIX_TIMESTAMP() AS u FROM t LIMIT 1", as_of=PINNED)
            assert row["u"] == 1_000_000_000
            before = server_now()
            (after,) = source.records("SELECT UNIX_TIMESTAMP(NOW(6)) AS t")
            assert before <= float(after["t"]) <= server_now()


@pytest.mark.parametrize(
    ("prefix", "want"),
    [
        ("", "SET STATEMENT timestamp = 1.000000 FOR "),
        (
            "SET STATEMENT tx_read_only = 1 FOR ",
            "SET STATEMENT timestamp = 1.000000, tx_read_only = 1 FOR ",
        ),
    ],
    ids=["alone", "joined"],
)
def test_the_clock_joins_the_statements_own_set(prefix: str, want: str) -> None:
    assert with_clock(prefix, clock_sql(SessionFacts(flavour="MariaDB"), 1)) == want


@pytest.mark.parametrize(
    ("sql", "calls"),
    [
        ("SELECT code FROM m ORDER BY RAND() LIMIT 20", ["RAND"]),
        ("SELECT code FROM m ORDER BY rand (7) LIMIT 20", ["RAND"]),
        (
            "SELECT UUID() AS u, UUID_SHORT() AS s, SYSDATE() AS d FROM m",
            ["UUID", "UUID_SHORT", "SYSDATE"],
        ),
        ("SELECT code FROM m WHERE CONNECTION_ID() % 2 = 0", ["CONNECTION_ID"]),
        ("SELECT code, RANDOM_BYTES(4) AS b FROM m", ["RANDOM_BYTES"]),
        ("SELECT code FROM m WHERE RAND() < 0.1 OR RAND() > 0.9", ["RAND"]),
        ("SELECT code FROM m ORDER BY MD5(CONCAT(code, 'seed')) LIMIT 20", []),
        ("SELECT code, 'RAND()' AS t FROM m", []),
        ("SELECT r.rand FROM m r", []),
        ("SELECT code FROM m WHERE joined > NOW() - INTERVAL 1 DAY", []),
        ("SELECT code FROM m WHERE joined >= CURDATE()", []),
        ("SELECT code AS rand FROM m ORDER BY rand", []),
        ("SELECT `rand`(code) AS r FROM m", []),
    ],
    ids=[
        "order-by-rand",
        "seeded-rand-spaced",
        "uuid-sysdate",
        "connection-id",
        "random-bytes",
        "twice-once",
        "hashed-sample",
        "in-a-string",
        "a-column-named-rand",
        "now-pinned",
        "curdate-pinned",
        "an-alias-named-rand",
        "a-vetted-stored-function-named-rand",
    ],
)
def test_nondeterministic_calls_are_found_by_the_guards_tokens(sql: str, calls: list[str]) -> None:
    tokens = guard.check(sql, allowed_functions=["rand"]).tokens
    assert nondeterministic_calls(tokens) == calls
    if calls:
        with pytest.raises(HybridwbError, match="changes from read to read") as err:
            refuse_nondeterministic(tokens)
        assert "\n" not in str(err.value)
    else:
        refuse_nondeterministic(tokens)
