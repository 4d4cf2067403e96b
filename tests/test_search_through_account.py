"""Round 54's BREAK 9 and 10 fixed, then attacked: a customer whose recipient is
`account.addresses.phone` (a to-one hop, then a one-to-many one with an `orderBy`).

- Search finds a customer, once, by any phone of their account's addresses (a small table's
  `EXISTS` correlated to the joined account, or `(column, bytes) IN (SELECT ...)` where the
  account's column is text not stated unique; a large table's probe reads the addresses by
  their phone index and joins them up to the account's key), never a customer of another
  account: accounts 'k1' and 'K1' of a utf8mb4_bin key, families 'f1' and 'F1' of a
  case-blind column that is not unique, a trailing space, NULL keys; a SQLite source too.
  A large table's probe reads each related value once: one account's 25 addresses of a
  phone hid the other holders of it (also through a first one-to-many hop).
- A template variable through a relation whose local column is not a mapped field
  (`cust.acc`) is filled: the run reads that column with the row (`Plan.locals`), a
  search row (the preview's) has it read by the customer's unique key
  (`Resolver._with_locals`); with an expression variable too. A view of the customers
  (its key not stated unique) gets no value read by key: missing, never another's.

Source: one MariaDB database (root's DDL, read by the SELECT-only account) and a SQLite
file; store: SQLite. Oracles: root's SQL and the store's tables read with sqlite3.
Mutations (the fix undone by hand, this file and round 54's run): docs/GUARANTEES.md.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.search import service as search_service
from tests._stores import store_sql as oracle
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round53_real_schemas import connect, e164, phone, run, skipped

pytestmark = [pytest.mark.mysql]

D = datetime
DDL = (
    # customer -> account (INT key) -> the account's addresses
    "CREATE TABLE acct (acc INT PRIMARY KEY, label VARCHAR(10))",
    "CREATE TABLE cust (cid INT PRIMARY KEY, name VARCHAR(20), acc INT, KEY (acc))",
    "CREATE TABLE acct_addr (aid INT PRIMARY KEY, acc INT, phone VARCHAR(20), "
    "updated_at DATETIME, KEY (acc), KEY (phone))",
    # accounts 'k1' and 'K1' (a utf8mb4_nopad_bin key), customers' and addresses' columns case-blind
    "CREATE TABLE bacct (code VARCHAR(10) COLLATE utf8mb4_nopad_bin PRIMARY KEY, label VARCHAR(10))",
    "CREATE TABLE bcust (cid INT PRIMARY KEY, name VARCHAR(20), "
    "code VARCHAR(10) COLLATE utf8mb4_nopad_bin, KEY (code))",
    # the same customers, their column case-blind (the join compares by the accounts' key)
    "CREATE TABLE ccust (cid INT PRIMARY KEY, name VARCHAR(20), "
    "code VARCHAR(10) COLLATE utf8mb4_general_ci, KEY (code))",
    "CREATE TABLE baddr (aid INT PRIMARY KEY, code VARCHAR(10) COLLATE utf8mb4_general_ci, "
    "phone VARCHAR(20), updated_at DATETIME, KEY (code), KEY (phone))",
    # accounts in families: 'f1' and 'F1' two families (a case-blind column, not unique)
    "CREATE TABLE facct (acc INT PRIMARY KEY, fam VARCHAR(10), KEY (fam))",
    "CREATE TABLE fcust (cid INT PRIMARY KEY, name VARCHAR(20), acc INT, KEY (acc))",
    "CREATE TABLE faddr (aid INT PRIMARY KEY, fam VARCHAR(10), phone VARCHAR(20), "
    "updated_at DATETIME, KEY (fam), KEY (phone))",
    # customers without a key stated unique (two rows of cid 1), a mobile of their own
    "CREATE TABLE fcust2 (cid INT, name VARCHAR(20), mobile VARCHAR(20), acc INT, KEY (cid), "
    "KEY (mobile), KEY (acc))",
    # the customers as a view: no key the schema states unique
    "CREATE VIEW vcust AS SELECT cid, name, acc FROM cust",
)
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "acct": [(1, "a"), (2, "b"), (3, "c")],
    # 4 has no account, 5 an account with no address, 6 an account that does not exist
    "cust": [(1, "회원1", 1), (2, "회원2", 2), (3, "회원3", 1), (4, "회원4", None),
             (5, "회원5", 3), (6, "회원6", 9)],
    "acct_addr": [(1, 1, phone(1), D(2025, 1, 1)), (2, 1, phone(11), D(2026, 1, 1)),
                  (3, 2, phone(2), D(2025, 1, 1)),
                  (4, None, phone(40), D(2026, 1, 1)),  # an address of no account
                  (5, 9, phone(90), D(2026, 1, 1)),  # of an account that does not exist
                  # account 1 has 25 old addresses of one phone, account 2 one
                  *[(10 + i, 1, phone(7), D(2020, 1, 1)) for i in range(25)],
                  (100, 2, phone(7), D(2020, 1, 1))],
    "bacct": [("k1", "a"), ("K1", "b"), ("k1 ", "c")],
    "bcust": [(1, "회원1", "k1"), (2, "회원2", "K1"), (3, "회원3", "k1 ")],
    "ccust": [(1, "회원1", "k1"), (2, "회원2", "K1"), (3, "회원3", "k1 ")],
    "baddr": [(1, "k1", phone(1), D(2025, 1, 1)), (2, "K1", phone(2), D(2025, 1, 1)),
              (3, "k1 ", phone(3), D(2025, 1, 1))],
    "facct": [(1, "f1"), (2, "F1"), (3, "f1")],
    "fcust": [(1, "회원1", 1), (2, "회원2", 2), (3, "회원3", 3)],
    "fcust2": [(1, "회원1", phone(61), 1), (1, "회원2", phone(62), 2), (3, "회원3", phone(63), 3)],
    "faddr": [(1, "f1", phone(1), D(2025, 1, 1)), (2, "F1", phone(2), D(2026, 1, 1))],
}  # fmt: skip


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_r54acct", *DDL, rows=ROWS)


def addresses(table: str, key: str = "acc", key_type: str = "number") -> dict[str, Any]:
    return {
        "displayName": "주소",
        "key": "aid",
        "fields": {
            "aid": F("번호", "number", "id"),
            key: F("계정", key_type),
            "phone": F("전화", role="phone", searchable=True),
            "updated_at": F("수정일", "datetime"),
        },
    }


def account(key: str = "acc", local: str = "acc", foreign: str = "acc", **fields: Any) -> Any:
    return {
        "displayName": "계정",
        "key": key,
        "fields": {key: F("번호", "string" if key == "code" else "number", "id"), **fields},
        "relations": [{"table": "", "name": "addresses", "localField": local,
                       "foreignField": foreign, "kind": "one-to-many",
                       "orderBy": "updated_at"}],
    }  # fmt: skip


def customers(table: str, local: str = "acc", foreign: str = "acc", mapped: bool = True) -> Any:
    return {
        "displayName": "고객", "key": "cid", "audience": True,
        "recipient": "account.addresses.phone",
        "fields": {"cid": F("번호", "number", "id"), "name": F("이름", role="name"),
                   **({local: F("계정", "string")} if mapped else {})},
        "relations": [{"table": table, "name": "account", "localField": local,
                       "foreignField": foreign, "kind": "many-to-one"}],
    }  # fmt: skip


def mapped(wb: hybridwb.Workbench, people: str, acct: str, addr: str, **kw: Any) -> None:
    """people -> acct (to-one) -> addr (one-to-many, latest by updated_at)."""
    local, foreign, key = kw.get("local", "acc"), kw.get("foreign", "acc"), kw.get("key", "acc")
    inner = kw.get("inner", ("acc", "acc"))
    wb.mappings.save(addr, addresses(addr, inner[1], "string" if inner[1] != "acc" else "number"))
    mapping = account(key, *inner, **kw.get("fields", {}))
    mapping["relations"][0]["table"] = addr
    wb.mappings.save(acct, mapping)
    wb.mappings.save(people, customers(acct, local, foreign, kw.get("mapped", True)))


def found(wb: hybridwb.Workbench, table: str, n: int) -> list[Any]:
    return [r["cid"] for r in wb.search(table, phone(n)).raw_rows]


@pytest.fixture(params=["small", "large"])
def size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """`large`: SCAN_THRESHOLD lowered so these few rows take a large table's probe path."""
    if request.param == "large":
        monkeypatch.setattr(search_service, "SCAN_THRESHOLD", 0)
    return str(request.param)


