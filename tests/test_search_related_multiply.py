"""A many-to-one relation joins one related row per row, or is refused: real MariaDB.

Found: people related by an INT `addr_id` to addresses keyed by a VARCHAR `code` (unique as
text: '1' and '01' are two keys). The join compares the text as a number, so '1' and '01'
both joined the person with 1: searching the landline both addresses share showed each
person twice on one page (limit 2 and 20: [0, 0, 2, 2]), and a target on it counted them
twice. Such a relation is now a one-line error wherever it is joined; a search that needs
no join of it pages every row once. Oracle: direct SQL as root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from tests._mysql import root
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import people, workbench

pytestmark = pytest.mark.mysql
PHONE = {"displayName": "전화", "type": "string", "role": "phone", "searchable": True}
NAME = {"displayName": "이름", "type": "string", "role": "name", "searchable": True}
LANDLINE = "02-123-4567"


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_relmul")


@pytest.fixture
def wb(source: Callable[..., str], tmp_path: Any) -> Iterator[tuple[hybridwb.Workbench, str]]:
    db = source(
        "CREATE TABLE addr (code VARCHAR(8) PRIMARY KEY, phone VARCHAR(20), KEY (phone))",
        "CREATE TABLE f (id INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
        "addr_id INT, KEY (addr_id), KEY (name))",
        rows={
            "addr": [("1", LANDLINE), ("01", LANDLINE), ("2", "02-999-0000")],
            "f": [(i, "회원", f"010-2000-{i:04d}", 1 + i % 2) for i in range(4)],
        },
    )
    made = addressed(db, tmp_path, "number")
    yield made, db
    made.close()


def addressed(db: str, tmp_path: Path, reference_type: str) -> hybridwb.Workbench:
    """A workbench over people (`f`) whose `addr_id` (a field of `reference_type`) is a
    many-to-one relation to `addr.code` (text), the phone in `addr`."""
    reference = {"displayName": "주소", "type": reference_type, "role": "reference"}
    relation = {
        "table": "addr",
        "localField": "addr_id",
        "foreignField": "code",
        "kind": "many-to-one",
        "name": "address",
    }
    mapping = people(
        "number", "id", fields={"name": NAME, "addr_id": reference}, relations=[relation]
    )
    code = {"displayName": "번호", "type": "string", "role": "id"}
    addr = {"displayName": "주소록", "key": "code", "fields": {"code": code, "phone": PHONE}}
    return workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": mapping, "addr": addr})


def follow(wb: hybridwb.Workbench, term: str, limit: int) -> list[int]:
    seen: list[int] = []
    page = None
    for _ in range(20):
        result = wb.search("f", term, limit=limit, page=page)
        seen += [r["id"] for r in result.raw_rows]
        page = result.next_page
        if page is None:
            return seen
    raise AssertionError(f"still more pages: {seen}")


def oracle(db: str, where: str) -> list[int]:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM `{db}`.f WHERE {where}")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize("limit", [1, 2, 20])
def test_a_join_that_would_repeat_rows_is_refused(
    wb: tuple[hybridwb.Workbench, str], limit: int
) -> None:
    bench, _ = wb
    with pytest.raises(HybridwbError, match="address") as refused:
        follow(bench, LANDLINE, limit)
    message = str(refused.value)
    assert "\n" not in message and "addr.code" in message and "one kind" in message


def test_a_target_through_it_is_refused(wb: tuple[hybridwb.Workbench, str]) -> None:
    bench, _ = wb
    definition = {"table": "f", "where": {"field": "address.phone", "op": "eq", "value": LANDLINE}}
    with pytest.raises(HybridwbError, match="one kind") as refused:
        list(bench.targets.iter(definition, 10))
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("limit", [1, 2, 20])
def test_a_search_without_that_join_pages_every_row_once(
    wb: tuple[hybridwb.Workbench, str], limit: int
) -> None:
    bench, db = wb
    got = follow(bench, "회원", limit)
    assert sorted(got) == sorted(oracle(db, "name = '회원'")) and len(got) == len(set(got))


def test_a_text_join_under_a_coarser_collation(source: Callable[..., str], tmp_path: Any) -> None:
    """Addresses keyed by latin1_bin text ('a' and 'A' two keys), people pointing at them by
    utf8mb4_general_ci text: the join compares in utf8mb4_general_ci (Unicode wins), so both
    join the person with 'a': shown twice. Refused in one line since round 59 (the key
    converted to the link's character set, whose collation does not keep its values apart:
    `resolve._refuse_converted_join`); a residue until then."""
    db = source(
        "CREATE TABLE addr (code VARCHAR(8) CHARACTER SET latin1 COLLATE latin1_bin "
        "PRIMARY KEY, phone VARCHAR(20), KEY (phone))",
        "CREATE TABLE f (id INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
        "addr_id VARCHAR(8) COLLATE utf8mb4_general_ci, KEY (addr_id), KEY (name))",
        rows={
            "addr": [("a", LANDLINE), ("A", LANDLINE)],
            "f": [(i, "회원", f"010-2000-{i:04d}", "a") for i in range(2)],
        },
    )
    bench = addressed(db, tmp_path, "string")
    try:
        try:
            got = follow(bench, LANDLINE, 20)
        except HybridwbError as exc:
            assert "\n" not in str(exc)
            return
        assert len(got) == len(set(got)), got
    finally:
        bench.close()
