# ruff: noqa: F811  (fixtures imported from test_source_consistent are parameters here)
"""Round 61: dates with no day or month in target filters, a DATETIME mapped as a date,
`Source.consistent` inside `one_connection()` and killed at each step, and the session
check's read-back given a reply out of step.

Source: MariaDB, root's own database (sql_mode '' for the dates with zero parts) read by an
account created here holding SELECT only (targets), and a scratch database read by the
shared read-only account on both drivers (pymysql, mysqldb) for `Source`. Oracles: root's
own SQL (DAYOFMONTH / MONTH / DATE of the stored values, its comparisons), root's
`information_schema.innodb_trx` and processlist, `@@global.tx_isolation`, the session's
values read by a fresh statement, `send_records` read with sqlite3.

BREAKS (the fix undone by hand, this file run, of its 74 tests):

1. (fixed) an aggregate's `within_last` window over a related DATE / DATETIME held a date
   with no day or month: now 2026-03-03, an order of '2026-03-00' (MariaDB sorts it into
   March, before today) was "an order in the last 30 days", '2026-00-15' one "in the last
   year", a dayless 100 counted in "spent in the last 30 days", and its customer was not
   among those with "no order in the last 30 days"; the same order was missing to an
   `exists`'s `within_last` (round 59). The window now holds real dates only
   (`Builder._aggregate`). → 5 of 74 fail.
2. (fixed) a DATETIME / TIMESTAMP mapped as a date (`suggest.COMPATIBLE` allows it, "a
   datetime shown as a date") was compared with the day's midnight: "logged in on
   2026-02-20" missed who logged in at 09:00 that day, "not on" and "after 2026-02-20"
   chose them, `lte` and `between` missed the last day after midnight, "within the last
   30 days" missed this morning; a `max` of the orders' DATETIME "on 2026-02-20" chose
   nobody, a window of days since yesterday missed this morning's order. Now compared by
   its day (`by_day`, `Builder._timed`), the bounds on the column itself (its index still
   serves). → 9 of 74 fail.
3. (fixed) `session.read_session` took the read-back's first row for the session's
   values: a reply out of step (an OK owed from before, or the previous statement's row)
   gave no row or another's, and the check raised a raw TypeError / ValueError, the
   connection kept with a reply owed; through the engine the statement itself had read
   the owed OK as its result (no rows). The connection is closed and a one-line
   ConnectionFailed raised (callers invalidate it). Injected by `drivers.send_only` of a
   SET whose OK is left unread, and in `Source` by a seam that leaves the reply of the
   session SET before a view read unread. → 6 of 74 fail.

Held (both drivers where a `Source` is read):
- every comparison, relative window (`within_last`, `within_next`, `older_than`),
  `between`, `eq`, `ne`, `gte`, `not_null` on a DATETIME and a DATE holding '2026-03-00',
  '2026-00-15' or '0000-00-00' chooses what root's comparison chooses among real dates
  (round 59's `_condition`: its real-date check off → 20 of 74 fail); a `max` in a window,
  an `exists` in a window hold; the day's bounds keep the column's index;
- `consistent()` inside `one_connection()` after a table read (the session owed), a read
  with its own time limit (another policy) or a view read (its reset just done), with a
  read of another limit and a nested block inside: one moment on the pinned connection,
  and after it the same connection is in no transaction, READ ONLY, at root's global
  isolation, and counts root's row (`keep_transaction` off → 12 of 74 fail; the nested
  check off → 6 of 74); after a read interrupted with its rows half read (the cell caught
  the Ctrl-C) the block still reads one moment on the same connection; after root killed
  the pinned connection it reads one moment on the new one SQLAlchemy revalidates;
- root's KILL CONNECTION / KILL QUERY right after the isolation SET, right after the
  START, between the block's reads, as the COMMIT is written, and KILL QUERY during a long
  read inside the block: the block reads one moment (run again on a fresh snapshot when
  the connection was gone) or fails in one line; the long read fails in one line and the
  snapshot stays; root sees no transaction of any connection used; the pool's next reads
  are in no transaction, READ ONLY, at `@@global.tx_isolation`, and count root's rows
  (both lost-read checks in `Source._execute` off → 2 of 74 fail).
Not attacked here: a view read inside the block (branch viewsnap's).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ConnectionFailed, HybridwbError
from hybridwb.source import Source, drivers, rawguard
from hybridwb.source import session as session_module
from hybridwb.source import source as source_module
from hybridwb.source.snapshot import END_SQL, ISOLATION_SQL, START_SQL
from tests._mysql import root_cursor, scratch_db, select_only_url, threads_left
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import DAY, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round53_real_schemas import e164, phone
from tests.test_attack_round56_real_schema import connect, run, sent
from tests.test_source_consistent import (  # noqa: F401  (fixtures: parameters here)
    count,
    open_transactions,
    restore,
    root,
    source,
)

pytestmark = [pytest.mark.mysql]

# -- 1. dates with month or day zero in target filters --------------------------------------
DDL = (
    "SET SESSION sql_mode = ''",
    "CREATE TABLE zm (mid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "login DATETIME NULL, joined DATE NULL, KEY (login), KEY (joined))",
    "CREATE TABLE zc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE zo (oid INT PRIMARY KEY, cid INT, odate DATE NULL, ots DATETIME NULL, "
    "amount INT, KEY (cid))",
)
# now is DAY, 2026-03-03 10:00 in Seoul: '2026-03-00' and '2026-00-15' sort inside the
# windows of the last 30 and 365 days, before today
MEMBERS = {
    1: ("2026-03-00 08:00:00", "2026-03-00"),  # no day: "this March", unknown day
    2: ("2026-00-15 00:00:00", "2026-00-15"),  # no month
    3: ("0000-00-00 00:00:00", "0000-00-00"),  # the zero date
    4: ("2026-02-20 09:00:00", "2026-02-20"),  # a real, recent date
    5: ("2024-01-01 00:00:00", "2024-01-01"),  # a real, old one
    6: ("2026-03-10 00:00:00", "2026-03-10"),  # a real, coming one
    7: (None, None),
    8: ("2026-02-20 00:00:00", "2026-02-20"),  # that day at midnight
    9: ("2026-03-03 09:00:00", "2026-03-03"),  # today, an hour before now
}
ORDERS = [  # (oid, cid, date, amount; at 08:00 that day): 7 a real one and a dayless one
    (1, 1, "2026-03-00", 10), (2, 2, "2026-00-15", 20), (3, 3, "0000-00-00", 30),
    (4, 4, "2026-02-20", 40), (5, 5, "2024-01-01", 50), (6, 7, "2026-02-25", 5),
    (7, 7, "2026-03-00", 100), (8, 6, "2026-03-03", 7),
]  # fmt: skip
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "zm": [(m, f"회원{m}", phone(m), login, joined) for m, (login, joined) in MEMBERS.items()],
    "zc": [(c, f"구매자{c}", phone(20 + c)) for c in range(1, 8)],
    "zo": [(o, c, d, f"{d} 08:00:00", a) for o, c, d, a in ORDERS],
}


@pytest.fixture(scope="module")
def zdb() -> Iterator[str]:
    yield from mariadb_db("hybridwb_r61", *DDL, rows=ROWS)


@pytest.fixture(scope="module")
def reader(zdb: str) -> Iterator[str]:
    """A URL of an account created here holding SELECT on the database and nothing else."""
    with select_only_url(zdb, "r61") as url:
        yield url


def keys(db: str, sql: str) -> set[str]:
    return {str(k) for (k,) in src(db, sql)}


REAL = "DAYOFMONTH({c}) > 0 AND MONTH({c}) > 0"
ZM = {
    "displayName": "회원", "key": "mid", "audience": True, "recipient": "mobile",
    "fields": {"mid": F("번호", "number", "id"), "name": F("이름", role="name"),
               "mobile": F("전화", role="phone"), "login": F("최근접속", "datetime"),
               "joined": F("가입일", "date")},
}  # fmt: skip
# (condition, root's comparison among the real dates, for a DATETIME {c} and a DATE {d})
COMPARED = {
    "within-last-30": ({"op": "within_last", "value": {"days": 30}},
                       "{c} BETWEEN '2026-02-01 10:00:00' AND '2026-03-03 10:00:00'",
                       "{c} BETWEEN '2026-02-01' AND '2026-03-03'"),
    "within-last-365": ({"op": "within_last", "value": {"days": 365}},
                        "{c} BETWEEN '2025-03-03 10:00:00' AND '2026-03-03 10:00:00'",
                        "{c} BETWEEN '2025-03-03' AND '2026-03-03'"),
    "within-next-30": ({"op": "within_next", "value": {"days": 30}},
                       "{c} BETWEEN '2026-03-03 10:00:00' AND '2026-04-02 10:00:00'",
                       "{c} BETWEEN '2026-03-03' AND '2026-04-02'"),
    "older-than-30": ({"op": "older_than", "value": {"days": 30}},
                      "{c} < '2026-02-01 10:00:00'", "{c} < '2026-02-01'"),
    "between-2026": ({"op": "between", "value": ["2026-01-01", "2026-12-31"]},
                     "{c} BETWEEN '2026-01-01' AND '2026-12-31'",
                     "{c} BETWEEN '2026-01-01' AND '2026-12-31'"),
    "gte-2026": ({"op": "gte", "value": "2026-01-01"}, "{c} >= '2026-01-01'",
                 "{c} >= '2026-01-01'"),
    "eq": ({"op": "eq", "value": "2026-02-20"}, "{c} = '2026-02-20 00:00:00'",
           "{c} = '2026-02-20'"),
    "ne": ({"op": "ne", "value": "2026-02-20"}, "{c} <> '2026-02-20'", "{c} <> '2026-02-20'"),
    "not-null": ({"op": "not_null"}, "TRUE", "TRUE"),
}  # fmt: skip


def _chosen(wb: hybridwb.Workbench, path: Path, table: str, where: Any) -> tuple[int, set[str]]:
    count = wb.targets.preview({"table": table, "where": where}, now=DAY).count
    run(wb, {"table": table, "where": where}, {"content": "{{ 이름 }}님, 안내입니다."})
    return count, set(sent(path))


@pytest.mark.parametrize("field", ["login", "joined"])
@pytest.mark.parametrize("cond, on_datetime, on_date", list(COMPARED.values()), ids=list(COMPARED))
def test_a_date_without_a_day_or_month_is_chosen_by_no_comparison(
    zdb: str,
    reader: str,
    tmp_path: Path,
    field: str,
    cond: dict[str, Any],
    on_datetime: str,
    on_date: str,
) -> None:
    """A DATETIME / DATE holding '2026-03-00' or '2026-00-15' (sorted by the server inside
    the windows of the last 30 or 365 days) or the zero date: each comparison, relative
    window and `eq` chooses what root's comparison chooses among the real dates only."""
    c = f"`{field}`"
    oracle = (on_datetime if field == "login" else on_date).format(c=c)
    chosen = keys(zdb, f"SELECT mid FROM zm WHERE {REAL.format(c=c)} AND {oracle}")
    assert not chosen & {"1", "2", "3"}  # the oracle: no dayless, monthless or zero date
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zm", ZM)
        count, got = _chosen(wb, path, "zm", {"field": field, **cond})
    assert (count, got) == (len(chosen), chosen)
    assert sent(path) == {m: [e164(int(m))] for m in chosen}


