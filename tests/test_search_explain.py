"""EXPLAIN of the statements search really sends, on 200,000 people (MariaDB).

The statements are the ones `wb.search` sent (`wb.search.last_statements`: a probe for the
values a prefix, a phone or a related field covers, then the page), not a re-plan; every
access to a base table must be `const`, `eq_ref`, `ref` or `range` on an index — never a
full scan (`ALL`), a full index scan (`index`) or `Using filesort` — for one-, two- and
longer name prefixes, whole values and phones found through a relation, and the rows must
equal hand-written SQL run by pymysql. What cannot be read that way is refused with the
reason, never scanned.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

import hybridwb
from hybridwb.errors import ScanRefused
from tests.conftest import _admin, ensure_select_only_account, sel_url

pytestmark = pytest.mark.mysql

ROWS = 200_000
GOOD_TYPES = {"const", "eq_ref", "ref", "range"}
LAST = "김이박최정강조윤장백"
FIRST = ["지훈", "민준", "서연", "지우", "하은", "JANE", "JOHN", "MARY", "LINDA", "SUSAN"]


def _load(cur: Any) -> None:
    """Fast: INSERT ... SELECT from MariaDB's sequence engine, no row goes through Python."""
    cur.execute(
        "CREATE TABLE addr (address_id INT NOT NULL PRIMARY KEY, phone VARCHAR(24) NULL, "
        "KEY ix_phone (phone)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
    cur.execute(
        "CREATE TABLE people (person_id INT NOT NULL PRIMARY KEY, first_name VARCHAR(40) NOT NULL, "
        "last_name VARCHAR(20) NOT NULL, full_name VARCHAR(60) NOT NULL, email VARCHAR(80) NULL, "
        "address_id INT NOT NULL, store_id INT NOT NULL, nick VARCHAR(20) NOT NULL, "
        "KEY ix_first (first_name), KEY ix_last (last_name), KEY ix_full (full_name), "
        "KEY ix_nick_store (nick, store_id), "
        "KEY ix_name (last_name, first_name), "
        "UNIQUE KEY ux_email (email), KEY ix_address (address_id), KEY ix_store (store_id)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
    phone = (
        "CASE seq % 3 WHEN 0 THEN CONCAT('010-', LPAD(seq DIV 10000, 4, '0'), '-', "
        "LPAD(seq % 10000, 4, '0')) WHEN 1 THEN CONCAT('010', LPAD(seq DIV 10000, 4, '0'), "
        "LPAD(seq % 10000, 4, '0')) ELSE CONCAT('8210', LPAD(seq DIV 10000, 4, '0'), "
        "LPAD(seq % 10000, 4, '0')) END"
    )
    cur.execute(f"INSERT INTO addr SELECT seq, {phone} FROM seq_1_to_{ROWS}")
    lasts = ", ".join(f"'{c}'" for c in LAST)
    firsts = ", ".join(f"'{f}'" for f in FIRST)
    cur.execute(
        "INSERT INTO people SELECT seq, ELT(1 + (seq DIV 10) % 10, " + firsts + "), "
        "ELT(1 + seq % 10, " + lasts + "), "
        "CONCAT(ELT(1 + seq % 10, " + lasts + "), ELT(1 + (seq DIV 10) % 10, " + firsts + ")), "
        f"CONCAT('p', seq, '@example.kr'), seq, 1 + seq % 3, CONCAT('nick', seq % 7) "
        f"FROM seq_1_to_{ROWS}"
    )
    # a view: the server states no row count and no index for it
    cur.execute(
        "CREATE VIEW people_v AS SELECT person_id, first_name, "
        "CONCAT(first_name, '!') AS shout FROM people"
    )
    cur.execute("ANALYZE TABLE addr, people")
    cur.fetchall()


MAPPING: dict[str, Any] = {
    "people": {
        "displayName": "사람",
        "key": "person_id",
        "audience": True,
        "recipient": "addr.phone",
        "fields": {
            "person_id": {"displayName": "ID", "type": "number", "role": "id", "searchable": True},
            "first_name": {"displayName": "이름", "role": "first_name", "searchable": True},
            "last_name": {"displayName": "성", "role": "last_name", "searchable": True},
            "full_name": {"displayName": "성명", "role": "name", "searchable": True},
            "email": {"displayName": "이메일", "role": "email", "searchable": True},
            "address_id": {
                "displayName": "주소",
                "type": "number",
                "role": "reference",
                "searchable": True,
            },
            "store_id": {"displayName": "매장", "type": "number", "role": "reference"},
            "nick": {"displayName": "별명", "role": "name", "searchable": True},
        },
        "relations": [
            {
                "table": "addr",
                "localField": "address_id",
                "foreignField": "address_id",
                "kind": "many-to-one",
            }
        ],
    },
    "people_v": {
        "displayName": "사람 보기",
        "key": "person_id",
        "fields": {
            "person_id": {"displayName": "ID", "type": "number", "role": "id", "searchable": True},
            "shout": {"displayName": "외침", "role": "name", "searchable": True},
        },
    },
    "addr": {
        "displayName": "주소",
        "key": "address_id",
        "fields": {
            "address_id": {"displayName": "주소ID", "type": "number", "role": "id"},
            "phone": {"displayName": "전화", "role": "phone", "searchable": True},
        },
    },
}


@pytest.fixture(scope="module")
def big_db() -> Iterator[str]:
    name = f"hybridwb_x_{uuid.uuid4().hex[:8]}"
    conn = _admin()
    ensure_select_only_account(conn)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        _load(cur)
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def big(big_db: str, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    from hybridwb.mapping.model import SOURCE_KEY
    from hybridwb.mapping.service import source_identity
    from hybridwb.source import Source

    path = tmp_path / "mappings" / "table-mappings.json"
    path.parent.mkdir(parents=True)
    identity = source_identity(Source(sel_url(big_db)))
    path.write_text(json.dumps({SOURCE_KEY: identity, **MAPPING}, ensure_ascii=False), "utf-8")
    wb = hybridwb.connect(source=sel_url(big_db).render_as_string(hide_password=False))
    yield wb
    wb.close()


@pytest.fixture
def oracle(big_db: str, mysql_admin: pymysql.Connection):  # type: ignore[no-untyped-def]
    def run(sql: str, args: Any = None) -> list[int]:
        with mysql_admin.cursor() as cur:
            cur.execute(f"USE `{big_db}`")
            cur.execute(sql, args)
            return [int(r[0]) for r in cur.fetchall()]

    return run


def explain(wb: hybridwb.Workbench) -> list[dict[str, Any]]:
    """EXPLAIN of every statement the last search sent (the probe, then the page)."""
    assert wb.search.last_statements
    if wb.search.last_statement is not None:
        assert wb.search.last_statements[-1] == wb.search.last_statement
    rows: list[dict[str, Any]] = []
    for sql, params in wb.search.last_statements:
        rows += wb.source.records("EXPLAIN " + sql, params)
    return rows


def assert_index_only(rows: list[dict[str, Any]], *, filesort_ok: bool = False) -> None:
    # rows without a table are branches the optimizer proved empty from a unique index
    base = [r for r in rows if r["table"] and not str(r["table"]).startswith("<")]
    assert base, rows
    for r in base:
        # `ref|filter`: ref access plus MariaDB's rowid filter from a second index
        assert str(r["type"]).split("|")[0] in GOOD_TYPES and r["key"], json.dumps(
            rows, default=str
        )
        if not filesort_ok:
            assert "filesort" not in str(r.get("Extra") or ""), rows


@pytest.mark.parametrize(
    ("term", "oracle_sql"),
    [
        ("김", "SELECT person_id FROM people WHERE first_name = %s OR last_name = %s"),
        ("백", "SELECT person_id FROM people WHERE first_name = %s OR last_name = %s"),
        ("J", "SELECT person_id FROM people WHERE first_name = %s OR last_name = %s"),
        (
            "지훈",
            "SELECT person_id FROM people WHERE first_name = %s OR last_name = %s "
            "OR (last_name = LEFT(%s, 1) AND first_name = SUBSTRING(%s, 2))",
        ),
        (
            "김지",
            "SELECT person_id FROM people WHERE first_name = %s OR last_name = %s "
            "OR (last_name = LEFT(%s, 1) AND first_name = SUBSTRING(%s, 2))",
        ),
        ("JA", "SELECT person_id FROM people WHERE first_name = %s OR last_name = %s"),
    ],
    ids=["one-hangul", "one-hangul-rare", "one-latin", "two-first-name", "two-split", "two-latin"],
)
def test_short_prefixes_are_read_from_an_index_in_key_order(big, oracle, term, oracle_sql) -> None:  # type: ignore[no-untyped-def]
    result = big.search("people", term, limit=20)
    assert_index_only(explain(big))
    args = (term,) * oracle_sql.count("%s")
    want = oracle(oracle_sql + " ORDER BY person_id LIMIT 20", args)
    assert [r["person_id"] for r in result.raw_rows] == want
    more = oracle(oracle_sql + " ORDER BY person_id LIMIT 20 OFFSET 20", args)
    assert bool(result.next_page) == bool(more), "a next page exactly when the oracle has one"
    if more:
        page2 = big.search("people", term, limit=20, page=result.next_page)
        assert_index_only(explain(big))
        assert [r["person_id"] for r in page2.raw_rows] == more


@pytest.mark.parametrize(
    ("kind", "term"),
    [
        ("id", "123457"),
        ("email", "p4242@example.kr"),
        ("full-name", "김지훈"),
        ("phone-dashed", "010-0004-2424"),
        ("phone-intl", "+82 10-0004-2425"),
        ("phone-82", "821000042426"),
    ],
    ids=["id", "email", "full-name", "phone-dashed", "phone-intl", "phone-82"],
)
def test_whole_values_use_an_index(big, oracle, kind, term) -> None:  # type: ignore[no-untyped-def]
    result = big.search("people", term, limit=50)
    assert result.raw_rows, kind
    rows = explain(big)
    assert_index_only(rows)
    if kind.startswith("phone"):
        assert all(int(str(r["rows"]).split()[0]) <= 10 for r in rows if r["rows"]), rows
    if kind.startswith("phone"):
        digits = "".join(c for c in term if c.isdigit())
        digits = "0" + digits[2:] if digits.startswith("82") else digits
        want = oracle(
            "SELECT p.person_id FROM people p JOIN addr a ON a.address_id = p.address_id "
            "WHERE REPLACE(IF(a.phone LIKE '82%%', CONCAT('0', SUBSTRING(a.phone, 3)), a.phone), "
            "'-', '') = %s ORDER BY p.person_id",
            (digits,),
        )
        assert [r["person_id"] for r in result.raw_rows] == want and len(want) == 1


LONG_PREFIX_SQL = (
    "SELECT person_id FROM people WHERE first_name LIKE %s OR last_name LIKE %s "
    "OR full_name LIKE %s OR email LIKE %s"
)


@pytest.mark.parametrize(
    "term", ["JAN", "JOHN", "LIN", "김지훈", "이서연"], ids=["jan", "john", "lin", "kim", "lee"]
)
def test_longer_prefixes_are_read_in_key_order_without_sorting(big, oracle, term) -> None:  # type: ignore[no-untyped-def]
    args = (term + "%",) * 4
    if "\uac00" <= term[0] <= "\ud7a3":  # a Korean name is matched whole on a large table
        args = (term, term, term + "%", term + "%", term, term)
        sql = LONG_PREFIX_SQL.replace("first_name LIKE", "first_name =").replace(
            "last_name LIKE", "last_name ="
        )
        sql += " OR (last_name = LEFT(%s, 1) AND first_name = SUBSTRING(%s, 2))"
    else:
        sql = LONG_PREFIX_SQL
    result = big.search("people", term, limit=20)
    assert_index_only(explain(big))
    assert [r["person_id"] for r in result.raw_rows] == oracle(
        sql + " ORDER BY person_id LIMIT 20", args
    )
    assert result.raw_rows and result.next_page
    page2 = big.search("people", term, limit=20, page=result.next_page)
    assert_index_only(explain(big))
    assert [r["person_id"] for r in page2.raw_rows] == oracle(
        sql + " ORDER BY person_id LIMIT 20 OFFSET 20", args
    )


def test_a_prefix_covering_too_many_values_says_type_more(big) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.errors import ValidationError

    big.search("people", "1")  # schema facts read (and cached) first
    before = len(big.querylog)
    with pytest.raises(ValidationError, match=r"more than 20 different people\.email values"):
        big.search("people", "p12")  # p12@, p120@ ... p129999@: thousands of addresses
    sent = [e.query for e in list(big.querylog.entries)[before:]]
    assert len(sent) == 1 and "GROUP BY" in sent[0], [q[:60] for q in sent]
    assert_index_only(explain(big))  # the probe itself read the index, no more


def test_a_field_without_an_index_of_its_own_is_refused_with_the_reason(big, oracle) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.errors import ValidationError

    assert oracle("SELECT person_id FROM people WHERE nick LIKE 'nick3%%' LIMIT 1")
    big.search("people", "1")  # schema facts read (and cached) first
    before = len(big.querylog)
    with pytest.raises(ValidationError, match="no index on nick alone"):
        big.search("people", "nick3")
    sent = [e.query for e in list(big.querylog.entries)[before:]]
    assert not any("nick" in q for q in sent), sent  # the other fields were probed, not nick


def test_a_short_term_without_a_key_ordered_index_says_type_more(big, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.errors import ValidationError

    mapping = json.loads((tmp_path / "mappings" / "table-mappings.json").read_text("utf-8"))
    for field in ("first_name", "last_name", "email"):
        mapping["people"]["fields"][field]["searchable"] = False
    (tmp_path / "mappings" / "table-mappings.json").write_text(json.dumps(mapping), "utf-8")
    with pytest.raises(ValidationError, match="at least 3 characters"):
        big.search("people", "김")


def test_target_preview_refuses_a_scan_of_a_large_table_unless_allowed(big) -> None:  # type: ignore[no-untyped-def]
    everyone = {"where": {"field": "store_id", "op": "gte", "value": 1}}
    with pytest.raises(ScanRefused, match="allow_scan=True"):
        big.targets.preview(everyone)
    preview = big.targets.preview(everyone, allow_scan=True)
    assert preview.verdict == "scan (allowed)" and not preview.exact
    narrow = big.targets.preview({"where": {"field": "last_name", "op": "eq", "value": "백"}})
    assert narrow.verdict == "index" and narrow.count == ROWS // 10


def test_a_view_of_unknown_size_is_not_scanned_without_consent(big, oracle) -> None:  # type: ignore[no-untyped-def]
    """A view has no row estimate and no index of its own: search must assume it is large
    (its text column here can only be matched by reading every row of `people`)."""
    sql = "SELECT person_id FROM people WHERE CONCAT(first_name, '!') LIKE %s ORDER BY person_id"
    with pytest.raises(ScanRefused, match="allow_scan=True"):
        big.search("people_v", "JANE!")
    assert big.search.last_statements == []  # refused before anything was sent
    allowed = big.search("people_v", "JANE!", limit=20, allow_scan=True)
    assert [r["person_id"] for r in allowed.raw_rows] == oracle(sql + " LIMIT 20", ("JANE!%",))
    with pytest.raises(ScanRefused, match="SHOW VIEW"):  # not even the key: unknowable
        big.search("people_v", "123457")


@pytest.mark.parametrize("value", ["False", "no", 1, None], ids=["text-false", "no", "one", "none"])
def test_consent_to_scan_is_never_inferred_from_a_truthy_value(big, value) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.errors import ValidationError

    big.search("people", "1")  # schema facts read (and cached) first
    before = len(big.querylog)
    with pytest.raises(ValidationError, match="allow_scan must be True or False"):
        big.search("people_v", "JANE!", allow_scan=value)
    everyone = {"where": {"field": "store_id", "op": "gte", "value": 1}}
    with pytest.raises(ValidationError, match="allow_scan must be True or False"):
        big.targets.preview(everyone, allow_scan=value)
    assert len(big.querylog) == before  # nothing was read


def test_the_naive_scan_needs_consent_too(big, oracle) -> None:  # type: ignore[no-untyped-def]
    big.search("people", "1")  # schema facts read (and cached) first
    before = len(big.querylog)
    with pytest.raises(ScanRefused, match="allow_scan=True"):
        big.search.naive("people", "JANE")
    assert len(big.querylog) == before  # nothing was read
    df = big.search.naive("people", "JANE", limit=5, allow_scan=True)
    assert len(df) == 5
