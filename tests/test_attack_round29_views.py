# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Attack round 29 on the read path's read-back after server code: a name the schema's
list (kept 10 s, `cache.ViewNames`) knew as a base table may be a view by now.

A table replaced by a view (`DROP TABLE t2; CREATE VIEW t2 AS ...`, a usual refactor: the
old name kept as a compatibility view) within the list's ten seconds still counted as a
plain table, so a read of it was not read back: its function ran `SET SESSION
tx_read_only = 0`, and on the pinned connection of `one_connection()` (a search's probe and
page) the next read ran writable and a view's INSERT committed.

Oracle: the rows of the written table, counted by root; a private account with every
privilege on a private database, so only the session stands in the way.
"""

from __future__ import annotations

import pytest

from tests._mysql import as_root
from tests.test_attack_round27_reconnect import (  # noqa: F401
    _source,
    _written,
    read_then_write_pinned,
    view_that_unsets,
    writer,
)

pytestmark = pytest.mark.mysql


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_a_table_replaced_by_a_view_is_read_back_on_a_pinned_connection(
    writer: tuple[str, str, str], driver: str
) -> None:
    """BREAK: `t2` is listed as a base table; root replaces it by a view whose function
    makes the session writable; the pinned connection's next read (`v_write`) must not
    commit its INSERT."""
    db = writer[0]
    as_root(f"CREATE TABLE `{db}`.t2 (x INT)", f"INSERT INTO `{db}`.t2 VALUES (1)")
    src = _source(*writer, driver=driver)
    try:
        assert src.records("SELECT x FROM t2") == [{"x": 1}]  # listed: a base table
        as_root(f"DROP TABLE `{db}`.t2")
        view_that_unsets(db, "t2")
        read_then_write_pinned(src, "SELECT x FROM t2")
    finally:
        src.close()
    assert _written(db) == 0
