"""Attack round 59: what round 58 changed, aimed at who is messaged with whose values.

The guarantee under attack: targets choose exactly the intended customers; each is messaged
once with their own values; the source is only read. Aimed at round 58's changes: a to-one
template value read through the server's own join for keys no row holds byte for byte
(`Resolver._as_joined`: NULL keys, PAD SPACE against NO PAD collations, a link column of
another type than the account key, a view, many customers across the read's chunks), zero
dates in DATE / DATETIME / TIMESTAMP columns beyond `is_null` / `not_null` (`older_than`,
`lt`, `between`, `ne`, an `any` of both, an `exists` / `not_exists` through orders, an
aggregate's `min`), and the latest address among ties of one date (preview, freeze and
batch read, a resume).

Source: one MariaDB database built by root (sql_mode without NO_ZERO_DATE for the zero
dates), read by an account created here with `GRANT SELECT ON db.*` and nothing else.
Store: SQLite. Oracles: root's SQL (the server's own joins, DAYOFMONTH / MONTH of the
stored dates), the store's `send_records` / `run_skips` read with sqlite3.

BREAKS (mutation counts: the fix undone by hand, this file run, of its 37 tests):

- BREAK 1 (fixed): a zero date ('0000-00-00', '0000-00-00 00:00:00', gnuboard's "never
  logged in") or one with no month or day ('2025-00-15', '2024-06-00') in a DATE /
  DATETIME / TIMESTAMP column was missing to `is_null` / `not_null` since round 58 but a
  date before every real one to the other comparisons: a member who never logged in was
  "not seen for a year" (`older_than`, `lt`, `lte`, `between`) and "not seen on
  2026-01-01" (`ne`); through orders, a zero-dated order was "an order more than a year
  ago" (an `exists`) and the `min` of a customer whose first dated order is of 2026. Every
  comparison and `min` / `max` now holds the real dates only (`Builder._condition`, the
  comparison left on the column, so its index still serves). → 17 of 37 fail.
- BREAK 2 (fixed): a to-one relation to accounts through a view (no key the schema states
  unique) holding 'V1' and 'v1': the server's case-blind join gives customer 'v1' (and
  'V1 ') both, and the message named one of the two ('V1 ' was given 'v1''s label). A
  to-one value through a related column no key states unique is now the one row the
  server's join gives that value, else missing (skipped), `Resolver.fetch(single)`.
  → 1 of 37 fail.
- BREAK 3 (fixed as a refusal): a unique latin1_bin key holding 'K1' and 'k1', related
  to a utf8mb4_general_ci link: MariaDB compares them in utf8mb4 by the link's collation,
  so customer 'k1' joined both accounts: chosen by `account.label eq 'L1'` ('K1''s) and
  named 'L2' ('k1''s), and named one of the two in a plain run. Such a relation (the
  related column converted to the link's character set) is refused in one line at the
  run, nothing sent (`_refuse_converted_join`); one the link's collation keeps apart
  (utf8mb3_general_ci in utf8mb4_general_ci, a binary one) stands. → 3 of 37 fail
  (`_keeps_apart` not asked: 2 of 37 fail).
- BREAK 4 (fixed): the latest address by a DATE `orderBy`: '2026-00-15' (missing to
  every condition) sorted after 2025-12-01 and was the latest, its phone messaged; a zero
  date sorted before NULL. A date that is no real date sorts last, with NULL
  (`Resolver._dated_order`). → 1 of 37 fail.

HELD: to-one values under NO PAD against PAD SPACE collations, NULL links and a text link
to an INT key ('007', ' 7', '7x' are account 7's, '8.0' account 8's) are those root's join
gives, or the customer skipped (`_as_joined` unread: 4 of 37 fail); an INT link to a text
key holding '7' and '007' names neither; 2,345 customers linked in another case than their accounts' keys (three chunks
of the through-read, a batch of 1,500) are each messaged once with their own account;
ties of one date (written alike, '2026-01-01' beside '20260101', or neither a date) give
the same address in the preview, the phone and the message, and a resume after the run
died between batches messages nobody at a second phone; "never or long ago" (`any`)
messages each member once; a zero-dated comparison is still planned on the column's
index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import audience as audience_module
from tests._mysql import select_only_url
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import DAY, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round53_real_schemas import e164, phone
from tests.test_attack_round56_real_schema import connect, run, sent, skipped, store_rows, texts

pytestmark = [pytest.mark.mysql]

ZERO = "0000-00-00 00:00:00"
MANY = 2345  # customers linked by a key differing in case from their account's: 3 chunks

DDL = (
    "SET SESSION sql_mode = ''",
    # zero dates in each temporal type: "never logged in", a birthday month unknown
    "CREATE TABLE zd (mid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "login DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00', bday DATE NULL, "
    "stamp TIMESTAMP NULL DEFAULT NULL, KEY (login))",
    # customers -> orders (DATE, zero dates)
    "CREATE TABLE zc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
    "CREATE TABLE zo (oid INT PRIMARY KEY, cid INT, odate DATE NULL, KEY (cid))",
    # to-one keys: NO PAD against PAD SPACE collations, NULL keys
    "CREATE TABLE npa (code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin "
    "PRIMARY KEY, label VARCHAR(20))",
    "CREATE TABLE npc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, KEY (code))",
    "CREATE TABLE npn (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin, KEY (code))",
    "CREATE TABLE pda (code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci "
    "PRIMARY KEY, label VARCHAR(20))",
    "CREATE TABLE pdc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin, KEY (code))",
    # a utf8 (utf8mb3) key, a utf8mb4 link of the same rule; a latin1_bin key, a utf8mb4_bin
    # link: compared in utf8mb4, keys kept apart as their own collation keeps them
    "CREATE TABLE u3a (code VARCHAR(10) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci "
    "PRIMARY KEY, label VARCHAR(20))",
    "CREATE TABLE u3c (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, KEY (code))",
    "CREATE TABLE lba (code VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_bin PRIMARY KEY, "
    "label VARCHAR(20))",
    "CREATE TABLE lbc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, KEY (code))",
    # a text link to an INT account key ('007', ' 7', '7x' are account 7's to the server)
    "CREATE TABLE ia (acc INT PRIMARY KEY, label VARCHAR(20))",
    "CREATE TABLE ic (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "acc VARCHAR(10), KEY (acc))",
    # an INT link to a text account key ('7' and '007' both 7 to the server)
    "CREATE TABLE ta (acc VARCHAR(10) PRIMARY KEY, label VARCHAR(20))",
    "CREATE TABLE tc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), acc INT, "
    "KEY (acc))",
    # accounts through a view (no key the schema states unique), one repeating a code
    "CREATE TABLE va (aid INT PRIMARY KEY, code VARCHAR(10), label VARCHAR(20))",
    "CREATE VIEW vacct AS SELECT code, label FROM va",
    # many customers, each linked by their account's key in another case (utf8mb4_general_ci)
    "CREATE TABLE ma (code VARCHAR(10) PRIMARY KEY, label VARCHAR(20))",
    "CREATE TABLE mc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "code VARCHAR(10), KEY (code))",
    # a unique latin1_bin key holding 'K1' and 'k1', a utf8mb4_general_ci link: the server
    # converts the key to the link's character set and compares by its collation
    "CREATE TABLE xa (code VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_bin PRIMARY KEY, "
    "label VARCHAR(10) CHARACTER SET latin1, phone VARCHAR(20))",
    "CREATE TABLE xc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
    "code VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci, KEY (code))",
    # customers -> addresses dated in a DATE column, zero dates among them
    "CREATE TABLE dcust (cid INT PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE daddr (aid INT PRIMARY KEY, cid INT, phone VARCHAR(20), city VARCHAR(20), "
    "updated DATE NULL, KEY (cid))",
    # customers -> addresses: two of one date (ties), text dates equal as dates
    "CREATE TABLE tcust (cid INT PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE taddr (aid INT PRIMARY KEY, cid INT, phone VARCHAR(20), city VARCHAR(20), "
    "updated VARCHAR(19), KEY (cid))",
)
KEYS = {1: "K1", 2: "K1 ", 3: "k1", 4: None, 5: "K2", 6: "K2 "}
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "zd": [(1, "회원1", phone(1), ZERO, "0000-00-00", ZERO),
           (2, "회원2", phone(2), "2026-01-01 00:00:00", "2026-01-01", "2026-01-01 00:00:00"),
           (3, "회원3", phone(3), "2024-01-01 00:00:00", "2024-01-01", "2024-01-01 00:00:00"),
           (4, "회원4", phone(4), "2025-00-15 00:00:00", "2025-00-15", None),
           (5, "회원5", phone(5), "2024-06-00 00:00:00", "2024-06-00", None)],
    "zc": [(c, f"구매자{c}", phone(20 + c)) for c in range(1, 6)],
    # 1: a zero date and a recent one; 2: an old one; 3: only '2025-00-15'; 4: only zero;
    # 5: none
    "zo": [(1, 1, "0000-00-00"), (2, 1, "2026-01-01"), (3, 2, "2024-01-01"),
           (4, 3, "2025-00-15"), (5, 4, "0000-00-00")],
    "npa": [("K1", "라벨1"), ("k1", "라벨2"), ("K2 ", "라벨3")],
    "npc": [(c, f"회원{c}", phone(30 + c), k) for c, k in KEYS.items()],
    "npn": [(c, f"회원{c}", phone(30 + c), k) for c, k in KEYS.items()],
    "pda": [("K1", "라벨1"), ("K2", "라벨2")],
    "pdc": [(c, f"회원{c}", phone(30 + c), k) for c, k in KEYS.items()],
    "u3a": [("K1", "라벨1"), ("K2", "라벨2")],
    "u3c": [(c, f"회원{c}", phone(30 + c), k) for c, k in KEYS.items()],
    "lba": [("K1", "L1"), ("k1", "L2"), ("K2", "L3")],
    "lbc": [(c, f"회원{c}", phone(30 + c), k) for c, k in {**KEYS, 6: "x"}.items()],
    "ia": [(7, "라벨7"), (8, "라벨8")],
    "ic": [(1, "회원1", phone(41), "7"), (2, "회원2", phone(42), "007"),
           (3, "회원3", phone(43), " 7"), (4, "회원4", phone(44), "7x"),
           (5, "회원5", phone(45), None), (6, "회원6", phone(46), "8.0"),
           (7, "회원7", phone(47), "9")],
    "ta": [("7", "라벨7"), ("007", "라벨007"), ("8", "라벨8")],
    "tc": [(1, "회원1", phone(51), 7), (2, "회원2", phone(52), 8), (3, "회원3", phone(53), None)],
    "va": [(1, "V1", "라벨1"), (2, "v1", "라벨2"), (3, "V2", "라벨3")],
    "ma": [(f"K{c}", f"라벨{c}") for c in range(1, MANY + 1)],
    "mc": [(c, f"회원{c}", phone(c), f"k{c}" if c % 2 else f"K{c}") for c in range(1, MANY + 1)],
    "xa": [("K1", "L1", phone(91)), ("k1", "L2", phone(92)), ("K2", "L3", phone(93))],
    "xc": [(1, "회원1", phone(94), "k1"), (2, "회원2", phone(95), "K2"),
           (3, "회원3", phone(96), "K1 ")],
    "dcust": [(c, f"고객{c}") for c in range(1, 4)],
    "daddr": [
        # 1: '2026-00-15' has no month: the real 2025-12-01 is the latest
        (1, 1, phone(61), "도시1a", "2026-00-15"), (2, 1, phone(71), "도시1b", "2025-12-01"),
        # 2: a zero date and NULL: neither a date, the higher aid
        (3, 2, phone(62), "도시2a", "0000-00-00"), (4, 2, phone(72), "도시2b", None),
        # 3: a real date over a zero one
        (5, 3, phone(63), "도시3a", "2024-01-01"), (6, 3, phone(73), "도시3b", "0000-00-00"),
    ],
    "tcust": [(c, f"고객{c}") for c in range(1, 5)],
    "taddr": [
        # 1: two addresses of one date (ties): the higher aid is the latest
        (1, 1, phone(61), "도시1a", "2026-01-01 00:00:00"),
        (2, 1, phone(71), "도시1b", "2026-01-01 00:00:00"),
        # 2: one date written two ways ('20260101' is 2026-01-01 too): the higher aid
        (4, 2, phone(72), "도시2b", "20260101"),
        (3, 2, phone(62), "도시2a", "2026-01-01"),
        # 3: no real date in either (NULL, ''): the higher aid
        (5, 3, phone(63), "도시3a", None),
        (6, 3, phone(73), "도시3b", ""),
        # 4: one address
        (7, 4, phone(64), "도시4", "2025-05-05"),
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_r59", *DDL, rows=ROWS)


@pytest.fixture(scope="module")
def reader(db: str) -> Iterator[str]:
    """A URL of an account created here holding SELECT on the database and nothing else."""
    with select_only_url(db, "r59") as url:
        yield url


@pytest.fixture(scope="module")
def viewer(db: str) -> Iterator[str]:
    """A URL of an account created here holding SELECT and SHOW VIEW on the database: a
    related value read through a view inside the batch's snapshot needs its definition
    read (`plainviews`; without SHOW VIEW the run fails in one line)."""
    from sqlalchemy.engine import make_url

    with select_only_url(db, "r59v") as url:
        src(db, f"GRANT SHOW VIEW ON `{db}`.* TO '{make_url(url).username}'@'%'")
        yield url


@pytest.fixture
def dying(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The run's kernel dies before its `dying["at"]`-th batch read (`audience.fetch`)."""
    planned = {"at": -1}
    calls = [0]
    real = audience_module.fetch

    def fetch(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] - 1 == planned["at"]:
            raise RuntimeError("the run's kernel died here")
        return real(*args, **kwargs)

    monkeypatch.setattr(audience_module, "fetch", fetch)
    return planned


