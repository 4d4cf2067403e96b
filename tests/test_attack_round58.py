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

BREAKS (mutation counts: the fix undone by hand, this file run, of its N tests):

HELD:
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.workflows import audience as audience_module
from tests._mysql import select_only_url
from tests.conftest import mariadb_maker
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


DDL = (
    *_collated_ddl(),
    # round 57's members: dates kept as text ('' for "never", '00000000', 'N', '20260230')
    "CREATE TABLE mem (mid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "leave_date VARCHAR(8) NOT NULL DEFAULT '', reg VARCHAR(19) NULL, agree TINYINT(1), "
    "KEY (mobile))",
    # customers -> accounts (to-one): a customer moves between the freeze and the batch read
    "CREATE TABLE macct (acc INT PRIMARY KEY, label VARCHAR(20), phone VARCHAR(20))",
    "CREATE TABLE mcust (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), acc INT, "
    "KEY (acc))",
    # customers -> addresses (one-to-many, latest by `updated`)
    "CREATE TABLE vcust (cid INT PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE vaddr (aid INT PRIMARY KEY, cid INT, phone VARCHAR(20), updated DATETIME, "
    "KEY (cid))",
    # a view joining customers to their addresses: a customer with two addresses repeats
    "CREATE VIEW vboth AS SELECT c.cid, c.name, a.phone FROM vcust c JOIN vaddr a "
    "ON a.cid = c.cid",
    # a view with one row per customer: no key the schema states unique
    "CREATE VIEW vone AS SELECT c.cid, c.name, (SELECT a.phone FROM vaddr a WHERE "
    "a.cid = c.cid ORDER BY a.updated DESC, a.aid DESC LIMIT 1) AS phone FROM vcust c",
)
ROWS: dict[str, list[tuple[Any, ...]]] = {
    **_collated_rows(),
    "mem": [(m, n, phone(m), leave, reg, 1) for m, (n, leave, _, reg, _) in MEMBERS.items()],
    "macct": [(1, "계정1", phone(71)), (2, "계정2", phone(72)), (3, "계정3", phone(71))],
    "mcust": [(c, f"회원{c}", phone(60 + c), 1 + (c - 1) % 2) for c in range(1, 7)],
    "vcust": [(c, f"고객{c}") for c in range(1, 5)],
    "vaddr": [(1, 1, phone(81), "2025-01-01"), (2, 1, phone(91), "2026-01-01"),
              (3, 2, phone(82), "2025-01-01"), (4, 3, phone(83), "2025-01-01"),
              (5, 3, phone(83), "2026-01-01")],
}  # fmt: skip


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    maker = mariadb_maker("hybridwb_r58")
    make = next(maker)
    try:
        yield make(*DDL, rows=ROWS)
    finally:
        maker.close()


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
