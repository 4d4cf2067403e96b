"""Attack round 54: a recipient through the latest row of a one-to-many relation.

The guarantee under attack (commit bdbfbe5): a person whose recipient is `addresses.phone`
(a one-to-many relation with an `orderBy`) is messaged once, at the phone of their latest
address (ties by the address table's key, the higher; NULL dates last), never at another
person's or an older phone; a search finds a person, once, by any of their addresses'
phones, never by another person's.

Source: one MariaDB database read by the SELECT-only account (and one SQLite source file);
store: SQLite. Oracles: root's own `ORDER BY updated_at IS NULL, updated_at DESC, aid DESC
LIMIT 1` and reads with pymysql, the store's `send_records` / `run_skips` read with sqlite3.

BREAKS (mutation counts: the fix undone by hand, this file run, of its 22 tests):

- BREAK 1 (fixed): `{{ addresses.city }}` (or `{{ addresses.phone }}`) in the message came
  from another address than the one messaged: `Resolver._one_per_key` ranked the related
  rows by `orderBy` alone, `Selection._latest` by `orderBy` and then the key. With several
  addresses of one date (a bulk import), person 1 was messaged at 010-2201-0201 with
  "부산 010-2001-0001" in the text. Both reads now take one order (`Resolver.latest_order`),
  on MariaDB and a SQLite source. → 3 of 22 fail with `_one_per_key` by the date alone.
- BREAK 2 (fixed): a large table's search (the probe path) of a people table whose key
  the schema does not state unique found 'K1' by 'k1''s address's phone: the probe read the
  address's 'k1' and searched `code = 'k1'`, which utf8mb4_general_ci answers with 'K1'
  (the small table's EXISTS compared the bytes). The probed values are now compared by
  their bytes too (`search.sql.EQ_BYTES`, `by_bytes`, `resolve.related_by_bytes`, which
  also refuses a number key related to a text column before the probe reads).
  → 2 of 22 fail with plain `eq` branches.
- BREAK 3 (fixed): a saved query returning a column `phone` stood in for the mapping's
  `addresses.phone` (the path's last name), and `JOIN paddr ... GROUP BY pid` returns the
  first address's phone: the run messaged an older phone. Refused in one line with nothing
  sent unless the target names the query's column as its recipient. → 1 of 22 fails.
- BREAK 4 (fixed): a recipient through a one-to-many relation to a table not mapped yet
  was saved (its `orderBy`, misspelled, unchecked), then every preview and run was
  refused. Refused at save now, and so is a related mapping without a key. → 1 of 22.
- BREAK 5 (fixed): a case-blind unique key 'k1' whose latest address is written 'K1' was
  messaged at that address's phone (right: the schema's collation says it is k1's), but its
  `{{ addresses.city }}` was looked up by 'k1' among rows keyed by the text they hold
  ('K1'): none, and k1 was skipped as 'missing'. `_one_per_key` now reads a one-to-many
  hop through the parent's values (each once, as stored), related as `_correlated`
  relates them, keyed by the parent's own value. → 2 of 22 fail when it reads the related
  table alone.
- BREAK 6 (fixed): an address table whose key the schema does not state unique (a view
  over an old and a new address table whose ids repeat): two rows of one person, one id and
  one date, and the recipient's read and the template's each took whichever the server read
  first: person 1 was messaged at the new table's phone with the old table's city and phone
  in the text. Past such a key both reads now order by every mapped field too
  (`latest_order`). → 1 of 22 fails with that tail left out.
- BREAK 7 (fixed): the recipient at ANOTHER family's phone. Addresses kept per family
  code (`fam`, not unique: 'f1' and 'F1' two families, told apart by bytes): the latest
  row's correlated subquery compared the bytes, but MariaDB's subquery cache keys a
  dependent subquery's result by its outer values compared by their collation, so 'F1'
  got 'f1''s cached phone. Now correlated by the person's unique key
  (`Selection._by_row`). → 1 of 22 fails.
- BREAK 8 (fixed): the same cache in a search: a people table without a primary key and a
  mobile of its own, so a phone term is two branches and the page's rows are filtered
  again by `mobile IN (...) OR EXISTS (...)`; inside the OR the EXISTS is a dependent
  subquery and 'K1' got 'k1''s cached yes: found by k1's address's phone. Now `(code,
  bytes) IN (SELECT ...)`, uncorrelated (`Selection.exists`). → 1 of 22 fails.
- BREAK 9 (fixed after the round, branch `r54fix`): a customer whose recipient is
  `account.addresses.phone` (a to-one hop, then the one-to-many one) was messaged right,
  but a search by that phone found no one (search followed a one-to-many relation only as
  the first hop). Now a searched field goes through at most one one-to-many relation its
  own table's mapping declares, first or, past to-one hops, on the way the recipient is
  sent: `Selection.exists` correlated to the joined account (or `(column, bytes) IN
  (SELECT ...)`), a large table's probe joined up the to-one hops (`search.sql._probe_up`). Attacked in
  `test_search_through_account.py`. → 1 of 22 fails with the first-hop-only fields.
- BREAK 10 (fixed after the round, branch `r54fix`; not particular to a latest row): a
  template variable through a relation whose local column is not a mapped field
  (`cust.acc`) was reported mapped by automap, and every target skipped as 'missing' (the
  run read mapped columns only). The run now reads such a column with the row when a
  variable needs it (`Plan.locals`), a search's row has it read by the unique key
  (`Resolver._with_locals`). → 1 of 22 fails with `Plan.locals` left out.

What held: a to-one account before the to-many addresses (two customers of one account:
one message, the other "duplicate recipient"; the template names the account's latest
phone); a utf8mb4_bin key beside a case-blind address column (each person at their own
latest address, found by their own phones only); a keyword target by an old address's
phone (messaged once, at the latest); an advertisement with consent on the person (held by
the refusal of the latest phone's holder only: a number a refuser gave up goes to its new
holder, a person whose older address had a refuser's phone is messaged at their own); a
SQLite source (ties, NULL dates last, the template's city); at save, an `orderBy`, a
`foreignField` or a `localField` naming no column, and a relation to a table the source
does not have, each one line with nothing saved. An `orderBy` on a text column is taken as
written (the user's order). An address added between the freeze and the batch read:
that person is messaged at neither phone ("recipient changed since the run started"). A
target's own recipient by a display name (`addresses.전화`): the latest address's phone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from hybridwb.search import service as search_service
from tests._mysql import select_only_url
from tests._stores import store_sql as oracle
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round30_dotted_columns import one_line
from tests.test_attack_round53_real_schemas import AD, connect, e164, phone, run, sent, skipped

pytestmark = [pytest.mark.mysql]

D = datetime
TIED = D(2026, 3, 3)
DDL = (
    # people with several addresses of one date (a bulk import stamps them alike)
    "CREATE TABLE person (pid INT PRIMARY KEY, name VARCHAR(20), ad CHAR(1))",
    "CREATE TABLE paddr (aid INT PRIMARY KEY, pid INT NOT NULL, phone VARCHAR(20), "
    "city VARCHAR(20), updated_at DATETIME, KEY (pid), KEY (phone))",
    # a people table without a primary key: 'k1' and 'K1' are two people
    "CREATE TABLE np (code VARCHAR(10), name VARCHAR(20), KEY (code))",
    "CREATE TABLE np_addr (aid INT PRIMARY KEY, code VARCHAR(10), phone VARCHAR(20), "
    "updated_at DATETIME, KEY (code), KEY (phone))",
    # the same two people, each with a mobile of their own too
    "CREATE TABLE np2 (code VARCHAR(10), name VARCHAR(20), mobile VARCHAR(20), KEY (code), "
    "KEY (mobile))",
    # customer -> account (to-one) -> the account's addresses (one-to-many)
    "CREATE TABLE acct (acc INT PRIMARY KEY, label VARCHAR(10))",
    "CREATE TABLE cust (cid INT PRIMARY KEY, name VARCHAR(20), acc INT, KEY (acc))",
    "CREATE TABLE acct_addr (aid INT PRIMARY KEY, acc INT, phone VARCHAR(20), "
    "updated_at DATETIME, KEY (acc), KEY (phone))",
    # a case-blind unique key ('k1' is 'K1' to the schema), addresses written either way
    "CREATE TABLE pci (code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE pci_addr (aid INT PRIMARY KEY, code VARCHAR(10) COLLATE utf8mb4_general_ci, "
    "phone VARCHAR(20), city VARCHAR(20), updated_at DATETIME, KEY (code))",
    # the same people keyed exactly (utf8mb4_bin), their addresses' column case-blind
    "CREATE TABLE pbin (code VARCHAR(10) COLLATE utf8mb4_bin PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE pbin_addr (aid INT PRIMARY KEY, code VARCHAR(10) COLLATE utf8mb4_general_ci, "
    "phone VARCHAR(20), updated_at DATETIME, KEY (code))",
    # marketing consent on the person, phones in their addresses (some shared, some moved)
    "CREATE TABLE adp (pid INT PRIMARY KEY, name VARCHAR(20), ad CHAR(1))",
    "CREATE TABLE adp_addr (aid INT PRIMARY KEY, pid INT NOT NULL, phone VARCHAR(20), "
    "updated_at DATETIME, KEY (pid))",
    # a view over an old and a new address table whose ids repeat (no key stated unique)
    "CREATE TABLE old_addr (aid INT, pid INT, phone VARCHAR(20), city VARCHAR(20), "
    "updated_at DATETIME)",
    "CREATE TABLE new_addr (aid INT, pid INT, phone VARCHAR(20), city VARCHAR(20), "
    "updated_at DATETIME)",
    "CREATE VIEW all_addr AS SELECT * FROM old_addr UNION ALL SELECT * FROM new_addr",
    # addresses kept per family: a family code people share, case-blind, not unique
    "CREATE TABLE fam_person (pid INT PRIMARY KEY, name VARCHAR(20), fam VARCHAR(10), KEY (fam))",
    "CREATE TABLE fam_addr (aid INT PRIMARY KEY, fam VARCHAR(10), phone VARCHAR(20), "
    "city VARCHAR(20), updated_at DATETIME, KEY (fam))",
)
CITIES = ["서울", "부산", "대구", "인천", "광주", "대전", "울산", "수원"]


def _tied_rows() -> list[tuple[Any, ...]]:
    """People 1..24, each with 2..5 addresses of one date (ties), and a few older ones; the
    address ids are handed out in no order of the person (a migration's ids)."""
    rows: list[tuple[Any, ...]] = []
    for pid in range(1, 25):
        for k in range(pid % 4 + 2):
            aid = (k * 37 + pid * 11) % 997 + 1000 * k
            rows.append((aid, pid, phone(100 * k + pid), CITIES[(pid + k) % 8], TIED))
        rows.append((5000 + pid, pid, phone(900 + pid), "옛집", D(2020, 1, 1)))
    return rows


ROWS: dict[str, list[tuple[Any, ...]]] = {
    "person": [(i, f"회원{i}", "Y") for i in range(1, 25)],
    "paddr": _tied_rows(),
    "np": [("k1", "회원1"), ("K1", "회원2")],
    "np_addr": [(1, "k1", phone(1), D(2025, 1, 1))],
    "np2": [("k1", "회원1", phone(50)), ("K1", "회원2", phone(51))],
    "acct": [(1, "a"), (2, "b")],
    "cust": [(1, "회원1", 1), (2, "회원2", 2), (3, "회원3", 1)],
    "acct_addr": [(1, 1, phone(1), D(2025, 1, 1)), (2, 1, phone(11), D(2026, 1, 1)),
                  (3, 2, phone(2), D(2025, 1, 1))],
    "pci": [("k1", "회원1"), ("m1", "회원2")],
    "pci_addr": [(1, "k1", phone(1), "서울", D(2025, 1, 1)),
                 (2, "K1", phone(11), "부산", D(2026, 1, 1)),
                 (3, "m1", phone(2), "대구", D(2025, 1, 1))],
    "pbin": [("k1", "회원1"), ("K1", "회원2")],
    "pbin_addr": [(1, "k1", phone(1), D(2025, 1, 1)), (2, "K1", phone(2), D(2024, 1, 1)),
                  (3, "K1", phone(12), D(2026, 1, 1))],
    "old_addr": [(i, i, phone(i), CITIES[i % 8], TIED) for i in range(1, 13)],
    "new_addr": [(i, i, phone(100 + i), CITIES[(i + 3) % 8], TIED) for i in range(1, 13)],
    "fam_person": [(1, "회원1", "f1"), (2, "회원2", "F1"), (3, "회원3", "f1"), (4, "회원4", "g1")],
    "fam_addr": [(1, "f1", phone(1), "서울", D(2025, 1, 1)), (2, "F1", phone(2), "부산", D(2026, 1, 1)),
                 (3, "f1", phone(3), "대구", D(2024, 1, 1))],
    "adp": [(1, "회원1", "N"), (2, "회원2", "Y"), (3, "회원3", "N"), (4, "회원4", "Y"),
            (5, "회원5", "Y")],
    "adp_addr": [(1, 1, phone(1), D(2025, 1, 1)),
                 (2, 2, phone(1), D(2025, 1, 1)),  # 2 shares 1's phone; 1 said no
                 (3, 3, phone(3), D(2024, 1, 1)), (4, 3, phone(33), D(2026, 1, 1)),  # 3 moved
                 (5, 4, phone(3), D(2026, 2, 1)),  # 4 holds the number 3 gave up
                 (6, 5, phone(1), D(2020, 1, 1)), (7, 5, phone(5), D(2026, 1, 1))],
}  # fmt: skip


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_r54", *DDL, rows=ROWS)


def addresses(key: str = "pid", key_type: str = "number", **fields: Any) -> dict[str, Any]:
    return {
        "displayName": "주소",
        "key": "aid",
        "fields": {
            "aid": F("번호", "number", "id"),
            key: F("고객", key_type),
            "phone": F("전화", role="phone", searchable=True),
            "updated_at": F("수정일", "datetime"),
            **fields,
        },
    }


def people(table: str, key: str = "pid", key_type: str = "number", **extra: Any) -> dict[str, Any]:
    return {
        "displayName": "고객",
        "key": key,
        "audience": True,
        "recipient": "addresses.phone",
        "fields": {key: F("번호", key_type, "id"), "name": F("이름", role="name")},
        "relations": [
            {"table": table, "name": "addresses", "localField": key, "foreignField": key,
             "kind": "one-to-many", "orderBy": "updated_at"}
        ],
        **extra,
    }  # fmt: skip


def latest_of(db: str, table: str, key: str, value: Any) -> tuple[Any, ...] | None:
    """Root's own reading of the latest row: NULL dates last, ties by the higher aid."""
    found = src(
        db,
        f"SELECT aid, phone FROM {table} WHERE {key} = '{value}' "
        "ORDER BY updated_at IS NULL, updated_at DESC, aid DESC LIMIT 1",
    )
    return found[0] if found else None


def contents(store: str) -> dict[str, tuple[str, str]]:
    return {str(k): (str(r), str(c)) for k, r, c in oracle(
        store, "SELECT target_key, recipient, content FROM send_records")}  # fmt: skip


# -- BREAK 1 (fixed): a template's city from another address than the one messaged ------------
def test_a_template_names_the_city_of_the_address_whose_phone_is_messaged(
    db: str, tmp_path: Path
) -> None:
    """Each person has several addresses of one date. The message goes to the phone of the
    address with the highest id among them; `{{ addresses.city }}` in the same message must
    name that address's city (and `{{ addresses.phone }}` that phone), not another of the
    tied ones (`Resolver._one_per_key` ordered by the date alone)."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("paddr", addresses(city=F("도시")))
        wb.mappings.save("person", people("paddr"))
        run(wb, {"table": "person"}, "{{ 이름 }}님, {{ addresses.city }} {{ addresses.phone }}")
    got = contents(store)
    assert sorted(got, key=int) == [str(i) for i in range(1, 25)]
    for pid, (to, content) in got.items():
        aid, at = latest_of(db, "paddr", "pid", pid) or (None, None)
        ((city,),) = src(db, f"SELECT city FROM paddr WHERE aid = {aid}")
        assert (to, content) == (
            "+82" + str(at).replace("-", "")[1:],
            f"회원{pid}님, {city} {at}",
        ), pid


# -- BREAK 6 (fixed): a related table whose key the schema does not state unique -------------
@pytest.fixture
def viewer(db: str) -> Iterator[str]:
    """An account with SELECT and SHOW VIEW on the database: a related value read through a
    view inside the batch's snapshot needs the view's definition (`plainviews`; without
    SHOW VIEW the run fails in one line)."""
    from sqlalchemy.engine import make_url

    with select_only_url(db, "r54v") as url:
        src(db, f"GRANT SHOW VIEW ON `{db}`.* TO '{make_url(url).username}'@'%'")
        yield url


def test_a_view_whose_address_ids_repeat_messages_the_phone_of_the_row_its_city_names(
    db: str, viewer: str, tmp_path: Path
) -> None:
    """`all_addr` is a view over an old and a new address table: each person has two rows
    of one id and one date. Ordered by the date and the id alone, the recipient's read and
    the template's each took whichever row the server read first: person 1 was messaged at
    the new table's phone with the old table's city and phone in the text. Past a key the
    schema does not state unique, both now order by every mapped field (`latest_order`)."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store, viewer) as wb:
        wb.mappings.save("all_addr", addresses(city=F("도시")))
        wb.mappings.save("person", people("all_addr"))
        where = {"field": "pid", "op": "lte", "value": 12}
        run(wb, {"table": "person", "where": where}, "{{ addresses.city }} {{ addresses.phone }}")
    got = contents(store)
    assert sorted(got, key=int) == [str(i) for i in range(1, 13)]
    for pid, (to, content) in got.items():
        # root's reading of the documented order: the date, the id, then the mapped fields
        ((at, city),) = src(
            db,
            f"SELECT phone, city FROM all_addr WHERE pid = {pid} ORDER BY updated_at DESC, "
            "aid DESC, city DESC, phone DESC, pid DESC LIMIT 1",
        )
        assert (to, content) == ("+82" + str(at).replace("-", "")[1:], f"{city} {at}"), pid


# -- BREAK 2 (fixed): a probed search of a table whose key the schema does not state unique -----
def test_a_probed_search_finds_only_the_person_whose_address_has_the_phone(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`np` has no primary key: 'k1' and 'K1' are two people. Only 'k1' has an address. A
    small table's search matches the related rows byte for byte (`Selection._correlated`);
    a large one's probe read 'k1' from the address and searched `np.code = 'k1'`, which the
    case-blind collation also answers with 'K1'."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    truth = [r[0] for r in src(db, f"SELECT code FROM np_addr WHERE phone = '{phone(1)}'")]
    assert truth == ["k1"]
    with connect(db, store) as wb:
        wb.mappings.save("np_addr", addresses("code", "string"))
        wb.mappings.save("np", {**people("np_addr", "code", "string"), "audience": False,
                                "recipient": None})  # fmt: skip
        assert [r["code"] for r in wb.search("np", phone(1), allow_scan=True).raw_rows] == truth
        monkeypatch.setattr(search_service, "SCAN_THRESHOLD", 0)
        assert [r["code"] for r in wb.search("np", phone(1)).raw_rows] == truth
        assert wb.search("np", phone(2)).raw_rows == []


# -- BREAK 8 (fixed): the subquery cache in a search of several branches -------------------------
@pytest.mark.parametrize("large", [False, True], ids=["small", "probed"])
def test_a_person_with_a_phone_of_their_own_is_not_found_by_anothers_address(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    """`np2` (no primary key: 'k1' and 'K1' two people) has a mobile column too, so a phone
    term is two branches, and a key the schema does not state unique has the page's rows
    filtered again by `mobile IN (...) OR EXISTS (...addresses...)`. Inside the OR the EXISTS
    is a dependent subquery, and MariaDB's subquery cache answered 'K1' with 'k1''s cached
    yes (its outer value compared by the collation): 'K1' was found by k1's address's
    phone. (`Selection.exists` now compares `(code, bytes) IN (...)`, uncorrelated.)"""
    if large:
        monkeypatch.setattr(search_service, "SCAN_THRESHOLD", 0)
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("np_addr", addresses("code", "string"))
        mapping = {**people("np_addr", "code", "string"), "audience": False, "recipient": None}
        mapping["fields"]["mobile"] = F("휴대폰", role="phone", searchable=True)
        wb.mappings.save("np2", mapping)
        found = {n: [r["code"] for r in wb.search("np2", phone(n), allow_scan=not large).raw_rows]
                 for n in (1, 50, 51)}  # fmt: skip
    assert found == {1: ["k1"], 50: ["k1"], 51: ["K1"]}


# -- BREAK 3 (fixed): a saved query's phone column stood in for the latest address's ---------
def test_a_saved_query_does_not_message_a_phone_other_than_the_latest_addresss(
    db: str, tmp_path: Path
) -> None:
    """The mapping's recipient is `addresses.phone`; a saved query returning a column
    `phone` was taken for it (`_saved_query_plan`'s fallback to the path's last name), and a
    careless `JOIN ... GROUP BY` returns the phone of the first address found, an older one.
    Refused in one line with nothing sent; named explicitly (`"recipient": "phone"`), the
    query's column is what the user chose."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    query = ("SELECT p.pid, p.name, a.phone FROM person p JOIN paddr a ON a.pid = p.pid "
             "WHERE p.pid <= 3 GROUP BY p.pid")  # fmt: skip
    returned = {pid: to for pid, _, to in src(db, query)}
    latest = {pid: latest_of(db, "paddr", "pid", pid) for pid in returned}
    assert any(returned[pid] != row[1] for pid, row in latest.items() if row)  # the trap
    with connect(db, store) as wb:
        wb.mappings.save("paddr", addresses())
        wb.mappings.save("person", people("paddr"))
        with pytest.raises(HybridwbError) as refused:
            wb.targets.preview({"sql": query})
        assert "latest paddr row" in one_line(refused.value)
        with pytest.raises(HybridwbError):
            run(wb, {"sql": query})
        assert sent(store) == {}
        run(wb, {"sql": query, "recipient": "phone"})  # the user's own choice
    assert sent(store) == {str(k): ["+82" + v.replace("-", "")[1:]] for k, v in returned.items()}


# -- BREAK 4 (fixed): a latest-row recipient through a table not mapped -----------------------
def test_a_recipient_through_an_unmapped_to_many_table_is_refused_at_save(
    db: str, tmp_path: Path
) -> None:
    """`addresses` goes to `paddr`, not mapped yet: the save took it (and its orderBy, a
    column `paddr` does not have, went unchecked), then every preview and run was refused.
    Now refused at save, in one line, with nothing saved; so is a mapped table without a
    key (its ties could not be broken)."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        typo = people("paddr")
        typo["relations"][0]["orderBy"] = "updatd_at"
        for mapping in (people("paddr"), typo):
            with pytest.raises(HybridwbError) as refused:
                wb.mappings.save("person", mapping)
            assert "map paddr first" in one_line(refused.value)
            assert "person" not in wb.mappings.tables()
        wb.mappings.save("paddr", {**addresses(), "key": None})
        with pytest.raises(HybridwbError) as refused:
            wb.mappings.save("person", people("paddr"))
        assert "with its key" in one_line(refused.value)
        assert "person" not in wb.mappings.tables()
        wb.mappings.save("paddr", addresses())
        with pytest.raises(HybridwbError) as refused:
            wb.mappings.save("person", typo)
        assert "updatd_at" in one_line(refused.value)
        wb.mappings.save("person", people("paddr"))
        assert wb.mappings.tables()["person"].recipient == "addresses.phone"


# -- BREAK 7 (fixed): another family's phone, from MariaDB's subquery cache -----------------------
def test_a_family_code_people_share_gives_each_family_its_own_latest_address_and_city(
    db: str, tmp_path: Path
) -> None:
    """Addresses kept per family (`fam`, not unique, case-blind): 'f1' and 'F1' are two
    families, told apart by their bytes since the schema does not state the column unique.
    1 and 3 share 'f1' (one message: the same recipient), 2 is 'F1': each at their family's
    latest address, with its city; 4's family has none. The recipient's correlated
    subquery compared the bytes, but MariaDB caches a dependent subquery's result by its
    outer value compared by the collation: 2 ('F1') was handed 1's cached phone, another
    family's, and skipped as the same recipient (`Selection._by_row` now correlates by the
    person's unique key). The template's read took 'f1' and 'F1' as one partition."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("fam_addr", addresses("fam", "string", city=F("도시")))
        mapping = people("fam_addr")
        mapping["relations"][0].update(localField="fam", foreignField="fam")
        mapping["fields"]["fam"] = F("가족", "string")
        wb.mappings.save("fam_person", mapping)
        run(wb, {"table": "fam_person"}, "{{ 이름 }}님, {{ addresses.city }}")
    assert contents(store) == {"1": (e164(1), "회원1님, 서울"), "2": (e164(2), "회원2님, 부산")}
    assert skipped(store) == {"3": "duplicate recipient in this run", "4": "no recipient"}


# -- BREAK 9 (fixed): the account's addresses are searched ------------------------------------
def account_mappings(wb: hybridwb.Workbench, local_mapped: bool = True) -> None:
    """cust -> account -> addresses; `local_mapped`: cust.acc (the to-one relation's local
    column) is a mapped field too."""
    wb.mappings.save("acct_addr", addresses("acc"))
    wb.mappings.save(
        "acct",
        {
            "displayName": "계정",
            "key": "acc",
            "fields": {"acc": F("번호", "number", "id")},
            "relations": [
                {
                    "table": "acct_addr",
                    "name": "addresses",
                    "localField": "acc",
                    "foreignField": "acc",
                    "kind": "one-to-many",
                    "orderBy": "updated_at",
                }
            ],
        },
    )
    wb.mappings.save("cust", {
        "displayName": "고객", "key": "cid", "audience": True,
        "recipient": "account.addresses.phone",
        "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
                   **({"acc": F("계정", "number")} if local_mapped else {})},
        "relations": [{"table": "acct", "name": "account", "localField": "acc",
                       "foreignField": "acc", "kind": "many-to-one"}]})  # fmt: skip


def test_through_a_to_one_account_each_customer_is_messaged_at_the_accounts_latest_phone(
    db: str, tmp_path: Path
) -> None:
    """customer -> account (to-one) -> the account's addresses (one-to-many, latest by
    date): customers 1 and 3 share account 1, so one message goes to its latest phone
    (the other is the same recipient in the run), customer 2 at account 2's."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        account_mappings(wb)
        assert wb.targets.preview({"table": "cust"}).count == 3
        run(wb, {"table": "cust"}, "{{ 이름 }}님, {{ account.addresses.phone }}")
    (one,) = src(db, "SELECT phone FROM acct_addr WHERE acc = 1 ORDER BY updated_at DESC LIMIT 1")
    assert one == (phone(11),)
    assert contents(store) == {"1": (e164(11), f"회원1님, {phone(11)}"),
                               "2": (e164(2), f"회원2님, {phone(2)}")}  # fmt: skip
    assert skipped(store) == {"3": "duplicate recipient in this run"}


def test_a_customer_is_found_by_the_phones_of_their_accounts_addresses(
    db: str, tmp_path: Path
) -> None:
    """Customers 1 and 3 share account 1, whose latest address has phone(11): a search by
    it finds both, once each (search followed a one-to-many relation only as a first hop)."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        account_mappings(wb)
        assert [r["cid"] for r in wb.search("cust", phone(11)).raw_rows] == [1, 3]


# -- BREAK 10 (fixed): a template through a relation whose local column is not mapped ---------
def test_a_template_through_a_relation_whose_local_column_is_not_mapped_is_filled(
    db: str, tmp_path: Path
) -> None:
    """`cust.acc` (the to-one relation's local column) is not a mapped field: the run reads
    it with the row all the same, and each customer's message names their account's
    latest phone (every target was skipped as 'missing account.addresses.phone')."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        account_mappings(wb, local_mapped=False)
        report = wb.templates.automap("{{ account.addresses.phone }}", "cust")
        assert [v.status for v in report.variables] == ["mapped"]
        run(wb, {"table": "cust"}, "{{ 이름 }}님, {{ account.addresses.phone }}")
    assert contents(store) == {"1": (e164(11), f"회원1님, {phone(11)}"),
                               "2": (e164(2), f"회원2님, {phone(2)}")}  # fmt: skip


# -- BREAK 5 (fixed): a related row written otherwise than the key fills no template variable ---
def test_the_latest_address_written_otherwise_than_the_key_fills_the_template(
    db: str, tmp_path: Path
) -> None:
    """`pci.code` is a utf8mb4_general_ci primary key: 'k1' and 'K1' are one person to the
    schema, and the run messages k1 at the phone of their latest address, written 'K1'; its
    `{{ addresses.city }}` was looked up by 'k1' among rows `_one_per_key` keyed by the
    text they hold ('K1'): none, and k1 was skipped as 'missing', not messaged."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("pci_addr", addresses("code", "string", city=F("도시")))
        wb.mappings.save("pci", people("pci_addr", "code", "string"))
        run(wb, {"table": "pci"}, "{{ 이름 }}님, {{ addresses.city }}")
    assert contents(store) == {"k1": (e164(11), "회원1님, 부산"), "m1": (e164(2), "회원2님, 대구")}
    assert skipped(store) == {}


# -- what held -------------------------------------------------------------------------------
def test_an_exact_key_is_messaged_at_its_own_latest_address_beside_a_case_blind_column(
    db: str, tmp_path: Path
) -> None:
    """`pbin.code` is utf8mb4_bin: 'k1' and 'K1' are two people; their addresses' column is
    utf8mb4_general_ci. The server compares the two by the binary collation: each person is
    messaged at their own latest address (K1's newer 'K1' row is not k1's), and found by
    their own phones only."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("pbin_addr", addresses("code", "string"))
        wb.mappings.save("pbin", people("pbin_addr", "code", "string"))
        run(wb, {"table": "pbin"})
        found = {n: [r["code"] for r in wb.search("pbin", phone(n)).raw_rows] for n in (1, 2, 12)}
    assert latest_of(db, "pbin_addr", "BINARY code", "K1") == (3, phone(12))
    assert sent(store) == {"k1": [e164(1)], "K1": [e164(12)]}
    assert found == {1: ["k1"], 2: ["K1"], 12: ["K1"]}


def test_a_keyword_target_by_an_older_phone_messages_the_person_once_at_the_latest(
    db: str, tmp_path: Path
) -> None:
    """A keyword is a search: person 7 is found by the phone of an old address of theirs
    (`옛집`) and messaged once, at the phone of their latest address."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("paddr", addresses())
        wb.mappings.save("person", people("paddr"))
        run(wb, {"table": "person", "keyword": phone(907)})
    (_, at) = latest_of(db, "paddr", "pid", 7) or (None, None)
    assert sent(store) == {"7": ["+82" + str(at).replace("-", "")[1:]]}


def test_an_advertisement_is_held_by_the_refusal_of_the_latest_phones_holder_only(
    db: str, tmp_path: Path
) -> None:
    """Marketing consent `ad` on the person, phones in their addresses. 1 said no; 2 says
    yes but their latest phone is 1's: held. 3 said no and moved; 4's latest phone is the
    one 3 gave up: 4 gets the advertisement (3's refusal is of the phone 3 holds now). 5's
    older address had 1's phone; their latest is their own: messaged there."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("adp_addr", addresses())
        mapping = people("adp_addr", consent="ad")
        mapping["fields"]["ad"] = F("광고동의", "boolean", "consent")
        wb.mappings.save("adp", mapping)
        preview = wb.targets.preview({"table": "adp"})
        run(wb, {"table": "adp"}, AD)
    assert sent(store) == {"4": [e164(3)], "5": [e164(5)]}
    # 1 and 3 refused (the consent filter leaves them out); 2 is held by 1's refusal
    assert skipped(store) == {
        "2": "no marketing consent (another customer with this recipient has none)"
    }
    assert (preview.count, preview.quality["marketing_opt_out"]) == (3, 1)


def test_a_sqlite_source_messages_each_person_once_at_the_latest_with_its_own_city(
    tmp_path: Path,
) -> None:
    """The same shape in a SQLite source file (how the embedded sample is read): ties in
    the date broken by the higher address id, NULL dates last, the city of the address
    whose phone is messaged."""
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE person (pid INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("CREATE TABLE paddr (aid INTEGER PRIMARY KEY, pid INTEGER NOT NULL, "
                     "phone TEXT, city TEXT, updated_at DATETIME)")  # fmt: skip
        conn.executemany("INSERT INTO person VALUES (?, ?)", [(i, f"회원{i}") for i in (1, 2, 3)])
        conn.executemany("INSERT INTO paddr VALUES (?, ?, ?, ?, ?)", [
            (9, 1, phone(1), "서울", "2026-01-01 00:00:00"),
            (3, 1, phone(11), "부산", "2026-01-01 00:00:00"),  # a tie: 9 is the higher id
            (4, 2, phone(2), "대구", None), (5, 2, phone(12), "인천", "2020-01-01 00:00:00"),
            (6, 3, phone(3), "광주", "2026-01-01 00:00:00"),
            (7, 3, phone(13), "울산", "2026-01-01 00:00:00"),
            (8, 3, phone(23), "대전", "2025-01-01 00:00:00")])  # fmt: skip
    store = f"sqlite:///{tmp_path / 's.db'}"
    wb = hybridwb.connect(source=f"sqlite:///{path}", store=store, cwd=tmp_path)
    wb.store.init()
    with wb:
        wb.mappings.save("paddr", addresses(city=F("도시")))
        wb.mappings.save("person", people("paddr"))
        run(wb, {"table": "person"}, "{{ 이름 }}님, {{ addresses.city }}")
        assert [r["pid"] for r in wb.search("person", phone(23)).raw_rows] == [3]
    assert contents(store) == {"1": (e164(1), "회원1님, 서울"), "2": (e164(12), "회원2님, 인천"),
                               "3": (e164(13), "회원3님, 울산")}  # fmt: skip


@pytest.mark.parametrize(
    "change, said",
    [({"orderBy": "nope"}, "no column 'nope'"), ({"foreignField": "nope"}, "no column 'nope'"),
     ({"localField": "nope"}, "no column 'nope'"), ({"table": "nosuch"}, "no table 'nosuch'")],
    ids=["orderBy", "foreignField", "localField", "table"],
)  # fmt: skip
def test_a_misnamed_relation_of_a_latest_row_recipient_is_refused_at_save(
    db: str, tmp_path: Path, change: dict[str, str], said: str
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("paddr", addresses())
        mapping = people("paddr")
        mapping["relations"][0].update(change)
        with pytest.raises(HybridwbError) as refused:
            wb.mappings.save("person", mapping)
        assert said in one_line(refused.value)
        assert "person" not in wb.mappings.tables()


def test_an_address_added_between_the_freeze_and_the_batch_read_messages_neither_phone(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set froze person 2 with the phone of their latest address; before the batch is
    read, a newer address is added (as root). The frozen (key, phone) pair is the contract:
    person 2 is messaged at neither (the old phone may be given up, the new one was never
    frozen), the exclusion is counted, and the others are messaged at their latest."""
    from hybridwb.workflows import audience

    real, calls = audience.fetch, {"n": 0}

    def fetch(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            src(db, f"INSERT INTO paddr VALUES (9999, 2, '{phone(777)}', '제주', '2027-01-01')")
        return real(*a, **kw)

    monkeypatch.setattr(audience, "fetch", fetch)
    store = f"sqlite:///{tmp_path / 's.db'}"
    where = {"field": "pid", "op": "in", "value": [1, 2, 3]}
    before = {pid: latest_of(db, "paddr", "pid", pid) for pid in (1, 3)}
    try:
        with connect(db, store) as wb:
            wb.mappings.save("paddr", addresses())
            wb.mappings.save("person", people("paddr"))
            run(wb, {"table": "person", "where": where})
    finally:
        src(db, "DELETE FROM paddr WHERE aid = 9999")
    assert calls["n"] >= 1
    assert sent(store) == {
        str(pid): ["+82" + str(row[1]).replace("-", "")[1:]] for pid, row in before.items() if row
    }
    assert skipped(store) == {"2": "recipient changed since the run started"}


def test_a_targets_own_recipient_by_a_display_name_reads_the_latest_address(
    db: str, tmp_path: Path
) -> None:
    """The recipient given in the target by a display name (`addresses.전화`) is the same path:
    each person once, at their latest address's phone."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    where = {"field": "pid", "op": "in", "value": [4, 5]}
    with connect(db, store) as wb:
        wb.mappings.save("paddr", addresses())
        wb.mappings.save("person", people("paddr"))
        run(wb, {"table": "person", "where": where, "recipient": "addresses.전화"})
    expected = {str(p): ["+82" + str(latest_of(db, "paddr", "pid", p)[1]).replace("-", "")[1:]]  # type: ignore[index]
                for p in (4, 5)}  # fmt: skip
    assert sent(store) == expected