def keys(db: str, sql: str) -> set[str]:
    return {str(k) for (k,) in src(db, sql)}


# -- 2. zero dates beyond is_null / not_null ----------------------------------------------------
ZD = {
    "displayName": "회원", "key": "mid", "audience": True, "recipient": "mobile",
    "fields": {"mid": F("번호", "number", "id"), "name": F("이름", role="name"),
               "mobile": F("전화", role="phone"), "login": F("최근접속", "datetime"),
               "bday": F("생일", "date"), "stamp": F("확인", "datetime")},
}  # fmt: skip
# (condition, the comparison root makes of the column among its real dates)
YEAR = {"days": 365}
ZERO_COMPARED = {
    "older-than": ({"op": "older_than", "value": YEAR}, "{c} < '2025-03-03 10:00:00'"),
    "lt": ({"op": "lt", "value": "2025-06-01"}, "{c} < '2025-06-01'"),
    "lte": ({"op": "lte", "value": "2025-06-01"}, "{c} <= '2025-06-01'"),
    "between": ({"op": "between", "value": ["2000-01-01", "2025-06-01"]},
                "{c} BETWEEN '2000-01-01' AND '2025-06-01'"),
    "ne": ({"op": "ne", "value": "2026-01-01"}, "{c} <> '2026-01-01'"),
}  # fmt: skip
REAL = "DAYOFMONTH({c}) > 0 AND MONTH({c}) > 0"