def test_a_customer_is_found_once_by_any_phone_of_their_accounts_addresses(
    db: str, tmp_path: Path, size: str
) -> None:
    """1 and 3 share account 1 (an old and a new address), 2 has account 2; 4 no account,
    5 an account without an address, 6 an account that does not exist. An address of no
    account or of a missing one finds no one."""
    with connect(db, f"sqlite:///{tmp_path / 's.db'}") as wb:
        mapped(wb, "cust", "acct", "acct_addr")
        got = {n: found(wb, "cust", n) for n in (1, 2, 40, 90, 11)}
        statements = [s for s, _ in wb.search.last_statements]  # phone(11)'s
    oracle_of = {
        n: [r[0] for r in src(db, "SELECT c.cid FROM cust c JOIN acct a ON a.acc = c.acc JOIN "
                                  f"acct_addr d ON d.acc = a.acc WHERE d.phone = '{phone(n)}' "
                                  "GROUP BY c.cid ORDER BY c.cid")]
        for n in (1, 11, 2, 40, 90)
    }  # fmt: skip
    assert got == oracle_of == {1: [1, 3], 11: [1, 3], 2: [2], 40: [], 90: []}
    if size == "large":  # the probe read the addresses, the page compared cust.acc
        probe, page = statements
        assert "`acct_addr`" in probe and "`acct_addr`" not in page


