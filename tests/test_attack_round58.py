"""Attack round 58: who is messaged with whose values, on schemas nobody here designed.

The guarantee under attack: a workflow run messages exactly the intended customers, once
each, with their own values, and only reads the source. Aimed at what no round attacked or
left as a known gap: a customer who moves to another account between the run's freeze and
its batch read (and a resume after it), duplicate local columns, audiences that are views,
dates kept as text (`is_null` / `not_null`, a SQLite source's `orderBy`), and to-one keys
under collations Python does not fold as the server does (`resolve._as_compared`).

Source: one MariaDB database built by root, read by an account created here with `GRANT
SELECT ON db.*` and nothing else (checked with SHOW GRANTS, dropped after); SQLite source
files for the SQLite cases. Store: SQLite. Oracles: root's SQL (the server's own joins and
comparisons), a truth table of which texts are real dates (round 57's, checked against
root's reading), the store's `send_records` / `run_skips` read with sqlite3.

BREAKS (mutation counts: the fix undone by hand, this file run, of its 37 tests):

- BREAK 1 (fixed): a to-one hop's rows were given to the parent values Python folded alike
  (`resolve._as_compared`: case, accents, trailing spaces), not those the server's
  collation joins: under latin1_swedish_ci ('Ü' is 'Y') customer 'u1', who has no account,
  got account 'Ü1''s `{{ account.label }}` (customer 'y1''s, who was skipped as missing);
  under utf8mb4_general_ci ('ß' is 's') 'ss1' got 's1''s 'ß1'; under utf8mb4_unicode_ci
  'e1' and 'é1 ' (both 'É1''s) and under utf8mb4_bin 'K1 ' ('K1''s: PAD SPACE) were
  skipped as missing. The values no row holds byte for byte are now read through the
  parent table, related by the server's own comparison (`Resolver._as_joined`).
  → 4 of 37 fail.
- BREAK 2 (fixed): `is_null` / `not_null` on a date kept as text compared the text with
  NULL: '' ("never withdrawn"), '00000000', 'N', '20260230' were dates to `not_null` ("you
  withdrew: come back" messaged every member who never left) and chose nobody for
  `is_null`. A text that is no real date is missing to both now on MariaDB
  (`text_date`), and refused on SQLite as round 57's comparisons are. → 6 of 37 fail.
- BREAK 3 (fixed as a refusal): a SQLite source's `orderBy` on a date kept in a TEXT
  column ordered as text, so the latest address of customers 1, 2 and 3 ('2026-9-30'
  after '2026-10-01', '20260930' after '2026-10-01 00:00:00', '2026-02-30' after
  '2026-01-15') was an older one: they were messaged at that address's phone, and the
  text named it. Refused now in one line, at the preview and at the run
  (`Resolver._dated_order`); a DATETIME column orders as before. → 1 of 37 fails.
- BREAK 4 (fixed): an aggregate's `min` / `max` of a date kept as text was the text's,
  compared with the date as text: a customer whose only order was '20250101' was a buyer
  "since June 2025" (a recent-buyer offer to a lapsed one) and not one "before June". The
  aggregate is of the dates now (`text_date`; refused on SQLite). → 4 of 37 fail.
- BREAK 5 (fixed): a zero date in a DATETIME column (gnuboard's `mb_today_login`
  '0000-00-00 00:00:00', "never logged in"): MariaDB reads `IS NULL` of a NOT NULL one as
  "is the zero date" and `IS NOT NULL` as true for it, so a member who never logged in was
  chosen by `not_null` ("members who logged in") and by `is_null`; in a nullable column
  the zero date and '2025-00-00' were dates to `not_null`. Missing to both now
  (`Builder._zero_dated`). → 4 of 37 fail.
- BREAK 6 (fixed in branch `snap58`): a template's related values were read by a
  statement of their own after the batch's rows (`Resolver.fetch` after `audience.fetch`):
  an address added between the two reads was named in a message sent to the phone of the
  address before it. Both are read now in one read-only consistent snapshot on one
  connection (`Source.consistent`, `batches.pending_batches`); a view or a MyISAM table
  in the reads gives no snapshot (see `hybridwb/source/snapshot.py`).

HELD: a customer who moves to another account after the freeze is messaged once, at
their own phone naming the account root's join gives them now, or at the account's phone
only while it is the phone frozen for them (else excluded as changed, nobody messaged at
the new account's phone); one whose latest address gets another phone is messaged at
neither number; a resume after a run died mid-way, with customers moved before
and after it, sends nobody twice (a mutation: the recipient check off → 3 of 37 fail);
an unmapped local column two relations start from, beside a mapped field whose display
name is that column's name: each variable from the column it names; a view joining
customers to addresses (a customer repeated) is refused in one line, nobody messaged (the
page's repeat check off → 2 of 37 fail), a view cannot be marked the audience, and a view
with one row per customer messages each once; mapped field or relation names differing
from the live column by case are refused at save.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.source import Source
from hybridwb.workflows import audience as audience_module
from tests._mysql import select_only_url
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import DAY, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round53_real_schemas import e164, phone
from tests.test_attack_round56_real_schema import connect, run, sent, skipped, store_rows, texts
from tests.test_attack_round57 import ADDRESSES, LATEST, MEMBER, MEMBERS

pytestmark = [pytest.mark.mysql]

# to-one keys under a collation: (charset, collation, the account's code, [(customer, code)])
# customer 1's code is the account's by the server's collation, customer 2's is not, though
# Python's folding (case, accents, trailing spaces) holds it alike or unlike the other way
COLLATED: dict[str, tuple[str, str, str, list[tuple[int, str]]]] = {
    # latin1_swedish_ci: 'Ü' sorts and compares as 'Y', not as 'U'
    "latin1_swedish_ci": ("latin1", "latin1_swedish_ci", "Ü1", [(1, "y1"), (2, "u1")]),
    # utf8mb4_general_ci: 'ß' is 's' (one letter), not 'ss'
    "utf8mb4_general_ci": ("utf8mb4", "utf8mb4_general_ci", "ß1", [(1, "s1"), (2, "ss1")]),
    # utf8mb4_unicode_ci: 'é' is 'e' and 'É', trailing spaces pad: both are 'É1''s
    "utf8mb4_unicode_ci": ("utf8mb4", "utf8mb4_unicode_ci", "É1", [(1, "e1"), (2, "é1 ")]),
    # utf8mb4_bin: case counts, trailing spaces pad (PAD SPACE): 'K1 ' is 'K1''s, 'k1' not
    "utf8mb4_bin": ("utf8mb4", "utf8mb4_bin", "K1", [(1, "K1 "), (2, "k1")]),
}


def _collated_ddl() -> list[str]:
    out = []
    for i, (charset, collation, _, _) in enumerate(COLLATED.values()):
        code = f"code VARCHAR(10) CHARACTER SET {charset} COLLATE {collation}"
        out += [
            f"CREATE TABLE acct{i} ({code} PRIMARY KEY, label VARCHAR(20))",
            f"CREATE TABLE cust{i} (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
            f"{code}, KEY (code))",
        ]
    return out


def _collated_rows() -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for i, (_, _, account, customers) in enumerate(COLLATED.values()):
        out[f"acct{i}"] = [(account, f"라벨{i}")]
        out[f"cust{i}"] = [(c, f"회원{c}", phone(10 * i + c), code) for c, code in customers]
    return out


ZERO = "0000-00-00 00:00:00"
# each customer's orders: (customer, order date as stored); the dates they are in `ORDERED`
ORDERS = [(1, "20250101"), (2, "2026-9-30"), (2, "2026-10-01"), (3, "2025-12-31 10:00:00"),
          (4, ""), (4, "20240505")]  # fmt: skip
ORDERED = {1: [dt.datetime(2025, 1, 1)], 2: [dt.datetime(2026, 9, 30), dt.datetime(2026, 10, 1)],
           3: [dt.datetime(2025, 12, 31, 10)], 4: [dt.datetime(2024, 5, 5)], 5: []}  # fmt: skip

DDL = (
    # gnuboard's zero dates need a sql_mode without NO_ZERO_DATE (the rows' inserts too)
    "SET SESSION sql_mode = ''",
    *_collated_ddl(),
    # round 57's members: dates kept as text ('' for "never", '00000000', 'N', '20260230')
    "CREATE TABLE mem (mid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "leave_date VARCHAR(8) NOT NULL DEFAULT '', reg VARCHAR(19) NULL, agree TINYINT(1), "
    "KEY (mobile))",
    # customers -> accounts (to-one): a customer moves between the freeze and the batch read
    "CREATE TABLE macct (acc INT PRIMARY KEY, label VARCHAR(20), phone VARCHAR(20))",
    "CREATE TABLE mcust (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), acc INT, "
    "KEY (acc))",
    # duplicate local columns: `acc` unmapped (two relations start from it), `code` mapped
    # with the display name "acc"
    "CREATE TABLE dcust (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), acc INT, "
    "code VARCHAR(10), KEY (acc))",
    "CREATE TABLE dhome (acc INT PRIMARY KEY, city VARCHAR(20))",
    # gnuboard's zero dates in DATETIME columns: "never logged in"
    "CREATE TABLE zmem (mid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "last_login DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00', seen DATETIME NULL)",
    # customers -> orders, the order date kept as text in several forms
    "CREATE TABLE ocust (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE oord (oid INT PRIMARY KEY, cid INT, odate VARCHAR(19), KEY (cid))",
    # customers -> addresses (one-to-many, latest by `updated`)
    "CREATE TABLE vcust (cid INT PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE vaddr (aid INT PRIMARY KEY, cid INT, phone VARCHAR(20), updated DATETIME, "
    "KEY (cid))",
    # a view joining customers to their addresses: a customer with two addresses repeats
    "CREATE VIEW vboth AS SELECT c.cid, c.name, a.phone FROM vcust c JOIN vaddr a ON a.cid = c.cid",
    # a view with one row per customer: no key the schema states unique
    "CREATE VIEW vone AS SELECT c.cid, c.name, (SELECT a.phone FROM vaddr a WHERE "
    "a.cid = c.cid ORDER BY a.updated DESC, a.aid DESC LIMIT 1) AS phone FROM vcust c",
)
ROWS: dict[str, list[tuple[Any, ...]]] = {
    **_collated_rows(),
    "mem": [(m, n, phone(m), leave, reg, 1) for m, (n, leave, _, reg, _) in MEMBERS.items()],
    # accounts 1-6 each their own phone; 7 shares account 1's (a household), 8 a new one
    "macct": [(a, f"계정{a}", phone(70 + a)) for a in range(1, 7)]
    + [(7, "계정7", phone(71)), (8, "계정8", phone(78))],
    "mcust": [(c, f"회원{c}", phone(60 + c), c) for c in range(1, 7)],
    "dcust": [(1, "회원1", phone(51), 2, "X9"), (2, "회원2", phone(52), 1, "X8"),
              (3, "회원3", phone(53), 9, "X7")],
    "dhome": [(1, "도시1"), (2, "도시2"), (9, "도시9")],
    "zmem": [(1, "회원1", phone(1), ZERO, ZERO), (2, "회원2", phone(2), "2026-01-01", "2026-01-01"),
             (3, "회원3", phone(3), "2026-02-01", None),
             (4, "회원4", phone(4), "2025-00-00", "2025-00-00 10:00:00")],
    "ocust": [(c, f"구매자{c}", phone(40 + c)) for c in range(1, 6)],
    "oord": [(o, c, d) for o, (c, d) in enumerate(ORDERS, start=1)],
    "vcust": [(c, f"고객{c}") for c in range(1, 5)],
    "vaddr": [(1, 1, phone(81), "2025-01-01"), (2, 1, phone(91), "2026-01-01"),
              (3, 2, phone(82), "2025-01-01"), (4, 3, phone(83), "2025-01-01"),
              (5, 3, phone(83), "2026-01-01")],
}  # fmt: skip


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_r58", *DDL, rows=ROWS)


@pytest.fixture(scope="module")
def reader(db: str) -> Iterator[str]:
    """A URL of an account created here holding SELECT on the database and nothing else."""
    with select_only_url(db, "r58") as url:
        yield url


# -- 5. to-one keys under collations Python does not fold as the server does ------------------
def collated(wb: hybridwb.Workbench, i: int) -> None:
    wb.mappings.save(f"acct{i}", {"displayName": "계정", "key": "code", "fields": {
        "code": F("코드", role="id"), "label": F("라벨")}})  # fmt: skip
    wb.mappings.save(f"cust{i}", {
        "displayName": "회원", "key": "cid", "audience": True, "recipient": "mobile",
        "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
                   "mobile": F("전화", role="phone"), "code": F("코드")},
        "relations": [{"table": f"acct{i}", "name": "account", "localField": "code",
                       "foreignField": "code", "kind": "many-to-one"}]})  # fmt: skip


@pytest.mark.parametrize("collation", list(COLLATED))
def test_a_to_one_key_is_given_the_row_the_server_joins_it_to(
    db: str, reader: str, tmp_path: Path, collation: str
) -> None:
    """Each customer's `{{ account.label }}` is the label of the account the server's own
    join gives them (root's LEFT JOIN), never another's; a customer the join gives none is
    skipped as missing."""
    i = list(COLLATED).index(collation)
    wb, path = connect(reader, tmp_path)
    with wb:
        collated(wb, i)
        run(wb, {"table": f"cust{i}"}, {"content": "{{ 이름 }}님, {{ account.label }}"})
    joined = {
        str(c): label
        for c, label in src(
            db, f"SELECT c.cid, a.label FROM cust{i} c LEFT JOIN acct{i} a ON a.code = c.code"
        )
    }
    assert joined["1"] == f"라벨{i}"  # the oracle: customer 1 is the account's
    assert texts(path) == {c: f"회원{c}님, {label}" for c, label in joined.items() if label}
    assert sent(path) == {c: [e164(10 * i + int(c))] for c, label in joined.items() if label}
    assert set(skipped(path)) == {c for c, label in joined.items() if not label}


# -- 4. dates kept as text: is_null / not_null, a SQLite source's orderBy -----------------------
def _no_date() -> set[str]:
    return {str(m) for m, (_, _, day, _, _) in MEMBERS.items() if day is None}


NULLS = {
    "leave-is-null": ({"field": "leave_date", "op": "is_null"}, _no_date()),
    "leave-not-null": ({"field": "leave_date", "op": "not_null"},
                       {str(m) for m in MEMBERS} - _no_date()),
    "reg-not-null": ({"field": "reg", "op": "not_null"},
                     {str(m) for m, (*_, at) in MEMBERS.items() if at is not None}),
}  # fmt: skip


def test_the_truth_table_is_what_root_reads(db: str) -> None:
    """Root's own reading of the texts (STR_TO_DATE, a real day and month) agrees with the
    truth table the cases below are written from."""
    real = {
        str(m)
        for (m,) in src(
            db,
            "SELECT mid FROM mem WHERE DAYOFMONTH(CAST(leave_date AS DATE)) > 0 "
            "AND MONTH(CAST(leave_date AS DATE)) > 0",
        )
    }
    assert real == {str(m) for m in MEMBERS} - _no_date() == {"2", "3", "8", "9"}


@pytest.mark.parametrize("where, chosen", list(NULLS.values()), ids=list(NULLS))
def test_a_text_that_is_no_real_date_is_a_missing_date(
    reader: str, tmp_path: Path, where: dict[str, Any], chosen: set[str]
) -> None:
    """BREAK 2 (fixed): `is_null` / `not_null` on a date kept as text compared the text
    with NULL: gnuboard's '' ("never withdrawn"), '00000000', 'N', '20260230' were dates
    to `not_null` ("you withdrew: come back" messaged every member who never left) and
    missing to no `is_null` (which chose nobody). A text that is no real date is missing
    to both now, as it is to every comparison (`text_date`) and to the message."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("mem", MEMBER)
        count = wb.targets.preview({"table": "mem", "where": where}, now=DAY).count
        run(wb, {"table": "mem", "where": where}, {"content": "{{ 이름 }}님, 안내입니다."})
    assert chosen and count == len(chosen), (count, chosen)
    assert sent(path) == {m: [e164(int(m))] for m in chosen}
    assert not skipped(path)


def sqlite_source(tmp_path: Path, *ddl: str, rows: dict[str, list[tuple[Any, ...]]]) -> str:
    source = tmp_path / "src.db"
    conn = sqlite3.connect(source)
    try:
        with conn:
            for stmt in ddl:
                conn.execute(stmt)
            for table, values in rows.items():
                marks = ", ".join(["?"] * len(values[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    finally:
        conn.close()
    return f"sqlite:///{source}"


def sqlite_wb(url: str, tmp_path: Path) -> tuple[hybridwb.Workbench, Path]:
    path = tmp_path / "s.db"
    wb = hybridwb.connect(source=url, store=f"sqlite:///{path}", cwd=tmp_path)
    wb.store.init()
    return wb, path


@pytest.mark.parametrize("case", list(NULLS))
def test_a_sqlite_sources_text_date_null_test_is_refused_with_nothing_sent(
    tmp_path: Path, case: str
) -> None:
    """BREAK 2 on SQLite (fixed as round 57's refusal): SQLite reads no text as a date, so
    `not_null` chose the members who never left ('' and '00000000') as withdrawn; refused
    in one line with the way forward, at preview and at the run, nothing sent."""
    url = sqlite_source(
        tmp_path,
        "CREATE TABLE mem (mid INTEGER PRIMARY KEY, name TEXT, mobile TEXT, "
        "leave_date TEXT NOT NULL DEFAULT '', reg TEXT, agree INTEGER)",
        rows={"mem": ROWS["mem"]},
    )
    wb, path = sqlite_wb(url, tmp_path)
    where = NULLS[case][0]
    with wb:
        wb.mappings.save("mem", MEMBER)
        with pytest.raises(ValidationError) as refused:
            wb.targets.preview({"table": "mem", "where": where}, now=DAY)
        with pytest.raises(HybridwbError, match="store it as DATETIME"):
            run(wb, {"table": "mem", "where": where}, {"content": "{{ 이름 }}님, 안내입니다."})
    assert "store it as DATETIME" in str(refused.value) and "\n" not in str(refused.value)
    assert not sent(path) and not skipped(path)


ADDR = {
    "displayName": "주소", "key": "aid",
    "fields": {"aid": F("번호", "number", "id"), "mid": F("회원", "number"),
               "phone": F("전화", role="phone"), "updated": F("수정일", "datetime")},
}  # fmt: skip
CUST = {
    "displayName": "고객", "key": "cid", "audience": True, "recipient": "addresses.phone",
    "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name")},
    "relations": [{"table": "madd", "name": "addresses", "localField": "cid",
                   "foreignField": "mid", "kind": "one-to-many", "orderBy": "updated"}],
}  # fmt: skip


def test_a_sqlite_sources_latest_row_by_a_text_date_is_refused_with_nothing_sent(
    tmp_path: Path,
) -> None:
    """BREAK 3 (fixed as a refusal): round 57's addresses in a SQLite source file, `updated`
    TEXT in several forms: SQLite ordered them as text, so '2026-9-30' came after
    '2026-10-01': customers 1, 2 and 3 were messaged at the phone of an older address
    (which they may have given up) and the message named it. SQLite reads no such text as
    a date; the latest row by a date kept as text is refused there in one line, at the
    preview and at the run, nothing sent."""
    url = sqlite_source(
        tmp_path,
        "CREATE TABLE cust (cid INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE madd (aid INTEGER PRIMARY KEY, mid INTEGER, phone TEXT, updated TEXT)",
        rows={
            "cust": [(c, f"고객{c}") for c in LATEST],
            "madd": [(a, m, phone(p), u) for a, m, p, u in ADDRESSES],
        },
    )
    wb, path = sqlite_wb(url, tmp_path)
    with wb:
        wb.mappings.save("madd", ADDR)
        wb.mappings.save("cust", CUST)
        with pytest.raises(ValidationError) as refused:
            wb.targets.preview({"table": "cust"})
        with pytest.raises(HybridwbError, match="store it as DATETIME"):
            run(wb, {"table": "cust"}, {"content": "{{ 이름 }}님, {{ addresses.phone }} 확인"})
    text = str(refused.value)
    assert "store it as DATETIME" in text and "updated" in text and "\n" not in text
    assert not sent(path) and not skipped(path)


def test_a_sqlite_sources_latest_row_by_a_datetime_column_is_messaged(tmp_path: Path) -> None:
    """Held beside BREAK 3: the same addresses with `updated` a DATETIME column holding
    ISO texts (how the embedded sample keeps its dates) order as dates: each customer is
    messaged at their latest address's phone."""
    url = sqlite_source(
        tmp_path,
        "CREATE TABLE cust (cid INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE madd (aid INTEGER PRIMARY KEY, mid INTEGER, phone TEXT, updated DATETIME)",
        rows={
            "cust": [(c, f"고객{c}") for c in (1, 2)],
            "madd": [(1, 1, phone(11), "2026-09-30 00:00:00"), (2, 1, phone(21), "2026-10-01 00:00:00"),
                     (3, 2, phone(12), "2026-10-02 00:00:00"), (4, 2, phone(22), "2026-10-01 23:59:59")],
        },
    )  # fmt: skip
    wb, path = sqlite_wb(url, tmp_path)
    with wb:
        wb.mappings.save("madd", ADDR)
        wb.mappings.save("cust", CUST)
        run(wb, {"table": "cust"}, {"content": "{{ 이름 }}님, {{ addresses.phone }} 확인"})
    assert sent(path) == {"1": [e164(21)], "2": [e164(12)]}
    assert texts(path) == {"1": f"고객1님, {phone(21)} 확인", "2": f"고객2님, {phone(12)} 확인"}


# -- 1. a customer who moves between the freeze and the batch read; a resume after ----------------
ACCT = {"displayName": "계정", "key": "acc", "fields": {
    "acc": F("번호", "number", "id"), "label": F("라벨"), "phone": F("계정전화", role="phone")}}  # fmt: skip


def movers(recipient: str) -> dict[str, Any]:
    return {
        "displayName": "회원", "key": "cid", "audience": True, "recipient": recipient,
        "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
                   "mobile": F("전화", role="phone"), "acc": F("계정", "number")},
        "relations": [{"table": "macct", "name": "account", "localField": "acc",
                       "foreignField": "acc", "kind": "many-to-one"}],
    }  # fmt: skip


@pytest.fixture
def moving(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[int, list[str]]]:
    """Root's statements to run before the run's n-th batch read (`audience.fetch`, the
    read of the frozen keys' current rows): `moving[n]`; the customers put back after.
    A batch whose template reads related values is read in a snapshot of the source
    (`Source.consistent`): the statements run before it is taken, as the batch's read."""
    planned: dict[int, list[str]] = {}
    calls, done = [0], set()
    real, real_consistent = audience_module.fetch, Source.consistent

    def due() -> None:
        if calls[0] in done:
            return
        done.add(calls[0])
        now = planned.get(calls[0], [])
        for sql in now:
            if sql != "fail":
                src(db, sql)
        if "fail" in now:
            calls[0] += 1  # the read it died in counts, as the read it stood for
            raise RuntimeError("the run's kernel died here")

    def fetch(*args: Any, **kwargs: Any) -> Any:
        due()
        calls[0] += 1
        return real(*args, **kwargs)

    def consistent(self: Source, read: Any) -> Any:
        due()
        return real_consistent(self, read)

    monkeypatch.setattr(audience_module, "fetch", fetch)
    monkeypatch.setattr(Source, "consistent", consistent)
    try:
        yield planned
    finally:
        src(db, "UPDATE mcust SET acc = cid")
        src(db, "COMMIT")


@pytest.mark.parametrize("recipient", ["mobile", "account.phone"])
def test_a_customer_who_moves_after_the_freeze_is_messaged_once_with_their_own_values(
    db: str, reader: str, tmp_path: Path, moving: dict[int, list[str]], recipient: str
) -> None:
    """Customer 1 moves to account 7 (a household sharing account 1's phone) and 2 to
    account 8 (another phone) after the freeze, before the batch read. At their own phone
    each is messaged once, naming the account root's join gives them now. At the account's
    phone, 1 is messaged once at the phone frozen for them, naming account 7; 2 (whose
    frozen recipient the source no longer holds for them) is excluded as changed, and
    nobody is messaged at account 8's phone."""
    moving[0] = ["UPDATE mcust SET acc = 7 WHERE cid = 1", "UPDATE mcust SET acc = 8 WHERE cid = 2",
                 "COMMIT"]  # fmt: skip
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("macct", ACCT)
        wb.mappings.save("mcust", movers(recipient))
        run(wb, {"table": "mcust"}, {"content": "{{ 이름 }}님, {{ account.label }}"})
    now = src(db, "SELECT c.cid, c.mobile, a.phone, a.label FROM mcust c JOIN macct a "
                  "ON a.acc = c.acc ORDER BY c.cid")  # fmt: skip
    own = recipient == "mobile"
    expected = {str(c): f"회원{c}님, {label}" for c, _, _, label in now if own or c != 2}
    assert texts(path) == expected
    by_phone = {str(c): ["+82" + (m if own else p).replace("-", "")[1:]] for c, m, p, _ in now}
    assert sent(path) == {c: by_phone[c] for c in expected}
    assert skipped(path) == ({} if own else {"2": "recipient changed since the run started"})
    assert own or e164(78) not in {n for ns in sent(path).values() for n in ns}
    assert ("계정7" in texts(path)["1"]) and (not own or "계정8" in texts(path)["2"])


@pytest.mark.parametrize("recipient", ["mobile", "account.phone"])
def test_a_resume_after_customers_moved_sends_nobody_twice(
    db: str, reader: str, tmp_path: Path, moving: dict[int, list[str]], recipient: str
) -> None:
    """The run dies before its second batch read, after customer 3 moved to account 8;
    before the resume's first read customer 1 (already messaged) moves to account 8 too
    and 4 to account 7. The resume messages no one a second time (1 not again, under any
    account), and each customer it messages names the account root's join gives them
    then; at the account's phone, 3 and 4 (their frozen phone no longer theirs) are
    excluded as changed."""
    moving[1] = ["UPDATE mcust SET acc = 8 WHERE cid = 3", "COMMIT", "fail"]
    moving[2] = ["UPDATE mcust SET acc = 8 WHERE cid = 1", "UPDATE mcust SET acc = 7 WHERE cid = 4",
                 "COMMIT"]  # fmt: skip
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("macct", ACCT)
        wb.mappings.save("mcust", movers(recipient))
        with pytest.raises(HybridwbError, match="RuntimeError"):
            run(wb, {"table": "mcust"}, {"content": "{{ 이름 }}님, {{ account.label }}"})
        assert set(sent(path)) == {"1", "2"}  # the first batch, before the run died
        first = texts(path)
        (run_id, wf_id) = store_rows(path, "SELECT id, workflow_id FROM workflow_runs")[0]
        wb.workflows.process(wf_id, run_id, progress=False, batch_size=2, now=DAY)
    got = store_rows(path, "SELECT target_key, recipient, content FROM send_records")
    assert len(got) == len({k for k, _, _ in got})  # once each
    now = {str(c): (m, p, label) for c, m, p, label in src(
        db, "SELECT c.cid, c.mobile, a.phone, a.label FROM mcust c JOIN macct a ON a.acc = c.acc")}  # fmt: skip
    changed = set() if recipient == "mobile" else {"3", "4"}
    assert texts(path) == {
        **first,
        **{c: f"회원{c}님, {now[c][2]}" for c in ("3", "4", "5", "6") if c not in changed},
    }
    assert first == {"1": "회원1님, 계정1", "2": "회원2님, 계정2"}
    assert {c: r for c, r in skipped(path).items()} == dict.fromkeys(
        changed, "recipient changed since the run started"
    )
    (status,) = store_rows(path, "SELECT status FROM workflow_runs")[0]
    assert status == "succeeded"


# -- 2. duplicate local columns ------------------------------------------------------------------
DUPLICATES = {
    # `{{ acc }}` is the mapped `code` (its display name), not the unmapped local `acc`
    "display-name-of-the-local": ("{{ acc }}, {{ account.label }}",
                                  "SELECT c.cid, CONCAT(c.code, ', ', a.label) FROM dcust c "
                                  "JOIN macct a ON a.acc = c.acc"),
    # two relations from the one unmapped local column
    "two-relations-one-local": ("{{ account.label }}, {{ home.city }}",
                                "SELECT c.cid, CONCAT(a.label, ', ', h.city) FROM dcust c "
                                "JOIN macct a ON a.acc = c.acc JOIN dhome h ON h.acc = c.acc"),
}  # fmt: skip


@pytest.mark.parametrize("content, oracle", list(DUPLICATES.values()), ids=list(DUPLICATES))
def test_a_local_column_two_names_point_at_gives_each_customer_their_own_values(
    db: str, reader: str, tmp_path: Path, content: str, oracle: str
) -> None:
    """Held: the unmapped `dcust.acc` two relations start from, beside a mapped `code`
    whose display name is "acc": each variable is filled from the column it names, for
    each customer from their own row (customer 3's account 9 does not exist: skipped as
    missing where the template names it, never given another's)."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("macct", ACCT)
        wb.mappings.save("dhome", {"displayName": "집", "key": "acc", "fields": {
            "acc": F("번호", "number", "id"), "city": F("도시")}})  # fmt: skip
        wb.mappings.save("dcust", {
            "displayName": "회원", "key": "cid", "audience": True, "recipient": "mobile",
            "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
                       "mobile": F("전화", role="phone"), "code": F("acc")},
            "relations": [
                {"table": "macct", "name": "account", "localField": "acc",
                 "foreignField": "acc", "kind": "many-to-one"},
                {"table": "dhome", "name": "home", "localField": "acc",
                 "foreignField": "acc", "kind": "many-to-one"}]})  # fmt: skip
        run(wb, {"table": "dcust"}, {"content": content})
    expected = {str(c): str(t) for c, t in src(db, oracle)}
    assert texts(path) == expected and expected
    assert sent(path) == {c: [e164(50 + int(c))] for c in expected}
    assert set(skipped(path)) == {"1", "2", "3"} - set(expected)


# -- 3. audiences that are views -------------------------------------------------------------------
def view_mapping(table: str, marked: bool = False) -> dict[str, Any]:
    """A view's mapping: not marked the audience (saving a view marked so is refused), so
    a target names it (`{"table": ...}`), as round 2's view targets."""
    return {
        "displayName": "고객", "key": "cid", "recipient": "phone",
        **({"audience": True} if marked else {}),
        "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name", searchable=True),
                   "phone": F("전화", role="phone", searchable=True)},
    }  # fmt: skip


