"""Attack: wb.search followed page by page shows every matching row exactly once, or a
one-line HybridwbError; the oracle is direct SQL as root."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError
from tests._mysql import root
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import people, workbench

pytestmark = pytest.mark.mysql
SEARCHABLE = {"name": {"displayName": "이름", "type": "string", "role": "name", "searchable": True}}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_atkpg")


@pytest.fixture
def table(source: Callable[..., str], tmp_path: Any) -> Iterator[Callable[..., Any]]:
    made: list[hybridwb.Workbench] = []

    def make(sql_type: str, keys: list[Any], pk: bool = True) -> tuple[hybridwb.Workbench, str]:
        key = "PRIMARY KEY" if pk else ""
        db = source(
            f"CREATE TABLE f (code {sql_type} {key}, name VARCHAR(20), "
            "mobile VARCHAR(20), KEY (name))",
            rows={"f": [(k, "회원", f"010-2000-{i:04d}") for i, k in enumerate(keys)]},
        )
        wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": people(fields=SEARCHABLE)})
        made.append(wb)
        return wb, db

    yield make
    for wb in made:
        wb.close()


def follow(
    wb: hybridwb.Workbench, limit: int, most: int = 50, term: str = "회원", **kw: Any
) -> list[Any]:
    seen: list[Any] = []
    page = None
    for _ in range(most):
        result = wb.search("f", term, limit=limit, page=page, **kw)
        seen += [r["mobile"] for r in result.raw_rows]
        page = result.next_page
        if page is None:
            return seen
    raise AssertionError(f"still more pages after {most}: {seen}")


def server_rows(db: str, where: str = "name = '회원'", column: str = "mobile") -> list[Any]:
    """`column` of the rows of `db`.f matching `where`, as root sees them (the oracle)."""
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {column} FROM `{db}`.f WHERE {where}")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def once_or_error(
    wb: hybridwb.Workbench, db: str, limit: int, where: str = "name = '회원'", **kw: Any
) -> None:
    try:
        got = follow(wb, limit, **kw)
    except HybridwbError as exc:
        assert "\n" not in str(exc)
        # "start from the first page" would be followed by the same error, forever
        assert "first page" not in str(exc), str(exc)
        return
    assert sorted(got) == sorted(server_rows(db, where))
    assert len(got) == len(set(got))


CASES = {
    "datetime6": (
        "DATETIME(6)",
        [
            "2024-01-01 00:00:00.000001",
            "2024-01-01 00:00:00.000002",
            "2024-01-01 00:00:00",
            "2023-12-31 23:59:59.999999",
        ],
    ),
    "timestamp": (
        "TIMESTAMP",
        [
            "2024-01-01 00:00:01",
            "2024-01-01 00:00:02",
            "2024-01-01 00:00:03",
            "2024-01-01 00:00:04",
        ],
    ),
    "date": ("DATE", ["2024-01-01", "2024-01-02", "1999-12-31", "2024-02-29"]),
    "time": ("TIME", ["-01:00:00", "25:00:00", "00:00:01", "-25:30:00"]),
    "time6": ("TIME(6)", ["00:00:00.5", "00:00:00.25", "00:00:01", "00:00:00"]),
    "year": ("YEAR", [1999, 2000, 2024, 2155]),
    "bit": ("BIT(8)", [1, 2, 128, 255]),
    "binary": ("BINARY(4)", [b"\x00\x01\x02\x03", b"\xff\xfe\x00\x00", b"abcd", b"ab\x00\x00"]),
    "varbinary": ("VARBINARY(8)", [b"\x00", b"\xff", b"a", b"ab "]),
    "char": ("CHAR(5)", ["a", "a b", "b", "a  c"]),
    "ci": ("VARCHAR(8) COLLATE utf8mb4_general_ci", ["a", "B", "é", "c"]),
    "ci_unicode": ("VARCHAR(8) COLLATE utf8mb4_unicode_ci", ["a", "B", "ß", "sz"]),
    "bin": ("VARCHAR(8) COLLATE utf8mb4_bin", ["a", "B", "b", "A"]),
    "decimal": ("DECIMAL(30,10)", ["0.0000000001", "-1.5", "12345678901234567890.1", "0"]),
    "decimal-close": (
        "DECIMAL(30,1)",
        ["12345678901234567890.1", "12345678901234567890.2", "12345678901234567890.3", "1.1"],
    ),
    "ubig-close": ("BIGINT UNSIGNED", [2**64 - 1, 2**64 - 2, 2**64 - 3, 2**63 + 1]),
    "big-close": ("BIGINT", [2**62 + 1, 2**62 + 2, 2**62 + 3, 2**62]),
    "ubig": ("BIGINT UNSIGNED", [2**64 - 1, 2**64 - 2, 2**63, 0]),
    "neg": ("BIGINT", [-(2**63), -1, 0, 2**63 - 1]),
    "double": ("DOUBLE", [0.1, 1e300, -1e-300, 1 / 3]),
    "varchar_ko": ("VARCHAR(8)", ["가", "나", "A", "a가"]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("limit", [1, 2])
def test_every_key_type_pages_once(table: Callable[..., Any], case: str, limit: int) -> None:
    """Each of these keys is unique and exact: every row is paged once, no error."""
    sql_type, keys = CASES[case]
    wb, db = table(sql_type, keys)
    got = follow(wb, limit)
    assert sorted(got) == sorted(server_rows(db)) and len(got) == len(set(got)) == 4


@pytest.mark.parametrize("limit", [1, 2, 3])
@pytest.mark.parametrize(
    "keys",
    [[1, 1, 2, 2, 3], [None, None, 1, 2], [None, 1, 1], [1, 2, None]],
    ids=["dup", "null2", "nulldup", "nulllast"],
)
def test_a_key_that_is_not_unique(table: Callable[..., Any], keys: list[Any], limit: int) -> None:
    wb, db = table("INT", keys, pk=False)
    once_or_error(wb, db, limit)


def test_a_view_without_primary_key(source: Callable[..., str], tmp_path: Any) -> None:
    db = source(
        "CREATE TABLE t (id INT PRIMARY KEY, code INT, name VARCHAR(20), mobile VARCHAR(20), KEY (name))",
        "CREATE VIEW f AS SELECT code, name, mobile FROM t",
        rows={"t": [(i, i // 2, "회원", f"010-2000-{i:04d}") for i in range(6)]},
    )
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": people(fields=SEARCHABLE)})
    try:
        for limit in (1, 2, 3):
            once_or_error(wb, db, limit, allow_scan=True)
    finally:
        wb.close()


PHONE = {"mobile": {"displayName": "휴대폰", "type": "string", "role": "phone", "searchable": True}}


@pytest.mark.parametrize("limit", [1, 2, 3, 20])
@pytest.mark.parametrize(
    "keys", [[1, 1, 2, 2, 3], [None, None, 1, 2], [None, 1, 1]], ids=["dup", "null2", "nulldup"]
)
def test_a_phone_prefix_union_with_such_a_key(
    source: Callable[..., str], tmp_path: Any, keys: list[Any], limit: int
) -> None:
    """A phone prefix is several branches: their keys are UNIONed and joined back by key.
    Each key also has a row that does not match (another number): it is never shown."""
    others = [(k, "회원", f"010-3000-{i:04d}") for i, k in enumerate(dict.fromkeys(keys))]
    db = source(
        "CREATE TABLE f (code INT, name VARCHAR(20), mobile VARCHAR(20), KEY (mobile))",
        rows={"f": [(k, "회원", f"010-2000-{i:04d}") for i, k in enumerate(keys)] + others},
    )
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": people(fields=PHONE)})
    try:
        once_or_error(wb, db, limit, "mobile LIKE '010-2000%'", term="010-2000")
        assert len(wb.search.last_statements[-1][0].split("UNION")) > 1
    finally:
        wb.close()


@pytest.mark.parametrize("case", list(CASES))
def test_keyword_targets_follow_pages_once(
    table: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Keyword targets follow search pages (2 rows a page here): each matching row once."""
    from hybridwb.targets import service as targets

    monkeypatch.setattr(targets, "KEYWORD_PAGE", 2)
    sql_type, keys = CASES[case]
    wb, db = table(sql_type, keys)
    try:
        got = [
            r["mobile"] for b in wb.targets.iter({"table": "f", "keyword": "회원"}, 3) for r in b
        ]
    except HybridwbError as exc:
        assert "\n" not in str(exc) and "first page" not in str(exc), str(exc)
        return
    assert sorted(got) == sorted(server_rows(db))