def _chosen(wb: hybridwb.Workbench, path: Path, table: str, where: Any) -> tuple[int, set[str]]:
    count = wb.targets.preview({"table": table, "where": where}, now=DAY).count
    run(wb, {"table": table, "where": where}, {"content": "{{ 이름 }}님, 안내입니다."})
    return count, set(sent(path))


@pytest.mark.parametrize("field", ["login", "bday", "stamp"])
@pytest.mark.parametrize("cond, oracle", list(ZERO_COMPARED.values()), ids=list(ZERO_COMPARED))
def test_a_zero_date_is_missing_to_every_comparison(
    db: str, reader: str, tmp_path: Path, field: str, cond: dict[str, Any], oracle: str
) -> None:
    """BREAK 1 (fixed): a zero date ('0000-00-00', "never logged in") or one with no
    month or day ('2025-00-15', '2024-06-00') is missing to `is_null` / `not_null` since
    round 58, but the other comparisons still read it as the server orders it, before
    every real date: a member who never logged in was "not seen for a year" (`older_than`,
    `lt`, `between`), and "not on 2026-01-01" (`ne`). Each comparison chooses only the
    real dates it holds now, the set root's own comparison chooses among them, and so a
    subset of `not_null`."""
    c = f"`{field}`"
    chosen = keys(db, f"SELECT mid FROM zd WHERE {REAL.format(c=c)} AND {oracle.format(c=c)}")
    present = keys(db, f"SELECT mid FROM zd WHERE {REAL.format(c=c)}")
    assert chosen <= present and "1" not in chosen  # the oracle: no zero date chosen
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zd", ZD)
        count, got = _chosen(wb, path, "zd", {"field": field, **cond})
    assert (count, got) == (len(chosen), chosen)
    assert sent(path) == {m: [e164(int(m))] for m in chosen}