# a DATETIME mapped as a date (`suggest.COMPATIBLE`: "a datetime shown as a date"): each
# comparison is of the day, root's DATE(login)
AS_DATE = {
    "eq": ({"op": "eq", "value": "2026-02-20"}, "= '2026-02-20'"),
    "ne": ({"op": "ne", "value": "2026-02-20"}, "<> '2026-02-20'"),
    "lte": ({"op": "lte", "value": "2026-02-20"}, "<= '2026-02-20'"),
    "gt": ({"op": "gt", "value": "2026-02-20"}, "> '2026-02-20'"),
    "lt": ({"op": "lt", "value": "2026-02-20"}, "< '2026-02-20'"),
    "gte": ({"op": "gte", "value": "2026-02-20"}, ">= '2026-02-20'"),
    "between": ({"op": "between", "value": ["2026-02-01", "2026-02-20"]},
                "BETWEEN '2026-02-01' AND '2026-02-20'"),
    "within-last-30": ({"op": "within_last", "value": {"days": 30}},
                       "BETWEEN '2026-02-01' AND '2026-03-03'"),
    "within-next-30": ({"op": "within_next", "value": {"days": 30}},
                       "BETWEEN '2026-03-03' AND '2026-04-02'"),
    "older-than-30": ({"op": "older_than", "value": {"days": 30}}, "< '2026-02-01'"),
}  # fmt: skip