@pytest.mark.parametrize(
    "target",
    [{"table": "vboth"}, {"table": "vboth", "keyword": "고객1"},
     {"table": "vboth", "where": {"field": "cid", "op": "in", "value": [1, 2]}}],
    ids=["whole-view", "keyword", "condition"],
)  # fmt: skip
def test_a_view_repeating_a_customer_is_refused_with_nothing_sent(
    db: str, reader: str, tmp_path: Path, target: dict[str, Any]
) -> None:
    """Held: a view joining customers to their addresses repeats customer 1 (two phones)
    and 3 (one phone twice); its `cid` is no key the schema states unique. The run is
    refused in one line (the key repeats; a keyword target, by the scan check a view's
    search meets first), nobody messaged, not once and not twice."""
    assert src(db, "SELECT cid FROM vboth GROUP BY cid HAVING COUNT(*) > 1 ORDER BY cid") == [
        (1,),
        (3,),
    ]
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("vboth", view_mapping("vboth"))
        with pytest.raises(HybridwbError) as refused:
            run(wb, target, {"content": "{{ 이름 }}님, 안내입니다."})
    # (a keyword's search of a view is refused before: no SHOW VIEW to rule out a scan)
    text = str(refused.value)
    assert "repeats" in text or ("keyword" in target and "is a view" in text), text
    assert "\n" not in text
    assert not sent(path) and not skipped(path)


