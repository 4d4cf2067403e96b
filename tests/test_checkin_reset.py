# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Every checkin resets the source connection (COM_RESET_CONNECTION ahead of the session
SET, `session.send_next_session`): what a view's function leaves on a session that no SET
names never reaches the pool's next read. The view is a table replaced by root within the
view list's seconds (`_replaced`: hybridwb still takes it for a table, so nothing reads the
session back after it). Oracles: root's rows and root's `@@global` values; the server's
own session values selected inside the next statement.
"""

from __future__ import annotations

import contextlib

import pytest

from hybridwb.errors import HybridwbError
from tests._mysql import as_root
from tests.test_attack_round27_reconnect import (  # noqa: F401
    _source,
    source_url,
    writer,
)
from tests.test_attack_round47_readonly import (
    DRIVERS,
    MAKES_TEMPORARY_T,
    _replaced,
    _root_rows,
    known_view_making_t,
)

pytestmark = pytest.mark.mysql


@pytest.mark.parametrize("driver", DRIVERS)
def test_session_state_no_set_names_is_gone_on_the_next_read(
    writer: tuple[str, str, str], driver: str
) -> None:
    """The isolation level, `div_precision_increment` and a temporary table: all back to
    what a new session has (the guard refuses reading a user variable at all)."""
    db = writer[0]
    truth = [r[0] for r in _root_rows(f"SELECT a FROM `{db}`.t ORDER BY a")]
    default_precision, default_isolation = _root_rows(
        "SELECT @@global.div_precision_increment, @@global.tx_isolation"
    )[0]
    src = _source(*writer, driver=driver)
    try:
        _replaced(
            db,
            src,
            "SET SESSION div_precision_increment = 17; "
            "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE; " + MAKES_TEMPORARY_T,
        )
        with contextlib.suppress(HybridwbError):
            src.records("SELECT x FROM t2")
        seen = src.records(
            "SELECT @@session.div_precision_increment AS p, @@session.tx_isolation AS i"
        )[0]
        later = [r["a"] for r in src.records("SELECT a FROM t ORDER BY a")]
    finally:
        src.close()
    assert seen == {"p": default_precision, "i": default_isolation}
    assert later == truth


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_connection_checked_in_mid_result_is_reset_or_replaced(
    writer: tuple[str, str, str], driver: str
) -> None:
    """A connection given back while a streamed result is still open cannot take the
    reset at checkin (nothing may be written before the rows are read): its next checkout
    resets it, or the pool replaces it. Either way the temporary table its function made
    does not shadow the base table."""
    db = writer[0]
    truth = [r[0] for r in _root_rows(f"SELECT a FROM `{db}`.t ORDER BY a")]
    as_root(
        f"CREATE TABLE `{db}`.many (n INT)",
        f"INSERT INTO `{db}`.many SELECT seq FROM `{db}`.seq_1_to_5000",
    )
    src = _source(*writer, driver=driver)
    try:
        _replaced(
            db,
            src,
            MAKES_TEMPORARY_T,
        )
        src.engine.dispose()  # one pooled connection: the next checkout is the same one
        proxied = src.engine.raw_connection()
        raw = proxied.driver_connection
        cursor = raw.cursor()
        cursor.execute("SELECT x FROM t2")  # the function runs: the temporary table
        assert cursor.fetchall() == ((1,),)
        streaming = _streaming_cursor(raw, driver)
        streaming.execute("SELECT n FROM many")
        assert streaming.fetchone() is not None  # the rest of the rows are not read
        proxied.close()  # checked in mid-result
        with src.engine.connect() as conn:  # the pool's one connection, or its replacement
            later = [r[0] for r in conn.exec_driver_sql("SELECT a FROM t ORDER BY a")]
    finally:
        src.close()
    assert later == truth


def _streaming_cursor(raw: object, driver: str) -> object:
    if driver == "pymysql":
        import pymysql.cursors

        return raw.cursor(pymysql.cursors.SSCursor)  # type: ignore[attr-defined]
    import MySQLdb.cursors

    return raw.cursor(MySQLdb.cursors.SSCursor)  # type: ignore[attr-defined]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_connection_kept_checked_out_is_reset_after_a_view(
    writer: tuple[str, str, str], driver: str
) -> None:
    """jupysql keeps one engine connection for the whole notebook, so no checkin comes
    between two cells: a known view's function that makes a temporary table `t` (and sets
    READ ONLY back, so the read-back passes) must not shadow the base table `t` for the next
    statement on it; nor on `Source`'s own pinned connection (`one_connection()`)."""
    from sqlalchemy import text

    truth = known_view_making_t(writer[0])
    src = _source(*writer, driver=driver)
    try:
        with src.engine.connect() as conn:
            with contextlib.suppress(HybridwbError):
                conn.execute(text("SELECT x FROM vk")).fetchall()
            on_engine = [r[0] for r in conn.execute(text("SELECT a FROM t ORDER BY a"))]
            writable = conn.execute(text("SELECT @@session.tx_read_only")).scalar()
        with src.one_connection():
            with contextlib.suppress(HybridwbError):
                src.records("SELECT x FROM vk")
            pinned = [r["a"] for r in src.records("SELECT a FROM t ORDER BY a")]
    finally:
        src.close()
    assert on_engine == truth
    assert pinned == truth
    assert int(writable) == 1
