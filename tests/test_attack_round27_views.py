# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Attack round 27 on the read path's read-back after server code: a statement that names a
view (server code the guard never saw) is read back and reset after it, a base table is not.
The schema's list of tables is kept 10 s; a name not in it counts as a view — except a
Sequence-engine name (`seq_1_to_100`), which is no table in any list. That exception was
matched on the name in lower case: a view named `SEQ_1_TO_2` (MariaDB tells it from the
engine's `seq_1_to_2`; MySQL has no Sequence engine at all, so there even `seq_1_to_2` can
be a view) made after the list was read ran its function with no read-back. On the pinned
connection of `one_connection()` (a search's probe and page) the next read then ran on the
session the function left: here writable, and a view's INSERT committed.

Oracle: the rows of the written table, counted by root; a private account with every
privilege on a private database, so only the session stands in the way.
"""

from __future__ import annotations

import pytest

from tests.test_attack_round27_reconnect import (  # noqa: F401
    _source,
    _written,
    read_then_write_pinned,
    view_that_unsets,
    writer,
)

pytestmark = pytest.mark.mysql


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_a_new_view_named_like_a_sequence_table_is_read_back_on_a_pinned_connection(
    writer: tuple[str, str, str], driver: str
) -> None:
    """Before: the `v_write` read after it committed its INSERT. Mutation: match the
    Sequence-engine exception on the lower-cased name again (drop `prepared.sequences`
    in Source.reads_view) -> 2 of 2 fail."""
    db = writer[0]
    src = _source(*writer, driver=driver)
    try:
        src.records("SELECT a FROM t")  # the schema's list is read (and kept 10 s)
        view_that_unsets(db, "SEQ_1_TO_2")
        read_then_write_pinned(src, "SELECT x FROM SEQ_1_TO_2")
    finally:
        src.close()
    assert _written(db) == 0


def test_the_sequence_engines_own_tables_are_still_not_read_back(
    writer: tuple[str, str, str],
) -> None:
    """`seq_1_to_3` as written is the engine's: no read-back (and no list read for it)."""
    src = _source(*writer, driver="pymysql")
    try:
        prepared = src.prepare("SELECT seq FROM seq_1_to_3")
        src.records("SELECT a FROM t")
        assert src.reads_view(prepared) is False
        assert src.reads_view(src.prepare("SELECT seq FROM SEQ_1_TO_3")) is True
        assert [r["seq"] for r in src.records("SELECT seq FROM seq_1_to_3")] == [1, 2, 3]
    finally:
        src.close()


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_a_new_view_read_beside_a_with_of_its_name_is_read_back_on_a_pinned_connection(
    writer: tuple[str, str, str], driver: str
) -> None:
    """The other exception (round 3's residue 5): a name not in the list that is also a
    WITH entry of the statement counted as that entry wherever it was read. In
    `SELECT x FROM nv, (WITH nv AS (...) SELECT y FROM nv) z` the first `nv` is the view.
    Before: the `v_write` read after it committed its INSERT. Mutation: `own_ctes` returns
    every WITH name again -> 2 of 2 fail."""
    db = writer[0]
    src = _source(*writer, driver=driver)
    try:
        src.records("SELECT a FROM t")  # the schema's list is read (and kept 10 s)
        view_that_unsets(db, "nv")
        read_then_write_pinned(
            src, "SELECT x FROM nv, (WITH nv AS (SELECT 1 AS y) SELECT y FROM nv) z"
        )
    finally:
        src.close()
    assert _written(db) == 0


@pytest.mark.parametrize(
    "query, own",
    [
        ("WITH v AS (SELECT 1) SELECT * FROM v", ["v"]),
        ("SELECT x FROM v, (WITH v AS (SELECT 1 AS y) SELECT y FROM v) z", []),
        ("WITH v AS (SELECT * FROM v) SELECT * FROM v", []),  # not RECURSIVE: the table
        (
            "WITH RECURSIVE v AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM v WHERE n < 3) "
            "SELECT * FROM v",
            ["v"],
        ),
        ("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b", ["a"]),
        ("WITH b AS (SELECT 1), a AS (SELECT * FROM b) SELECT * FROM a", ["a", "b"]),
        ("WITH v AS (SELECT 1) SELECT * FROM v UNION SELECT * FROM v", ["v"]),
        (
            "WITH v AS (SELECT 1) SELECT * FROM (SELECT * FROM v) s WHERE EXISTS (SELECT 1 FROM v)",
            ["v"],
        ),
        ("SELECT * FROM (WITH v AS (SELECT 1) SELECT * FROM v) a UNION SELECT * FROM v", []),
    ],
    ids=[
        "plain",
        "other-subquery",
        "own-body",
        "recursive",
        "later-entry",
        "earlier-entry",
        "union",
        "nested",
        "union-outside",
    ],
)
def test_a_with_name_counts_as_its_entry_only_where_the_entry_is_in_scope(
    query: str, own: list[str]
) -> None:
    from hybridwb.source import guard
    from hybridwb.source.source import own_ctes

    assert sorted(own_ctes(guard.check(query).expression)) == own