def test_never_or_long_ago_chooses_each_member_once(db: str, reader: str, tmp_path: Path) -> None:
    """`any` of "never logged in" (`is_null`) and "not for a year" (`older_than`): each
    member once, the zero and month-less dates by the first, the old date by the second."""
    never = keys(db, f"SELECT mid FROM zd WHERE NOT ({REAL.format(c='login')})")
    old = keys(db, f"SELECT mid FROM zd WHERE {REAL.format(c='login')} AND login < '2025-03-03'")
    where = {"any": [{"field": "login", "op": "is_null"},
                     {"field": "login", "op": "older_than", "value": YEAR}]}  # fmt: skip
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zd", ZD)
        count, got = _chosen(wb, path, "zd", where)
    assert never == {"1", "4", "5"} and old == {"3"}
    assert (count, got) == (4, never | old)
    assert all(len(v) == 1 for v in sent(path).values())


ZO = {"displayName": "주문", "key": "oid", "fields": {
    "oid": F("번호", "number", "id"), "cid": F("고객", "number"),
    "odate": F("주문일", "date")}}  # fmt: skip
ZC = {
    "displayName": "구매자", "key": "cid", "audience": True, "recipient": "mobile",
    "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
               "mobile": F("전화", role="phone")},
    "relations": [{"table": "zo", "name": "orders", "localField": "cid",
                   "foreignField": "cid", "kind": "one-to-many", "orderBy": "odate"}],
}  # fmt: skip
REAL_O = REAL.format(c="odate")
THROUGH_ORDERS = {
    # an order more than a year ago: a zero date is no such order
    "exists-old-order": (
        {"exists": "orders", "where": {"field": "odate", "op": "older_than", "value": YEAR}},
        f"SELECT DISTINCT cid FROM zo WHERE {REAL_O} AND odate < '2025-03-03'"),
    # no order of a known date: customers 3 and 4 (only a zero or month-less date) and 5
    "not-exists-dated-order": (
        {"not_exists": "orders", "where": {"field": "odate", "op": "not_null"}},
        f"SELECT cid FROM zc WHERE cid NOT IN (SELECT cid FROM zo WHERE {REAL_O})"),
    # an order of no known date
    "exists-undated-order": (
        {"exists": "orders", "where": {"field": "odate", "op": "is_null"}},
        f"SELECT DISTINCT cid FROM zo WHERE NOT ({REAL_O}) OR odate IS NULL"),
    # the first order before June 2025: the first real one
    "first-order-before-june": (
        {"aggregate": "min", "relation": "orders", "field": "odate", "op": "lt",
         "value": "2025-06-01"},
        f"SELECT cid FROM zo WHERE {REAL_O} GROUP BY cid HAVING MIN(odate) < '2025-06-01'"),
    # the last order before June 2025: customer 1's last is 2026's
    "last-order-before-june": (
        {"aggregate": "max", "relation": "orders", "field": "odate", "op": "lt",
         "value": "2025-06-01"},
        f"SELECT cid FROM zo WHERE {REAL_O} GROUP BY cid HAVING MAX(odate) < '2025-06-01'"),
}  # fmt: skip


