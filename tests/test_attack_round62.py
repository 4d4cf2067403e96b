# ruff: noqa: F811  (fixtures imported from test_source_consistent are parameters here)
"""Round 62: views inside `Source.consistent` (branch `viewsnap`'s `plainviews`: a plain
view keeps the block's snapshot, any other server code fails the block in one line).

Attacked as root with a writable account: definitions made to fool the judgement, names
the statement reads that `names_read` could miss, views redefined after the read, a view
in a schema the account cannot see, a failed statement through a view, builtins of the
allowlist with effects, and a run whose audience is a view. Oracles: root's own pymysql
connection (its rows committed between the block's reads, `IS_USED_LOCK`, `innodb_trx`,
a `CREATE OR REPLACE VIEW` that must wait, the sequence's `next_not_cached_value`), the
store's send records read with sqlite3. Both drivers.

BREAKS found here:
1. (fixed) a view over a view in a schema the account has no privilege on (a DEFINER
   view, root's) named `SEQ_1_TO_3`: the lookup finds no row for it, and `plainviews`
   took any name like `seq_N_to_M` in any case for the Sequence engine's (listed
   nowhere) and called it plain. MariaDB's engine claims lower-case names only, so
   `SEQ_1_TO_3` is root's view, and its code ran unjudged: its GET_LOCK stayed held for
   the block's later reads (root saw the block's connection own the lock), and a locking
   read in it (`LOCK IN SHARE MODE` in a derived table) counted root's row committed
   after the snapshot while the table's read in the same block did not: two moments,
   silently. Also a run whose audience is such a view messaged everybody. Fixed: the
   Sequence engine's names are matched in lower case only (`plainviews._SEQUENCE`), as
   `source._SEQUENCE_TABLE` already was. → 5 of 94 fail with the fix undone.
2. (fixed) a statement that fails inside the block (a subquery returning two rows) after
   a view's code ran: the connection was dropped only when the cached list of views
   called the name a view (`Job.server_code`), and the list is `VIEW_TTL` old: a table
   replaced by a view since ran its GET_LOCK, failed, and the block (as `read_related`
   does) went on reading in the same snapshot with the view's lock held (root saw the
   block's connection own it). Fixed: inside a snapshot a failed statement is judged as a
   finished one is (`execute._refusal_after_error`, `plainviews.refusal(failed=True)`):
   code that is not plain drops the connection and fails the block in one line
   (`SnapshotRefused`); tables, plain views and names that are not there (never opened,
   so nothing ran) keep the snapshot and raise the server's error, where before a missing
   table or any view the list knew dropped the connection and the block ran again whole,
   three times, ending "connection lost". → 8 of 94 fail with the snapshot branch of
   the error path undone (2 of the break, 4 of the snapshot kept, 2 of BREAK 4's); the
   refusal alone off → 2 of 94; the missing names not skipped → 2 of 94.
3. (fixed) a sequence (CREATE SEQUENCE's, InnoDB) read in the block, directly or through
   a view: `plainviews` took it for a table, but its row is read as it is at each
   statement, not at the snapshot's moment: root's 1001 NEXTVAL calls between two reads
   of the block were seen by the second ([1, 2001]), silently. Now a sequence fails the
   block in one line (`plainviews.SEQUENCE_WHY`, "read the sequence outside the block").
   → 4 of 94 fail with the fix undone.
4. (fixed) the server ended the block's transaction: the block read `t`, root's RENAME
   took `a2`'s metadata lock and waited for `t`'s, and the block's read of `a2` was the
   deadlock's victim (1213): MariaDB rolled the whole transaction back. The error was
   raised as any server error, and a block reading once more after it (`read_related`
   does) read in autocommit: root's row committed after the snapshot counted by the
   second read (3, then 4), silently. Now after a failed statement inside a snapshot the
   transaction is checked (`execute._transaction_ended`, `@@in_transaction`): ended, the
   connection is dropped and `SnapshotLost` raised, so the block is read again whole in a
   new snapshot. → 2 of 94 fail with the fix undone.

Held (both drivers where a source is used):
- `names_read` finds the view in every shape tried: a subquery in JSON_TABLE's argument,
  the select list, WHERE, HAVING, ORDER BY, a WINDOW clause, IN/ANY/EXISTS and a row
  comparison, a derived table with a WITH of the same name inside it, a WITH whose earlier
  entry reads the name a later entry defines, parentheses around a table and a join,
  UNION/INTERSECT/EXCEPT, a parenthesised statement, a qualified name with spaces; a WITH
  named like the view in another case is the WITH's to MariaDB too (names compare without
  case), and ODBC's `{oj ...}` is refused by the guard;
- a table `VL` beside a view `vl` (lower_case_table_names=0): the lookup is exact, so the
  table is read plain in one moment and the view is refused;
- a locking read in a view's `IN (...)` or scalar subquery is dropped by MariaDB itself
  (not printed, not run: root's row not counted); in a derived table, a WITH or a UNION
  it is printed and refused;
- DEFAULT(col) (allowlisted) of a column whose DEFAULT is NEXTVAL(sq) is plain by the
  judgement, but the READ ONLY transaction refuses its write in one line, and root sees
  the sequence (InnoDB, Aria) unchanged; GET_LOCK and LAST_INSERT_ID cannot be a DEFAULT;
- WITH RECURSIVE whose earlier entry names a later entry named like the view reads the
  WITH's (MariaDB's mutual recursion), as `own_ctes` says; STRAIGHT_JOIN, NATURAL JOIN,
  USING, nested derived tables, a WITH inside a WHERE subquery: judged;
- the allowlist's builtins read one by one for code of their own: DEFAULT() (below);
- a view in a schema named like `performance_schema` in another case (which
  `names_read` skips): root may create the schema but not a view in it (error 1044);
- root's `CREATE OR REPLACE VIEW` of a view in another schema, read through a WITH and a
  view of the block's schema, waits for the block's metadata locks;
- a block that catches the `SnapshotRefused` and reads on fails at its next read and at
  its end (round 60's test, here again for the failed-statement path).
"""

