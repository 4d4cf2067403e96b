"""Attack round 57: round 56's text dates and round 54's account path, as careless data has them.

The guarantee under attack: a message goes to exactly the intended customers, once, and its
text names that customer's own values, and nothing hybridwb sends to the source is anything
but a read. Aimed at the code merged today: date conditions on a column kept as text
(`targets.sql.Builder._dated`, round 56), the latest related row by an `orderBy`
(`Resolver.latest_order`), search through `account.addresses.phone` and template values
through an unmapped local column (round 54's BREAK 9 and 10, `Plan.locals`,
`Resolver._with_locals`).

Source: one MariaDB database built by root, read by an account created here with `GRANT
SELECT ON db.*` and nothing else (checked with SHOW GRANTS, dropped after). Store: SQLite.
Oracles: a truth table written here of which texts are real dates (`LEAVE`, `REG`, checked
against root's reading of the rows) and root's SQL; the store's `send_records` /
`run_skips` read with sqlite3.

BREAKS (mutation counts: the fix undone by hand, this file run, of its 20 tests):

- BREAK 1 (fixed): a date kept as text that is no real date ('' for "never", gnuboard's
  `mb_leave_date` of every member who never left; '00000000'; 'N'; '20251301') was chosen
  by `older_than`, `lt`, `lte` and `ne`: MariaDB's `CAST('' AS DATE)` is NULL where
  selected, but compared with a date it is read as 0000-00-00, and '20260230' as 30
  February (fuzzy). "Withdrawn more than a year ago: come back" messaged every active
  member; `within_last 90 days` chose a member whose leave date is 30 February. A text date
  is now `CASE WHEN DAYOFMONTH(CAST(..)) > 0 AND MONTH(CAST(..)) > 0 THEN CAST(..) END`
  (`resolve.text_date`): no real date, NULL, chosen by no comparison. → 9 of 20 fail.
- BREAK 2 (fixed): the latest address by a date kept as text in more than one form
  ('2026-9-30' and '2026-10-01', '20260930' and '2026-10-01 00:00:00', a '2026-02-30'
  beside '2026-01-15') was the older one by text order: the customer messaged at a phone
  they may have given up, and the template named it. An `orderBy` mapped as a date whose
  column the server states text is now ordered as `text_date` (`Resolver._dated_order`, in
  `latest_order`: the recipient's read and the template's). → 1 of 20 fails.
- BREAK 3 (fixed): a date field's text that names no date was sent as it is ("가입일
  00000000", '2026-02-30', '1767225600'), and `date_ko` read '2026-03-01 25:00:00' as 1
  March where every date condition (the server's CAST) found no date. Such a value is now
  missing (`formatters.zero_date_none` through `_text_date`), the message skipped as
  "missing"; `date_ko` writes '2026-3-1' and '2025/12/24 08:00:00' out. → 2 of 20 fail.
- BREAK 4 (fixed): customer 'k1' of the account 'K1' (every column case- and pad-blind:
  the join relates them, the run read their recipient through it) had `{{
  account.addresses.phone }}` looked up by 'k1' among account rows keyed 'K1': skipped as
  "missing". A to-one hop's row is now given to the one parent value like it when no
  parent value holds its own text (`resolve._as_compared`); else missing, never another's.
  → 1 of 20 fails.
- BREAK 5 (fixed): a large table's search through `account.addresses.phone` read account
  'K1''s key and compared the customers' case-blind column with it by the bytes too
  (round 54's `by_bytes`, right only for an exact account key): customers 'k1', 'K2 ',
  'K3' not found by their account's phone (the small table's search and the run relate
  them). The probe now joins on to the searched table and returns its rows' own values
  (`_probe_up`), DISTINCT by the bytes too: by the collation, 'k3' and 'K3', and families
  'f1' and 'F1' of one phone through a first one-to-many hop, were one value and one of
  them never found. → 1 of 20 fails with the join undone, 2 of 20 with DISTINCT by the
  collation alone.
- BREAK 6 (fixed as a refusal): a SQLite source compared a date kept in a TEXT column as
  text: "withdrawn more than a year ago" messaged members 1 and 4, who never left ('' and
  '00000000'), and missed 8 and 9 ('20250301', '2025-1-5'). A date condition on such a
  column is refused there in one line (store it as DATETIME, or a saved query), nothing
  sent. → 3 of 20 fail.

HELD: the SELECT-only account (SHOW GRANTS) read everything; dates '2026-3-1', '20260301',
'2025/12/24 08:00:00' and '2026-03-01 10:00:00' compared as the dates they are; NULL and ''
text dates chosen by no comparison; Korean names in messages as stored; a small
table's search through a case-blind account key finds whom the join finds; a duplicate
recipient (customers 'k3' and 'K3' of one account) messaged once, the other skipped.
Left as they are: a SQLite source's `orderBy` kept as text still orders as text (the latest
row of mixed forms there is BREAK 2's); `is_null` on a text date reads '' as a value
("never withdrawn" by `is_null` chooses no one: nothing wrong sent, no way but `eq ''`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.search import service as search_service
from tests._mysql import select_only_url
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import DAY, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round53_real_schemas import e164, phone
from tests.test_attack_round56_real_schema import connect, run, sent, skipped, texts
from tests.test_search_through_account import found, mapped

pytestmark = [pytest.mark.mysql]

TODAY = DAY.date()  # 2026-03-03 (KST)

# mid: (name, leave_date VARCHAR(8) as stored, the date it is or None, reg VARCHAR(19), its date)
MEMBERS: dict[int, tuple[str, str, date | None, str | None, datetime | None]] = {
    1: ("김민준", "", None, "2026-03-01 09:30:00", datetime(2026, 3, 1, 9, 30)),
    2: ("이서연", "20240101", date(2024, 1, 1), "20240101", datetime(2024, 1, 1)),
    3: ("박지호", "20260301", date(2026, 3, 1), "2026-3-1", datetime(2026, 3, 1)),
    4: ("최하은😀", "00000000", None, "2026-02-30", None),
    5: ("정우진", "20260230", None, "2026-03-01 25:00:00", None),
    6: ("강민서", "20251301", None, "1767225600", None),
    7: ("조예준", "N", None, "", None),
    8: ("윤지우", "20250301", date(2025, 3, 1), None, None),
    9: ("장서윤", "2025-1-5", date(2025, 1, 5), "2025/12/24 08:00:00", datetime(2025, 12, 24, 8)),
}
# the latest address of each member by `updated` (VARCHAR): aid, member, phone no., updated
ADDRESSES = [
    (1, 1, 11, "2026-9-30"), (2, 1, 21, "2026-10-01"),
    (3, 2, 12, "20260930"), (4, 2, 22, "2026-10-01 00:00:00"),
    (5, 3, 13, "2026-02-30"), (6, 3, 23, "2026-01-15"),
    (7, 4, 14, ""), (8, 4, 24, "2025-12-31"),
    (9, 5, 15, "2026-12-01"), (10, 5, 25, "2026-11-30 23:59:59"),
]  # fmt: skip
LATEST = {1: 21, 2: 22, 3: 23, 4: 24, 5: 15}

DDL = (
    "CREATE TABLE mem (mid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "leave_date VARCHAR(8) NOT NULL DEFAULT '', reg VARCHAR(19) NULL, agree TINYINT(1), "
    "KEY (mobile))",
    "CREATE TABLE madd (aid INT PRIMARY KEY, mid INT, phone VARCHAR(20), "
    "updated VARCHAR(19), KEY (mid), KEY (phone))",
    "CREATE TABLE cust (cid INT PRIMARY KEY, name VARCHAR(20))",
    # customers -> accounts -> addresses, every text column case- and pad-blind (the default
    # utf8mb4_general_ci): customer 'k1' is account 'K1''s, 'K2 ' account 'K2''s
    "CREATE TABLE kacct (code VARCHAR(10) PRIMARY KEY, label VARCHAR(10))",
    "CREATE TABLE kcust (cid INT PRIMARY KEY, name VARCHAR(20), code VARCHAR(10), KEY (code))",
    "CREATE TABLE kaddr (aid INT PRIMARY KEY, code VARCHAR(10), phone VARCHAR(20), "
    "updated_at DATETIME, KEY (code), KEY (phone))",
    # families 'f1' and 'F1' (a case-blind column, not unique) with one phone between them
    "CREATE TABLE famp (pid INT PRIMARY KEY, name VARCHAR(20), fam VARCHAR(10), KEY (fam))",
    "CREATE TABLE fama (aid INT PRIMARY KEY, fam VARCHAR(10), phone VARCHAR(20), "
    "updated_at DATETIME, KEY (fam), KEY (phone))",
)
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "mem": [(m, n, phone(m), leave, reg, 1) for m, (n, leave, _, reg, _) in MEMBERS.items()],
    "madd": [(a, m, phone(p), u) for a, m, p, u in ADDRESSES],
    "cust": [(m, f"고객{m}") for m in LATEST],
    "kacct": [("K1", "a"), ("K2", "b"), ("k3", "c")],
    "kcust": [(1, "회원1", "k1"), (2, "회원2", "K2 "), (3, "회원3", "k3"), (4, "회원4", "K3")],
    "kaddr": [
        (1, "K1", phone(31), datetime(2025, 1, 1)),
        (2, "k2", phone(32), datetime(2025, 1, 1)),
        (3, "k3", phone(33), datetime(2025, 1, 1)),
    ],
    "famp": [(1, "회원1", "f1"), (2, "회원2", "F1"), (3, "회원3", "f2")],
    "fama": [
        (1, "f1", phone(41), datetime(2025, 1, 1)),
        (2, "F1", phone(41), datetime(2025, 1, 1)),
        (3, "f2", phone(42), datetime(2025, 1, 1)),
    ],
}


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_r57", *DDL, rows=ROWS)


@pytest.fixture(scope="module")
def reader(db: str) -> Iterator[str]:
    """A URL of an account created here holding SELECT on the database and nothing else."""
    with select_only_url(db, "r57") as url:
        yield url


MEMBER = {
    "displayName": "회원", "key": "mid", "audience": True, "recipient": "mobile",
    "fields": {"mid": F("번호", "number", "id"), "name": F("이름", role="name"),
               "mobile": F("전화", role="phone", searchable=True),
               "leave_date": F("탈퇴일", "date", "date"), "reg": F("가입일", "datetime", "date")},
}  # fmt: skip


def test_the_truth_table_is_what_root_reads(db: str) -> None:
    """The oracle's rows are the rows (root's read), so the truth table speaks of them."""
    got = {m: (leave, reg) for m, leave, reg in src(db, "SELECT mid, leave_date, reg FROM mem")}
    assert got == {m: (leave, reg) for m, (_, leave, _, reg, _) in MEMBERS.items()}


def _leave(pred: Any) -> set[str]:
    return {str(m) for m, (_, _, day, _, _) in MEMBERS.items() if day is not None and pred(day)}


def _reg(pred: Any) -> set[str]:
    return {str(m) for m, (_, _, _, _, at) in MEMBERS.items() if at is not None and pred(at)}


NOW = DAY.replace(tzinfo=None)
CASES = {
    "leave-older-than-a-year": ({"field": "leave_date", "op": "older_than",
                                 "value": {"days": 365}},
                                _leave(lambda d: d < TODAY - timedelta(days=365))),
    "leave-lt": ({"field": "leave_date", "op": "lt", "value": "2026-01-01"},
                 _leave(lambda d: d < date(2026, 1, 1))),
    "leave-ne": ({"field": "leave_date", "op": "ne", "value": "2026-03-01"},
                 _leave(lambda d: d != date(2026, 3, 1))),
    "leave-within-90-days": ({"field": "leave_date", "op": "within_last",
                              "value": {"days": 90}},
                             _leave(lambda d: TODAY - timedelta(days=90) <= d <= TODAY)),
    "leave-lte": ({"field": "leave_date", "op": "lte", "value": "2025-06-01"},
                  _leave(lambda d: d <= date(2025, 6, 1))),
    "leave-between": ({"field": "leave_date", "op": "between",
                       "value": ["2024-01-01", "2026-12-31"]},
                      _leave(lambda d: date(2024, 1, 1) <= d <= date(2026, 12, 31))),
    "reg-within-a-year": ({"field": "reg", "op": "within_last", "value": {"days": 365}},
                          _reg(lambda t: NOW - timedelta(days=365) <= t <= NOW)),
    "reg-older-than-30-days": ({"field": "reg", "op": "older_than", "value": {"days": 30}},
                               _reg(lambda t: t < NOW - timedelta(days=30))),
    "reg-lt": ({"field": "reg", "op": "lt", "value": "2026-03-02 00:00:00"},
               _reg(lambda t: t < datetime(2026, 3, 2))),
}  # fmt: skip


# -- BREAK 1 (fixed): a text date that is no date ------------------------------------------------
@pytest.mark.parametrize("where, chosen", list(CASES.values()), ids=list(CASES))
def test_a_text_that_is_no_real_date_is_chosen_by_no_date_condition(
    reader: str, tmp_path: Path, where: dict[str, Any], chosen: set[str]
) -> None:
    """BREAK 1 (fixed): before, '' / '00000000' / 'N' / '20251301' were read as 0000-00-00
    in the comparison (older_than, lt, lte, ne chose members 1, 4, 6, 7 who never left)
    and '20260230' as 30 February (within 90 days, between, ne chose member 5)."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("mem", MEMBER)
        count = wb.targets.preview({"table": "mem", "where": where}, now=DAY).count
        run(wb, {"table": "mem", "where": where}, {"content": "{{ 이름 }}님, 다시 만나요."})
    assert chosen and count == len(chosen), (count, chosen)
    assert sent(path) == {m: [e164(int(m))] for m in chosen}
    assert not skipped(path)
    for m, text in texts(path).items():
        assert text == f"{MEMBERS[int(m)][0]}님, 다시 만나요.", m