def test_a_view_with_one_row_per_customer_messages_each_once_at_their_latest_phone(
    db: str, reader: str, tmp_path: Path
) -> None:
    """Held: a view with one row per customer (the latest address's phone by a subquery;
    no key stated unique, the view says nothing of it): each customer with a phone once,
    at the phone root's view gives them; 4 (no address) excluded as no recipient; 1 and 3
    by their latest address."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("vone", view_mapping("vone"))
        run(wb, {"table": "vone"}, {"content": "{{ 이름 }}님, 안내입니다."})
    rows = src(db, "SELECT cid, phone FROM vone")
    assert sent(path) == {str(c): ["+82" + p.replace("-", "")[1:]] for c, p in rows if p}
    assert sent(path)["1"] == [e164(91)]
    assert (
        skipped(path) == {str(c): "no recipient" for c, p in rows if not p} == {"4": "no recipient"}
    )


@pytest.mark.parametrize("view", ["vboth", "vone"])
def test_a_view_marked_the_audience_is_refused_at_save(
    reader: str, tmp_path: Path, view: str
) -> None:
    """Held: no column of a view is stated unique, so marking one the audience (what a
    saved query's rows are keyed by) is refused in one line, nothing saved."""
    wb, _ = connect(reader, tmp_path)
    with wb:
        with pytest.raises(ValidationError, match="is a view") as refused:
            wb.mappings.save(view, view_mapping(view, marked=True))
        assert view not in wb.mappings.tables()
    assert "\n" not in str(refused.value)


# -- 4. an aggregate's min / max of a date kept as text ---------------------------------------
def _by(agg: Any, pred: Any) -> set[str]:
    return {str(c) for c, days in ORDERED.items() if days and pred(agg(days))}


JUNE = dt.datetime(2025, 6, 1)
AGGREGATES = {
    "last-order-after-june": ("max", "gt", _by(max, lambda d: d > JUNE)),
    "last-order-before-june": ("max", "lt", _by(max, lambda d: d < JUNE)),
    "first-order-after-june": ("min", "gt", _by(min, lambda d: d > JUNE)),
}
BUYER = {
    "displayName": "구매자", "key": "cid", "audience": True, "recipient": "mobile",
    "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
               "mobile": F("전화", role="phone")},
    "relations": [{"table": "oord", "name": "orders", "localField": "cid",
                   "foreignField": "cid", "kind": "one-to-many", "orderBy": "odate"}],
}  # fmt: skip


