"""Round 61 (placeholder docstring, rewritten at the end)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from tests._mysql import select_only_url
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import DAY, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round53_real_schemas import e164, phone
from tests.test_attack_round56_real_schema import connect, run, sent

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
}
ORDERS = [  # (oid, cid, date): customer 6 has none; 7 a real one and a dayless one
    (1, 1, "2026-03-00", 10), (2, 2, "2026-00-15", 20), (3, 3, "0000-00-00", 30),
    (4, 4, "2026-02-20", 40), (5, 5, "2024-01-01", 50), (6, 7, "2026-02-25", 5),
    (7, 7, "2026-03-00", 100),
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
@pytest.mark.parametrize(
    "cond, on_datetime, on_date", list(COMPARED.values()), ids=list(COMPARED)
)
def test_a_date_without_a_day_or_month_is_chosen_by_no_comparison(
    zdb: str, reader: str, tmp_path: Path, field: str, cond: dict[str, Any],
    on_datetime: str, on_date: str,
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