def test_one_accounts_many_addresses_of_a_phone_hide_no_other_holder(
    db: str, tmp_path: Path, size: str
) -> None:
    """Account 1 has 25 addresses of one phone, account 2 one. A large table's probe read
    at most 21 rows (not values): account 1's filled them, and account 2's customer was
    not found, by the account path nor by a search of the accounts themselves (the first
    hop one-to-many). The probe now reads each value once (DISTINCT)."""
    with connect(db, f"sqlite:///{tmp_path / 's.db'}") as wb:
        mapped(wb, "cust", "acct", "acct_addr")
        customers_found = found(wb, "cust", 7)
        accounts_found = [r["acc"] for r in wb.search("acct", phone(7)).raw_rows]
    holders = src(
        db, f"SELECT COUNT(*), COUNT(DISTINCT acc) FROM acct_addr WHERE phone = '{phone(7)}'"
    )
    assert holders == [(26, 2)]
    assert (customers_found, accounts_found) == ([1, 2, 3], [1, 2])


def test_accounts_k1_and_K1_of_an_exact_key_are_two_accounts(
    db: str, tmp_path: Path, size: str
) -> None:
    """`bacct.code` is utf8mb4_nopad_bin: 'k1', 'K1' and 'k1 ' are three accounts, their addresses'
    column is case-blind (the server compares the two by the binary collation). Each
    customer is found by their own account's phone only, and messaged there."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        mapped(wb, "bcust", "bacct", "baddr", local="code", foreign="code", key="code",
               inner=("code", "code"))  # fmt: skip
        got = {n: found(wb, "bcust", n) for n in (1, 2, 3)}
        if size == "small":
            run(wb, {"table": "bcust"}, "{{ 이름 }}님, {{ account.addresses.phone }}")
    assert got == {1: [1], 2: [2], 3: [3]}
    if size == "small":
        sent = {k: r for k, (r, _) in _contents(store).items()}
        assert sent == {"1": e164(1), "2": e164(2), "3": e164(3)}


@pytest.mark.parametrize("people", ["bcust", "ccust"])
def test_a_case_blind_customer_column_finds_each_customer_by_their_exact_account(
    db: str, tmp_path: Path, size: str, people: str
) -> None:
    """`ccust.code` is case-blind, the accounts' key utf8mb4_nopad_bin: the join compares by
    the binary collation ('K1' joins account 'K1' only), and so must a search."""
    with connect(db, f"sqlite:///{tmp_path / 's.db'}") as wb:
        mapped(wb, people, "bacct", "baddr", local="code", foreign="code", key="code",
               inner=("code", "code"))  # fmt: skip
        got = {n: found(wb, people, n) for n in (1, 2, 3)}
    joined = {n: [r[0] for r in src(db, f"SELECT c.cid FROM {people} c JOIN bacct a ON "
                                        "a.code = c.code JOIN baddr d ON d.code = a.code "
                                        f"WHERE d.phone = '{phone(n)}' ORDER BY c.cid")]
              for n in (1, 2, 3)}  # fmt: skip
    assert got == joined == {1: [1], 2: [2], 3: [3]}


def test_families_f1_and_F1_of_a_case_blind_column_are_two_families(
    db: str, tmp_path: Path, size: str
) -> None:
    """Accounts 1 and 3 are family 'f1', account 2 family 'F1' (a case-blind column that is
    not unique: told apart by bytes). A search by F1's phone finds customer 2 only, by
    f1's customers 1 and 3; MariaDB's subquery cache (outer values compared by the
    collation) must not hand 'F1' the answer of 'f1'."""
    with connect(db, f"sqlite:///{tmp_path / 's.db'}") as wb:
        mapped(wb, "fcust", "facct", "faddr", inner=("fam", "fam"))
        got = {n: found(wb, "fcust", n) for n in (1, 2)}
    assert got == {1: [1, 3], 2: [2]}


def test_a_page_filtered_again_does_not_take_one_familys_answer_for_anothers(
    db: str, tmp_path: Path, size: str
) -> None:
    """`fcust2` has no key stated unique (two rows of cid 1: of family 'f1' and of 'F1')
    and a mobile of its own, so a phone term is two branches and the page's rows are
    filtered again by `mobile IN (...) OR <the account's addresses>`: inside the OR a
    correlated EXISTS is a dependent subquery whose cached answer MariaDB keys by the
    account's `fam` compared by its collation. Only the 'f1' row is found by f1's phone.
    (A small table's search of a table the schema states no size of needs `allow_scan`.)"""
    small = size == "small"
    with connect(db, f"sqlite:///{tmp_path / 's.db'}") as wb:
        mapped(wb, "fcust", "facct", "faddr", inner=("fam", "fam"))
        mapping = customers("facct")
        mapping["fields"]["mobile"] = F("휴대폰", role="phone", searchable=True)
        del mapping["audience"]  # (no key stated unique: not an audience, still searched)
        wb.mappings.save("fcust2", mapping)
        got = {
            n: [r["name"] for r in wb.search("fcust2", phone(n), allow_scan=small).raw_rows]
            for n in (1, 2, 62)
        }
    assert got == {1: ["회원1", "회원3"], 2: ["회원2"], 62: ["회원2"]}


def test_only_the_phones_and_emails_of_the_accounts_addresses_are_search_fields(
    db: str, tmp_path: Path
) -> None:
    """Past the one-to-many relation only phones and emails are searched: the account's
    addresses' other fields are never search fields of the customer. And a one-to-many
    relation past a to-one hop is searched only on the way the customer's recipient is
    sent (`account`), not through another to-one relation to the same accounts
    (`referrer`: every customer a store's staff phone leads to, which a keyword target
    would message)."""
    with connect(db, f"sqlite:///{tmp_path / 's.db'}") as wb:
        mapped(wb, "cust", "acct", "acct_addr")
        mapping = customers("acct")
        mapping["relations"].append({"table": "acct", "name": "referrer", "localField": "acc",
                                     "foreignField": "acc", "kind": "many-to-one"})  # fmt: skip
        wb.mappings.save("cust", mapping)
        paths = {f.path for f in wb.search.fields("cust")}
    assert "account.addresses.phone" in paths
    assert "referrer.addresses.phone" not in paths
    assert {p for p in paths if p.startswith(("account.", "referrer."))} == {
        "account.addresses.phone"
    }


def test_a_sqlite_source_finds_a_customer_by_their_accounts_phones(tmp_path: Path) -> None:
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE acct (acc TEXT PRIMARY KEY, label TEXT)")
        conn.execute("CREATE TABLE cust (cid INTEGER PRIMARY KEY, name TEXT, acc TEXT)")
        conn.execute("CREATE TABLE acct_addr (aid INTEGER PRIMARY KEY, acc TEXT, phone TEXT, "
                     "updated_at DATETIME)")  # fmt: skip
        conn.executemany("INSERT INTO acct VALUES (?, ?)", [("a", "x"), ("A", "y")])
        conn.executemany("INSERT INTO cust VALUES (?, ?, ?)",
                         [(1, "회원1", "a"), (2, "회원2", "A"), (3, "회원3", "a")])  # fmt: skip
        conn.executemany("INSERT INTO acct_addr VALUES (?, ?, ?, ?)", [
            (1, "a", phone(1), "2025-01-01 00:00:00"), (2, "A", phone(2), "2025-01-01 00:00:00"),
            (3, "a", phone(11), "2026-01-01 00:00:00")])  # fmt: skip
    store = f"sqlite:///{tmp_path / 's.db'}"
    wb = hybridwb.connect(source=f"sqlite:///{path}", store=store, cwd=tmp_path)
    wb.store.init()
    with wb:
        wb.mappings.save("acct_addr", addresses("acct_addr", "acc", "string"))
        mapping = account("acc", **{})
        mapping["fields"]["acc"] = F("번호", "string", "id")
        mapping["relations"][0]["table"] = "acct_addr"
        wb.mappings.save("acct", mapping)
        wb.mappings.save("cust", customers("acct", mapped=False))
        got = {n: found(wb, "cust", n) for n in (1, 2, 11)}
        run(wb, {"table": "cust"}, "{{ 이름 }}님, {{ account.addresses.phone }}")
    assert got == {1: [1, 3], 2: [2], 11: [1, 3]}
    assert _contents(store) == {"1": (e164(11), f"회원1님, {phone(11)}"),
                                "2": (e164(2), f"회원2님, {phone(2)}")}  # fmt: skip
    assert skipped(store) == {"3": "duplicate recipient in this run"}


# -- BREAK 10: a variable through a relation whose local column is not mapped ---------------
def _contents(store: str) -> dict[str, tuple[str, str]]:
    return {str(k): (str(r), str(c)) for k, r, c in oracle(
        store, "SELECT target_key, recipient, content FROM send_records")}  # fmt: skip


def test_a_to_one_variable_through_an_unmapped_local_column_is_filled(
    db: str, tmp_path: Path
) -> None:
    """`{{ account.label }}` (to-one) beside the recipient, `cust.acc` not mapped: each
    customer's own account's label, read by the run with the row."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        mapped(wb, "cust", "acct", "acct_addr", mapped=False, fields={"label": F("이름표")})
        run(wb, {"table": "cust"}, "{{ 이름 }}님, {{ account.label }}")
    labels = dict(src(db, "SELECT c.cid, a.label FROM cust c JOIN acct a ON a.acc = c.acc"))
    got = {k: c for k, (_, c) in _contents(store).items()}
    assert got == {"1": f"회원1님, {labels[1]}", "2": f"회원2님, {labels[2]}"}
    # 3 is 1's recipient; 4, 5 and 6 have no account address to message
    assert set(skipped(store)) == {"3", "4", "5", "6"}


def test_an_expression_variable_beside_it_still_reads_the_local_column(
    db: str, tmp_path: Path
) -> None:
    """An expression variable makes the run read every mapped column; the relation's local
    column (not mapped) is read too, so `{{ account.addresses.phone }}` is filled."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        mapped(wb, "cust", "acct", "acct_addr", mapped=False)
        wb.variables.create(name="큰이름", source_type="expression", source="name + '!'")
        run(wb, {"table": "cust", "where": {"field": "cid", "op": "in", "value": [1, 2]}},
            "{{ 큰이름 }} {{ account.addresses.phone }}")  # fmt: skip
    assert _contents(store) == {"1": (e164(11), f"회원1! {phone(11)}"),
                                "2": (e164(2), f"회원2! {phone(2)}")}  # fmt: skip


@pytest.mark.parametrize("expression", [False, True], ids=["variables", "with-expression"])
def test_the_template_names_the_account_of_the_row_the_recipient_was_read_with(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expression: bool
) -> None:
    """Customer 1 moves to account 2 after the run's batch read (as root): the message goes
    to the phone read with the row (account 1's latest), and its text names that phone, not
    account 2's: the relation's local column is read in the same statement as the row
    (`Plan.locals`), not looked up again by key."""
    from hybridwb.workflows import audience

    real = audience.fetch

    def fetch(*a: Any, **kw: Any) -> Any:
        rows = real(*a, **kw)
        src(db, "UPDATE cust SET acc = 2 WHERE cid = 1")
        return rows

    monkeypatch.setattr(audience, "fetch", fetch)
    store = f"sqlite:///{tmp_path / 's.db'}"
    text = "{{ 큰이름 }} " if expression else "{{ 이름 }} "
    try:
        with connect(db, store) as wb:
            mapped(wb, "cust", "acct", "acct_addr", mapped=False)
            wb.variables.create(name="큰이름", source_type="expression", source="name + '!'")
            where = {"field": "cid", "op": "in", "value": [1]}
            run(wb, {"table": "cust", "where": where}, text + "{{ account.addresses.phone }}")
    finally:
        src(db, "UPDATE cust SET acc = 1 WHERE cid = 1")
    name = "회원1!" if expression else "회원1"
    assert _contents(store) == {"1": (e164(11), f"{name} {phone(11)}")}


def test_a_search_row_gets_its_related_values_read_by_the_customers_key(
    db: str, tmp_path: Path
) -> None:
    """The preview's row is a search's (mapped fields only, no `acc`): its related values
    are read by the customer's unique key, the same the run sends. The same customers as
    a view (no key stated unique): none is read by key, so the value is missing (a
    preview that says so), never another customer's."""
    with connect(db, f"sqlite:///{tmp_path / 's.db'}") as wb:
        mapped(wb, "cust", "acct", "acct_addr", mapped=False)
        report = wb.templates.automap("{{ account.addresses.phone }}", "cust")
        rows = wb.search("cust", phone(11)).raw_rows
        assert all("acc" not in r for r in rows)
        got = wb.templates.related(report, rows)
        rendered = wb.templates.render("{{ account.addresses.phone }}", rows[0], table="cust",
                                       related=got[0])  # fmt: skip
        view = customers("acct", mapped=False)
        del view["audience"], view["recipient"]
        wb.mappings.save("vcust", view)
        view = wb.templates.automap("{{ account.addresses.phone }}", "vcust")
        by_view = wb.templates.related(view, [{"cid": 1, "name": "회원1"}])
    assert [r["cid"] for r in rows] == [1, 3]
    assert got == [{"account.addresses.phone": phone(11)}] * 2
    assert rendered.text == phone(11)
    assert by_view == [{"account.addresses.phone": None}]