@pytest.mark.parametrize("agg, op, chosen", list(AGGREGATES.values()), ids=list(AGGREGATES))
def test_an_aggregate_of_a_text_date_compares_the_dates(
    db: str, reader: str, tmp_path: Path, agg: str, op: str, chosen: set[str]
) -> None:
    """BREAK 4 (fixed): an aggregate's `min` / `max` of an order date kept as text was the
    text's min or max, compared with the bound date as text: customer 1, whose only order
    was in January 2025 ('20250101', which sorts after '2025-06-01': '0' > '-'), was a
    buyer "since June" (a recent-buyer offer sent to a lapsed one) and not one "before
    June"; customer 2's last order was '2026-9-30' (after '2026-10-01' by text). The
    aggregate is now of the dates the texts are (`text_date`), a text that is no date
    ('') none."""
    assert src(db, "SELECT cid, odate FROM oord ORDER BY oid") == ORDERS
    where = {"aggregate": agg, "relation": "orders", "field": "odate", "op": op,
             "value": "2025-06-01 00:00:00"}  # fmt: skip
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("oord", {"displayName": "주문", "key": "oid", "fields": {
            "oid": F("번호", "number", "id"), "cid": F("고객", "number"),
            "odate": F("주문일", "datetime")}})  # fmt: skip
        wb.mappings.save("ocust", BUYER)
        count = wb.targets.preview({"table": "ocust", "where": where}, now=DAY).count
        run(wb, {"table": "ocust", "where": where}, {"content": "{{ 이름 }}님, 안내입니다."})
    assert chosen and count == len(chosen), (count, chosen)
    assert sent(path) == {c: [e164(40 + int(c))] for c in chosen}