@pytest.mark.parametrize("cond, oracle", list(AS_DATE.values()), ids=list(AS_DATE))
def test_a_datetime_mapped_as_a_date_is_compared_by_its_day(
    zdb: str, reader: str, tmp_path: Path, cond: dict[str, Any], oracle: str
) -> None:
    """`login` DATETIME mapped as a date: "logged in on 2026-02-20" is every member whose
    login falls on that day (09:00 as well as midnight), "in the last 30 days" includes
    this morning, "after 2026-02-20" none of that day; what root's DATE(login) chooses,
    among the real dates."""
    c = "`login`"
    chosen = keys(zdb, f"SELECT mid FROM zm WHERE {REAL.format(c=c)} AND DATE({c}) {oracle}")
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zm", {**ZM, "fields": {**ZM["fields"], "login": F("최근접속", "date")}})
        count, got = _chosen(wb, path, "zm", {"field": "login", **cond})
    assert (count, got) == (len(chosen), chosen)


@pytest.mark.parametrize(
    "cond",
    [{"op": "eq", "value": "2026-02-20"}, {"op": "within_last", "value": {"days": 30}}],
    ids=["eq", "within-last"],
)
def test_a_datetime_compared_by_its_day_is_still_read_by_its_index(
    reader: str, tmp_path: Path, cond: dict[str, Any]
) -> None:
    """The day's bounds stay on the column itself: the server still reads `login` by its
    index (a range), not every member."""
    wb, _ = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zm", {**ZM, "fields": {**ZM["fields"], "login": F("최근접속", "date")}})
        where = {"field": "login", **cond}
        plan = wb.targets.preview({"table": "zm", "where": where}, now=DAY).explain
    zm = [row for row in plan if row.get("table") == "zm"]
    assert zm and "login" in str(zm[0].get("possible_keys") or ""), plan


