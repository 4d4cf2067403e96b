"""A person whose phones live only in a one-to-many address table (round 53's break 4).

The recipient `addresses.phone` goes through the relation person -> addresses with an
`orderBy`: each person is messaged once, at the phone of their latest address (ties in the
order broken by the address key, NULL dates last), and a search finds the person by any of
their addresses' phones, listed once.

Source: one MariaDB database read by the SELECT-only account; store: SQLite. Oracles: the
store's `send_records` read with sqlite3, the source's rows read as root with pymysql.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hybridwb.errors import HybridwbError
from hybridwb.search import service as search_service
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round30_dotted_columns import one_line
from tests.test_attack_round53_real_schemas import connect, e164, phone, run, sent

pytestmark = [pytest.mark.mysql]

DDL = (
    "CREATE TABLE person (pid INT PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE paddr (aid INT PRIMARY KEY, pid INT NOT NULL, phone VARCHAR(20), "
    "city VARCHAR(20), updated_at DATETIME, KEY (pid), KEY (phone))",
    # two people whose keys differ only in case, in a view (no key the schema states unique)
    "CREATE TABLE shop_a (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE shop_b (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20))",
    "CREATE VIEW shops AS SELECT * FROM shop_a UNION ALL SELECT * FROM shop_b",
    "CREATE TABLE shop_addr (aid INT PRIMARY KEY, code VARCHAR(10), phone VARCHAR(20), "
    "updated_at DATETIME, KEY (code))",
    # a number key related to a text column: '01' and ' 1' are 1 to the server
    "CREATE TABLE ncust (code INT PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE naddr (aid INT PRIMARY KEY, code VARCHAR(10), phone VARCHAR(20), "
    "updated_at DATETIME)",
)
D = datetime
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "person": [(i, f"회원{i}") for i in range(1, 7)],
    "paddr": [
        (1, 1, phone(1), "서울", D(2025, 1, 1)), (2, 1, phone(11), "부산", D(2026, 1, 1)),  # moved
        (3, 2, phone(2), "대구", D(2025, 6, 1)),  # one address
        (4, 3, phone(3), "인천", D(2026, 2, 2)), (5, 3, phone(13), "광주", D(2026, 2, 2)),  # tie
        (6, 4, phone(4), "대전", None), (7, 4, phone(14), "울산", D(2024, 1, 1)),  # NULL date
        (8, 5, phone(5), "수원", D(2025, 1, 1)), (9, 5, None, "창원", D(2026, 1, 1)),  # no phone now
        # person 6 has no address
    ],
    "shop_a": [("k1", "회원1")],
    "shop_b": [("K1", "회원2")],
    "shop_addr": [(1, "k1", phone(1), D(2025, 1, 1))],
    "ncust": [(1, "회원1"), (2, "회원2")],
    "naddr": [(1, "01", phone(1), D(2025, 1, 1)), (2, "2", phone(2), D(2025, 1, 1))],
}  # fmt: skip

#: person -> the phone of their latest address (NULL dates last, ties by the higher aid)
LATEST = {"1": [e164(11)], "2": [e164(2)], "3": [e164(13)], "4": [e164(14)]}


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_latest", *DDL, rows=ROWS)


def addresses(table: str = "paddr", key: str = "pid", key_type: str = "number") -> dict[str, Any]:
    return {
        "displayName": "주소",
        "key": "aid",
        "fields": {
            "aid": F("번호", "number", "id"),
            key: F("고객", key_type),
            "phone": F("전화", role="phone", searchable=True),
            "updated_at": F("수정일", "datetime"),
        },
    }


def people(
    key: str = "pid", table: str = "paddr", key_type: str = "number", **relation: Any
) -> dict[str, Any]:
    return {
        "displayName": "고객",
        "key": key,
        "audience": True,
        "recipient": "addresses.phone",
        "fields": {key: F("번호", key_type, "id"), "name": F("이름", role="name")},
        "relations": [
            {"table": table, "name": "addresses", "localField": key, "foreignField": key,
             "kind": "one-to-many", "orderBy": "updated_at", **relation}
        ],
    }  # fmt: skip


def saved(wb: Any) -> None:
    wb.mappings.save("paddr", addresses())
    wb.mappings.save("person", people())


def test_each_person_is_messaged_once_at_their_latest_addresss_phone(
    db: str, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        saved(wb)
        # the preview counts people, not addresses (9 address rows, 6 people)
        assert wb.targets.preview({"table": "person"}).count == 6
        run(wb, {"table": "person"})
    assert sent(store) == LATEST
    # the oracle's own reading of "latest" agrees, person by person
    for key, [to] in LATEST.items():
        (latest,) = src(
            db,
            f"SELECT phone FROM paddr WHERE pid = {key} "
            "ORDER BY updated_at IS NULL, updated_at DESC, aid DESC LIMIT 1",
        )
        assert to == e164(int(latest[0].rsplit("-", 1)[1]))


def test_the_latest_address_without_a_phone_is_not_replaced_by_an_older_one(
    db: str, tmp_path: Path
) -> None:
    """Person 5's latest address has no phone: nobody is messaged at the older phone (it
    may be someone else's now), and person 6 (no address at all) is not messaged either."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        saved(wb)
        run(wb, {"table": "person", "where": {"field": "pid", "op": "in", "value": [2, 5, 6]}})
    assert sent(store) == {"2": [e164(2)]}


