# ruff: noqa: F811  (fixtures imported from test_source_consistent are parameters here)
"""Views inside `Source.consistent`'s snapshot: one moment, or a clear failure (branch
`viewsnap`, closing round 60's BREAK 1).

A statement that names a view was followed by the connection reset, which ended the
snapshot: the block's later reads were of a later moment, silently. Now the views a
statement read inside a snapshot are read after it, on its connection (`plainviews`):
plain ones (tables, builtins of an allowlist, nested plain views) need no reset and the
snapshot goes on; a view running a stored function, a builtin that changes the session,
or a locking read is reset after as before, and the block fails in one line
(`SnapshotRefused`), also when the block caught the first failure.

Oracles: root's own connection (its inserts between the block's reads, `innodb_trx` for
the block's CONNECTION_ID, IS_USED_LOCK, a `CREATE OR REPLACE VIEW` that must wait for the
block's metadata locks), the store's send records read with sqlite3. Both drivers.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import HybridwbError
from hybridwb.source import Source, builtins
from hybridwb.source.plainviews import PLAIN_FUNCTIONS, read_definition
from hybridwb.source.snapshot import SnapshotRefused
from tests._mysql import root_cursor, scratch_db
from tests.conftest import account_url, ensure_select_only_account, mariadb_db, ro_url, sel_url
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round53_real_schemas import e164, phone
from tests.test_attack_round56_real_schema import (
    connect,
    run,
    sent,
    skipped,
    store_rows,
    texts,
)
from tests.test_source_consistent import (  # noqa: F401
    DRIVERS,
    count,
    open_transactions,
    restore,
    root,
    source,
)

pytestmark = pytest.mark.mysql

DDL = (
    "CREATE TABLE m (a INT) ENGINE=MyISAM",  # `restore` empties it too
    "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x",
    "CREATE SEQUENCE sq",
    "CREATE VIEW v AS SELECT a FROM t",
    # plain: a view over a view, a WITH, builtins, a subquery over a view
    "CREATE VIEW vn AS SELECT a FROM v WHERE a > 0",
    "CREATE VIEW vw AS WITH x AS (SELECT a FROM t) SELECT UPPER(CONCAT('a', x.a)) AS s, "
    "IFNULL(x.a, 0) AS a, DATE_FORMAT(NOW(), '%Y') AS y, COUNT(*) OVER () AS n FROM x",
    "CREATE VIEW vq AS SELECT a, (SELECT MAX(a) FROM vn) AS m FROM t",
    # not plain: a stored function, builtins that change the session, a locking read
    "CREATE VIEW vf AS SELECT f(a) AS a FROM t",
    "CREATE VIEW vl AS SELECT a, GET_LOCK('vsnap_lock', 0) AS g FROM t",
    "CREATE VIEW vi AS SELECT LAST_INSERT_ID(a) AS a FROM t",
    # (NEXTVAL in a view is refused by the READ ONLY session itself: a write)
    "CREATE VIEW vs AS SELECT a, LASTVAL(sq) AS n FROM t",
    "CREATE VIEW vk AS SELECT a FROM t LOCK IN SHARE MODE",
    # a plain view over one that calls a stored function
    "CREATE VIEW vfn AS SELECT a FROM vf",
)
PLAIN = ["v", "vn", "vw", "vq"]
NOT_PLAIN = {
    "vf": "`f`",
    "vl": "GET_LOCK",
    "vi": "LAST_INSERT_ID",
    "vs": "LASTVAL",
    "vk": "LOCK IN SHARE MODE",
    "vfn": "`f`",
}


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    with scratch_db("vsnap", 3) as name:
        with root_cursor(name) as cur:
            for sql in DDL:
                cur.execute(sql)
        yield name


@contextlib.contextmanager
def executing_reader(db: str) -> Iterator[URL]:
    """An account made here with SELECT, SHOW VIEW and EXECUTE on `db` (a view calling a
    stored function shows its columns only to an account that may run it), dropped after."""
    user, password = f"hwb_vsnap_{secrets.token_hex(3)}", secrets.token_hex(8)
    root(db, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
         f"GRANT SELECT, SHOW VIEW, EXECUTE ON `{db}`.* TO '{user}'@'%'")  # fmt: skip
    try:
        yield account_url(db, user, password)
    finally:
        root(db, f"DROP USER IF EXISTS '{user}'@'%'")


def session_of(src: Source) -> dict[str, Any]:
    return src.records("SELECT @@in_transaction AS it, CONNECTION_ID() AS c")[0]


def n_of(src: Source, view: str) -> int:
    return len(src.records(f"SELECT a FROM {view}" if view != "vw" else "SELECT s FROM vw"))


# -- the definitions, as MariaDB 10.11 prints them (information_schema.VIEWS) -------------
DEFINITIONS = {
    "table": ("select `d`.`t`.`a` AS `a` from `d`.`t`", ""),
    "builtins": (
        "select concat(`d`.`t`.`s`,'é') AS `s`,json_object('a',`d`.`t`.`a`) AS `j`,"
        "cast(`d`.`t`.`a` as char charset utf8mb4) AS `c`,ifnull(`d`.`t`.`a`,0) AS `i`,"
        "date_format(current_timestamp(),'%Y') AS `y`,count(0) over () AS `n`,"
        "cast(`d`.`t`.`a` as decimal(10,2)) AS `m`,left(`d`.`t`.`s`,2) AS `l` from `d`.`t` "
        "where `d`.`t`.`a` in (1,2) and exists(select 1)",
        "",
    ),
    "within-group": (
        "select percentile_cont(0.5) within group ( order by `d`.`t`.`a`) over () AS `p`,"
        "database() AS `db`,current_user() AS `u` from `d`.`t`",
        "",
    ),
    "json-table": (
        "select `j`.`q` AS `q` from JSON_TABLE('[1]', '$[*]' COLUMNS (`q` int(11) PATH '$')) `j`",
        "",
    ),
    "stored": ("select `f`(`d`.`t`.`a`) AS `b` from `d`.`t`", "`f`"),
    "stored-elsewhere": ("select `e`.`g`(`d`.`t`.`a`) AS `b` from `d`.`t`", "`g`"),
    "stored-named-like-a-builtin": ("select `d`.`concat`(`d`.`t`.`a`) AS `b` from `d`.`t`", "`concat`"),
    "get-lock": ("select get_lock('x',0) AS `g`", "GET_LOCK"),
    "release-lock": ("select release_lock('x') AS `g`", "RELEASE_LOCK"),
    "last-insert-id": ("select last_insert_id(`d`.`t`.`a`) AS `g` from `d`.`t`", "LAST_INSERT_ID"),
    "nextval": ("select nextval(`d`.`sq`) AS `n`", "NEXTVAL"),
    "setval": ("select setval(`d`.`sq`,5) AS `n`", "SETVAL"),
    "lastval": ("select lastval(`d`.`sq`) AS `n`", "LASTVAL"),
    "sleep": ("select sleep(1) AS `s`", "SLEEP"),
    "load-file": ("select load_file('/etc/hostname') AS `s`", "LOAD_FILE"),
    "for-update": ("select `d`.`t`.`a` AS `a` from `d`.`t` for update", "FOR UPDATE"),
    "unreadable": ("select (((", "could not be read"),
}  # fmt: skip


@pytest.mark.parametrize("definition, why", list(DEFINITIONS.values()), ids=list(DEFINITIONS))
def test_a_definition_is_plain_only_with_allowlisted_builtins(definition: str, why: str) -> None:
    got = read_definition("d", definition)
    if not why:
        assert got.why == ""
    else:
        assert why in got.why


def test_the_plain_builtins_are_mariadbs_own() -> None:
    """Every name the allowlist calls plain is one of MariaDB 10.11's builtins (the guard's
    list, checked on the server: no such name reaches a stored function)."""
    assert {name.upper() for name in PLAIN_FUNCTIONS} <= builtins.MARIADB


def test_a_definition_reads_its_tables_and_views_but_not_its_withs() -> None:
    got = read_definition(
        "d",
        "with x as (select `d`.`t`.`a` AS `a` from `d`.`t`)select `x`.`a` AS `a`,"
        "(select max(`v`.`a`) from `e`.`v`) AS `m` from `x`",
    )
    assert got.why == "" and set(got.reads) == {("d", "t"), ("e", "v")}


# -- on the server ------------------------------------------------------------------------
@pytest.mark.parametrize("view", PLAIN)
def test_a_plain_view_read_in_the_block_keeps_one_moment(
    db: str, source: Source, restore: None, view: str
) -> None:
    """Plain views (over a view, with a WITH and builtins, a subquery over a nested view):
    root's row committed after the view's read is not counted by the table's read after
    it, in the same open transaction; after the block root's row is read."""

    def read() -> tuple[int, int, int, int]:
        first = n_of(source, view)
        root(db, "INSERT INTO t VALUES (4)")
        again = n_of(source, view)
        return first, again, count(source), int(session_of(source)["it"])

    assert source.consistent(read) == (3, 3, 3, 1)
    assert count(source) == 4