ZO = {"displayName": "주문", "key": "oid", "fields": {
    "oid": F("번호", "number", "id"), "cid": F("고객", "number"),
    "odate": F("주문일", "date"), "ots": F("주문시각", "datetime"),
    "amount": F("금액", "number")}}  # fmt: skip
ZC = {
    "displayName": "구매자", "key": "cid", "audience": True, "recipient": "mobile",
    "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
               "mobile": F("전화", role="phone")},
    "relations": [{"table": "zo", "name": "orders", "localField": "cid",
                   "foreignField": "cid", "kind": "one-to-many", "orderBy": "odate"}],
}  # fmt: skip
REAL_O = REAL.format(c="odate")
MONTH_D = "odate BETWEEN '2026-02-01' AND '2026-03-03'"
YEAR_D = "odate BETWEEN '2025-03-03' AND '2026-03-03'"
MONTH_T = "ots BETWEEN '2026-02-01 10:00:00' AND '2026-03-03 10:00:00'"
AGGREGATED = {
    # an order in the last 30 days (the relation's orderBy): '2026-03-00' is none
    "count-30-days": (
        {"aggregate": "count", "relation": "orders", "op": "gte", "value": 1,
         "within_last": {"days": 30}},
        f"SELECT DISTINCT cid FROM zo WHERE {REAL_O} AND {MONTH_D}"),
    # in the last year: '2026-00-15' is none
    "count-365-days": (
        {"aggregate": "count", "relation": "orders", "op": "gte", "value": 1,
         "within_last": {"days": 365}},
        f"SELECT DISTINCT cid FROM zo WHERE {REAL_O} AND {YEAR_D}"),
    # the window on the DATETIME `ots`
    "count-30-days-datetime": (
        {"aggregate": "count", "relation": "orders", "op": "gte", "value": 1,
         "within_last": {"days": 30}, "date_field": "ots"},
        f"SELECT DISTINCT cid FROM zo WHERE {REAL.format(c='ots')} AND {MONTH_T}"),
    # spent in the last 30 days: customer 7's dayless 100 is not in it
    "sum-30-days": (
        {"aggregate": "sum", "relation": "orders", "field": "amount", "op": "gte",
         "value": 50, "within_last": {"days": 30}},
        f"SELECT cid FROM zo WHERE {REAL_O} AND {MONTH_D} GROUP BY cid "
        "HAVING SUM(amount) >= 50"),
    # no order in the last 30 days (a count of 0): customers 1 and 2 among them
    "none-in-30-days": (
        {"aggregate": "count", "relation": "orders", "op": "eq", "value": 0,
         "within_last": {"days": 30}},
        f"SELECT cid FROM zc WHERE cid NOT IN (SELECT cid FROM zo WHERE {REAL_O} "
        f"AND {MONTH_D})"),
    # the last order of the year's window in 2026
    "max-365-days": (
        {"aggregate": "max", "relation": "orders", "field": "odate", "op": "gte",
         "value": "2026-01-01", "within_last": {"days": 365}},
        f"SELECT cid FROM zo WHERE {REAL_O} AND {YEAR_D} GROUP BY cid "
        "HAVING MAX(odate) >= '2026-01-01'"),
    # an order in the last 30 days, as an `exists` (held since round 59)
    "exists-30-days": (
        {"exists": "orders", "where": {"field": "odate", "op": "within_last",
                                       "value": {"days": 30}}},
        f"SELECT DISTINCT cid FROM zo WHERE {REAL_O} AND {MONTH_D}"),
}  # fmt: skip


