"""Search and targets: predicates (pure), the sample shop, and real MariaDB with EXPLAIN."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pymysql
import pytest

import hybridwb
from hybridwb.errors import NotFound, ScanRefused, ValidationError
from hybridwb.search import predicates
from hybridwb.source.sample import phone_for
from tests.conftest import ro_url

F = predicates.SearchField
FIELDS = [
    F("customer_id", "id", "number", indexed=True, key_ordered=True),
    F("name", "name", "string", indexed=True),
    F("phone", "phone", "string", indexed=True),
    F("email", "email", "string", indexed=True),
    F("created_at", "date", "datetime", indexed=True),
    F("address_id", "reference", "number", indexed=True),
]
REAL = [
    F("customer_id", "id", "number", indexed=True),
    F("first_name", "first_name", "string", indexed=True, key_ordered=True),
    F("last_name", "last_name", "string", indexed=True, key_ordered=True),
    F("email", "email", "string", indexed=True),
    F("address.phone", "phone", "string", indexed=True),
]


@pytest.mark.parametrize(
    ("term", "kinds"),
    [
        ("42", {"customer_id:id"}),
        ("010-1234-5678", {"phone:phone"}),
        ("01012345678", {"customer_id:id", "phone:phone"}),
        ("+82 10-1234-5678", {"phone:phone"}),
        ("0101234", {"customer_id:id", "phone:phone"}),
        ("kim@example.com", {"email:email"}),
        ("kim", {"name:prefix", "email:email"}),
        ("김민", {"name:prefix"}),
        ("2026-11-25", {"created_at:date"}),
    ],
    ids=[
        "id",
        "phone-dashed",
        "phone-digits",
        "phone-intl",
        "phone-prefix",
        "email",
        "latin",
        "korean-prefix",
        "date",
    ],
)
def test_predicate_by_role(term: str, kinds: set[str]) -> None:
    plan = predicates.plan(FIELDS, term, large=False)
    assert {f"{p.field}:{p.kind}" for p in plan.predicates} == kinds


def test_a_foreign_key_is_never_searched_as_the_id() -> None:
    plan = predicates.plan(FIELDS, "5", large=False)
    assert [p.field for p in plan.predicates] == ["customer_id"]


@pytest.mark.parametrize(
    ("term", "forms"),
    [
        ("01012345678", {"010-1234-5678", "01012345678", "+821012345678", "821012345678"}),
        ("010-1234-5678", {"+82 10-1234-5678", "821012345678"}),
        ("+82 10-1234-5678", {"010-1234-5678", "01012345678"}),
        ("821012345678", {"010-1234-5678", "+821012345678"}),
        ("02-123-4567", {"02-123-4567", "021234567", "+8221234567"}),
        ("0111234567", {"011-123-4567", "0111234567"}),
    ],
    ids=["digits", "dashed", "plus82", "82", "seoul-landline", "old-9-digit"],
)
def test_phone_is_tried_in_every_stored_form(term: str, forms: set[str]) -> None:
    plan = predicates.plan(FIELDS, term, large=True)
    phone = next(p for p in plan.predicates if p.kind == "phone")
    assert forms <= set(phone.cmps[0].value)


@pytest.mark.parametrize(
    ("term", "branches"),
    [
        ("백지훈", {(("last_name", "백"), ("first_name", "지훈"))}),
        ("백 지훈", {(("last_name", "백"), ("first_name", "지훈"))}),
        ("JANE DOE", {(("last_name", "DOE"), ("first_name", "JANE"))}),
        ("DOE JANE", {(("last_name", "DOE"), ("first_name", "JANE"))}),
    ],
    ids=["korean-no-space", "korean-space", "first-last", "last-first"],
)
def test_full_name_over_first_and_last_columns(term: str, branches: set) -> None:
    plan = predicates.plan(REAL, term, large=True)
    got = {tuple((c.path, c.value) for c in p.cmps) for p in plan.predicates if p.kind == "name"}
    assert branches <= got


def test_short_prefix_on_a_large_table_is_equality_on_key_ordered_indexes() -> None:
    plan = predicates.plan(REAL, "김", large=True)
    assert {(p.field, p.cmps[0].op) for p in plan.predicates} == {
        ("first_name", "eq"),
        ("last_name", "eq"),
    }
    unordered = [F("name", "name", "string", indexed=True)]
    plan = predicates.plan(unordered, "김", large=True)
    assert plan.predicates == [] and "at least 3 characters" in (plan.hint or "")
    assert predicates.plan(unordered, "김", large=False).predicates[0].kind == "prefix"


def test_only_searchable_fields_are_planned(shop) -> None:  # type: ignore[no-untyped-def]
    paths = {f.path for f in shop.search.fields("customers")}
    mapping = shop.mappings.get("customers")
    assert paths == {n for n, f in mapping.fields.items() if f.searchable}
    assert "grade" not in paths and mapping.fields["grade"].filterable


def test_unindexed_field_on_a_large_table_is_refused_unless_allowed() -> None:
    fields = [F("customer_id", "id", "number", indexed=True), F("grade", "status", "string")]
    plan = predicates.plan(fields, "VIP", large=True)
    assert "grade" in plan.refused and not any(p.field == "grade" for p in plan.predicates)
    plan = predicates.plan(fields, "VIP", large=True, allow_scan=True)
    assert any(p.field == "grade" and not p.indexed for p in plan.predicates)


@pytest.mark.parametrize(
    "term",
    ["100%", "a_b", "\\", "!", "' OR 1=1 --"],
    ids=["percent", "underscore", "backslash", "escape-char", "quote"],
)
def test_like_wildcards_are_literal(term: str) -> None:
    escaped = predicates.escape_like(term)
    assert "%" not in escaped.replace("!%", "") and "_" not in escaped.replace("!_", "")


HOSTILE = [
    "'",
    '"',
    "%",
    "_",
    "\\",
    "\x00",
    "가" * 10_000,
    "😀",
    "김a",
    "%' OR '1'='1",
    "`; DROP TABLE customers; --",
]


@pytest.mark.parametrize(
    "term",
    HOSTILE,
    ids=[
        "quote",
        "dquote",
        "percent",
        "underscore",
        "backslash",
        "nul",
        "10k",
        "emoji",
        "mixed",
        "injection",
        "backtick",
    ],
)
def test_hostile_terms_are_literal_text(shop, term: str) -> None:  # type: ignore[no-untyped-def]
    result = shop.search("customers", term)
    assert len(result) == 0
    assert shop.sql("SELECT COUNT(*) AS n FROM customers")["n"].iloc[0] == 2000


def test_search_by_each_role_on_the_sample(shop) -> None:  # type: ignore[no-untyped-def]
    row = shop.sql("SELECT * FROM customers WHERE customer_id = 7").to_dict("records")[0]
    assert shop.search("customers", "7").raw_rows[0]["customer_id"] == 7
    digits = phone_for(7).replace("-", "")
    assert 7 in [r["customer_id"] for r in shop.search("customers", digits).raw_rows]
    assert 7 in [r["customer_id"] for r in shop.search("customers", phone_for(7)).raw_rows]
    assert 7 in [r["customer_id"] for r in shop.search("customers", row["email"]).raw_rows]
    by_name = shop.search("고객 정보", row["name"], limit=50)
    assert 7 in [r["customer_id"] for r in by_name.raw_rows]
    assert "고객명" in by_name.rows.columns and by_name.meta["index_used"] is True


def test_keyset_pages_have_no_duplicates_or_gaps(shop) -> None:  # type: ignore[no-untyped-def]
    expected = set(
        shop.sql("SELECT customer_id FROM customers WHERE name LIKE '김%'")["customer_id"]
    )
    seen: list[int] = []
    page = None
    while True:
        result = shop.search("customers", "김", limit=37, page=page)
        seen += [r["customer_id"] for r in result.raw_rows]
        page = result.next_page
        if page is None:
            break
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_foreign_page_token_is_refused(shop) -> None:  # type: ignore[no-untyped-def]
    token = shop.search("customers", "김", limit=5).next_page
    with pytest.raises(ValidationError, match="another search"):
        shop.search("customers", "이", page=token)
    with pytest.raises(ValidationError, match="not one hybridwb made"):
        shop.search("customers", "김", page="garbage!!")


def test_variables_from_a_chosen_row(shop) -> None:  # type: ignore[no-untyped-def]
    row = shop.search("customers", "7").raw_rows[0]
    variables = shop.search.variables("customers", row)
    assert variables["고객명"] == variables["name"] == row["name"]
    assert variables["이름"] == row["name"]  # alias


def test_search_bad_input(shop) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        shop.search("nope", "x")
    with pytest.raises(ValidationError, match="limit"):
        shop.search("customers", "x", limit=0)
    with pytest.raises(ValidationError, match="must be text"):
        shop.search("customers", 42)


# -- targets -----------------------------------------------------------------------------
VIP = {
    "table": "customers",
    "where": {
        "all": [
            {"field": "등급", "op": "in", "value": ["VIP"]},
            {"field": "status", "op": "eq", "value": "active"},
        ]
    },
}


@pytest.mark.parametrize(
    "where",
    [
        {"field": "grade", "op": "eq", "value": "VIP"},
        {"field": "grade", "op": "ne", "value": "VIP"},
        {"field": "grade", "op": "in", "value": ["VIP", "GOLD"]},
        {"field": "grade", "op": "not_in", "value": ["VIP"]},
        {"field": "customer_id", "op": "gt", "value": 1990},
        {"field": "customer_id", "op": "gte", "value": 1990},
        {"field": "customer_id", "op": "lt", "value": 10},
        {"field": "customer_id", "op": "lte", "value": 10},
        {"field": "customer_id", "op": "between", "value": [5, 15]},
        {"field": "name", "op": "prefix", "value": "김"},
        {"field": "phone", "op": "is_null"},
        {"field": "phone", "op": "not_null"},
        {"field": "created_at", "op": "gte", "value": "2026-01-01T00:00:00"},
        {
            "any": [
                {"field": "grade", "op": "eq", "value": "VIP"},
                {"field": "customer_id", "op": "eq", "value": 1},
            ]
        },
    ],
    ids=[
        "eq",
        "ne",
        "in",
        "not_in",
        "gt",
        "gte",
        "lt",
        "lte",
        "between",
        "prefix",
        "is_null",
        "not_null",
        "datetime",
        "or-group",
    ],
)
def test_each_operator_matches_plain_sql(shop, where: dict) -> None:  # type: ignore[no-untyped-def]
    definition = {"table": "customers", "where": where, "exclude_opt_out": False}
    got = sorted(r["customer_id"] for batch in shop.targets.iter(definition, 250) for r in batch)
    preview = shop.targets.preview(definition)
    assert preview.exact and preview.count == len(got)
    everyone = shop.source.records("SELECT * FROM customers")
    assert got == sorted(r["customer_id"] for r in everyone if _matches(r, where))


def _matches(row: dict, node: dict) -> bool:
    if "all" in node:
        return all(_matches(row, c) for c in node["all"])
    if "any" in node:
        return any(_matches(row, c) for c in node["any"])
    v, op, x = row[node["field"]], node["op"], node.get("value")
    return (
        {
            "eq": lambda: v == x,
            "ne": lambda: v is not None and v != x,
            "in": lambda: v in x,
            "not_in": lambda: v is not None and v not in x,
            "gt": lambda: v > x,
            "gte": lambda: v >= x,
            "lt": lambda: v < x,
            "lte": lambda: v <= x,
            "between": lambda: x[0] <= v <= x[1],
            "prefix": lambda: v is not None and v.startswith(x),
            "is_null": lambda: v is None,
            "not_null": lambda: v is not None,
        }[op]()
        if not (op == "gte" and isinstance(x, str))
        else str(v) >= x.replace("T", " ")
    )


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        (
            {"table": "customers", "where": {"field": "nickname", "op": "eq", "value": 1}},
            "no mapped field 'nickname'",
        ),
        (
            {"table": "customers", "where": {"field": "customer_id", "op": "eq", "value": "abc"}},
            "is not a number",
        ),
        (
            {"table": "customers", "where": {"field": "grade", "op": "gt", "value": "A"}},
            "does not apply to a string",
        ),
        (
            {"table": "customers", "where": {"field": "grade", "op": "like", "value": "A"}},
            "must be one of",
        ),
        (
            {"table": "customers", "where": {"field": "grade", "op": "in", "value": []}},
            "non-empty list",
        ),
        (
            {
                "table": "customers",
                "where": {"field": "customer_id", "op": "between", "value": [1]},
            },
            "between needs",
        ),
        ({"table": "customers", "sql": "SELECT 1"}, "either 'table'"),
        ({"sql": "DELETE FROM customers"}, "Refused"),
        ("{oops", "not valid JSON"),
    ],
    ids=[
        "unknown-field",
        "wrong-type",
        "op-for-type",
        "unknown-op",
        "empty-in",
        "between-shape",
        "both",
        "write-sql",
        "json",
    ],
)
def test_bad_definitions_are_explained(shop, definition, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(hybridwb.HybridwbError, match=words):
        shop.targets.validate(definition)


def test_preview_quality_statistics(shop) -> None:  # type: ignore[no-untyped-def]
    preview = shop.targets.preview({"table": "customers", "exclude_opt_out": False})
    q = preview.quality
    assert preview.count == 2000 and preview.exact
    expected_missing = int(
        shop.sql("SELECT COUNT(*) AS n FROM customers WHERE phone IS NULL")["n"].iloc[0]
    )
    assert q["missing_phone"] == expected_missing > 0
    assert q["marketing_opt_out"] > 0 and q["invalid_phone"] == 0
    opted = shop.targets.preview({"table": "customers"})
    # the count of what an advertising run excludes for consent: a customer without a
    # phone is excluded for that first (round 46), the filter drops them all the same
    phoneless_refusing = int(
        shop.sql(
            "SELECT COUNT(*) AS n FROM customers WHERE phone IS NULL AND marketing_opt_in = 0"
        )["n"].iloc[0]
    )
    assert opted.count == 2000 - q["marketing_opt_out"] - phoneless_refusing
    assert "marketing_opt_out" in opted.quality and opted.quality["marketing_opt_out"] == 0


def test_saved_query_target(shop) -> None:  # type: ignore[no-untyped-def]
    definition = {
        "sql": "SELECT customer_id, name, phone FROM customers WHERE grade = :g",
        "params": {"g": "VIP"},
        "exclude_opt_out": False,  # the query returns no consent column (round 29)
    }
    preview = shop.targets.preview(definition)
    assert preview.count > 0 and set(preview.sample.columns) == {"customer_id", "name", "phone"}


def test_keyword_target(shop) -> None:  # type: ignore[no-untyped-def]
    rows = [
        r
        for b in shop.targets.iter(
            {"table": "customers", "keyword": "김", "exclude_opt_out": False}
        )
        for r in b
    ]
    assert rows and all(r["name"].startswith("김") for r in rows)


def test_search_widget_drives_like_a_person(shop) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.widgets import search

    widget = search(shop, "customers")
    assert ("고객 정보 (customers)", "customers") in widget.table.options
    widget.term.value = "김"
    widget.search_button.click()
    assert "고객명" in widget.grid.value and widget.next_button.disabled is False
    first = widget.result.raw_rows[0]["customer_id"]
    widget.next_button.click()
    assert widget.result.raw_rows[0]["customer_id"] > first and widget.prev_button.disabled is False
    widget.prev_button.click()
    assert widget.result.raw_rows[0]["customer_id"] == first
    (box,) = [b for b in widget.checks if b.pick == ("customers", first)]
    box.value = True  # ticked
    widget.variables_button.click()
    assert "고객명" in widget.variables.value
    widget.targets_button.click()
    assert widget.targets == [("customers", first)]


def test_target_preview_widget(shop) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.widgets import target_preview

    widget = target_preview(shop, VIP)
    widget.run_button.click()
    assert "명" in widget.count.value and "missing_phone" in widget.quality.value
    widget.editor.value = (
        '{"table": "customers", "where": {"field": "nick", "op": "eq", "value": 1}}'
    )
    widget.run_button.click()
    assert "no mapped field" in widget.message.value


# -- real MariaDB ------------------------------------------------------------------------
@pytest.fixture
def maria(mysql_db: str, tmp_path):  # type: ignore[no-untyped-def]
    from tests.conftest import install_sample_mappings

    install_sample_mappings(tmp_path, ro_url(mysql_db))
    wb = hybridwb.connect(source=ro_url(mysql_db).render_as_string(hide_password=False))
    yield wb
    wb.close()


@contextmanager
def mapped_table(
    mysql_db: str, admin: pymysql.Connection, ddl: str, rows: list[tuple], mapping: dict
) -> Iterator[hybridwb.Workbench]:
    """A table made for one test on MariaDB, its mapping saved, dropped afterwards."""
    name = mapping["name"]
    with admin.cursor() as cur:
        cur.execute(f"USE `{mysql_db}`")
        cur.execute(ddl)
        marks = ", ".join(["%s"] * len(rows[0]))
        cur.executemany(f"INSERT INTO `{name}` VALUES ({marks})", rows)
    wb = hybridwb.connect(source=ro_url(mysql_db).render_as_string(hide_password=False))
    try:
        wb.mappings.save(name, mapping["config"])
        yield wb
    finally:
        wb.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP TABLE `{mysql_db}`.`{name}`")


def _id_and(field: str, role: str, key: str, label: str) -> dict:
    return {
        "displayName": label,
        "key": key,
        "fields": {
            key: {"displayName": "ID", "type": "number", "role": "id", "filterable": True},
            field: {
                "displayName": "내용",
                "role": role,
                "filterable": role == "name",
                "searchable": True,
            },
        },
    }


@pytest.mark.mysql
def test_keyset_walk_survives_concurrent_inserts(
    mysql_db: str, mysql_admin: pymysql.Connection, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with mapped_table(
        mysql_db,
        mysql_admin,
        "CREATE TABLE walkers (walker_id INT PRIMARY KEY, name VARCHAR(50), KEY ix_name (name))",
        [(i * 2, f"김{i:05d}") for i in range(1, 10_001)],
        {"name": "walkers", "config": _id_and("name", "name", "walker_id", "걷는 사람")},
    ) as wb:
        stop = threading.Event()

        def writer() -> None:
            conn = pymysql.connect(
                ssl_disabled=True, host="127.0.0.1", user="root", database=mysql_db, autocommit=True
            )
            n = 0
            with conn.cursor() as cur:
                while not stop.is_set() and n < 2000:
                    n += 1
                    cur.execute(
                        "INSERT INTO walkers VALUES (%s, %s)", (n * 2 + 1, f"김new{n}")
                    )  # odd ids, between pages
                    time.sleep(0.001)
            conn.close()

        thread = threading.Thread(target=writer)
        thread.start()
        seen: list[int] = []
        page = None
        while True:
            result = wb.search("walkers", "김", limit=250, page=page)
            seen += [r["walker_id"] for r in result.raw_rows]
            page = result.next_page
            if page is None:
                break
        stop.set()
        thread.join()
        assert len(seen) == len(set(seen)), "duplicates"
        assert {i * 2 for i in range(1, 10_001)} <= set(seen), "gaps"


def test_preview_cache_is_used_and_clearable(shop) -> None:  # type: ignore[no-untyped-def]
    before = len(shop.querylog)
    shop.targets.preview(VIP)
    ran = len(shop.querylog) - before
    shop.targets.preview(VIP)
    assert len(shop.querylog) - before == ran  # answered from the cache
    shop.clear_cache()
    shop.targets.preview(VIP)
    assert len(shop.querylog) - before == 2 * ran
    shop.search("customers", "김")  # warms the schema facts
    warm = len(shop.querylog)
    shop.search("customers", "김")
    shop.search("customers", "김")
    assert len(shop.querylog) - warm == 2  # search is never cached


@pytest.mark.mysql
def test_fulltext_index_is_used_for_text(
    mysql_db: str, mysql_admin: pymysql.Connection, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with mapped_table(
        mysql_db,
        mysql_admin,
        "CREATE TABLE notes (note_id INT PRIMARY KEY, body TEXT, FULLTEXT KEY ft_body (body)) ENGINE=InnoDB",
        [(1, "renewal reminder for premium plan"), (2, "welcome coupon"), (3, "premium upgrade")],
        {"name": "notes", "config": _id_and("body", "text", "note_id", "메모")},
    ) as wb:
        result = wb.search("notes", "premium")
        assert "body:fulltext" in result.meta["predicates"]
        assert sorted(r["note_id"] for r in result.raw_rows) == [1, 3]


def test_scan_on_a_large_table_is_refused_until_allowed(
    shop, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.search import service

    mapping = shop.mappings.get("customers").model_dump(mode="json", exclude_unset=True)
    mapping["fields"]["city"]["searchable"] = True  # no index on city
    shop.mappings.save("customers", mapping)
    monkeypatch.setattr(service, "SCAN_THRESHOLD", 100)  # the 2,000-row sample counts as large
    term = "서울특별시"
    result = shop.search("customers", term)
    assert result.meta["refused_scan"] == ["city"]
    assert "city:prefix" not in result.meta["predicates"]
    result = shop.search("customers", term, allow_scan=True)
    assert result.meta["scanned"] is True and "city:prefix" in result.meta["predicates"]
    only_city = {
        "displayName": "고객",
        "key": "customer_id",
        "fields": {
            "customer_id": {"displayName": "ID", "type": "number", "role": "id"},
            "city": {"displayName": "도시", "searchable": True, "role": "text"},
        },
    }
    shop.mappings.save("customers", only_city)
    with pytest.raises(ScanRefused, match="allow_scan=True"):
        shop.search("customers", term)
    with pytest.raises(ValidationError, match="at least 3 characters"):
        shop.search("customers", "서울")


def test_filterable_but_not_searchable_field_is_not_searched(shop) -> None:  # type: ignore[no-untyped-def]
    mapping = shop.mappings.get("customers").model_dump(mode="json", exclude_unset=True)
    assert mapping["fields"]["grade"]["filterable"] and not mapping["fields"]["grade"]["searchable"]
    assert shop.sql("SELECT COUNT(*) AS n FROM customers WHERE grade = 'VIP'")["n"].iloc[0] > 0
    assert len(shop.search("customers", "VIP")) == 0
    mapping["fields"]["grade"]["searchable"] = True
    shop.mappings.save("customers", mapping)
    assert len(shop.search("customers", "VIP")) > 0


@pytest.mark.parametrize(
    "token",
    ["[1]", "garbage!!", "", "e30=", "WzFd", "eyJ0IjogMX0=", 42],
    ids=["list", "garbage", "empty", "empty-object", "b64-list", "b64-partial", "not-text"],
)
def test_a_bad_page_token_is_one_clear_error(shop, token) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="not one hybridwb made"):
        shop.search("customers", "김", page=token)


def test_cli_targets_preview(shop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    from click.testing import CliRunner

    from hybridwb.cli import main

    path = tmp_path / "vip.json"
    path.write_text(_json.dumps(VIP, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(main, ["targets", "preview", str(path)])
    assert result.exit_code == 0, result.output
    assert "targets:" in result.output and "missing_phone" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"table": "customers", "where": {"field": "nick", "op": "eq", "value": 1}}',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["targets", "preview", str(bad)])
    assert result.exit_code == 1 and "no mapped field" in result.output


# -- what a search result shows: pii masked; the values only when read explicitly ---------


def _customer(shop, offset: int = 3) -> dict:  # type: ignore[no-untyped-def]
    import sqlite3
    from pathlib import Path

    with sqlite3.connect(Path(".hybridwb") / "sample.db") as conn:  # the oracle: the file
        email, phone = conn.execute(
            "SELECT email, phone FROM customers WHERE email IS NOT NULL AND phone IS NOT NULL "
            "ORDER BY customer_id LIMIT 1 OFFSET ?",
            (offset,),
        ).fetchone()
    return {"email": email, "phone": phone}


def _reachable_text(root: object, depth: int = 6) -> list[str]:
    """Every str reachable through `vars()`, dicts and lists (what a debugger or a reporter
    that dumps objects shows; a DataFrame is shown by its repr, as such tools do)."""
    import pandas as pd

    out: list[str] = []

    def walk(value: object, level: int) -> None:
        if level > depth:
            return
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, pd.DataFrame):
            out.append(value.to_string())
        elif isinstance(value, dict):
            for v in value.values():
                walk(v, level + 1)
        elif isinstance(value, list | tuple | set | frozenset):
            for v in value:
                walk(v, level + 1)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            walk(vars(value), level + 1)

    walk(root, 0)
    return out


def test_a_result_shows_no_customer_value_in_any_view(shop) -> None:  # type: ignore[no-untyped-def]
    customer = _customer(shop)
    result = shop.search("customers", customer["phone"])
    assert len(result) >= 1
    shown = {
        "repr": repr(result),
        "str": str(result),
        "html": result._repr_html_(),
        "vars": repr(vars(result)),
        "meta": repr(result.meta),
    }
    shown["reachable through vars()"] = "\n".join(_reachable_text(result))
    leaks = {where: [v for v in customer.values() if v in text] for where, text in shown.items()}
    assert not {k: v for k, v in leaks.items() if v}, leaks
    assert "휴대폰번호" in shown["repr"] and "0********" in shown["repr"]  # there, masked
    # read explicitly, the values are all there
    assert customer["phone"] in {r["phone"] for r in result.raw_rows}
    assert customer["phone"] in set(result.rows.astype(str).stack())


def test_a_page_token_holds_neither_the_term_nor_the_key_value(shop) -> None:  # type: ignore[no-untyped-def]
    import base64

    result = shop.search("customers", "김", limit=5)
    token = result.next_page
    assert token is not None and "page_token" not in result.meta
    opened = base64.urlsafe_b64decode(token).decode()
    last = str(result.raw_rows[-1]["customer_id"])
    assert "김" not in opened and f'"{last}"' not in opened and f": {last}" not in opened
    # and it still pages: the next page starts after the last key of this one
    following = shop.search("customers", "김", limit=5, page=token)
    assert following.raw_rows[0]["customer_id"] > result.raw_rows[-1]["customer_id"]


def test_a_page_token_with_its_key_value_replaced_is_refused(shop) -> None:  # type: ignore[no-untyped-def]
    import base64
    import json

    token = shop.search("customers", "김", limit=5).next_page
    data = json.loads(base64.urlsafe_b64decode(token))
    data["a"] = data["a"][:-4] + "AAAA"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    with pytest.raises(ValidationError, match="not one hybridwb made"):
        shop.search("customers", "김", page=forged)
