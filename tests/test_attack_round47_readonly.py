# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Round 47, the read-only guarantee after `lead`'s f6fef1b: on a pinned connection
(`Source.one_connection()`, a search's probe then its page) the SELECT after a read of a
table carries `SET STATEMENT tx_read_only = 1, max_statement_time, sql_select_limit FOR`
on MariaDB instead of a session SET. The table is replaced by a view (root, within the view
list's 10 s) whose function runs what each test names; a private account with ALL on a
private database. Oracles: root's rows (`w`, the tables read), IS_USED_LOCK, INNODB_TRX.

BREAKS found here:
1. (f6fef1b, fixed) MariaDB restores the client and connection character sets when a
   routine returns, not `character_set_results`: a function's `SET NAMES gbk` or `SET
   character_set_results = latin1` stayed, and the page (no SET NAMES before it any more)
   came back in latin1: UnicodeDecodeError out of `records()` (not a HybridwbError) on
   both drivers. Fixed: the prefix sets `character_set_results = utf8mb4` too.
2. (f6fef1b, fixed) a named lock the function took (`GET_LOCK`) stayed held after the page,
   until the block ended (before: released by the SET ahead of the page). Fixed: the
   prefix's cap is `N + 0 * RELEASE_ALL_LOCKS()`, evaluated before the statement runs
   (still held between the probe and the page, as before f6fef1b).
3. (older than f6fef1b; fixed on the pool in stop 45, not between a probe and its page) a
   function that runs `SET SESSION tx_read_only = 0`
   first can, in the same statement, `CREATE TEMPORARY TABLE t` (read-only is checked per
   sub-statement; only base tables are prelocked): it shadows the base table `t` for the
   page and for every later read on that pooled connection (neither the session SET nor
   the prefix clears it; only `Source`'s COM_RESET_CONNECTION after a known view does).
   Seen: a replaced table on the pinned path, on `records()` unpinned, wb.search end to
   end (the page returned a row production does not have), and on `wb.source.engine`
   (pandas) even for a KNOWN view whose function sets READ ONLY back: the engine path
   reads the session back but never resets it.
4. (older, fixed in stop 45: every checkin sends COM_RESET_CONNECTION ahead of the session
   SET, `send_next_session`) likewise any session variable no SET names: `time_zone` left on the
   pooled connection shifts every later TIMESTAMP read (seen on a raw session, not
   through hybridwb: SET ROLE, the isolation level, `insert_id`, `pseudo_thread_id`,
   `character_set_results` all outlive a function; the fix is COM_RESET_CONNECTION).
5. (older than f6fef1b, fixed) a known view's function set `completion_type = CHAIN`
   (not read back, not pinned): the client's next COMMIT (`conn.commit()` on
   `wb.source.engine`; jupysql after every cell when it cannot set AUTOCOMMIT) chained a
   transaction, and the reads after it held their tables' metadata locks: root's ALTER
   TABLE waited, on both drivers. Fixed: the read-back reads `completion_type`, the
   session SET pins it to NO_CHAIN.
Held (one line each; both drivers unless said):
- the prefix against what a function leaves (`tx_read_only = 0`, READ WRITE, the limits:
  the lead's tests), then the page reads `v_write` (INSERT): nothing committed, no
  transaction left open: `completion_type = CHAIN` + SERIALIZABLE, `SET NAMES gbk` +
  `sql_mode = ORACLE`, a user variable, `SAVEPOINT`, `XA START` (fails at run:
  XAER_OUTSIDE);
- refused when the function is made: `SET autocommit`, `START TRANSACTION`, `PREPARE`,
  `HANDLER`, `LOCK TABLES`, `CREATE TEMPORARY SEQUENCE`; at run: `SET sql_log_bin`,
  `skip_replication`;
- the page's own view function unsetting read-only then INSERTing (one statement): the
  INSERT's table is prelocked under the statement's READ ONLY → refused, nothing written;
- a view over NEXTVAL / a function's NEXTVAL under the prefix → refused (sequence prelocked);
- `character_set_client`, `collation_connection`, `sql_mode` (ANSI_QUOTES, ORACLE) set by a
  function are back after it returns (as the commit says);
- wb.search end to end, `f` swapped for a writing view between probe and page: nothing
  written (the page's FORCE INDEX on a view fails before its code runs, not the prefix);
- SELECT ... FOR UPDATE / LOCK IN SHARE MODE / INTO: refused by the guard before any prefix.
Residue seen, not in hybridwb's reach: a root-defined function's `SELECT ... INTO OUTFILE`
writes its file under READ ONLY (the definer's FILE privilege, like round 3's SET GLOBAL).
Not the guarantee (reported): a pinned read of a known view, or one with an explicit LIMIT
over its cap, with a per-query limit/timeout after the prefix → ReadOnlyViolation (its
read-back compares the session, never set to that policy).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from hybridwb.source import Source
from tests._mysql import as_root, root
from tests.test_attack_round27_reconnect import (  # noqa: F401
    _source,
    _written,
    source_url,
    writer,
)

pytestmark = pytest.mark.mysql

DRIVERS = ["pymysql", "mysqldb"]


def _replaced(db: str, src: Source, body: str) -> None:
    """`t2` read once (listed as a base table), then replaced by root with a view whose
    function runs `body`."""
    as_root(f"CREATE TABLE `{db}`.t2 (x INT)", f"INSERT INTO `{db}`.t2 VALUES (1)")
    assert src.records("SELECT x FROM t2") == [{"x": 1}]
    as_root(
        f"DROP TABLE `{db}`.t2",
        f"CREATE FUNCTION `{db}`.meddle() RETURNS INT BEGIN {body}; RETURN 1; END",
        f"CREATE VIEW `{db}`.t2 AS SELECT `{db}`.meddle() AS x",
    )


#: a function body that makes the session writable and a temporary table `t` (named like
#: the base table `t`) holding 99
MAKES_TEMPORARY_T = (
    "SET SESSION tx_read_only = 0; CREATE TEMPORARY TABLE t (a INT); INSERT INTO t VALUES (99)"
)


def known_view_making_t(db: str) -> list[object]:
    """Root makes the view `vk`, whose function makes a temporary table `t` (named like
    the base table `t`) holding 99 and sets READ ONLY back (so a read-back passes); returns
    the base table's `a` values as root reads them."""
    as_root(
        f"CREATE FUNCTION `{db}`.fake() RETURNS INT BEGIN SET SESSION tx_read_only = 0; "
        "CREATE TEMPORARY TABLE IF NOT EXISTS t (a INT); INSERT INTO t VALUES (99); "
        "SET SESSION tx_read_only = 1; RETURN 1; END",
        f"CREATE VIEW `{db}`.vk AS SELECT `{db}`.fake() AS x",
    )
    return [r[0] for r in _root_rows(f"SELECT a FROM `{db}`.t ORDER BY a")]


def _root_rows(sql: str) -> list[tuple[object, ...]]:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def _open_transactions(user: str) -> int:
    """Root: InnoDB transactions open on the account's connections."""
    return int(
        _root_rows(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX x "
            "JOIN information_schema.PROCESSLIST p ON x.trx_mysql_thread_id = p.ID "
            f"WHERE p.USER = '{user}'"
        )[0][0]
    )


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize(
    "body",
    ["SET character_set_results = 'latin1'", "SET NAMES gbk"],
    ids=["results-latin1", "names-gbk"],
)
def test_the_page_reads_utf8mb4_whatever_the_function_left(
    writer: tuple[str, str, str], driver: str, body: str
) -> None:
    """BREAK 1 (fixed): the page's non-ASCII value is root's, not a decode error."""
    db = writer[0]
    as_root(
        f"CREATE TABLE `{db}`.u (s VARCHAR(10)) CHARACTER SET utf8mb4",
        f"INSERT INTO `{db}`.u VALUES ('é한글')",
    )
    src = _source(*writer, driver=driver)
    try:
        _replaced(db, src, body)
        with src.one_connection():
            src.records("SELECT x FROM t2")
            got = src.records("SELECT s FROM u")
    finally:
        src.close()
    assert [r["s"] for r in got] == [r[0] for r in _root_rows(f"SELECT s FROM `{db}`.u")]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_named_lock_the_function_took_is_not_held_after_the_page(
    writer: tuple[str, str, str], driver: str
) -> None:
    """BREAK 2 (fixed): root sees the lock free once the page has run."""
    db = writer[0]
    lock = f"{db}_lock"
    src = _source(*writer, driver=driver)
    try:
        _replaced(db, src, f"DO GET_LOCK('{lock}', 0)")
        with src.one_connection():
            src.records("SELECT x FROM t2")
            taken = _root_rows(f"SELECT IS_USED_LOCK('{lock}')")[0][0]
            assert src.records("SELECT a FROM t ORDER BY a") == [{"a": 1}, {"a": 2}]
            held = _root_rows(f"SELECT IS_USED_LOCK('{lock}')")[0][0]
    finally:
        src.close()
    assert taken is not None  # the function ran and took it (between probe and page)
    assert held is None


@pytest.mark.xfail(
    strict=True,
    reason="BREAK: a replaced table's function unsets read-only, then CREATE TEMPORARY "
    "TABLE t in the same statement: it shadows the base table t for the page and every "
    "later read on that pooled connection",
)
@pytest.mark.parametrize("driver", DRIVERS)
def test_break_a_temporary_table_does_not_shadow_a_base_table(
    writer: tuple[str, str, str], driver: str
) -> None:
    db = writer[0]
    truth = [{"a": r[0]} for r in _root_rows(f"SELECT a FROM `{db}`.t ORDER BY a")]
    src = _source(*writer, driver=driver)
    pages, later = [], []
    try:
        _replaced(
            db,
            src,
            MAKES_TEMPORARY_T,
        )
        with contextlib.suppress(HybridwbError), src.one_connection():
            src.records("SELECT x FROM t2")
            pages = src.records("SELECT a FROM t ORDER BY a")
        later = src.records("SELECT a FROM t ORDER BY a")  # the pool's connection
    finally:
        src.close()
    assert pages in ([], truth)
    assert later == truth


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("path", ["records", "engine"])
def test_a_temporary_table_stays_on_the_pool(
    writer: tuple[str, str, str], driver: str, path: str
) -> None:
    db = writer[0]
    truth = [r[0] for r in _root_rows(f"SELECT a FROM `{db}`.t ORDER BY a")]
    src = _source(*writer, driver=driver)
    try:
        _replaced(
            db,
            src,
            MAKES_TEMPORARY_T,
        )
        with contextlib.suppress(HybridwbError):
            src.records("SELECT x FROM t2")
        if path == "records":
            later = [r["a"] for r in src.records("SELECT a FROM t ORDER BY a")]
        else:
            import pandas as pd
            from sqlalchemy import text

            with src.engine.connect() as conn, contextlib.suppress(HybridwbError):
                conn.execute(text("SELECT x FROM t2")).fetchall()  # read back: refused
            later = list(pd.read_sql(text("SELECT a FROM t ORDER BY a"), src.engine)["a"])
    finally:
        src.close()
    assert later == truth


@pytest.mark.parametrize("driver", DRIVERS)
def test_engine_a_known_views_temporary_table_stays_on_the_pool(
    writer: tuple[str, str, str], driver: str
) -> None:
    import pandas as pd
    from sqlalchemy import text

    db = writer[0]
    truth = known_view_making_t(db)
    src = _source(*writer, driver=driver)
    try:
        with contextlib.suppress(HybridwbError):
            pd.read_sql(text("SELECT x FROM vk"), src.engine)
        later = list(pd.read_sql(text("SELECT a FROM t ORDER BY a"), src.engine)["a"])
    finally:
        src.close()
    assert later == truth


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_time_zone_left_by_a_function_does_not_shift_later_reads(
    writer: tuple[str, str, str], driver: str
) -> None:
    db = writer[0]
    as_root(
        f"CREATE TABLE `{db}`.ts (c TIMESTAMP NULL)",
        f"INSERT INTO `{db}`.ts VALUES ('2020-01-01 00:00:00')",
    )
    truth = _root_rows(f"SELECT CAST(c AS CHAR) FROM `{db}`.ts")[0][0]
    src = _source(*writer, driver=driver)
    try:
        _replaced(db, src, "SET SESSION time_zone = '+11:00'")
        with contextlib.suppress(HybridwbError), src.one_connection():
            src.records("SELECT x FROM t2")
        later = src.records("SELECT CAST(c AS CHAR) AS c FROM ts")[0]["c"]
    finally:
        src.close()
    assert later == truth


def _ddl_waits(db: str) -> bool:
    """Root: whether an ALTER of `t` waits (1 s) for a metadata lock someone holds."""
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 1")
            try:
                cur.execute(f"ALTER TABLE `{db}`.t COMMENT = 'round 47'")
            except Exception as exc:  # 1205: lock wait timeout
                return bool(exc.args and exc.args[0] == 1205)
            return False
    finally:
        conn.close()


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("path", ["engine", "replaced"])
def test_a_chained_commit_holds_no_metadata_lock_past_a_read(
    writer: tuple[str, str, str], driver: str, path: str
) -> None:
    """BREAK 5 (fixed): a known view's function sets `completion_type = CHAIN`; no
    read-back looked at it and no SET pinned it. The client's next COMMIT (SQLAlchemy's
    `conn.commit()`; jupysql sends one after every cell when it cannot set AUTOCOMMIT)
    chained a transaction, and every later read on that connection held its table's
    metadata lock: root's ALTER TABLE waited (on the held connection).
    `replaced`: a table replaced by such a view within the list's 10 s, read on a pinned
    connection (no read-back), which then goes back to the pool and serves the engine."""
    from sqlalchemy import text

    db = writer[0]
    as_root(
        f"CREATE FUNCTION `{db}`.chain() RETURNS INT BEGIN "
        "SET SESSION completion_type = 'CHAIN'; RETURN 1; END",
        f"CREATE VIEW `{db}`.vc AS SELECT `{db}`.chain() AS x",
    )
    src = _source(*writer, driver=driver)
    try:
        if path == "replaced":
            _replaced(db, src, "SET SESSION completion_type = 'CHAIN'")
            with src.one_connection():
                src.records("SELECT x FROM t2")  # not read back: a table 10 s ago
                # another thread's read parks its own connection meanwhile, so this one
                # goes back to the pool when the block ends, and the engine gets it
                other = threading.Thread(target=src.records, args=("SELECT a FROM t",))
                other.start()
                other.join()
        with src.engine.connect() as conn:
            if path == "engine":
                with contextlib.suppress(HybridwbError):
                    conn.execute(text("SELECT x FROM vc")).fetchall()
            else:
                conn.execute(text("SELECT 1")).fetchall()  # (a commit needs a statement first)
            conn.commit()
            assert conn.execute(text("SELECT a FROM t ORDER BY a")).fetchall() == [(1,), (2,)]
            waits = _ddl_waits(db)
    finally:
        src.close()
    assert not waits


#: left by the replaced table's function, then the page reads `v_write` (which INSERTs)
LEFT = {
    "chain-serializable": "SET SESSION completion_type = 'CHAIN'; "
    "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE; SET SESSION tx_read_only = 0",
    "gbk-oracle-mode": "SET NAMES gbk; SET SESSION sql_mode = 'ORACLE'; "
    "SET SESSION tx_read_only = 0",
    "user-variable": "SET @hybridwb_released = 0; SET SESSION tx_read_only = 0",
    "savepoint": "SET SESSION tx_read_only = 0; SAVEPOINT s",
    "xa-start": "SET SESSION tx_read_only = 0; XA START 'a47'",
}


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("left", list(LEFT), ids=list(LEFT))
def test_what_a_function_leaves_commits_nothing_and_opens_no_transaction(
    writer: tuple[str, str, str], driver: str, left: str
) -> None:
    db, user = writer[0], writer[1]
    src = _source(*writer, driver=driver)
    opened = -1
    try:
        _replaced(db, src, LEFT[left])
        with contextlib.suppress(HybridwbError), src.one_connection():
            with contextlib.suppress(HybridwbError):
                src.records("SELECT x FROM t2")
            with contextlib.suppress(HybridwbError):
                src.records("SELECT y FROM v_write")
            assert src.records("SELECT a FROM t ORDER BY a") == [{"a": 1}, {"a": 2}]
            opened = _open_transactions(user)
    finally:
        src.close()
    assert _written(db) == 0
    assert opened in (0, -1)


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_pages_own_view_cannot_unset_then_write_in_one_statement(
    writer: tuple[str, str, str], driver: str
) -> None:
    """The page itself reads a replaced table whose function unsets read-only then
    INSERTs: its table was opened for writing under the statement's READ ONLY."""
    db = writer[0]
    src = _source(*writer, driver=driver)
    try:
        _replaced(db, src, f"SET SESSION tx_read_only = 0; INSERT INTO `{db}`.w VALUES (1)")
        with contextlib.suppress(HybridwbError), src.one_connection():
            src.records("SELECT a FROM t")
            src.records("SELECT x FROM t2")
    finally:
        src.close()
    assert _written(db) == 0


MAPPING = {
    "displayName": "회원",
    "key": "code",
    "recipient": "mobile",
    "channel": "sms",
    "fields": {
        "code": {"displayName": "번호", "type": "string", "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name", "searchable": True},
        "mobile": {"displayName": "휴대폰", "type": "string", "role": "phone"},
    },
}


def _searching(
    writer: tuple[str, str, str], driver: str, tmp_path: Any, before: list[str], after: list[str]
) -> tuple[list[str], list[str]]:
    """wb.search end to end on a 60,000-row table `f` (a name-prefix probe, then the page,
    on one pinned connection), root running `before` just before the probe and `after`
    just after it. (the pinned statements, the codes the search returned)"""
    db, user, password = writer
    as_root(
        f"CREATE TABLE `{db}`.f (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), KEY (name))",
        f"INSERT INTO `{db}`.f SELECT CONCAT('K', LPAD(seq, 6, '0')), CONCAT('이민', seq % 97), "
        f"CONCAT('010-3', LPAD(seq, 7, '0')) FROM `{db}`.seq_1_to_60000",
        f"ANALYZE TABLE `{db}`.f",
    )
    wb = hybridwb.connect(
        source=source_url(db, user, password, driver).render_as_string(hide_password=False),
        store=f"sqlite:///{tmp_path}/s.db",
    )
    src = wb.source
    pinned_calls: list[str] = []
    plain = src.records

    def swapping(sql: str, *args: Any, **kwargs: Any) -> Any:
        pinned = getattr(src._pinned, "conn", None) is not None
        if pinned and not pinned_calls:  # the probe
            as_root(*before)
        if pinned:
            pinned_calls.append(sql)
        try:
            return plain(sql, *args, **kwargs)
        finally:
            if pinned and len(pinned_calls) == 1:  # before the page
                as_root(*after)

    codes: list[str] = []
    try:
        wb.store.init()
        wb.mappings.save("f", MAPPING)
        assert wb.search("f", "이민50", limit=1) is not None  # lists f: a base table
        src.records = swapping  # type: ignore[method-assign]
        with contextlib.suppress(HybridwbError):
            codes = [r["code"] for r in wb.search("f", "이민1", limit=5).raw_rows]
    finally:
        wb.close()
    return pinned_calls, codes


@pytest.mark.parametrize("driver", DRIVERS)
def test_search_with_its_table_swapped_around_the_probe_writes_nothing(
    writer: tuple[str, str, str], driver: str, tmp_path: Any
) -> None:
    """Just before the probe root swaps `f` for a view whose function makes the session
    writable; just after it, for a view whose function INSERTs into `w`. Held, though not
    by the prefix: the page names `f` with FORCE INDEX, which the server refuses on a view
    before any of its code runs (the prefix's read-only left out → still 0 written)."""
    db = writer[0]
    as_root(
        f"CREATE FUNCTION `{db}`.unset() RETURNS INT BEGIN SET SESSION tx_read_only = 0; "
        "RETURN 1; END"
    )
    calls, _ = _searching(
        writer,
        driver,
        tmp_path,
        [
            f"RENAME TABLE `{db}`.f TO `{db}`.f_real",
            f"CREATE VIEW `{db}`.f AS SELECT r.* FROM `{db}`.f_real r WHERE `{db}`.unset() = 1",
        ],
        [
            f"CREATE OR REPLACE VIEW `{db}`.f AS SELECT r.* FROM `{db}`.f_real r "
            f"WHERE `{db}`.ins() = 1"
        ],
    )
    assert len(calls) == 2, calls  # the probe and the page both ran
    assert _written(db) == 0


@pytest.mark.xfail(
    strict=True,
    reason="BREAK: wb.search end to end: the probe's view (f swapped, within the list's "
    "10 s) makes a temporary table f; the page then reads it instead of the base table f",
)
@pytest.mark.parametrize("driver", DRIVERS)
def test_break_search_page_reads_a_temporary_table_the_probe_made(
    writer: tuple[str, str, str], driver: str, tmp_path: Any
) -> None:
    db = writer[0]
    as_root(
        f"CREATE FUNCTION `{db}`.fake() RETURNS INT BEGIN SET SESSION tx_read_only = 0; "
        "CREATE TEMPORARY TABLE IF NOT EXISTS f (code VARCHAR(10) PRIMARY KEY, "
        "name VARCHAR(20), mobile VARCHAR(20), KEY (name)); "
        "INSERT IGNORE INTO f VALUES ('X000001', '이민1', '010-0000-0000'); RETURN 1; END"
    )
    calls, codes = _searching(
        writer,
        driver,
        tmp_path,
        [
            f"RENAME TABLE `{db}`.f TO `{db}`.f_real",
            f"CREATE VIEW `{db}`.f AS SELECT r.* FROM `{db}`.f_real r WHERE `{db}`.fake() = 1",
        ],
        [f"DROP VIEW `{db}`.f", f"RENAME TABLE `{db}`.f_real TO `{db}`.f"],
    )
    assert len(calls) == 2, calls
    real = {r[0] for r in _root_rows(f"SELECT code FROM `{db}`.f WHERE name LIKE '이민1%'")}
    assert codes and set(codes) <= real, codes