from __future__ import annotations

import contextlib
import random
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from hybridwb.errors import HybridwbError
from hybridwb.source import Source
from hybridwb.source.snapshot import SnapshotLost, SnapshotRefused
from tests._mysql import root_cursor, scratch_db
from tests.conftest import mariadb_db, ro_url
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round56_real_schema import connect, run, sent, store_rows
from tests.test_snapshot_views import SHOP_DDL, SHOP_ROWS, TEMPLATE, VADDR, audience_mapping
from tests.test_source_consistent import (  # noqa: F401
    count,
    open_transactions,
    restore,
    root,
    source,
)

pytestmark = pytest.mark.mysql

LOCK = "atk62_lock"
#: a schema the test account (`hybridwb\_%`.* only) cannot see
OTHER = f"h62o_{secrets.token_hex(3)}"
#: a schema it can see
SEEN = f"hybridwb_atk62s_{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    with scratch_db("atk62", 3) as name:
        try:
            root(
                name,
                f"CREATE DATABASE `{OTHER}`",
                f"CREATE DATABASE `{SEEN}`",
                "CREATE TABLE m (a INT) ENGINE=MyISAM",  # `restore` empties it too
                f"CREATE VIEW vl AS SELECT a, GET_LOCK('{LOCK}', 0) AS g FROM t",
                "CREATE VIEW pv AS SELECT a FROM t",
                "CREATE TABLE VL (a INT)",
                "INSERT INTO VL VALUES (1)",
                # root's views the account cannot see, named like the Sequence engine's
                f"CREATE VIEW `{OTHER}`.SEQ_1_TO_3 AS SELECT a AS seq, "
                f"GET_LOCK('{LOCK}', 0) AS g FROM `{name}`.t",
                f"CREATE VIEW `{OTHER}`.SEQ_1_TO_4 AS SELECT x.a AS seq FROM "
                f"(SELECT a FROM `{name}`.t LOCK IN SHARE MODE) x",
                f"CREATE VIEW vseq AS SELECT seq, g FROM `{OTHER}`.SEQ_1_TO_3",
                f"CREATE VIEW vseql AS SELECT seq FROM `{OTHER}`.SEQ_1_TO_4",
                # locking reads: dropped by MariaDB in a subquery, printed elsewhere
                "CREATE VIEW lk_in AS SELECT a FROM t WHERE a IN "
                "(SELECT a FROM t LOCK IN SHARE MODE)",
                "CREATE VIEW lk_scalar AS SELECT a, (SELECT MAX(a) FROM t FOR UPDATE) AS m FROM t",
                "CREATE VIEW lk_derived AS SELECT x.a FROM (SELECT a FROM t LOCK IN SHARE MODE) x",
                "CREATE VIEW lk_with AS WITH x AS (SELECT a FROM t LOCK IN SHARE MODE) "
                "SELECT a FROM x",
                "CREATE VIEW lk_union AS SELECT a FROM t UNION SELECT a FROM t LOCK IN SHARE MODE",
                # DEFAULT(col) running NEXTVAL
                "CREATE SEQUENCE sq",
                "CREATE SEQUENCE sqa ENGINE=Aria",
                "CREATE TABLE td (a INT DEFAULT (NEXTVAL(sq)), b INT DEFAULT (NEXTVAL(sqa)))",
                "INSERT INTO td VALUES (0, 0)",
                "CREATE VIEW vd AS SELECT DEFAULT(a) AS a FROM td",
                "CREATE VIEW vsq AS SELECT next_not_cached_value AS n FROM sq",
                "CREATE VIEW vda AS SELECT DEFAULT(b) AS b FROM td",
                # a view of another (visible) schema, read through a view and a WITH
                f"CREATE VIEW `{SEEN}`.far AS SELECT a FROM `{name}`.t",
                f"CREATE VIEW near AS SELECT a FROM `{SEEN}`.far",
            )
            yield name
        finally:
            root(name, f"DROP DATABASE IF EXISTS `{OTHER}`", f"DROP DATABASE IF EXISTS `{SEEN}`")