@pytest.mark.parametrize("where, oracle", list(THROUGH_ORDERS.values()), ids=list(THROUGH_ORDERS))
def test_a_zero_date_through_a_relation_is_missing(
    db: str, reader: str, tmp_path: Path, where: dict[str, Any], oracle: str
) -> None:
    """BREAK 1 (fixed) through orders: an order dated '0000-00-00' was an order "more
    than a year ago" (customer 4, who has no dated order) and was the first order of
    customer 1 (a first-order-before-June offer to a customer whose first dated order
    is of 2026). Each chooses what root's SQL over the real dates chooses."""
    chosen = keys(db, oracle)
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zo", ZO)
        wb.mappings.save("zc", ZC)
        count, got = _chosen(wb, path, "zc", where)
    assert (count, got) == (len(chosen), chosen)
    assert sent(path) == {c: [e164(20 + int(c))] for c in chosen}


@pytest.mark.parametrize(
    "where",
    [
        {"field": "login", "op": "gt", "value": "2025-06-01"},
        {"field": "login", "op": "not_null"},  # (stop 49: through `text_date` no index could)
    ],
    ids=["gt", "not_null"],
)
def test_an_indexed_zero_dated_comparison_is_still_read_by_its_index(
    reader: str, tmp_path: Path, where: dict[str, Any]
) -> None:
    """The zero-date exclusion leaves the comparison on the column itself: the server
    still reads `login` by its index (a range), not every member."""
    wb, _ = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("zd", ZD)
        plan = wb.targets.preview({"table": "zd", "where": where}, now=DAY).explain
    zd = [row for row in plan if row.get("table") == "zd"]
    assert zd and "login" in str(zd[0].get("possible_keys") or ""), plan


# -- 1. to-one values through the server's join --------------------------------------------------
def account(wb: hybridwb.Workbench, acct: str, cust: str, link: str = "code") -> None:
    number = link == "acc" and acct == "ia"
    wb.mappings.save(acct, {"displayName": "계정", "key": link, "fields": {
        link: F("코드", "number" if number else "string", "id"), "label": F("라벨")}})  # fmt: skip
    wb.mappings.save(cust, {
        "displayName": "회원", "key": "cid", "audience": True, "recipient": "mobile",
        "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
                   "mobile": F("전화", role="phone"), link: F("코드")},
        "relations": [{"table": acct, "name": "account", "localField": link,
                       "foreignField": link, "kind": "many-to-one"}]})  # fmt: skip