ZMEM = {
    "displayName": "회원", "key": "mid", "audience": True, "recipient": "mobile",
    "fields": {"mid": F("번호", "number", "id"), "name": F("이름", role="name"),
               "mobile": F("전화", role="phone"), "last_login": F("최근접속", "datetime"),
               "seen": F("확인", "datetime")},
}  # fmt: skip
ZERO_CASES = {
    "not-null-NOT-NULL-column": ("last_login", "not_null", {"2", "3"}),
    "is-null-NOT-NULL-column": ("last_login", "is_null", {"1", "4"}),
    "not-null-nullable-column": ("seen", "not_null", {"2"}),
    "is-null-nullable-column": ("seen", "is_null", {"1", "3", "4"}),
}


@pytest.mark.parametrize("field, op, chosen", list(ZERO_CASES.values()), ids=list(ZERO_CASES))
def test_a_zero_date_is_a_missing_date(
    db: str, reader: str, tmp_path: Path, field: str, op: str, chosen: set[str]
) -> None:
    """BREAK 5 (fixed): gnuboard's "never logged in" is `mb_today_login` '0000-00-00
    00:00:00' in a NOT NULL DATETIME. MariaDB reads `IS NULL` of such a column as "is the
    zero date" but `IS NOT NULL` as true for it: member 1 was both "logged in" (a
    `not_null` campaign to active members messaged a member who never came) and "never";
    in a nullable column the zero date was a date to `not_null` and not missing to
    `is_null`, and so was '2025-00-00'. A date with no day or month is missing to both
    now, as it is in a message (round 56's BREAK 3)."""
    real = {str(m) for (m,) in src(db, f"SELECT mid FROM zmem WHERE DAYOFMONTH({field}) > 0 "
                                       f"AND MONTH({field}) > 0")}  # fmt: skip
    assert real == ({"2", "3"} if field == "last_login" else {"2"})  # the truth table
    where = {"field": field, "op": op}
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zmem", ZMEM)
        count = wb.targets.preview({"table": "zmem", "where": where}, now=DAY).count
        run(wb, {"table": "zmem", "where": where}, {"content": "{{ 이름 }}님, 안내입니다."})
    assert count == len(chosen), (count, chosen)
    assert sent(path) == {m: [e164(int(m))] for m in chosen}