def lock_owner(db: str) -> Any:
    return root(db, f"SELECT IS_USED_LOCK('{LOCK}')")[0][0]


def rows_of(src: Source, sql: str) -> int:
    return len(src.records(sql))


def failure_of(src: Source, read: Any) -> str:
    """The one line the block failed with, or what it returned (a break) as text."""
    try:
        return f"the block returned {src.consistent(read)!r}"
    except SnapshotRefused as refused:
        return str(refused)


# -- BREAK 1: a view named like the Sequence engine's in a schema the account cannot see --
@pytest.mark.parametrize(
    "view, shown",
    [("vseq", "SEQ_1_TO_3"), ("vseql", "SEQ_1_TO_4")],
    ids=["get-lock", "locking-read"],
)
def test_a_view_named_like_a_sequence_that_the_account_cannot_see_fails_the_block(
    db: str, source: Source, restore: None, view: str, shown: str
) -> None:
    """BREAK 1 (fixed): `vseq` reads root's `SEQ_1_TO_3` (GET_LOCK) in a schema the account
    has no privilege on, `vseql` its `SEQ_1_TO_4` (a locking read: the latest rows). The
    lookup finds no row for either, and an upper-case name is no Sequence engine table:
    the block fails in one line naming it; root sees no lock left after the read and the
    table's read before it counted 3 (under the break: no failure, the lock held by the
    block's connection, and `vseql` counted root's row the table's read did not)."""
    seen: dict[str, Any] = {}

    def read() -> tuple[int, int]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        try:
            return first, rows_of(source, f"SELECT * FROM {view}")
        finally:
            seen["lock"] = lock_owner(db)

    message = failure_of(source, read)
    assert seen["lock"] is None, seen  # under the break: the block's connection
    assert "\n" not in message and f"`{shown}`" in message, message
    assert "could not be looked up" in message
    assert count(source) == 4


def test_the_sequence_engines_own_table_read_through_a_view_keeps_one_moment(
    db: str, source: Source, restore: None
) -> None:
    """What the lower-case match still lets through: a view over `seq_1_to_3` (the
    engine's) is plain, and the block keeps one moment."""
    root(db, "CREATE OR REPLACE VIEW vs3 AS SELECT seq FROM seq_1_to_3")

    def read() -> tuple[int, int, int]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        return first, rows_of(source, "SELECT seq FROM vs3"), count(source)

    assert source.consistent(read) == (3, 3, 3)