# -- BREAK 2 (fixed): the latest row by a date kept as text in several forms --------------------
ADDR = {
    "displayName": "주소", "key": "aid",
    "fields": {"aid": F("번호", "number", "id"), "mid": F("회원", "number"),
               "phone": F("전화", role="phone", searchable=True),
               "updated": F("수정일", "datetime")},
}  # fmt: skip
CUST = {
    "displayName": "고객", "key": "cid", "audience": True, "recipient": "addresses.phone",
    "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name")},
    "relations": [{"table": "madd", "name": "addresses", "localField": "cid",
                   "foreignField": "mid", "kind": "one-to-many", "orderBy": "updated"}],
}  # fmt: skip


def test_the_latest_address_by_a_text_date_in_several_forms_is_messaged(
    reader: str, tmp_path: Path
) -> None:
    """BREAK 2 (fixed): by text, '2026-9-30' came after '2026-10-01', '20260930' after
    '2026-10-01 00:00:00' and '2026-02-30' after '2026-01-15': customers 1, 2 and 3 were
    messaged at the phone of an older address, which the template named too."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("madd", ADDR)
        wb.mappings.save("cust", CUST)
        run(wb, {"table": "cust"}, {"content": "{{ 이름 }}님, {{ addresses.phone }} 확인"})
    assert sent(path) == {str(c): [e164(p)] for c, p in LATEST.items()}
    assert texts(path) == {str(c): f"고객{c}님, {phone(p)} 확인" for c, p in LATEST.items()}
    assert not skipped(path)


# -- BREAK 3 (fixed): a text date that is no real date named in the message ---------------------
@pytest.mark.parametrize("formatter", [" | date_ko", ""], ids=["date_ko", "as-is"])
def test_a_text_that_is_no_real_date_is_missing_from_the_message(
    reader: str, tmp_path: Path, formatter: str
) -> None:
    """BREAK 3 (fixed): before, '2026-02-30', '00000000' and '1767225600' were sent as
    they are ("가입일 00000000"), and date_ko read '2026-03-01 25:00:00' as 1 March, where
    the server's reading (and so every date condition) found no date; '2026-3-1' and
    '2025/12/24 08:00:00' are real dates, written out by date_ko."""
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("mem", MEMBER)
        run(
            wb,
            {"table": "mem"},
            {"content": f"{{{{ 이름 }}}}님, 가입일 {{{{ 가입일{formatter} }}}}"},
        )
    real = {m: at for m, (_, _, _, _, at) in MEMBERS.items() if at is not None}
    assert sent(path) == {str(m): [e164(m)] for m in real}
    assert set(skipped(path)) == {str(m) for m in MEMBERS if m not in real}
    assert all("missing" in reason for reason in skipped(path).values()), skipped(path)
    for m, text in texts(path).items():
        name, _, _, reg, at = MEMBERS[int(m)]
        shown = f"{at.year}년 {at.month}월 {at.day}일" if formatter else reg
        assert text == f"{name}님, 가입일 {shown}", m


# -- BREAK 4 (fixed) and BREAK 5 (left): customer 'k1' of the case-blind account key 'K1' ------
KJOIN = ("SELECT c.cid FROM kcust c JOIN kacct a ON a.code = c.code JOIN kaddr d ON "
         "d.code = a.code WHERE d.phone = '{}' ORDER BY c.cid")  # fmt: skip


def k_mapped(wb: Any) -> None:
    mapped(wb, "kcust", "kacct", "kaddr", local="code", foreign="code", key="code",
           inner=("code", "code"))  # fmt: skip


def test_a_customer_of_a_case_blind_account_key_is_messaged_with_its_values(
    reader: str, tmp_path: Path
) -> None:
    """BREAK 4 (fixed): every column case- and pad-blind, customer 'k1' IS account 'K1''s
    (the join says so, and the run read their recipient through it), 'K2 ' account 'K2''s,
    'k3' and 'K3' account 'k3''s. Before, `{{ account.addresses.phone }}` was looked up
    by 'k1' among account rows keyed 'K1': customers 1 and 2 skipped as "missing
    account.addresses.phone"."""
    wb, path = connect(reader, tmp_path)
    with wb:
        k_mapped(wb)
        run(wb, {"table": "kcust"}, {"content": "{{ 이름 }}님, {{ account.addresses.phone }}"})
    db = reader.rsplit("/", 1)[1].split("?")[0]
    assert {n: [r[0] for r in src(db, KJOIN.format(phone(n)))] for n in (31, 32, 33)} == {
        31: [1], 32: [2], 33: [3, 4]
    }  # fmt: skip
    assert sent(path) == {"1": [e164(31)], "2": [e164(32)], "3": [e164(33)]}
    assert texts(path) == {str(c): f"회원{c}님, {phone(30 + c)}" for c in (1, 2, 3)}
    assert skipped(path) == {"4": "duplicate recipient in this run"}  # 3's phone


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_case_blind_account_key_finds_the_customers_its_join_finds(
    reader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    """Small (EXISTS correlated to the joined account): held. Large (the probe), BREAK 5
    (fixed): it read account 'K1''s key and compared the customers' column with it by the
    bytes too (right only where the join is exact, a _bin key): customers 'k1', 'K2 ' and
    'K3' were not found. The probe now joins on to the customers and returns their own
    values, DISTINCT by the bytes too ('k3' and 'K3' were one value by the collation)."""
    if size == "large":
        monkeypatch.setattr(search_service, "SCAN_THRESHOLD", 0)
    wb, _ = connect(reader, tmp_path)
    with wb:
        k_mapped(wb)
        got = {n: sorted(found(wb, "kcust", n)) for n in (31, 32, 33)}
    db = reader.rsplit("/", 1)[1].split("?")[0]
    joined = {n: [r[0] for r in src(db, KJOIN.format(phone(n)))] for n in (31, 32, 33)}
    assert got == joined == {31: [1], 32: [2], 33: [3, 4]}


def test_families_f1_and_F1_of_one_phone_are_both_found_by_a_large_tables_probe(
    reader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK 5 (fixed), its second half through a first one-to-many hop: families 'f1'
    and 'F1' (a case-blind column not unique: two families, told apart by the bytes) both
    have an address of one phone; the probe's DISTINCT (round 54's r54fix) made the two
    one value by the collation, and family 'F1''s member was not found."""
    monkeypatch.setattr(search_service, "SCAN_THRESHOLD", 0)
    wb, _ = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("fama", {"displayName": "주소", "key": "aid", "fields": {
            "aid": F("번호", "number", "id"), "fam": F("가족"),
            "phone": F("전화", role="phone", searchable=True),
            "updated_at": F("수정일", "datetime")}})  # fmt: skip
        wb.mappings.save("famp", {
            "displayName": "회원", "key": "pid", "audience": True,
            "recipient": "addresses.phone",
            "fields": {"pid": F("번호", "number", "id"), "name": F("이름", role="name"),
                       "fam": F("가족")},
            "relations": [{"table": "fama", "name": "addresses", "localField": "fam",
                           "foreignField": "fam", "kind": "one-to-many",
                           "orderBy": "updated_at"}]})  # fmt: skip
        got = sorted(r["pid"] for r in wb.search("famp", phone(41)).raw_rows)
    db = reader.rsplit("/", 1)[1].split("?")[0]
    owners = src(
        db,
        "SELECT p.pid FROM famp p WHERE EXISTS (SELECT 1 FROM fama a WHERE "
        "BINARY a.fam = BINARY p.fam AND a.phone = '010-2041-0041') ORDER BY p.pid",
    )
    assert got == [r[0] for r in owners] == [1, 2]


# -- BREAK 6 (fixed as a refusal): a SQLite source's text date -----------------------------------
@pytest.mark.parametrize("case", ["leave-older-than-a-year", "leave-lt", "reg-within-a-year"])
def test_a_sqlite_sources_text_date_condition_is_refused_with_nothing_sent(
    tmp_path: Path, case: str
) -> None:
    """BREAK 6 (fixed as a refusal): the same members in a SQLite source file (how the
    embedded sample is read), the dates in TEXT columns. SQLite compared them as text:
    "withdrawn more than a year ago" messaged 1 and 4, who never left ('' and '00000000'),
    and missed 8 and 9 ('20250301', '2025-1-5'). Refused now in one line naming the way
    forward, at preview and at the run, with nothing sent."""
    source = tmp_path / "src.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE mem (mid INTEGER PRIMARY KEY, name TEXT, mobile TEXT, "
                     "leave_date TEXT NOT NULL DEFAULT '', reg TEXT, agree INTEGER)")  # fmt: skip
        conn.executemany("INSERT INTO mem VALUES (?, ?, ?, ?, ?, ?)", ROWS["mem"])
    conn.close()
    path = tmp_path / "s.db"
    wb = hybridwb.connect(source=f"sqlite:///{source}", store=f"sqlite:///{path}", cwd=tmp_path)
    wb.store.init()
    where = CASES[case][0]
    with wb:
        wb.mappings.save("mem", MEMBER)
        with pytest.raises(ValidationError) as refused:
            wb.targets.preview({"table": "mem", "where": where}, now=DAY)
        with pytest.raises(HybridwbError, match="store it as DATETIME"):
            run(wb, {"table": "mem", "where": where}, {"content": "{{ 이름 }}님, 다시 만나요."})
    assert "store it as DATETIME" in str(refused.value) and "\n" not in str(refused.value)
    assert not sent(path)