@pytest.mark.parametrize("case", list(CASES))
def test_table_targets_page_once(table: Callable[..., Any], case: str) -> None:
    sql_type, keys = CASES[case]
    wb, db = table(sql_type, keys)
    try:
        got = [r["mobile"] for b in wb.targets.iter({"table": "f"}, 1) for r in b]
    except HybridwbError as exc:
        assert "\n" not in str(exc) and "first page" not in str(exc), str(exc)
        return
    assert sorted(got) == sorted(server_rows(db, "1"))


def test_a_bit_key_is_refused_for_targets_not_emptied(table: Callable[..., Any]) -> None:
    """Keyword targets of a BIT key were `key IN (X'01', ...)`: no target at all, no word."""
    wb, db = table("BIT(8)", [1, 2, 128, 255])
    assert len(server_rows(db)) == 4
    for definition in ({"table": "f", "keyword": "회원"}, {"table": "f"}):
        with pytest.raises(HybridwbError, match="BIT") as refused:
            list(wb.targets.iter(definition, 10))
        assert "\n" not in str(refused.value)


def test_a_token_after_the_mappings_key_changed(source: Callable[..., str], tmp_path: Any) -> None:
    """A token holds the last value of the key it was made under; read under another key
    (`id > 'd'`: an integer against text) it repeated or skipped rows without a word."""
    rows = [(i + 1, code, "회원", f"010-2000-{i:04d}") for i, code in enumerate("dcba")]
    db = source(
        "CREATE TABLE f (id INT PRIMARY KEY, code VARCHAR(8) NOT NULL UNIQUE, "
        "name VARCHAR(20), mobile VARCHAR(20), KEY (name))",
        rows={"f": rows},
    )
    by_code = people(fields=SEARCHABLE)
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": by_code})
    try:
        first = wb.search("f", "회원", limit=2)
        seen = [r["mobile"] for r in first.raw_rows]
        code = {**by_code["fields"]["code"], "displayName": "코드"}
        by_id = people("number", "id", fields={**SEARCHABLE, "code": code})
        wb.mappings.save("f", by_id)
        page = first.next_page
        try:
            while page is not None:
                result = wb.search("f", "회원", limit=2, page=page)
                seen += [r["mobile"] for r in result.raw_rows]
                page = result.next_page
                assert len(seen) <= 8, seen
        except HybridwbError as exc:
            assert "\n" not in str(exc)
            return
        assert sorted(seen) == sorted(server_rows(db)) and len(seen) == len(set(seen))
    finally:
        wb.close()