PAIRS = {
    # a NO PAD key, a PAD SPACE case-blind link: the server joins by the NO PAD binary one
    "nopad-key-general-ci-link": ("npa", "npc", "code"),
    # both NO PAD binary: 'K1 ' is not 'K1', 'K2' not 'K2 '
    "nopad-key-nopad-link": ("npa", "npn", "code"),
    # a PAD SPACE case-blind key, a NO PAD binary link
    "general-ci-key-nopad-link": ("pda", "pdc", "code"),
    # a utf8mb3_general_ci key, a utf8mb4_general_ci link: the same rule in utf8mb4
    "utf8mb3-key-utf8mb4-link": ("u3a", "u3c", "code"),
    # a latin1_bin key holding 'K1' and 'k1', a utf8mb4_bin link: apart in utf8mb4_bin too
    "latin1-bin-key-utf8mb4-bin-link": ("lba", "lbc", "code"),
    # a text link to an INT key: '007', ' 7', '7x' are 7, '8.0' is 8
    "int-key-text-link": ("ia", "ic", "acc"),
}


@pytest.mark.parametrize("acct, cust, link", list(PAIRS.values()), ids=list(PAIRS))
def test_a_to_one_value_is_the_one_the_servers_join_gives(
    db: str, reader: str, tmp_path: Path, acct: str, cust: str, link: str
) -> None:
    """Each customer's `{{ account.label }}` is the label of the account root's LEFT JOIN
    gives them (by the server's coercion of the two collations or types); one it gives
    none (a NULL link, 'K1 ' under NO PAD) is skipped as missing, never given another's."""
    joined = {
        str(c): label
        for c, label in src(
            db, f"SELECT c.cid, a.label FROM {cust} c LEFT JOIN {acct} a ON a.{link} = c.{link}"
        )
    }
    wb, path = connect(reader, tmp_path)
    with wb:
        account(wb, acct, cust, link)
        run(wb, {"table": cust}, {"content": "{{ 이름 }}님, {{ account.label }}"})
    assert any(joined.values()) and not all(joined.values())
    assert texts(path) == {c: f"회원{c}님, {label}" for c, label in joined.items() if label}
    assert set(skipped(path)) == {c for c, label in joined.items() if not label}
    assert all(len(v) == 1 for v in sent(path).values())


def test_an_int_link_to_a_text_key_is_refused_or_skipped(
    db: str, reader: str, tmp_path: Path
) -> None:
    """Held: customer 1's INT 7 is both '7' and '007' to the server's join (two accounts):
    the relation is refused in one line, or the customer skipped; never messaged naming
    either account's label."""
    assert len(src(db, "SELECT a.label FROM tc c JOIN ta a ON a.acc = c.acc WHERE c.cid = 1")) == 2
    wb, path = connect(reader, tmp_path)
    with wb:
        try:
            account(wb, "ta", "tc", "acc")
            run(wb, {"table": "tc"}, {"content": "{{ 이름 }}님, {{ account.label }}"})
        except HybridwbError as exc:
            assert "\n" not in str(exc).strip()
    assert "1" not in sent(path)
    got = texts(path)
    assert got.get("2", "회원2님, 라벨8") == "회원2님, 라벨8"


def test_a_to_one_relation_to_a_view_repeating_a_key_names_no_wrong_account(
    db: str, viewer: str, tmp_path: Path
) -> None:
    """BREAK 2 (fixed): accounts through a view (no key the schema states unique) holding
    'V1' and 'v1': customers 'v1' and 'V1 ' are both accounts' to the server's case-blind
    join, and were messaged naming one of the two ('V1 ' with 'v1''s label). They are
    skipped as missing now; customer 'V2', one account's, is named its label. (Read by an
    account with SHOW VIEW: the view's related values are read in the batch's snapshot.)"""
    src(db, "CREATE TABLE vc (cid INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
            "code VARCHAR(10))")  # fmt: skip
    src(db, f"INSERT INTO vc VALUES (1, '회원1', '{phone(81)}', 'v1'), "
            f"(2, '회원2', '{phone(82)}', 'V2'), (3, '회원3', '{phone(83)}', 'V1 ')")  # fmt: skip
    src(db, "COMMIT")
    wb, path = connect(viewer, tmp_path)
    try:
        with wb:
            try:
                account(wb, "vacct", "vc")
                run(wb, {"table": "vc"}, {"content": "{{ 이름 }}님, {{ account.label }}"})
            except HybridwbError as exc:
                assert "\n" not in str(exc).strip()
        joined = src(db, "SELECT c.cid, COUNT(*) FROM vc c JOIN vacct a ON a.code = c.code "
                         "GROUP BY c.cid ORDER BY c.cid")  # fmt: skip
        assert joined == [(1, 2), (2, 1), (3, 2)]  # the oracle: 1 and 3 join two accounts
        assert texts(path) == {"2": "회원2님, 라벨3"}
        assert set(skipped(path)) == {"1", "3"}
    finally:
        src(db, "DROP TABLE vc")