@pytest.mark.parametrize("where, oracle", list(AGGREGATED.values()), ids=list(AGGREGATED))
def test_an_aggregates_window_holds_real_dates_only(
    zdb: str, reader: str, tmp_path: Path, where: dict[str, Any], oracle: str
) -> None:
    """An aggregate's `within_last` window over a related DATE / DATETIME: an order dated
    '2026-03-00' or '2026-00-15' is in no window, as it is missing to an `exists`'s
    `within_last`. Each chooses what root's SQL over the real dates chooses."""
    chosen = keys(zdb, oracle)
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zo", ZO)
        wb.mappings.save("zc", ZC)
        count, got = _chosen(wb, path, "zc", where)
    assert (count, got) == (len(chosen), chosen)
    assert sent(path) == {c: [e164(20 + int(c))] for c in chosen}


# -- 2-4. `Source.consistent`: composed with `one_connection`, killed at each step ---------------
@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    with scratch_db("atk61", 3) as name:
        with root_cursor(name) as cur:
            cur.execute("CREATE TABLE m (a INT) ENGINE=MyISAM")  # `restore` empties it too
            cur.execute("CREATE VIEW v AS SELECT a FROM t")
        yield name


SESSION = (
    "SELECT @@in_transaction AS it, @@tx_read_only AS ro, @@tx_isolation AS iso, "
    "CONNECTION_ID() AS c"
)


def global_isolation(db: str) -> str:
    return str(root(db, "SELECT @@global.tx_isolation")[0][0])


def session_of(src: Source, **kwargs: Any) -> dict[str, Any]:
    return src.records(SESSION, **kwargs)[0]


def thread_of(src: Source) -> int:
    return int(session_of(src)["c"])


def ended_clean(db: str, src: Source, threads: list[int], rows: int) -> None:
    """Root sees no InnoDB transaction of any of `threads`; the pool's next reads (both of
    its connections) are in no transaction, READ ONLY, at root's `@@global` isolation, and
    count `rows` (root's rows committed meanwhile)."""
    for thread in threads:
        assert open_transactions(db, thread) == []
    wanted = global_isolation(db)
    with src.one_connection():  # two connections at once: both of the pool's
        seen = [session_of(src), session_of(src, timeout=7)]
        counts = [count(src), count(src, timeout=5)]
    assert counts == [rows, rows]
    for values in seen:
        assert (values["it"], values["ro"], values["iso"]) == (0, 1, wanted)
        assert open_transactions(db, int(values["c"])) == []


def kill(db: str, thread: int, what: str = "CONNECTION") -> None:
    root(db, f"KILL {what} {int(thread)}")