VCUST = {
    "displayName": "고객", "key": "cid", "audience": True, "recipient": "addresses.phone",
    "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name")},
    "relations": [{"table": "vaddr", "name": "addresses", "localField": "cid",
                   "foreignField": "cid", "kind": "one-to-many", "orderBy": "updated"}],
}  # fmt: skip
VADDR = {"displayName": "주소", "key": "aid", "fields": {
    "aid": F("번호", "number", "id"), "cid": F("고객", "number"),
    "phone": F("전화", role="phone"), "updated": F("수정일", "datetime")}}  # fmt: skip


def test_a_message_names_the_phone_it_was_sent_to_when_an_address_is_added_mid_batch(
    db: str, reader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK 6 (fixed): the run reads a batch's rows (the recipient: the latest address's
    phone, checked against the frozen one) and then, by a statement of its own, the
    template's related values (`Resolver.fetch`). Customer 1 adds a newer address between
    the two reads. Before: the message went to the phone frozen and read (their address of
    2026-01-01) and said "{{ addresses.phone }}로 안내" with the new one's. Now both reads
    are one snapshot's (`Source.consistent`): the text names the phone it is sent to."""
    from hybridwb.mapping.resolve import Resolver

    real, calls = Resolver.fetch, [0]

    def fetch(self: Resolver, *args: Any, **kwargs: Any) -> Any:
        if calls[0] == 0:
            src(db, f"INSERT INTO vaddr VALUES (99, 1, '{phone(99)}', '2026-02-01')")
            src(db, "COMMIT")
        calls[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Resolver, "fetch", fetch)
    wb, path = connect(reader, tmp_path)
    try:
        with wb:
            wb.mappings.save("vaddr", VADDR)
            wb.mappings.save("vcust", VCUST)
            run(wb, {"table": "vcust"}, {"content": "{{ 이름 }}님, {{ addresses.phone }}로 안내"})
    finally:
        src(db, "DELETE FROM vaddr WHERE aid = 99")
        src(db, "COMMIT")
    assert calls[0] >= 1
    got = store_rows(path, "SELECT target_key, recipient, content FROM send_records")
    assert got and all(
        to == "+82" + text.split(", ")[1].split("로")[0].replace("-", "")[1:] for _, to, text in got
    ), got