XC = {
    "displayName": "회원", "key": "cid", "audience": True, "recipient": "mobile",
    "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
               "mobile": F("전화", role="phone"), "code": F("코드")},
    "relations": [{"table": "xa", "name": "account", "localField": "code",
                   "foreignField": "code", "kind": "many-to-one"}],
}  # fmt: skip
XA = {"displayName": "계정", "key": "code", "fields": {
    "code": F("코드", role="id"), "label": F("라벨"), "phone": F("계정전화", role="phone")}}  # fmt: skip
TWICE = {
    "template": ({}, "mobile"),
    "recipient": ({}, "account.phone"),
    "condition": ({"field": "account.label", "op": "eq", "value": "L1"}, "mobile"),
}


@pytest.mark.parametrize("where, recipient", list(TWICE.values()), ids=list(TWICE))
def test_a_unique_key_the_join_reads_in_another_character_set_names_no_one_of_two(
    db: str, reader: str, tmp_path: Path, where: dict[str, Any], recipient: str
) -> None:
    """BREAK 3 (fixed as a refusal): a unique latin1_bin key holds 'K1' and 'k1'; the
    server joins a utf8mb4_general_ci link to it in the link's collation, so customer 1's
    'k1' (and 3's 'K1 ') is both accounts' (root's join): chosen by 'K1''s label and named
    'k1''s, or named one of the two. The relation is refused in one line at the run, as a
    template, a recipient or a condition, nothing sent."""
    joined = src(db, "SELECT c.cid, COUNT(a.code) FROM xc c LEFT JOIN xa a ON a.code = c.code "
                     "GROUP BY c.cid ORDER BY c.cid")  # fmt: skip
    assert joined == [(1, 2), (2, 1), (3, 2)]  # the oracle
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("xa", XA)
        wb.mappings.save("xc", {**XC, "recipient": recipient})
        target = {"table": "xc", **({"where": where} if where else {})}
        with pytest.raises(HybridwbError, match="relate columns of one character set") as no:
            run(wb, target, {"content": "{{ 이름 }}님, {{ account.label }}"})
    assert "\n" not in str(no.value).strip()
    assert not sent(path), texts(path)


def test_many_customers_linked_in_another_case_each_get_their_own_account(
    db: str, reader: str, tmp_path: Path
) -> None:
    """Held: 2,345 customers, every other one linked by its account's key in lower case
    (the server's case-blind join, `_as_joined`'s read over three chunks): each messaged
    once, naming their own account."""
    joined = dict(src(db, "SELECT c.cid, a.label FROM mc c JOIN ma a ON a.code = c.code"))
    assert len(joined) == MANY
    wb, path = connect(reader, tmp_path)
    with wb:
        account(wb, "ma", "mc")
        wf = wb.workflows.create("many", target_config={"table": "mc"},
                                 message_config={"content": "{{ 번호 }}:{{ account.label }}"})  # fmt: skip
        created = wb.store.runs.create(wf["id"], {})
        Campaigns(wb.store.backend).start_state(created["id"], "test:1", "manual")
        wb.workflows.process(wf["id"], created["id"], progress=False, batch_size=1500, now=DAY)
    got = store_rows(path, "SELECT target_key, content FROM send_records")
    assert len(got) == MANY == len({k for k, _ in got})
    assert {str(k): t for k, t in got} == {str(c): f"{c}:{label}" for c, label in joined.items()}


# -- 3. the latest address among ties ----------------------------------------------------------
TCUST = {
    "displayName": "고객", "key": "cid", "audience": True, "recipient": "addresses.phone",
    "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name")},
    "relations": [{"table": "taddr", "name": "addresses", "localField": "cid",
                   "foreignField": "cid", "kind": "one-to-many", "orderBy": "updated"}],
}  # fmt: skip
TADDR = {"displayName": "주소", "key": "aid", "fields": {
    "aid": F("번호", "number", "id"), "cid": F("고객", "number"),
    "phone": F("전화", role="phone"), "city": F("도시"),
    "updated": F("수정일", "datetime")}}  # fmt: skip
