"""Real schemas are not the sample shop: table and relation names holding a dot, a space or a
backtick, and audiences a SELECT-only account cannot give a key.

A dot separates relations in every path (`address.phone`). MariaDB allows a table named
`sales.customers`, and a relation's path name is its table's name unless the mapping names
it, so a relation to that table (or one the mapping named `a.b`) was read as two hops: a
consent `sales.customers.ok` was read through the relation `sales` and its `customers`,
another table (where everyone said yes), and the mapping saved. Now a relation whose path
name holds a dot (or starts or ends with a space) is refused in one line at the mapping's
boundary (save and load), and the relations the live schema's foreign keys or `suggest`
would give such a name are left out. A table whose own name holds a dot is still mapped and
used exactly: no path starts with a table's name except an individual variable's
`table.field`, read at its last dot (a field's name never holds one).

An audience needs a key that is a primary key or unique index; a view (or a table without
one) has none, and the refusal told a SELECT-only user to "add one". It now says what such
a user can do: map a base table that has one, or ask the DBA.

Source: one MariaDB database for the module, read by the SELECT-only account; oracle: the
mapping file on disk, the store's `send_records` (sqlite3) and the source's rows as root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import source_url, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round30_dotted_columns import (
    mapping_files,
    one_line,
    rewrite_mapping,
    run_refused,
    sent_keys,
)

pytestmark = [pytest.mark.mysql]

AD = "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일!\n무료수신거부 080-123-4567"
PEOPLE = "(code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20))"
DDL = (
    f"CREATE TABLE members {PEOPLE}",
    # the members' own consent: 1, 3, 5, 7 said yes, 2, 4, 6, 8 said no
    "CREATE TABLE `sales.customers` (code INT PRIMARY KEY, phone VARCHAR(20), ok CHAR(1))",
    # `sales` and its `customers`: another table, where everyone said yes
    "CREATE TABLE sales (code INT PRIMARY KEY, cust INT NOT NULL)",
    "CREATE TABLE customers (code INT PRIMARY KEY, phone VARCHAR(20), ok CHAR(1))",
    # foreign keys whose relations would be named `sales.customers` and `sales.orders`
    "CREATE TABLE orders (id INT PRIMARY KEY, buyer INT, "
    "FOREIGN KEY (buyer) REFERENCES `sales.customers` (code))",
    "CREATE TABLE `sales.orders` (id INT PRIMARY KEY, code INT, "
    "FOREIGN KEY (code) REFERENCES members (code))",
    f"CREATE TABLE `my members` {PEOPLE}",
    f"CREATE TABLE `mem``bers` {PEOPLE}",
    "INSERT INTO `mem``bers` VALUES "
    + ", ".join(f"({i}, '회원{i}', '010-7000-{i:04d}')" for i in range(1, 7)),
    "CREATE TABLE nokey (code INT, name VARCHAR(20), tel VARCHAR(20))",
    "CREATE VIEW v_members AS SELECT code, name, tel FROM members",
)
PEOPLE_ROWS = [(i, f"회원{i}", f"010-7000-{i:04d}") for i in range(1, 9)]
ROWS = {
    "members": PEOPLE_ROWS,
    "sales.customers": [(i, f"010-7000-{i:04d}", "Y" if i % 2 else "N") for i in range(1, 9)],
    "sales": [(i, i) for i in range(1, 9)],
    "customers": [(i, f"010-8000-{i:04d}", "Y") for i in range(1, 9)],
    "orders": [(i, i) for i in range(1, 9)],
    "sales.orders": [(i, i) for i in range(1, 9)],
    "my members": PEOPLE_ROWS[:5],
    "nokey": PEOPLE_ROWS,
}

PERSON = {
    "code": F("번호", "number", "id"),
    "name": F("이름", role="name"),
    "tel": F("전화", role="phone", pii=True),
}
TO_ONE = {"localField": "code", "foreignField": "code", "kind": "many-to-one"}
SALES = {
    "displayName": "매출",
    "key": "code",
    "fields": {"code": F("번호", "number", "id"), "cust": F("고객", "number", "reference")},
    "relations": [{"table": "customers", "localField": "cust", "foreignField": "code",
                   "kind": "many-to-one"}],
}  # fmt: skip
CUSTOMERS = {
    "displayName": "고객",
    "key": "code",
    "fields": {"code": F("번호", "number", "id"), "phone": F("휴대폰"), "ok": F("동의")},
}
DOTTED = {**CUSTOMERS, "displayName": "판매고객"}  # `sales.customers`


def members(relation: dict[str, Any], consent: str) -> dict[str, Any]:
    """The audience `members`, its consent read through `relation`, beside `sales`."""
    return {
        "displayName": "회원",
        "key": "code",
        "audience": True,
        "recipient": "tel",
        "consent": consent,
        "fields": PERSON,
        "relations": [relation, {"table": "sales", **TO_ONE}],
    }


#: the relation to `sales.customers` by its table's name, and one the mapping named `a.b`
DOTTED_RELATIONS = {
    "table-name": ({"table": "sales.customers", **TO_ONE}, "sales.customers", "sales.customers.ok"),
    "relation-name": ({"table": "sales.customers", "name": "a.b", **TO_ONE}, "a.b", "a.b.ok"),
}


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_names", *DDL, rows=ROWS)


def connect(db: str, tmp_path: Path) -> hybridwb.Workbench:
    wb = hybridwb.connect(source=source_url(db), store=f"sqlite:///{tmp_path / 's.db'}")
    wb.store.init()
    return wb


@pytest.mark.parametrize(
    "relation, name, consent", DOTTED_RELATIONS.values(), ids=list(DOTTED_RELATIONS)
)
def test_a_relation_named_with_a_dot_is_refused_not_read_as_two_hops(
    db: str, tmp_path: Path, relation: dict[str, Any], name: str, consent: str
) -> None:
    with connect(db, tmp_path) as wb:
        wb.mappings.save("customers", CUSTOMERS)
        wb.mappings.save("sales", SALES)
        wb.mappings.save("sales.customers", DOTTED)
        before = mapping_files(tmp_path)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("members", members(relation, consent))
        assert repr(name) in one_line(refused.value) and "dot" in str(refused.value)
        assert mapping_files(tmp_path) == before  # nothing was saved


def test_a_mapping_file_edited_to_a_dotted_relation_fails_the_run_and_sends_nothing(
    db: str, tmp_path: Path
) -> None:
    """Before: the consent `sales.customers.ok` was read as `sales` -> `customers`.ok, where
    everyone said yes: all 8 members were messaged advertising, 4 of them had said no."""
    store = tmp_path / "s.db"
    relation, name, consent = DOTTED_RELATIONS["table-name"]
    sound = members({"table": "sales.customers", "name": "sc", **TO_ONE}, "sc.ok")
    with connect(db, tmp_path) as wb:
        for table, mapping in (("customers", CUSTOMERS), ("sales", SALES)):
            wb.mappings.save(table, mapping)
        wb.mappings.save("sales.customers", DOTTED)
        wb.mappings.save("members", sound)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "dots", target_config={"table": "members"}, message_config={"template": "세일"}
        )
    rewrite_mapping(tmp_path, "members", members(relation, consent))
    assert repr(name) in one_line(run_refused(db, store, wf))
    sent = sent_keys(store)
    said_no = {str(r[0]) for r in src(db, "SELECT code FROM `sales.customers` WHERE ok = 'N'")}
    assert said_no == {"2", "4", "6", "8"}
    assert not sent, sent


def test_relations_the_schema_would_name_with_a_dot_are_left_out(db: str, tmp_path: Path) -> None:
    """`orders.buyer` -> `sales.customers` and `sales.orders.code` -> `members` are foreign
    keys whose relations are named after the dotted table: suggest and the resolver's
    graph leave them out, so a suggested mapping saves."""
    with connect(db, tmp_path) as wb:
        for table in ("orders", "members", "sales.customers"):
            suggested = wb.mappings.suggest(table)
            names = [r.path_name for r in suggested.relations]
            assert not [n for n in names if "." in n], (table, names)
            wb.mappings.save(table, suggested)
        graph = wb.mappings.resolver.graph
        for table in ("orders", "members", "sales.customers"):
            names = [h.name for h in graph.edges(table)]
            assert not [n for n in names if "." in n], (table, names)


def test_a_dotted_table_is_an_audience_read_exactly(db: str, tmp_path: Path) -> None:
    """`sales.customers` itself, its consent `ok` (4 said yes), and an individual variable
    `sales.customers.phone` (read at its last dot: before, as the table `sales`)."""
    audience = {**DOTTED, "audience": True, "recipient": "phone", "consent": "ok"}
    with connect(db, tmp_path) as wb:
        wb.mappings.save("sales", SALES)
        wb.mappings.save("customers", CUSTOMERS)
        wb.mappings.save("sales.customers", audience)
        preview = wb.targets.preview({"table": "sales.customers", "exclude_opt_out": True})
        assert preview.count == 4
        wb.variables.create(name="번호판", source_type="field", source="sales.customers.phone")
        report = wb.templates.automap("{{ 번호판 }}", "sales.customers")
        status = {s.name: s for s in report.variables}["번호판"]
        assert status.status == "mapped", status


@pytest.mark.parametrize(
    "table, n", [("my members", 5), ("mem`bers", 6)], ids=["space", "backtick"]
)
def test_a_table_named_with_a_space_or_a_backtick_is_an_audience_and_a_relation(
    db: str, tmp_path: Path, table: str, n: int
) -> None:
    """As the audience: its rows counted; as a relation (named after it) from `members`:
    a recipient path through it saves and the preview reads it."""
    with connect(db, tmp_path) as wb:
        people = {"displayName": "사람", "key": "code", "fields": PERSON}
        wb.mappings.save(table, {**people, "audience": True, "recipient": "tel"})
        assert wb.targets.preview({"table": table}).count == n
        wb.mappings.save(table, people)
        through = {
            "displayName": "회원",
            "key": "code",
            "audience": True,
            "recipient": f"{table}.tel",
            "fields": PERSON,
            "relations": [{"table": table, **TO_ONE}],
        }
        wb.mappings.save("members", through)
        preview = wb.targets.preview({"table": "members"})
        assert preview.count == 8


@pytest.mark.parametrize("table", ["v_members", "nokey"], ids=["view", "no-key"])
def test_an_audience_without_a_key_says_what_a_select_only_user_can_do(
    db: str, tmp_path: Path, table: str
) -> None:
    """The account is SELECT-only: it cannot add a key, so the refusal must not ask it to."""
    people = {"displayName": "사람", "key": "code", "fields": PERSON}
    with connect(db, tmp_path) as wb:
        for key in ("code", None):
            with pytest.raises(ValidationError) as refused:
                wb.mappings.save(
                    table, {**people, "key": key, "audience": True, "recipient": "tel"}
                )
            text = one_line(refused.value)
            assert "has none: add one" not in text and "(none)" not in text, text
            assert text.startswith(f"{table} is a "), text
            assert "a base table with a one-column primary key" in text, text
            assert "ask the DBA to add a unique index" in text, text