def test_a_sqlite_sources_aggregate_of_a_text_date_is_refused_with_nothing_sent(
    tmp_path: Path,
) -> None:
    """BREAK 4 on SQLite (fixed as round 57's refusal): SQLite reads no '20250101' as a
    date, so `max(odate)` of the orders was the text's max; refused in one line, at the
    preview and at the run, nothing sent."""
    url = sqlite_source(
        tmp_path,
        "CREATE TABLE ocust (cid INTEGER PRIMARY KEY, name TEXT, mobile TEXT)",
        "CREATE TABLE oord (oid INTEGER PRIMARY KEY, cid INTEGER, odate TEXT)",
        rows={
            "ocust": [(c, f"구매자{c}", phone(40 + c)) for c in range(1, 6)],
            "oord": [(o, c, d) for o, (c, d) in enumerate(ORDERS, start=1)],
        },
    )
    where = {"aggregate": "max", "relation": "orders", "field": "odate", "op": "gt",
             "value": "2025-06-01 00:00:00"}  # fmt: skip
    wb, path = sqlite_wb(url, tmp_path)
    with wb:
        wb.mappings.save("oord", {"displayName": "주문", "key": "oid", "fields": {
            "oid": F("번호", "number", "id"), "cid": F("고객", "number"),
            "odate": F("주문일", "datetime")}})  # fmt: skip
        wb.mappings.save("ocust", BUYER)
        with pytest.raises(ValidationError, match="store it as DATETIME"):
            wb.targets.preview({"table": "ocust", "where": where}, now=DAY)
        with pytest.raises(HybridwbError, match="store it as DATETIME"):
            run(wb, {"table": "ocust", "where": where}, {"content": "{{ 이름 }}님, 안내입니다."})
    assert not sent(path) and not skipped(path)