# -- BREAK 2: a failed statement through a view the cached list calls a table ------------
def test_a_failed_statement_through_a_view_the_list_calls_a_table_fails_the_block(
    db: str, source: Source, restore: None
) -> None:
    """BREAK 2 (fixed): `tv` was a table when the list of views was read; root makes it a
    view whose GET_LOCK runs before its correlated subquery fails ("returns more than 1
    row"). Inside the block the failed read is followed by root's look: no lock is held
    (the connection went with it), the block's next read fails too, and so does the block,
    in one line naming `tv` and GET_LOCK; no transaction is left. Under the break the
    failed read left the block's connection holding the lock and the block read on."""
    root(db, "DROP VIEW IF EXISTS tv", "CREATE TABLE tv (a INT)", "INSERT INTO tv VALUES (1)")
    try:
        assert rows_of(source, "SELECT a FROM tv") == 1  # the list: `tv` is a table
        root(db, "DROP TABLE tv",
             f"CREATE VIEW tv AS SELECT r.a, GET_LOCK('{LOCK}', 0) AS g, "
             "(SELECT x.a FROM t x WHERE x.a >= r.a) AS s FROM t r")  # fmt: skip
        seen: dict[str, Any] = {}

        def read() -> int:
            seen["thread"] = int(source.records("SELECT CONNECTION_ID() AS c")[0]["c"])
            with pytest.raises(HybridwbError) as failed:
                source.records("SELECT a, g, s FROM tv")
            seen["first"] = str(failed.value)
            seen["lock"] = lock_owner(db)
            return count(source)  # a block that caught the failure reads on

        message = failure_of(source, read)
        assert seen["lock"] is None, seen  # under the break: the block's connection
        assert message == seen["first"]
        assert "\n" not in message and "`tv`" in message and "GET_LOCK" in message
        assert open_transactions(db, seen["thread"]) == []
        assert lock_owner(db) is None
        assert count(source) == 3
    finally:
        root(db, "DROP TABLE IF EXISTS tv", "DROP VIEW IF EXISTS tv")


@pytest.mark.parametrize(
    "sql, error",
    [("SELECT (SELECT x.a FROM t x) AS s FROM t", "more than 1 row"),
     ("SELECT a FROM no_such_table", "no_such_table"),
     ("SELECT (SELECT x.a FROM pv x) AS s FROM pv", "more than 1 row")],
    ids=["tables", "missing-table", "plain-view"],
)  # fmt: skip
def test_a_failed_statement_over_tables_keeps_the_snapshot(
    db: str, source: Source, restore: None, sql: str, error: str
) -> None:
    """The fix reads a failed statement's names: tables and a plain view need nothing, nor
    does a name that is not there (never opened, so nothing ran): the server's error is
    raised and the block goes on in the same snapshot (root's row not counted), as round 60
    asks (before, a missing table or any view the list knew dropped the connection: the
    block's next read was `SnapshotLost` and the block ran again, three times)."""

    def read() -> tuple[int, int, int]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        with pytest.raises(HybridwbError) as failed:
            source.records(sql)
        assert not isinstance(failed.value, SnapshotRefused) and error in str(failed.value)
        it = int(source.records("SELECT @@in_transaction AS it")[0]["it"])
        return first, count(source), it

    assert source.consistent(read) == (3, 3, 1)


# -- BREAK 3: a sequence's row is not read at the snapshot's moment -----------------------
@pytest.mark.parametrize("sql", ["SELECT next_not_cached_value AS n FROM sq",
                                 "SELECT n FROM vsq"], ids=["sequence", "view-over-it"])  # fmt: skip
def test_a_sequence_read_in_the_block_fails_it(
    db: str, source: Source, restore: None, sql: str
) -> None:
    """BREAK 3 (fixed): a sequence's row (directly or through a view) is read as it is at
    each statement: root's NEXTVAL calls between two reads of the block were seen by the
    second, silently. Now the block fails in one line at the first read naming `sq`."""
    seen: list[int] = []

    def read() -> None:
        seen.append(int(source.records(sql)[0]["n"]))
        root(db, *["SELECT NEXTVAL(sq)"] * 1001)  # past the sequence's cache: written
        seen.append(int(source.records(sql)[0]["n"]))

    message = failure_of(source, read)
    assert seen == [], seen  # under the break: [1, 2001], root's NEXTVALs seen by the second
    assert "\n" not in message and "`sq`" in message and "is a sequence" in message, message
    assert "read the sequence outside the block" in message


# -- BREAK 4: the server ends the snapshot (a metadata-lock deadlock with root's DDL) -----
def swap_names(db: str) -> None:
    """Root's RENAME that takes `a2`'s metadata lock, then waits for `t`'s (the block's):
    names swapped there and back, so nothing changes once it runs."""
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True, database=db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 10")
            cur.execute("RENAME TABLE a2 TO a2x, a2x TO a2, t TO tq, tq TO t")
    finally:
        conn.close()