@pytest.mark.parametrize("view", list(NOT_PLAIN))
def test_a_view_running_code_fails_the_block_in_one_line(
    db: str, source: Source, restore: None, view: str
) -> None:
    """A view calling a stored function (itself or through a plain view over it), GET_LOCK,
    LAST_INSERT_ID(x), LASTVAL (no builtin outside the allowlist), or reading LOCK IN SHARE MODE: the block fails in one line
    naming the view and what runs; the read after it in the block fails too even when the
    block caught the first (no later moment read); root sees no transaction of the
    connection left and no named lock held; the next read is fine."""
    seen: dict[str, Any] = {}

    def read() -> int:
        seen["thread"] = int(session_of(source)["c"])
        with pytest.raises(SnapshotRefused) as refused:
            n_of(source, view)
        seen["first"] = str(refused.value)
        root(db, "INSERT INTO t VALUES (4)")
        with pytest.raises(SnapshotRefused):
            count(source)
        return 0

    with pytest.raises(HybridwbError) as failed:
        source.consistent(read)
    message = str(failed.value)
    assert isinstance(failed.value, SnapshotRefused)
    assert message == seen["first"]
    assert "\n" not in message and f"`{view}`" in message and NOT_PLAIN[view] in message
    assert "map the view's base tables" in message
    assert open_transactions(db, seen["thread"]) == []
    assert root(db, "SELECT IS_USED_LOCK('vsnap_lock')") == [(None,)]
    assert count(source) == 4
    assert int(session_of(source)["it"]) == 0