def test_an_address_edited_between_runs_moves_the_next_message(db: str, tmp_path: Path) -> None:
    """The latest row is read from the source at each run: a newer address added as root
    between two runs is where the second run's message goes."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        saved(wb)
        run(wb, {"table": "person", "where": {"field": "pid", "op": "eq", "value": 2}})
        assert sent(store) == {"2": [e164(2)]}
        src(db, f"INSERT INTO paddr VALUES (99, 2, '{phone(22)}', '제주', '2027-01-01')")
        try:
            run(wb, {"table": "person", "where": {"field": "pid", "op": "eq", "value": 2}})
        finally:
            src(db, "DELETE FROM paddr WHERE aid = 99")
    assert sorted(sent(store)["2"]) == sorted([e164(2), e164(22)])


def test_two_people_whose_keys_differ_only_in_case_are_found_only_by_their_own_addresses(
    db: str, tmp_path: Path
) -> None:
    """`shops` is a view: 'k1' and 'K1' are two people the server's collation calls equal.
    Only 'k1' has an address; a search by its phone must not list 'K1' too. (A view states
    no size: `allow_scan` skips the EXPLAIN the SELECT-only account may not run on it.)"""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("shop_addr", addresses("shop_addr", "code", "string"))
        shops = {**people("code", "shop_addr", "string"), "audience": False, "recipient": None}
        wb.mappings.save("shops", shops)
        assert [r["code"] for r in wb.search("shops", phone(1), allow_scan=True).raw_rows] == ["k1"]


def test_a_number_key_related_to_a_text_column_is_refused_in_one_line_with_nothing_sent(
    db: str, tmp_path: Path
) -> None:
    """naddr.code '01' is 1 to the server: person 1 would be messaged at a row that may not
    be theirs. The run is refused before it sends anything."""
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("naddr", addresses("naddr", "code", "string"))
        wb.mappings.save("ncust", people("code", "naddr"))
        with pytest.raises(HybridwbError) as refused:
            wb.targets.preview({"table": "ncust"})
        assert "not of one kind" in one_line(refused.value)
        with pytest.raises(HybridwbError):
            run(wb, {"table": "ncust"})
    assert sent(store) == {}


def test_a_to_many_recipient_without_an_order_is_refused_at_save(db: str, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        wb.mappings.save("paddr", addresses())
        with pytest.raises(HybridwbError) as refused:
            wb.mappings.save("person", people(orderBy=None))
        assert "orderBy" in one_line(refused.value)
        assert "person" not in wb.mappings.tables()


def test_a_to_many_relation_before_the_last_one_is_refused_at_save(db: str, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        owner = {"table": "person", "name": "owner", "localField": "pid", "foreignField": "pid",
                 "kind": "many-to-one"}  # fmt: skip
        wb.mappings.save("person", {**people(), "audience": False, "recipient": None})
        wb.mappings.save("paddr", {**addresses(), "relations": [owner]})
        mapping = people()
        mapping["recipient"] = "addresses.owner.name"
        with pytest.raises(HybridwbError) as refused:
            wb.mappings.save("person", mapping)
        assert "not a to-one relation" in one_line(refused.value)
        assert wb.mappings.tables()["person"].recipient is None  # the earlier save stands


@pytest.mark.parametrize("large", [False, True], ids=["small", "probed"])
@pytest.mark.parametrize("term, expected", [(phone(1), [1]), (phone(11), [1]), (phone(13), [3]),
                                            (phone(99), [])])  # fmt: skip
def test_a_search_finds_a_person_by_any_of_their_addresses_phones_once(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bool, term: str,
    expected: list[int],
) -> None:  # fmt: skip
    if large:  # the six people count as a large table: the phone is probed through its index
        monkeypatch.setattr(search_service, "SCAN_THRESHOLD", 0)
    truth = sorted({r[0] for r in src(db, f"SELECT pid FROM paddr WHERE phone = '{term}'")})
    assert truth == expected
    store = f"sqlite:///{tmp_path / 's.db'}"
    with connect(db, store) as wb:
        saved(wb)
        found = wb.search("person", term)
        assert [r["pid"] for r in found.raw_rows] == expected