def test_a_block_whose_transaction_the_server_ended_is_read_again_whole(
    db: str, source: Source, restore: None
) -> None:
    """BREAK 4 (fixed): the block read `t`; root's RENAME holds `a2`'s lock and waits for
    `t`'s; the block's read of `a2` is the deadlock's victim, and the server rolls the
    block's transaction back. The block catches the error (as `read_related` does and
    reads once more): under the break its next read was an autocommit read counting root's
    row (3, then 4, silently). Now the failed read raises `SnapshotLost` and the block is
    read again whole, in a new snapshot: both counts of one moment."""
    root(db, "CREATE TABLE a2 (a INT)", "INSERT INTO a2 VALUES (1)")
    attempts: list[int] = []
    try:

        def read() -> tuple[int, int]:
            attempts.append(len(attempts) + 1)
            first = count(source)
            swap = threading.Thread(target=swap_names, args=(db,))
            if len(attempts) == 1:
                swap.start()
                time.sleep(0.5)  # the RENAME holds a2's lock and waits for t's
            try:
                try:
                    source.records("SELECT a FROM a2")
                except SnapshotLost:
                    raise
                except HybridwbError:
                    pass  # `read_related`: read once more
            finally:
                if swap.is_alive() or swap.ident is not None:
                    swap.join()
            if len(attempts) == 1:
                root(db, "INSERT INTO t VALUES (4)")
            return first, count(source)

        first, second = source.consistent(read)
        assert first == second, (first, second, attempts)
        assert attempts == [1, 2]
    finally:
        root(db, "DROP TABLE IF EXISTS a2")


# -- held: what names_read finds -----------------------------------------------------------
SHAPES = {
    "json-table-argument": "SELECT j.x FROM JSON_TABLE((SELECT JSON_ARRAYAGG(g) FROM vl), "
    "'$[*]' COLUMNS (x INT PATH '$')) j",
    "select-list": "SELECT (SELECT MAX(g) FROM vl) AS m",
    "where-in": "SELECT a FROM t WHERE a IN (SELECT g FROM vl)",
    "having": "SELECT COUNT(*) AS n FROM t GROUP BY a HAVING MAX(a) > (SELECT MIN(g) FROM vl)",
    "order-by": "SELECT a FROM t ORDER BY (SELECT MAX(g) FROM vl)",
    "window": "SELECT a FROM t WINDOW w AS (ORDER BY (SELECT MAX(g) FROM vl))",
    "exists": "SELECT a FROM t WHERE EXISTS (SELECT g FROM vl)",
    "any": "SELECT a FROM t WHERE a = ANY (SELECT g FROM vl)",
    "row-in": "SELECT a FROM t WHERE (a, 1) IN (SELECT a, g FROM vl)",
    "with-inside-derived": "SELECT g FROM (WITH vl AS (SELECT 1 AS g) SELECT g FROM vl) x "
    "UNION ALL SELECT g FROM vl",
    "earlier-with-entry": "WITH a AS (SELECT g FROM vl), vl AS (SELECT g FROM a) SELECT g FROM vl",
    "parenthesised-table": "SELECT * FROM (vl)",
    "parenthesised-join": "SELECT * FROM (t JOIN vl ON 1)",
    "union": "SELECT a FROM t UNION SELECT g FROM vl",
    "intersect": "SELECT a FROM t INTERSECT SELECT g FROM vl",
    "except": "SELECT a FROM t EXCEPT SELECT g FROM vl",
    "parenthesised-statement": "(SELECT g FROM vl)",
    "window-function": "SELECT MAX(g) OVER () AS m FROM vl",
    "qualified-with-spaces": "SELECT g FROM {db} . vl",
    "straight-join": "SELECT g FROM t STRAIGHT_JOIN vl",
    "natural-join": "SELECT g FROM t NATURAL JOIN vl",
    "using": "SELECT g FROM t JOIN vl USING (a)",
    "nested-derived": "SELECT * FROM (SELECT * FROM (SELECT g FROM vl) y) z",
    "with-in-where": "SELECT a FROM t WHERE a = (WITH x AS (SELECT g FROM vl) SELECT MAX(g) FROM x)",
}