def test_a_view_read_in_the_block_cannot_be_replaced_until_it_ends(
    db: str, source: Source, restore: None
) -> None:
    """What makes the check after the read sound: the block's transaction holds the
    metadata locks of what it read, so root's `CREATE OR REPLACE VIEW` of the views it read
    (a view over a view) waits until the block ends; after it, it runs."""
    replace = "CREATE OR REPLACE VIEW v AS SELECT a FROM t"
    waited: list[int] = []

    def read() -> int:
        n = n_of(source, "vn")
        with root_cursor(db) as cur:
            cur.execute("SET SESSION lock_wait_timeout = 1")
            for sql in (replace, "CREATE OR REPLACE VIEW vn AS SELECT a FROM v WHERE a > 0"):
                with pytest.raises(pymysql.err.OperationalError) as waits:
                    cur.execute(sql)
                waited.append(int(waits.value.args[0]))
        return n

    assert source.consistent(read) == 3
    assert waited == [1205, 1205]
    root(db, replace)


def test_a_table_replaced_by_a_view_since_the_list_was_read_is_checked(
    db: str, source: Source, restore: None
) -> None:
    """The list of views is seconds old: `tv` was a table when it was read, and is a view
    calling a stored function now. Inside the block it is looked up after the read all
    the same: refused in one line, not read as a table."""
    root(db, "CREATE TABLE tv (a INT)", "INSERT INTO tv VALUES (1)")
    try:
        assert n_of(source, "tv") == 1  # the list: `tv` is a table
        root(db, "DROP TABLE tv", "CREATE VIEW tv AS SELECT f(a) AS a FROM t")
        with pytest.raises(SnapshotRefused, match="`tv`"):
            source.consistent(lambda: n_of(source, "tv"))
    finally:
        root(db, "DROP TABLE IF EXISTS tv", "DROP VIEW IF EXISTS tv")


def test_a_view_the_account_cannot_read_the_definition_of_fails_the_block(
    db: str, restore: None
) -> None:
    """An account without SHOW VIEW sees a view's definition empty: what it runs cannot be
    read, so the block fails in one line saying so."""
    with root_cursor(db) as cur:
        ensure_select_only_account(cur.connection)
    src = Source(sel_url(db), pool_size=2, max_overflow=0)
    try:
        with pytest.raises(SnapshotRefused, match="grant the account SHOW VIEW") as refused:
            src.consistent(lambda: n_of(src, "v"))
        assert "\n" not in str(refused.value) and "`v`" in str(refused.value)
        assert n_of(src, "v") == 3  # outside a block as before
    finally:
        src.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_allowlisted_function_called_in_the_block_fails_it(
    db: str, restore: None, driver: str
) -> None:
    """A stored function a DBA allowlisted, called by the statement itself: its code is
    not read, so the block fails in one line (outside a block it runs as before)."""
    with executing_reader(db) as url:
        src = Source(
            url.set(drivername=f"mysql+{driver}"),
            pool_size=2,
            max_overflow=0,
            allowed_functions=["f"],
        )
        try:
            with pytest.raises(SnapshotRefused, match="stored function"):
                src.consistent(lambda: src.records("SELECT f(a) AS a FROM t"))
            assert len(src.records("SELECT f(a) AS a FROM t")) == 3
        finally:
            src.close()