BIG = 60_000  # rows: above SCAN_THRESHOLD, so pages are read in key order through probes


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[str, Callable[..., str]]]:
    """60,000 people keyed by a case-insensitive text code, 2,000 addresses (30 people
    each, shared landline), every 7th person named 김민수 (names indexed)."""
    gen = mariadb_maker("hybridwb_atkpgbig")
    make = next(gen)
    people_rows = [
        (
            f"K{(i * 7919) % BIG:06d}",
            "김민수" if i % 7 == 0 else f"이{i % 97}",
            f"010-3{i:07d}"[:13],
            i % 2000,
        )
        for i in range(BIG)
    ]
    db = make(
        "CREATE TABLE addr (address_id INT PRIMARY KEY, phone VARCHAR(20), KEY (phone))",
        "CREATE TABLE f (code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, "
        "name VARCHAR(20), mobile VARCHAR(20), address_id INT, KEY (name), KEY (address_id))",
        rows={
            "addr": [(a, f"02-{a // 100:03d}-{a % 100:04d}") for a in range(2000)],
            "f": people_rows,
        },
    )
    conn = root()
    with conn.cursor() as cur:
        cur.execute(f"ANALYZE TABLE `{db}`.f, `{db}`.addr")
    conn.close()
    yield db, make
    with pytest.raises(StopIteration):
        next(gen)