@pytest.mark.parametrize("sql", list(SHAPES.values()), ids=list(SHAPES))
def test_a_view_named_anywhere_in_the_statement_is_judged(
    db: str, source: Source, sql: str
) -> None:
    """Wherever the statement names `vl` (GET_LOCK), the block fails in one line naming
    it, and root sees no lock held after."""
    seen: dict[str, Any] = {}

    def read() -> None:
        try:
            source.records(sql.format(db=db))
        finally:
            seen["lock"] = lock_owner(db)

    with pytest.raises(SnapshotRefused, match="`vl` calls GET_LOCK") as refused:
        source.consistent(read)
    assert "\n" not in str(refused.value) and seen["lock"] is None


def test_a_with_named_like_the_view_in_another_case_is_the_withs(
    db: str, source: Source, restore: None
) -> None:
    """MariaDB compares a WITH's name without case (as `own_ctes` does): `WITH VL ...
    FROM vl` reads the WITH, runs nothing, and the block keeps one moment."""

    def read() -> tuple[int, int, Any]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        got = source.records("WITH VL AS (SELECT a FROM t) SELECT COUNT(*) AS n FROM vl")
        return first, int(got[0]["n"]), lock_owner(db)

    assert source.consistent(read) == (3, 3, None)


def test_a_recursive_withs_forward_name_is_the_withs(
    db: str, source: Source, restore: None
) -> None:
    """WITH RECURSIVE: an earlier entry naming a later entry called `vl` reads the WITH
    (MariaDB's mutual recursion), as `own_ctes` says: nothing of the view ran (root sees
    no lock) and the block keeps one moment."""

    def read() -> tuple[int, int, Any]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        got = source.records(
            "WITH RECURSIVE a AS (SELECT g FROM vl), vl AS (SELECT 1 AS g) SELECT g FROM a"
        )
        return first, len(got) + count(source) - 1, lock_owner(db)

    assert source.consistent(read) == (3, 3, None)


def test_odbc_join_syntax_is_refused_by_the_guard(db: str, source: Source) -> None:
    with pytest.raises(HybridwbError) as refused:
        source.consistent(lambda: source.records("SELECT * FROM {oj t LEFT OUTER JOIN vl ON 1}"))
    assert "\n" not in str(refused.value)
    assert lock_owner(db) is None


def test_a_table_and_a_view_named_alike_in_two_cases_are_told_apart(
    db: str, source: Source, restore: None
) -> None:
    """lower_case_table_names=0: the table `VL` beside the view `vl` (GET_LOCK). The lookup
    is exact: `VL` is read plain in one moment, `vl` is refused."""

    def read() -> tuple[int, int, int]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        return first, rows_of(source, "SELECT a FROM VL"), count(source)

    assert source.consistent(read) == (3, 1, 3)
    with pytest.raises(SnapshotRefused, match="`vl`"):
        source.consistent(lambda: rows_of(source, "SELECT a, g FROM vl"))
    assert lock_owner(db) is None


# -- held: locking reads, DEFAULT(), a schema named like the server's ----------------------
@pytest.mark.parametrize(
    "view, refused",
    [("lk_in", False), ("lk_scalar", False), ("lk_derived", True), ("lk_with", True),
     ("lk_union", True)],
    ids=["in-subquery", "scalar-subquery", "derived", "with", "union"],
)  # fmt: skip
def test_a_locking_read_in_a_view_is_refused_or_never_run(
    db: str, source: Source, restore: None, view: str, refused: bool
) -> None:
    """A locking read reads the latest rows. MariaDB drops it from a subquery (not printed,
    not run): such a view is plain and counts what the block's table read counts, not
    root's row committed meanwhile. In a derived table, a WITH, a UNION it is printed
    and the block fails in one line."""

    def read() -> tuple[int, int]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        return first, rows_of(source, f"SELECT a FROM {view}")

    if refused:
        with pytest.raises(SnapshotRefused, match="LOCK IN SHARE MODE"):
            source.consistent(read)
    else:
        assert source.consistent(read) == (3, 3)