@pytest.fixture
def after_internal(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Arm with `armed[<statement>] = hook`: right after `consistent`'s own statement (the
    isolation SET, the START) has been answered, or right before the COMMIT is written,
    `hook(thread)` runs once (root's KILL, as a DBA's or a watchdog's would land there)."""
    armed: dict[str, Any] = {}
    real = source_module.run_internal

    def running(raw: Any, sql: str) -> None:
        hook = armed.pop(sql, None)
        if hook is not None and sql == END_SQL:
            hook(int(raw.thread_id()))
            hook = None
        real(raw, sql)
        if hook is not None:
            hook(int(raw.thread_id()))

    monkeypatch.setattr(source_module, "run_internal", running)
    return armed


STEPS = {"after-isolation": ISOLATION_SQL, "after-start": START_SQL}


@pytest.mark.parametrize("what", ["CONNECTION", "QUERY"])
@pytest.mark.parametrize("step", list(STEPS.values()), ids=list(STEPS))
def test_a_kill_after_the_isolation_set_or_the_start_reruns_or_fails_clearly(
    db: str,
    source: Source,
    restore: None,
    after_internal: dict[str, Any],
    step: str,
    what: str,
) -> None:
    """Root kills the block's connection (or its query, idle) right after the isolation
    SET or the START, and commits a row: the block either reads one moment (both its reads
    alike, on a fresh snapshot when the connection was gone) or fails in one line; root
    sees no transaction of any connection the block used, and the pool's next reads are
    READ ONLY, in no transaction, at the global isolation."""
    threads: list[int] = []
    reads: list[tuple[int, int]] = []

    def hook(thread: int) -> None:
        threads.append(thread)
        kill(db, thread, what)
        root(db, "INSERT INTO t VALUES (4)")

    def read() -> tuple[int, int]:
        threads.append(thread_of(source))
        reads.append((count(source), count(source, timeout=5)))
        return reads[-1]

    source.records("SELECT 1 AS x")  # a parked connection to begin with
    after_internal[step] = hook
    try:
        first, second = source.consistent(read)
    except HybridwbError as exc:
        assert "\n" not in str(exc).strip()
    else:
        assert first == second  # one moment: after root's commit when the block ran again
        assert what == "QUERY" or first == 4
    assert all(a == b for a, b in reads)
    ended_clean(db, source, threads, 4)


@pytest.mark.parametrize("what", ["CONNECTION", "QUERY"])
def test_a_kill_between_the_reads_reruns_or_fails_clearly(
    db: str, source: Source, restore: None, what: str
) -> None:
    """Root kills the connection (or its idle query) between the block's two reads and
    commits a row: one moment (both reads alike) or a one-line error; nothing left open."""
    threads: list[int] = []
    reads: list[tuple[int, int]] = []

    def read() -> tuple[int, int]:
        thread = thread_of(source)
        threads.append(thread)
        first = count(source)
        if len(threads) == 1:
            kill(db, thread, what)
            root(db, "INSERT INTO t VALUES (4)")
        reads.append((first, count(source, timeout=5)))
        return reads[-1]

    try:
        first, second = source.consistent(read)
    except HybridwbError as exc:
        assert "\n" not in str(exc).strip()
    else:
        assert first == second
    assert all(a == b for a, b in reads)
    ended_clean(db, source, threads, 4)


@pytest.mark.parametrize("what", ["CONNECTION", "QUERY"])
def test_a_kill_as_the_commit_is_written_leaves_nothing_open(
    db: str, source: Source, restore: None, after_internal: dict[str, Any], what: str
) -> None:
    """Root kills the connection (or its query) as the COMMIT is about to be written: the
    reads, all done in the snapshot, are returned alike; no transaction is left, and the
    next reads are READ ONLY, in no transaction, at the global isolation."""
    threads: list[int] = []

    def read() -> tuple[int, int]:
        threads.append(thread_of(source))
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        return first, count(source)

    after_internal[END_SQL] = lambda thread: kill(db, thread, what)
    assert source.consistent(read) == (3, 3)
    ended_clean(db, source, threads, 4)


def test_a_kill_query_during_a_read_inside_the_block_fails_clearly(
    db: str, source: Source, restore: None
) -> None:
    """Root's KILL QUERY lands while a long read of the block runs (a watchdog's): that
    read fails in one line, the snapshot stays (its later read counts what its first did,
    not root's row); no transaction is left after."""
    threads: list[int] = []

    def killer(thread: int) -> None:
        time.sleep(0.4)
        kill(db, thread, "QUERY")

    def read() -> tuple[int, int]:
        thread = thread_of(source)
        threads.append(thread)
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        if len(threads) == 1:
            watchdog = threading.Thread(target=killer, args=(thread,))
            watchdog.start()
            try:
                with pytest.raises(HybridwbError, match="interrupted"):
                    source.records(LONG)
            finally:
                watchdog.join()
            assert session_of(source)["it"] == 1  # the statement ended, not the snapshot
        return first, count(source)

    try:
        first, second = source.consistent(read)
    except HybridwbError as exc:
        assert "\n" not in str(exc).strip()
    else:
        assert first == second
    ended_clean(db, source, threads, 4)


LONG = "SELECT SUM(a.seq * b.seq) AS n FROM seq_1_to_100000 a, seq_1_to_100000 b"


BEFORE = {
    # a read of a table: the pinned connection owes the session (`SessionOwed`)
    "table-read": lambda src: count(src),
    # a read with its own time limit: the session is set to another policy
    "own-limit": lambda src: count(src, timeout=7),
    # a read of a view: its reset ran just before (not inside: branch viewsnap's case)
    "view-read": lambda src: count(src, "v"),
}


@pytest.mark.parametrize("before", list(BEFORE.values()), ids=list(BEFORE))
def test_a_block_inside_one_connection_after_any_read_keeps_one_moment(
    db: str, source: Source, restore: None, before: Any
) -> None:
    """Inside `one_connection()`, after a read that leaves the pinned connection owing its
    session (a table read), set to another policy (a read's own time limit), or just reset
    (a view read): the block runs on that connection, its reads (one of another limit, a
    nested block) see one moment while root commits a row; after it, the same connection
    is in no transaction, READ ONLY, at the global isolation, and counts root's row."""

    def inner() -> int:
        return count(source, timeout=4)

    def read() -> tuple[int, int, int, dict[str, Any]]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        return first, count(source, timeout=5), source.consistent(inner), session_of(source)

    with source.one_connection():
        pinned = thread_of(source)
        before(source)
        first, second, nested, during = source.consistent(read)
        after = session_of(source)
        rows = count(source)
    assert (first, second, nested) == (3, 3, 3)
    assert (during["it"], during["ro"], during["c"]) == (1, 1, pinned)
    assert (after["it"], after["ro"], after["iso"]) == (0, 1, global_isolation(db))
    assert after["c"] == pinned and rows == 4
    ended_clean(db, source, [pinned], 4)


def test_a_block_after_the_pinned_connection_was_killed_keeps_one_moment(
    db: str, source: Source, restore: None
) -> None:
    """Inside `one_connection()` root kills the pinned connection and the next read is
    made again on another: the block after it runs on a new connection (SQLAlchemy's
    revalidation, set READ ONLY by the pool's checkout), reads one moment while root
    commits a row, and leaves it in no transaction, READ ONLY, counting root's row."""

    def read() -> tuple[int, int, dict[str, Any]]:
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        return first, count(source, timeout=5), session_of(source)

    with source.one_connection():
        pinned = thread_of(source)
        kill(db, pinned)
        assert count(source) == 3  # read again on another connection
        first, second, during = source.consistent(read)
        after = session_of(source)
    assert (first, second) == (3, 3)
    assert (during["it"], during["ro"]) == (1, 1) and during["c"] != pinned
    assert (after["it"], after["ro"], after["c"]) == (0, 1, during["c"])
    assert threads_left(pinned) == 0
    ended_clean(db, source, [during["c"]], 4)


class HalfRead:
    """A streaming cursor whose first `fetchmany` reads one row and is interrupted there
    (Ctrl-C while the rows come in): the rest of the result stays unread on the socket."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def fetchmany(self, size: int) -> Any:
        self._cursor.fetchone()
        raise KeyboardInterrupt


def test_a_block_after_a_read_left_half_read_in_one_connection_keeps_one_moment(
    db: str, source: Source, restore: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside `one_connection()` a read is interrupted with its rows half read, and the
    caller goes on (the notebook's cell caught the Ctrl-C): the block after it reads one
    moment or fails in one line, never a row of the old result for its own; nothing is
    left open after, and the next reads count root's rows."""
    real = drivers.unbuffered_cursor
    threads: list[int] = []

    def read() -> tuple[int, int]:
        threads.append(thread_of(source))
        first = count(source)
        root(db, "INSERT INTO t VALUES (4)")
        return first, count(source)

    outcome: Any = None
    with source.one_connection():
        threads.append(thread_of(source))
        monkeypatch.setattr(drivers, "unbuffered_cursor", lambda raw: HalfRead(real(raw)))
        with pytest.raises(KeyboardInterrupt):
            source.records("SELECT a FROM t ORDER BY a")
        monkeypatch.setattr(drivers, "unbuffered_cursor", real)
        try:
            outcome = source.consistent(read)
        except HybridwbError as exc:
            assert "\n" not in str(exc).strip()
        after = session_of(source)
    assert outcome in (None, (3, 3))  # (both drivers: (3, 3), on the same connection)
    assert (after["it"], after["ro"]) == (0, 1)
    ended_clean(db, source, threads, int(root(db, "SELECT COUNT(*) FROM t")[0][0]))


# -- 4. the session check's read-back given a reply out of step ---------------------------------
OWED = "SET @hybridwb_r61 = 1"  # a statement whose OK is left unread: a reply owed


def owe_a_reply(raw: Any) -> int:
    """Leave a reply owed on `raw` (its OK unread, as an interrupted read leaves one):
    the next statement's reply read is this one's. Its server thread."""
    thread = int(raw.thread_id())
    with rawguard.internal(raw):
        assert drivers.send_only(raw, OWED)
    return thread


def test_the_read_back_given_an_ok_drops_the_connection(db: str, source: Source) -> None:
    """BREAK 4 (fixed): `read_session` read the session's values as the reply's first row;
    given a reply out of step (an OK owed from before) it has none, and the check raised a
    raw TypeError ("cannot unpack non-iterable NoneType"), the connection kept with a reply
    still owed. It raises a one-line ConnectionFailed, the connection closed (root: its
    thread gone)."""
    with source.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        thread = owe_a_reply(raw)
        with pytest.raises(ConnectionFailed) as failed:
            session_module.read_session(raw, source.facts)
        conn.invalidate()
    assert "\n" not in str(failed.value).strip()
    assert threads_left(thread) == 0
    assert count(source) == 3


def test_an_engine_statement_given_another_reply_fails_in_one_line(db: str, source: Source) -> None:
    """BREAK 4 (fixed), on the engine (jupysql's connection): a statement reads the owed OK
    as its own (no rows), and the check after it reads the statement's row as the
    session's: a raw ValueError ("not enough values to unpack"). Now a one-line
    HybridwbError, the connection invalidated and its thread gone; the engine's next
    statement returns root's rows."""
    with source.engine.connect() as conn:
        thread = owe_a_reply(conn.connection.dbapi_connection)
        with pytest.raises(HybridwbError) as failed:
            conn.exec_driver_sql("SELECT a FROM t ORDER BY a")
        assert conn.invalidated
    assert "\n" not in str(failed.value).strip()
    assert threads_left(thread) == 0
    with source.engine.connect() as conn:
        rows = [r[0] for r in conn.exec_driver_sql("SELECT a FROM t ORDER BY a")]
    assert rows == [a for (a,) in root(db, "SELECT a FROM t ORDER BY a")]


@pytest.fixture
def skip_a_reply(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Arm with `armed["sql"] = <text>`: the reply to the next statement of hybridwb's own
    holding that text (not a reset's) is left unread, once: the seam of a reply out of
    step."""
    armed: dict[str, Any] = {"sql": None, "sent": "", "skipped": False}
    send, read = drivers._send, drivers.read_reply

    def sending(raw: Any, sql: str, reset: bool = False) -> bool:
        armed["sent"] = sql
        return send(raw, sql, reset)

    def reading(raw: Any, *, reset: bool = False) -> None:
        if armed["sql"] is not None and not reset and armed["sql"] in armed["sent"]:
            armed["sql"], armed["skipped"] = None, True
            return
        read(raw, reset=reset)

    monkeypatch.setattr(drivers, "_send", sending)
    monkeypatch.setattr(drivers, "read_reply", reading)
    return armed


def test_a_view_read_whose_check_reads_its_rows_fails_in_one_line(
    db: str, source: Source, skip_a_reply: dict[str, Any]
) -> None:
    """BREAK 4 (fixed), through `Source`: on a pinned connection a view read with its own
    time limit sets the session first; that SET's OK left unread, the view's SELECT reads
    it as its result (no rows) and the check after the view reads the SELECT's row as the
    session: a raw ValueError, and `records` would have returned no rows. A one-line
    ConnectionFailed now, the connection dropped; the next read counts root's rows."""
    with source.one_connection():
        thread = thread_of(source)
        skip_a_reply["sql"] = "max_statement_time = 7.000"  # the SET before the read
        with pytest.raises(ConnectionFailed) as failed:
            source.records("SELECT COUNT(*) AS n FROM v", timeout=7)
        assert skip_a_reply["skipped"]
        rows = count(source)
    assert "\n" not in str(failed.value).strip()
    assert threads_left(thread) == 0
    assert rows == 3


BY_DAY = {
    # the last order on 2026-02-20 (at 08:00): customer 4's
    "max-on-the-day": (
        {"aggregate": "max", "relation": "orders", "field": "ots", "op": "eq",
         "value": "2026-02-20"},
        "SELECT cid FROM zo WHERE {real} GROUP BY cid HAVING DATE(MAX(ots)) = '2026-02-20'"),
    # the last order after 2026-02-20: not customer 4's of that day
    "max-after-the-day": (
        {"aggregate": "max", "relation": "orders", "field": "ots", "op": "gt",
         "value": "2026-02-20"},
        "SELECT cid FROM zo WHERE {real} GROUP BY cid HAVING DATE(MAX(ots)) > '2026-02-20'"),
    # an order since yesterday: customer 6's of this morning
    "count-since-yesterday": (
        {"aggregate": "count", "relation": "orders", "op": "gte", "value": 1,
         "within_last": {"days": 1}, "date_field": "ots"},
        "SELECT DISTINCT cid FROM zo WHERE {real} AND DATE(ots) "
        "BETWEEN '2026-03-02' AND '2026-03-03'"),
}  # fmt: skip


@pytest.mark.parametrize("where, oracle", list(BY_DAY.values()), ids=list(BY_DAY))
def test_an_aggregate_of_a_datetime_mapped_as_a_date_is_of_its_day(
    zdb: str, reader: str, tmp_path: Path, where: dict[str, Any], oracle: str
) -> None:
    """The orders' DATETIME `ots` mapped as a date: a `max` compared with a day, and a
    window of days, are by `DATE(ots)`, as root's SQL over the real dates."""
    chosen = keys(zdb, oracle.format(real=REAL.format(c="ots")))
    assert chosen
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zo", {**ZO, "fields": {**ZO["fields"], "ots": F("주문시각", "date")}})
        wb.mappings.save("zc", ZC)
        count, got = _chosen(wb, path, "zc", where)
    assert (count, got) == (len(chosen), chosen)