@pytest.mark.parametrize("where", ["field", "localField"])
def test_a_name_differing_from_the_live_column_by_case_is_refused_at_save(
    reader: str, tmp_path: Path, where: str
) -> None:
    """Held: MariaDB compares column names case-blind, so `ACC` would read `acc`; a mapped
    field or a relation's local column written so is refused in one line naming the column
    as the schema writes it, nothing saved (two names of one column never reach a run)."""
    mapping = movers("mobile")
    if where == "field":
        mapping["fields"]["ACC"] = mapping["fields"].pop("acc")
    else:
        mapping["relations"][0]["localField"] = "ACC"
    wb, _ = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("macct", ACCT)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("mcust", mapping)
        assert "mcust" not in wb.mappings.tables()
    text = str(refused.value)
    assert "ACC" in text and "Nothing was saved" in text and "\n" not in text, text


def test_a_customer_whose_address_phone_changes_after_the_freeze_is_not_messaged_at_either(
    db: str, reader: str, tmp_path: Path, moving: dict[int, list[str]]
) -> None:
    """Held: after the freeze, before the batch read, customer 1's latest address gets
    another phone and customer 3's older address (not the latest) another one too. 1 is
    excluded as changed: messaged neither at the number frozen (perhaps given up) nor at
    the new one (never in the frozen set); 3 is messaged once at their latest address's
    phone, as root reads it; 2 as frozen."""
    moving[0] = [f"UPDATE vaddr SET phone = '{phone(98)}' WHERE aid = 2",
                 f"UPDATE vaddr SET phone = '{phone(97)}' WHERE aid = 4", "COMMIT"]  # fmt: skip
    wb, path = connect(reader, tmp_path)
    try:
        with wb:
            wb.mappings.save("vaddr", VADDR)
            wb.mappings.save("vcust", VCUST)
            run(wb, {"table": "vcust"}, {"content": "{{ 이름 }}님, 안내입니다."})
        latest = src(
            db,
            "SELECT c.cid, (SELECT a.phone FROM vaddr a WHERE a.cid = c.cid ORDER BY "
            "a.updated DESC, a.aid DESC LIMIT 1) FROM vcust c WHERE c.cid IN (2, 3)",
        )
    finally:
        src(db, f"UPDATE vaddr SET phone = '{phone(91)}' WHERE aid = 2")
        src(db, f"UPDATE vaddr SET phone = '{phone(83)}' WHERE aid = 4")
        src(db, "COMMIT")
    assert sent(path) == {str(c): ["+82" + p.replace("-", "")[1:]] for c, p in latest}
    assert sent(path)["3"] == [e164(83)]
    assert skipped(path) == {"1": "recipient changed since the run started", "4": "no recipient"}