@pytest.mark.parametrize("view, sequence", [("vd", "sq"), ("vda", "sqa")], ids=["innodb", "aria"])
def test_default_of_a_column_whose_default_is_nextval_writes_nothing(
    db: str, source: Source, view: str, sequence: str
) -> None:
    """DEFAULT(col) is allowlisted, and `td.a`'s DEFAULT is NEXTVAL(sq): the view is plain by
    the judgement, but the READ ONLY transaction refuses the write in one line, and root
    sees the sequence as it was (InnoDB and Aria sequences)."""
    before = root(db, f"SELECT next_not_cached_value FROM {sequence}")
    with pytest.raises(HybridwbError) as failed:
        source.consistent(lambda: source.records(f"SELECT * FROM {view}"))
    assert "\n" not in str(failed.value)
    assert root(db, f"SELECT next_not_cached_value FROM {sequence}") == before
    with pytest.raises(pymysql.err.OperationalError) as impossible:
        root(db, "CREATE TABLE tg (a INT DEFAULT (GET_LOCK('x', 0)))")
    assert impossible.value.args[0] == 1901


def test_no_view_can_be_made_in_a_schema_named_like_performance_schema(db: str) -> None:
    """`names_read` skips the server's own schemas by their lower-case names; root may make
    a schema `Performance_Schema` in another case, but no view in it (error 1044)."""
    name = "".join(c.upper() if random.random() < 0.5 else c for c in "performance_schema")
    name = name if name != "performance_schema" else "Performance_schema"
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True, ssl_disabled=True)
    try:
        with conn.cursor() as cur:
            # (refused outright, there is nothing to make a view in either)
            with contextlib.suppress(pymysql.err.OperationalError):
                cur.execute(f"CREATE DATABASE `{name}`")
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cur.execute(f"CREATE VIEW `{name}`.v AS SELECT 1 AS a")
            assert denied.value.args[0] in (1044, 1049)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def test_a_view_of_another_schema_read_through_a_with_cannot_be_replaced_meanwhile(
    db: str, source: Source, restore: None
) -> None:
    """`near` (the block's schema) reads `far` (another schema), read here through a WITH:
    root's `CREATE OR REPLACE VIEW` of `far` waits for the block's metadata locks, so the
    definition read after the statement is the one it ran."""
    waited: list[int] = []

    def read() -> int:
        n = int(
            source.records("WITH w AS (SELECT a FROM near) SELECT COUNT(*) AS n FROM w")[0]["n"]
        )
        with root_cursor(db) as cur:
            cur.execute("SET SESSION lock_wait_timeout = 1")
            with pytest.raises(pymysql.err.OperationalError) as waits:
                cur.execute(f"CREATE OR REPLACE VIEW `{SEEN}`.far AS SELECT a FROM `{db}`.vl")
            waited.append(int(waits.value.args[0]))
        return n

    assert source.consistent(read) == 3
    assert waited == [1205]


# -- the workflow: an audience view over root's view the account cannot see ---------------
@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    other = f"h62w_{secrets.token_hex(3)}"
    made = iter(mariadb_db("hybridwb_atk62w", *SHOP_DDL, rows=SHOP_ROWS))
    name = next(made)
    try:
        root(name, f"CREATE DATABASE `{other}`",
             f"CREATE VIEW `{other}`.SEQ_9_TO_9 AS SELECT cid, name, GET_LOCK('{LOCK}', 0) "
             f"AS g FROM `{name}`.vcust",
             f"CREATE VIEW hidden_aud AS SELECT s.cid, s.name, s.g, p.phone FROM "
             f"`{other}`.SEQ_9_TO_9 s JOIN plain_aud p ON p.cid = s.cid")  # fmt: skip
        yield name
    finally:
        root(name, f"DROP DATABASE IF EXISTS `{other}`")
        next(made, None)


def test_a_run_whose_audience_reads_a_hidden_view_fails_in_one_line(
    shop: str, tmp_path: Path
) -> None:
    """BREAK 1 in a run: the audience view reads root's `SEQ_9_TO_9` in a schema the
    account cannot see (its code never judged) and the template reads related values (a
    snapshot): the run fails in one line naming it, nobody messaged, the run failed."""
    mapping = audience_mapping()
    mapping["fields"]["g"] = F("잠금", "number")
    wb, path = connect(ro_url(shop).render_as_string(hide_password=False), tmp_path)
    with wb:
        wb.mappings.save("vaddr", VADDR)
        wb.mappings.save("hidden_aud", mapping)
        with pytest.raises(HybridwbError) as failed:
            run(wb, {"table": "hidden_aud"}, TEMPLATE)
    message = str(failed.value)
    assert "\n" not in message and "`SEQ_9_TO_9`" in message, message
    assert sent(path) == {}
    assert store_rows(path, "SELECT status FROM workflow_runs") == [("failed",)]
    assert lock_owner(shop) is None