# -- a run whose audience is a view and whose template reads related values ---------------
SHOP_DDL = (
    "CREATE TABLE m (a INT) ENGINE=MyISAM",  # `restore` empties it too
    "CREATE FUNCTION tag(x INT) RETURNS INT DETERMINISTIC RETURN x",
    "CREATE TABLE vcust (cid INT PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE vaddr (aid INT PRIMARY KEY, cid INT, phone VARCHAR(20), updated DATETIME, "
    "KEY (cid))",
    # one row per customer, the phone of their latest address
    "CREATE VIEW plain_aud AS SELECT c.cid, c.name, (SELECT a.phone FROM vaddr a WHERE "
    "a.cid = c.cid ORDER BY a.updated DESC, a.aid DESC LIMIT 1) AS phone FROM vcust c",
    "CREATE VIEW code_aud AS SELECT c.cid, tag(c.cid) AS tagged, c.name, (SELECT a.phone "
    "FROM vaddr a WHERE a.cid = c.cid ORDER BY a.updated DESC, a.aid DESC LIMIT 1) AS phone "
    "FROM vcust c",
)
SHOP_ROWS: dict[str, list[tuple[Any, ...]]] = {
    "vcust": [(c, f"고객{c}") for c in range(1, 5)],
    "vaddr": [(1, 1, phone(81), "2025-01-01"), (2, 1, phone(91), "2026-01-01"),
              (3, 2, phone(82), "2025-01-01"), (4, 3, phone(83), "2025-01-01")],
}  # fmt: skip
TEMPLATE = {"content": "{{ 이름 }}님, {{ addresses.phone }}로 안내"}


def audience_mapping() -> dict[str, Any]:
    return {
        "displayName": "고객", "key": "cid", "recipient": "phone",
        "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
                   "phone": F("전화", role="phone")},
        "relations": [{"table": "vaddr", "name": "addresses", "localField": "cid",
                       "foreignField": "cid", "kind": "one-to-many", "orderBy": "updated"}],
    }  # fmt: skip


VADDR = {"displayName": "주소", "key": "aid", "fields": {
    "aid": F("번호", "number", "id"), "cid": F("고객", "number"),
    "phone": F("전화", role="phone"), "updated": F("수정일", "datetime")}}  # fmt: skip


@pytest.fixture(scope="module")
def shop() -> Iterator[str]:
    yield from mariadb_db("hybridwb_vsnapw", *SHOP_DDL, rows=SHOP_ROWS)


@pytest.fixture
def address_added(shop: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Root adds a newer address of customer 1 (phone 99) and commits it just before the
    run's first read of the related values (`Resolver.fetch`, after the batch's rows were
    read through the view); removed after. The list counts the related reads."""
    from hybridwb.mapping.resolve import Resolver

    real, calls = Resolver.fetch, [0]

    def fetch(self: Resolver, *args: Any, **kwargs: Any) -> Any:
        if calls[0] == 0:
            root(shop, f"INSERT INTO vaddr VALUES (99, 1, '{phone(99)}', '2026-02-01')")
        calls[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Resolver, "fetch", fetch)
    try:
        yield calls
    finally:
        root(shop, "DELETE FROM vaddr WHERE aid = 99")


def test_a_view_audience_with_related_values_runs_in_one_moment(
    shop: str, tmp_path: Path, address_added: list[int]
) -> None:
    """The audience is a plain view (the latest address's phone), the template names
    `{{ addresses.phone }}` (read by a statement of its own, in the batch's snapshot).
    Customer 1 adds a newer address between the two reads: the run still runs, and every
    message names the phone it is sent to (customer 1's of 2026-01-01, not root's new
    one), as the view gave it when the row was read."""
    wb, path = connect(ro_url(shop).render_as_string(hide_password=False), tmp_path)
    with wb:
        wb.mappings.save("vaddr", VADDR)
        wb.mappings.save("plain_aud", audience_mapping())
        run(wb, {"table": "plain_aud"}, TEMPLATE)
    assert address_added[0] >= 1
    assert sent(path) == {"1": [e164(91)], "2": [e164(82)], "3": [e164(83)]}
    assert skipped(path) == {"4": "no recipient"}
    for key, text in texts(path).items():
        named = "+82" + text.split(", ")[1].split("로")[0].replace("-", "")[1:]
        assert [named] == sent(path)[key], text


def test_a_view_audience_running_a_stored_function_fails_the_run_in_one_line(
    shop: str, tmp_path: Path
) -> None:
    """The audience view calls a stored function: its rows cannot be read in the same
    moment as the related values (the reset after it ends the snapshot), so the run fails
    in one line naming the view (and the function), nobody messaged, the run failed."""
    with executing_reader(shop) as url:
        wb, path = connect(url.render_as_string(hide_password=False), tmp_path)
        with wb:
            wb.mappings.save("vaddr", VADDR)
            wb.mappings.save("code_aud", audience_mapping())
            with pytest.raises(HybridwbError) as failed:
                run(wb, {"table": "code_aud"}, TEMPLATE)
    message = str(failed.value)
    assert "\n" not in message and "`code_aud`" in message and "`tag`" in message, message
    assert sent(path) == {} and skipped(path) == {}
    assert store_rows(path, "SELECT status FROM workflow_runs") == [("failed",)]