# each customer's latest address by date, ties by the higher aid
LATEST = {"1": (71, "도시1b"), "2": (72, "도시2b"), "3": (73, "도시3b"), "4": (64, "도시4")}


def test_ties_of_one_date_give_one_phone_in_preview_freeze_and_message(
    db: str, reader: str, tmp_path: Path
) -> None:
    """Held: two addresses of one date (written alike, or '2026-01-01' and '20260101', or
    no real date in either): the preview's phone, the phone messaged and the city the
    message names are all the higher aid's, the one root's ordering picks."""
    oracle = {
        str(c): (p, city)
        for c, p, city in src(
            db,
            "SELECT cid, phone, city FROM (SELECT cid, phone, city, ROW_NUMBER() OVER ("
            "PARTITION BY cid ORDER BY CASE WHEN DAYOFMONTH(CAST(updated AS DATETIME)) > 0 "
            "AND MONTH(CAST(updated AS DATETIME)) > 0 THEN CAST(updated AS DATETIME) END "
            "DESC, aid DESC) AS n FROM taddr) x WHERE n = 1",
        )
    }
    assert oracle == {c: (phone(p), city) for c, (p, city) in LATEST.items()}
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("taddr", TADDR)
        wb.mappings.save("tcust", TCUST)
        for _ in range(3):
            preview = wb.targets.preview({"table": "tcust"}, now=DAY)
            assert preview.count == 4
        run(wb, {"table": "tcust"}, {"content": "{{ 이름 }}, {{ addresses.city }}"})
    assert sent(path) == {c: [e164(p)] for c, (p, _) in LATEST.items()}
    assert texts(path) == {c: f"고객{c}, {city}" for c, (_, city) in LATEST.items()}


def test_a_resume_among_ties_sends_nobody_at_a_second_phone(
    db: str, reader: str, tmp_path: Path, dying: dict[str, int]
) -> None:
    """Held: the run dies before its second batch read; the resume messages customers 3
    and 4 only, at the phone the first run would have, and customers 1 and 2 (messaged at
    the tied latest address's phone) at no second phone."""
    dying["at"] = 1
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("taddr", TADDR)
        wb.mappings.save("tcust", TCUST)
        with pytest.raises(HybridwbError, match="RuntimeError"):
            run(wb, {"table": "tcust"}, {"content": "{{ 이름 }}, {{ addresses.city }}"})
        assert set(sent(path)) == {"1", "2"}
        (run_id, wf_id) = store_rows(path, "SELECT id, workflow_id FROM workflow_runs")[0]
        wb.workflows.process(wf_id, run_id, progress=False, batch_size=2, now=DAY)
    assert sent(path) == {c: [e164(p)] for c, (p, _) in LATEST.items()}
    assert not skipped(path)


DCUST = {**TCUST, "relations": [{**TCUST["relations"][0], "table": "daddr"}]}
DLATEST = {"1": (71, "도시1b"), "2": (72, "도시2b"), "3": (63, "도시3a")}


def test_a_zero_date_is_not_the_latest_address(db: str, reader: str, tmp_path: Path) -> None:
    """BREAK 4 (fixed): addresses dated in a DATE column: '2026-00-15' (no month, missing
    to every condition) sorted after 2025-12-01 and was customer 1's latest address, its
    phone messaged; a zero date sorted before NULL. A date that is no real date sorts last
    now, with NULL (ties by the higher aid), as a text that is no date does."""
    oracle = {
        str(c): (p, city)
        for c, p, city in src(
            db,
            "SELECT cid, phone, city FROM (SELECT cid, phone, city, ROW_NUMBER() OVER ("
            "PARTITION BY cid ORDER BY CASE WHEN DAYOFMONTH(updated) > 0 AND MONTH(updated) "
            "> 0 THEN updated END DESC, aid DESC) AS n FROM daddr) x WHERE n = 1",
        )
    }
    assert oracle == {c: (phone(p), city) for c, (p, city) in DLATEST.items()}
    wb, path = connect(reader, tmp_path)
    with wb:
        wb.mappings.save("daddr", {**TADDR, "fields": {**TADDR["fields"],
                                                     "updated": F("수정일", "date")}})  # fmt: skip
        wb.mappings.save("dcust", DCUST)
        run(wb, {"table": "dcust"}, {"content": "{{ 이름 }}, {{ addresses.city }}"})
    assert sent(path) == {c: [e164(p)] for c, (p, _) in DLATEST.items()}
    assert texts(path) == {c: f"고객{c}, {city}" for c, (_, city) in DLATEST.items()}