def big_wb(db: str, tmp_path: Any) -> hybridwb.Workbench:
    phone = {"displayName": "전화", "type": "string", "role": "phone", "searchable": True}
    mapping = people(
        fields={
            **SEARCHABLE,
            "address_id": {"displayName": "주소", "type": "number", "role": "reference"},
        },
        relations=[
            {
                "table": "addr",
                "localField": "address_id",
                "foreignField": "address_id",
                "kind": "many-to-one",
                "name": "address",
            }
        ],
    )
    addr = {
        "displayName": "주소록",
        "key": "address_id",
        "fields": {"address_id": {"displayName": "번호", "type": "number"}, "phone": phone},
    }
    return workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"f": mapping, "addr": addr})


def follow_big(wb: hybridwb.Workbench, term: str, limit: int) -> list[str]:
    seen: list[str] = []
    page = None
    for _ in range(200):
        result = wb.search("f", term, limit=limit, page=page)
        seen += [r["code"] for r in result.raw_rows]
        page = result.next_page
        if page is None:
            return seen
    raise AssertionError("still more pages")


def big_oracle(db: str, where: str) -> list[str]:
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT f.code FROM `{db}`.f LEFT JOIN `{db}`.addr a USING (address_id) WHERE {where}"
            )
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("term", "where", "limits"),
    [
        ("02-003-0004", "a.phone = '02-003-0004'", [1, 2, 500]),
        ("김민수", "f.name = '김민수'", [500]),
        ("이1", "f.name = '이1'", [1, 2, 500]),
    ],
    ids=["address-phone", "name-many", "short-name"],
)
def test_a_large_table_pages_once(
    big: tuple[str, Callable[..., str]], tmp_path: Any, term: str, where: str, limits: list[int]
) -> None:
    db, _ = big
    wb = big_wb(db, tmp_path)
    try:
        want = big_oracle(db, where)
        assert want
        for limit in limits:
            try:
                got = follow_big(wb, term, limit)
            except HybridwbError as exc:
                assert "\n" not in str(exc) and "first page" not in str(exc), str(exc)
                continue
            assert sorted(got) == sorted(want), (limit, wb.search.last_statements)
            assert len(got) == len(set(got))
    finally:
        wb.close()


@pytest.mark.parametrize("limit", [1, 2])
@pytest.mark.parametrize(
    "keys",
    [["a", "A", "b"], ["e", "é", "f"], ["a", "a ", "b"], ["ss", "ß", "t"]],
    ids=["case", "accent", "space", "sharp-s"],
)
def test_a_text_key_repeated_under_its_collation(
    table: Callable[..., Any], keys: list[str], limit: int
) -> None:
    """Not unique only as the collation compares ('a' = 'A' in general_ci): `key > 'a'`
    skipped 'A'."""
    wb, db = table("VARCHAR(8) COLLATE utf8mb4_unicode_ci", keys, pk=False)
    once_or_error(wb, db, limit)


def test_tokens_reused_across_tables_and_terms(source: Callable[..., str], tmp_path: Any) -> None:
    db = source(
        "CREATE TABLE f (code INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), KEY (name))",
        "CREATE TABLE g (code INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), KEY (name))",
        rows={
            "f": [(i, "회원", f"010-2000-{i:04d}") for i in range(3)],
            "g": [(i, "회원", f"010-2000-{i:04d}") for i in range(3)],
        },
    )
    maps = {"f": people(fields=SEARCHABLE), "g": people(fields=SEARCHABLE)}
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", maps)
    try:
        token = wb.search("f", "회원", limit=1).next_page
        for table, term in [("g", "회원"), ("f", "회원 "), ("f", "회")]:
            with pytest.raises(HybridwbError, match="first page") as refused:
                wb.search(table, term, limit=1, page=token)
            assert "\n" not in str(refused.value)
        with pytest.raises(HybridwbError, match="limit"):
            wb.search("f", "회원", limit=501)
    finally:
        wb.close()
