"""A search by a field of a related table, on a large table, first reads the relation's
column values the term matches (the probe) and then searches `local column = value`: exact
only when the value reads back as the server compares it. Real MariaDB, the oracle direct SQL
as root; 'large' is SCAN_THRESHOLD lowered so a few rows take the large-table path.

Found: addresses keyed by a FLOAT (0.1, 0.2, ...) and people pointing at them by a FLOAT: the
probe read 0.1 for the stored 0.100000001, `addr_code = 0.1` matched no one, and the search
answered "no results" for a landline shared by four people, without a word (now: a one-line
"not searched" that says why). A BIT relation column read back as bytes (`addr_code =
X'01'` matches nothing: no results either) and a TIME one as a timedelta no parameter takes
(an error that said nothing to do): both are now read as the server compares them
(`bit + 0`, CAST(time AS CHAR)). A DOUBLE, a DECIMAL, a text, an integer, a BINARY, a YEAR
and an ENUM relation column find every row once, page after page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from hybridwb.search import service
from tests._mysql import root
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import people, workbench

pytestmark = pytest.mark.mysql
PHONE = {"displayName": "전화", "type": "string", "role": "phone", "searchable": True}
LANDLINE = "02-123-4567"


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_relkey")


def make(source: Callable[..., str], sql_type: str, codes: list[Any], tmp_path: Any) -> Any:
    """Three addresses, two with the landline; six people, two at each address."""
    db = source(
        f"CREATE TABLE addr (code {sql_type} PRIMARY KEY, phone VARCHAR(20), KEY (phone))",
        f"CREATE TABLE f (id INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
        f"addr_code {sql_type}, KEY (addr_code), KEY (name))",
        rows={
            "addr": [(c, LANDLINE if i < 2 else "02-999-0000") for i, c in enumerate(codes)],
            "f": [(i, f"회원{i}", f"010-2000-{i:04d}", codes[i % 3]) for i in range(6)],
        },
    )
    mapping = people(
        "number",
        "id",
        fields={"addr_code": {"displayName": "주소", "type": "string", "role": "reference"}},
        relations=[
            {
                "table": "addr",
                "localField": "addr_code",
                "foreignField": "code",
                "kind": "many-to-one",
                "name": "address",
            }
        ],
    )
    code = {"displayName": "번호", "type": "string", "role": "id"}
    addr = {"displayName": "주소록", "key": "code", "fields": {"code": code, "phone": PHONE}}
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": mapping, "addr": addr})
    return wb, db


def oracle(db: str) -> list[int]:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT f.id FROM `{db}`.f JOIN `{db}`.addr a ON a.code = f.addr_code "
                "WHERE a.phone = %s",
                (LANDLINE,),
            )
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def follow(wb: hybridwb.Workbench, limit: int) -> list[int] | str:
    seen: list[int] = []
    page = None
    for _ in range(20):
        try:
            result = wb.search("f", LANDLINE, limit=limit, page=page)
        except HybridwbError as exc:
            assert "\n" not in str(exc) and "first page" not in str(exc), str(exc)
            return str(exc)
        if not result.raw_rows and result.meta.get("hint"):
            return str(result.meta["hint"])
        seen += [r["id"] for r in result.raw_rows]
        page = result.next_page
        if page is None:
            return seen
    raise AssertionError(f"still more pages: {seen}")


CASES = {
    "float": ("FLOAT", [0.1, 0.2, 0.3]),
    "float-m-d": ("FLOAT(7,4)", [0.1, 0.2, 0.3]),
    "double": ("DOUBLE", [0.1, 0.2, 1 / 3]),
    "decimal": ("DECIMAL(30,10)", ["0.1", "12345678901234567890.1", "-1"]),
    "text-ci": ("VARCHAR(8) COLLATE utf8mb4_general_ci", ["a", "B", "ß"]),
    "int": ("INT", [1, 2, 3]),
    "bit": ("BIT(8)", [1, 2, 255]),
    "binary": ("BINARY(2)", [b"a", b"\x00", b"ab"]),
    "time": ("TIME(6)", ["-01:00:00.5", "25:00:00", "00:00:01"]),
    "year": ("YEAR", [1999, 2000, 2155]),
    "enum": ("ENUM('z','a','m')", ["z", "a", "m"]),
}


@pytest.mark.parametrize("limit", [1, 2, 20])
@pytest.mark.parametrize("case", list(CASES))
def test_a_related_field_on_a_large_table_finds_every_row_once(
    source: Callable[..., str],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    limit: int,
) -> None:
    monkeypatch.setattr(service, "SCAN_THRESHOLD", 0)  # these six rows are "large"
    sql_type, codes = CASES[case]
    wb, db = make(source, sql_type, codes, tmp_path)
    try:
        want = oracle(db)
        assert len(want) == 4  # two addresses with the landline, two people at each
        got = follow(wb, limit)
        if isinstance(got, str):  # said, not silently empty
            assert case.startswith("float"), got
            assert "address.phone" in got.lower() and "FLOAT" in got, got
            return
        assert sorted(got) == sorted(want) and len(got) == len(set(got)), got
        wb.search("f", LANDLINE, limit=limit)
        assert len(wb.search.last_statements) == 2  # the probe, then the page
    finally:
        wb.close()


@pytest.mark.parametrize("case", list(CASES))
def test_a_related_field_on_a_small_table_finds_every_row_once(
    source: Callable[..., str], tmp_path: Any, case: str
) -> None:
    """No probe on a small table: the page joins the relation itself (column to column,
    which is exact for any type)."""
    sql_type, codes = CASES[case]
    wb, db = make(source, sql_type, codes, tmp_path)
    try:
        for limit in (1, 2, 20):
            got = follow(wb, limit)
            assert isinstance(got, list), got
            assert sorted(got) == sorted(oracle(db)) and len(got) == len(set(got)), got
    finally:
        wb.close()
