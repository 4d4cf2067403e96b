"""Relations everywhere, on the realshop schema read through a SELECT-only account.

Search, targets and template variables go through the relation graph (customer -> address ->
city -> country, payment and rental to-many); every result is compared with hand-written
SQL run directly by pymysql (the oracle), never with what hybridwb says about itself.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

import hybridwb
from hybridwb.errors import HybridwbError, ValidationError
from tests import realshop
from tests.conftest import REALSHOP_CUSTOMERS, sel_url

pytestmark = pytest.mark.mysql


def _f(label: str, type_: str = "string", role: str | None = None, **kw: Any) -> dict:
    return {"displayName": label, "type": type_, "role": role, **kw}


MAPPING: dict[str, Any] = {
    "customer": {
        "displayName": "고객",
        "key": "customer_id",
        "audience": True,
        "recipient": "address.phone",
        "channel": "sms",
        "consent": "marketing_opt_in",
        "nightConsent": "night_opt_in",
        "fields": {
            "customer_id": _f("고객ID", "number", "id", searchable=True),
            "store_id": _f("매장", "number", "reference", filterable=True, searchable=True),
            "first_name": _f("이름", role="first_name", searchable=True),
            "last_name": _f("성", role="last_name", searchable=True),
            "email": _f("이메일", role="email", searchable=True),
            "address_id": _f("주소ID", "number", "reference", searchable=True),
            "active": _f("활성", "boolean", "flag", filterable=True),
            "marketing_opt_in": _f("광고수신동의", "boolean", "consent"),
            "night_opt_in": _f("야간수신동의", "boolean", "night_consent"),
            "create_date": _f("가입일", "datetime", "date", filterable=True),
        },
        "relations": [
            {
                "table": "address",
                "localField": "address_id",
                "foreignField": "address_id",
                "kind": "many-to-one",
            },
            {
                "table": "payment",
                "localField": "customer_id",
                "foreignField": "customer_id",
                "kind": "one-to-many",
                "orderBy": "payment_date",
            },
            {
                "table": "rental",
                "localField": "customer_id",
                "foreignField": "customer_id",
                "kind": "one-to-many",
            },
        ],
    },
    "address": {
        "displayName": "주소",
        "key": "address_id",
        "fields": {
            "address_id": _f("주소번호", "number", "id"),
            "address": _f("주소", role="text"),
            "district": _f("구역", role="text", filterable=True),
            "city_id": _f("도시ID", "number", "reference"),
            "phone": _f("전화번호", role="phone", searchable=True),
        },
        "relations": [
            {
                "table": "city",
                "localField": "city_id",
                "foreignField": "city_id",
                "kind": "many-to-one",
            }
        ],
    },
    "city": {
        "displayName": "도시",
        "key": "city_id",
        "fields": {
            "city_id": _f("도시번호", "number", "id"),
            "city": _f("도시명", role="text"),
            "country_id": _f("국가ID", "number", "reference"),
        },
        "relations": [
            {
                "table": "country",
                "localField": "country_id",
                "foreignField": "country_id",
                "kind": "many-to-one",
            }
        ],
    },
    "country": {
        "displayName": "국가",
        "key": "country_id",
        "fields": {
            "country_id": _f("국가번호", "number", "id"),
            "country": _f("국가명", role="text"),
        },
    },
    "payment": {
        "displayName": "결제",
        "key": "payment_id",
        "fields": {
            "payment_id": _f("결제번호", "number", "id"),
            "customer_id": _f("결제고객", "number", "reference"),
            "amount": _f("결제금액", "number", "amount"),
            "payment_date": _f("결제일", "datetime", "date"),
        },
    },
    "rental": {
        "displayName": "대여",
        "key": "rental_id",
        "fields": {
            "rental_id": _f("대여번호", "number", "id"),
            "rental_date": _f("대여일", "datetime", "date"),
            "customer_id": _f("대여고객", "number", "reference"),
            "return_date": _f("반납일", "datetime", "date"),
        },
    },
}


def write_mapping(root: Path, database: str, mapping: dict[str, Any]) -> None:
    from hybridwb.mapping.model import SOURCE_KEY
    from hybridwb.mapping.service import source_identity
    from hybridwb.source import Source

    identity = source_identity(Source(sel_url(database)))
    path = root / "mappings" / "table-mappings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({SOURCE_KEY: identity, **mapping}, ensure_ascii=False), encoding="utf-8"
    )


@pytest.fixture
def real(realshop_db: str, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    write_mapping(tmp_path, realshop_db, MAPPING)
    wb = hybridwb.connect(source=sel_url(realshop_db).render_as_string(hide_password=False))
    yield wb
    wb.close()


@pytest.fixture
def oracle(realshop_db: str, mysql_admin: pymysql.Connection):  # type: ignore[no-untyped-def]
    """Hand-written SQL run directly by pymysql: rows as dicts."""

    def run(sql: str, args: Any = None) -> list[dict[str, Any]]:
        with mysql_admin.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(f"USE `{realshop_db}`")
            cur.execute(sql, args)
            return list(cur.fetchall())

    return run


def ids(rows: list[dict[str, Any]], key: str = "customer_id") -> list[int]:
    return sorted(int(r[key]) for r in rows)


# -- search -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("term", "first", "last"),
    [
        ("백지훈", "지훈", "백"),
        ("백 지훈", "지훈", "백"),
        ("JANE DOE", "JANE", "DOE"),
        ("DOE JANE", "JANE", "DOE"),
    ],
    ids=["korean-no-space", "korean-space", "first-last", "last-first"],
)
def test_full_name_over_first_and_last_columns(real, oracle, term, first, last) -> None:  # type: ignore[no-untyped-def]
    got = ids(real.search("customer", term, limit=500).raw_rows)
    want = ids(
        oracle(
            "SELECT customer_id FROM customer WHERE first_name = %s AND last_name = %s",
            (first, last),
        )
    )
    assert got == want and want


def _phone_digits(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return "0" + digits[2:] if digits.startswith("82") else digits


@pytest.mark.parametrize(
    "customer",
    [1, 2, 3, 4, 5, 9, 11, 12],
    ids=["dashed", "plus82", "intl82", "plus", "landline", "old9", "plain", "intl-2"],
)
@pytest.mark.parametrize("typed", ["domestic-dashed", "digits", "plus82"])
def test_phone_in_a_related_table_in_any_stored_form(real, oracle, customer, typed) -> None:  # type: ignore[no-untyped-def]
    stored = realshop.phone_for(customer)
    assert stored, "the chosen customers have phones"
    digits = _phone_digits(stored)
    import phonenumbers

    number = phonenumbers.parse(digits, "KR")
    term = {
        "domestic-dashed": phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.NATIONAL
        ),
        "digits": digits,
        "plus82": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
    }[typed]
    result = real.search("customer", term, limit=500)
    assert "address.phone:phone" in result.meta["predicates"]
    want = oracle(
        "SELECT c.customer_id FROM customer c JOIN address a ON a.address_id = c.address_id "
        "WHERE a.phone IS NOT NULL AND a.phone <> '' AND "
        "(CASE WHEN REGEXP_REPLACE(a.phone, '[^0-9]', '') LIKE '82%%' "
        "THEN CONCAT('0', SUBSTRING(REGEXP_REPLACE(a.phone, '[^0-9]', ''), 3)) "
        "ELSE REGEXP_REPLACE(a.phone, '[^0-9]', '') END) = %s",
        (digits,),
    )
    phone_hits = {int(r["customer_id"]) for r in want}
    assert customer in phone_hits
    assert phone_hits <= set(ids(result.raw_rows))


def test_a_foreign_key_is_never_searched_as_the_id(real, oracle) -> None:  # type: ignore[no-untyped-def]
    result = real.search("customer", "1", limit=500)
    assert ids(result.raw_rows) == [1]
    assert len(oracle("SELECT customer_id FROM customer WHERE store_id = 1")) > 1


def test_email_and_first_name(real, oracle) -> None:  # type: ignore[no-untyped-def]
    assert ids(real.search("customer", "jane.doe@example.com").raw_rows) == [2]
    got = ids(real.search("customer", "PATRICIA", limit=500).raw_rows)
    want = oracle(
        "SELECT customer_id FROM customer WHERE first_name LIKE 'PATRICIA%%' "
        "OR last_name LIKE 'PATRICIA%%' OR email LIKE 'PATRICIA%%'"
    )
    assert got == ids(want) and got


def test_filterable_but_not_searchable_related_field_is_not_searched(real, oracle) -> None:  # type: ignore[no-untyped-def]
    assert oracle("SELECT address_id FROM address WHERE district = 'District 5'")
    assert len(real.search("customer", "District 5")) == 0


def test_search_pages_through_a_relation_without_gaps(real, oracle) -> None:  # type: ignore[no-untyped-def]
    seen: list[int] = []
    page = None
    while True:
        result = real.search("customer", "JOHN", limit=7, page=page)
        seen += [r["customer_id"] for r in result.raw_rows]
        page = result.next_page
        if page is None:
            break
    want = oracle(
        "SELECT customer_id FROM customer WHERE first_name LIKE 'JOHN%%' "
        "OR last_name LIKE 'JOHN%%' OR email LIKE 'JOHN%%'"
    )
    assert seen == sorted(seen) and sorted(seen) == ids(want)


# -- template variables: completeness and rendering agree ---------------------------------------
TEMPLATE = (
    "{{ 성 }}{{ 이름 }}님, {{ city.city }} ({{ country.country }}) "
    "최근 결제 {{ payment.amount }}원 #{address.city.city}"
)


def _render_all(wb: hybridwb.Workbench, text: str, rows: list[dict]) -> tuple[Any, list[Any]]:
    report = wb.templates.automap(text)
    related = wb.templates.related(report, rows)
    return report, [
        wb.templates.render(text, row, related=rel, report=report)
        for row, rel in zip(rows, related, strict=True)
    ]


def test_variables_two_relations_away_resolve_and_render(real, oracle) -> None:  # type: ignore[no-untyped-def]
    rows = real.source.records("SELECT * FROM customer WHERE customer_id <= 60")
    report, rendered = _render_all(real, TEMPLATE, rows)
    assert report.completeness == 100, report.rows()
    want = {
        r["customer_id"]: r
        for r in oracle(
            "SELECT c.customer_id, c.first_name, c.last_name, ci.city, co.country, "
            "(SELECT p.amount FROM payment p WHERE p.customer_id = c.customer_id "
            " ORDER BY p.payment_date DESC LIMIT 1) AS amount "
            "FROM customer c JOIN address a ON a.address_id = c.address_id "
            "JOIN city ci ON ci.city_id = a.city_id JOIN country co ON co.country_id = ci.country_id "
            "WHERE c.customer_id <= 60"
        )
    }
    for row, out in zip(rows, rendered, strict=True):
        w = want[row["customer_id"]]
        if w["amount"] is None:
            assert out.skipped == "missing payment.amount"
            continue
        assert out.skipped is None
        assert out.text == (
            f"{w['last_name']}{w['first_name']}님, {w['city']} ({w['country']}) "
            f"최근 결제 {w['amount']}원 {w['city']}"
        )
    assert rendered[0].text.startswith("백지훈님, 서울 (South Korea)")


def test_latest_related_row_compares_as_the_column_type(
    real, oracle, tmp_path, realshop_db
) -> None:  # type: ignore[no-untyped-def]
    mapping = json.loads(json.dumps(MAPPING))
    mapping["customer"]["relations"][1]["orderBy"] = "amount"  # DECIMAL: 10.49 > 9.99
    write_mapping(tmp_path, realshop_db, mapping)
    rows = real.source.records("SELECT * FROM customer WHERE customer_id <= 200")
    report = real.templates.automap("{{ payment.payment_date }}")
    got = real.templates.related(report, rows)
    best = {
        r["customer_id"]: r["payment_date"]
        for r in oracle(
            "SELECT p.customer_id, p.payment_date FROM payment p WHERE p.customer_id <= 200 "
            "AND p.amount = (SELECT MAX(q.amount) FROM payment q WHERE q.customer_id = p.customer_id)"
        )
    }
    ties = oracle(
        "SELECT customer_id FROM payment WHERE customer_id <= 200 GROUP BY customer_id, amount "
        "HAVING COUNT(*) > 1"
    )
    tied = {r["customer_id"] for r in ties}
    checked = 0
    for row, values in zip(rows, got, strict=True):
        cid = row["customer_id"]
        if cid in tied:
            continue
        assert values["payment.payment_date"] == best.get(cid), cid
        checked += 1
    amounts = oracle(
        "SELECT customer_id FROM payment WHERE customer_id <= 200 GROUP BY customer_id "
        "HAVING MAX(amount) >= 10 AND MIN(amount) < 10"
    )
    assert checked > 100 and amounts, "some customer has amounts on both sides of 10"


def test_to_many_without_order_is_missing_in_the_report_and_skipped_in_rendering(real) -> None:  # type: ignore[no-untyped-def]
    rows = real.source.records("SELECT * FROM customer WHERE customer_id <= 5")
    report, rendered = _render_all(real, "{{ rental.return_date }}", rows)
    status = report.get("rental.return_date")
    assert status.status == "missing" and "orderBy" in (status.warning or "")
    assert report.completeness == 0
    assert all(out.skipped for out in rendered)


def test_an_unknown_relation_variable_is_missing_not_promised(real) -> None:  # type: ignore[no-untyped-def]
    report = real.templates.automap("{{ galaxy.name }} {{ city.city }}")
    assert report.get("galaxy.name").status == "missing"
    assert report.get("city.city").status == "mapped"
    assert report.completeness == 50


# -- targets across relations -----------------------------------------------------------------
NOW = dt.datetime(2025, 6, 1, 12, 0, 0)
NOW_SQL = "'2025-06-01 12:00:00'"

TARGET_CASES = [
    (
        {"field": "address.city.city", "op": "eq", "value": "서울"},
        "SELECT c.customer_id FROM customer c JOIN address a ON a.address_id = c.address_id "
        "JOIN city ci ON ci.city_id = a.city_id WHERE ci.city = '서울'",
    ),
    (
        {"field": "address.city.country.country", "op": "in", "value": ["Japan", "Canada"]},
        "SELECT c.customer_id FROM customer c JOIN address a ON a.address_id = c.address_id "
        "JOIN city ci ON ci.city_id = a.city_id JOIN country co ON co.country_id = ci.country_id "
        "WHERE co.country IN ('Japan', 'Canada')",
    ),
    (
        {"exists": "payment", "where": {"field": "amount", "op": "gt", "value": 190}},
        "SELECT c.customer_id FROM customer c WHERE EXISTS (SELECT 1 FROM payment p "
        "WHERE p.customer_id = c.customer_id AND p.amount > 190)",
    ),
    (
        {"not_exists": "rental"},
        "SELECT c.customer_id FROM customer c WHERE NOT EXISTS (SELECT 1 FROM rental r "
        "WHERE r.customer_id = c.customer_id)",
    ),
    (
        {"aggregate": "sum", "relation": "payment", "field": "amount", "op": "gt", "value": 500},
        "SELECT customer_id FROM payment GROUP BY customer_id HAVING SUM(amount) > 500",
    ),
    (
        {"aggregate": "sum", "relation": "payment", "field": "amount", "op": "lt", "value": 50},
        "SELECT c.customer_id FROM customer c LEFT JOIN payment p ON p.customer_id = c.customer_id "
        "GROUP BY c.customer_id HAVING COALESCE(SUM(p.amount), 0) < 50",
    ),
    (
        {"aggregate": "count", "relation": "payment", "op": "gte", "value": 5},
        "SELECT customer_id FROM payment GROUP BY customer_id HAVING COUNT(*) >= 5",
    ),
    (
        {
            "aggregate": "max",
            "relation": "payment",
            "field": "amount",
            "op": "between",
            "value": [100, 120],
        },
        "SELECT customer_id FROM payment GROUP BY customer_id HAVING MAX(amount) BETWEEN 100 AND 120",
    ),
    (
        {
            "aggregate": "count",
            "relation": "payment",
            "op": "gte",
            "value": 1,
            "within_last": {"days": 90},
        },
        "SELECT DISTINCT customer_id FROM payment WHERE payment_date >= "
        f"{NOW_SQL} - INTERVAL 90 DAY AND payment_date <= {NOW_SQL}",
    ),
    (
        {"field": "create_date", "op": "older_than", "value": {"days": 1000}},
        f"SELECT customer_id FROM customer WHERE create_date < {NOW_SQL} - INTERVAL 1000 DAY",
    ),
    (
        {"field": "create_date", "op": "within_last", "value": {"hours": 24 * 600}},
        f"SELECT customer_id FROM customer WHERE create_date >= {NOW_SQL} - INTERVAL 600 DAY "
        f"AND create_date <= {NOW_SQL}",
    ),
    (
        {
            "all": [
                {"field": "address.phone", "op": "prefix", "value": "010-"},
                {
                    "any": [
                        {"field": "last_name", "op": "eq", "value": "김"},
                        {"field": "active", "op": "eq", "value": False},
                    ]
                },
            ]
        },
        "SELECT c.customer_id FROM customer c JOIN address a ON a.address_id = c.address_id "
        "WHERE a.phone LIKE '010-%%' AND (c.last_name = '김' OR c.active = 0)",
    ),
]


@pytest.mark.parametrize(
    ("where", "oracle_sql"),
    TARGET_CASES,
    ids=[
        "to-one-two-hops",
        "to-one-three-hops",
        "exists-with-condition",
        "not-exists",
        "sum-gt",
        "sum-lt-includes-none",
        "count-gte",
        "max-between",
        "count-within-last-90-days",
        "older-than",
        "within-last-hours",
        "group-with-relation",
    ],
)
def test_target_across_relations_matches_hand_written_sql(real, oracle, where, oracle_sql) -> None:  # type: ignore[no-untyped-def]
    definition = {"where": where, "exclude_opt_out": False}
    got = [r["customer_id"] for b in real.targets.iter(definition, 97, now=NOW) for r in b]
    assert got == sorted(got) and len(got) == len(set(got))
    want = ids(oracle(oracle_sql))
    assert got == want
    assert 0 < len(want) < REALSHOP_CUSTOMERS, "the case must select some, not all"
    preview = real.targets.preview(definition, now=NOW)
    assert preview.count == len(want) and preview.exact
    assert "SELECT" in preview.sql and preview.verdict == "index"


def test_consent_is_applied_through_the_mapping(real, oracle) -> None:  # type: ignore[no-untyped-def]
    got = [
        r["customer_id"]
        for b in real.targets.iter({"where": {"field": "active", "op": "eq", "value": True}})
        for r in b
    ]
    assert got == ids(
        oracle("SELECT customer_id FROM customer WHERE active = 1 AND marketing_opt_in = 1")
    )


def test_target_rows_carry_the_recipient_through_the_relation(real, oracle) -> None:  # type: ignore[no-untyped-def]
    plan = real.targets.plan({"where": {"field": "customer_id", "op": "lte", "value": 30}})
    assert plan.recipient == "address.phone"
    rows = [
        r
        for b in real.targets.iter(
            {"where": {"field": "customer_id", "op": "lte", "value": 30}, "exclude_opt_out": False}
        )
        for r in b
    ]
    want = {
        r["customer_id"]: r["phone"]
        for r in oracle(
            "SELECT c.customer_id, a.phone FROM customer c JOIN address a "
            "ON a.address_id = c.address_id WHERE c.customer_id <= 30"
        )
    }
    assert {r["customer_id"]: r["address.phone"] for r in rows} == want


def test_relative_dates_follow_the_injected_now(real, oracle) -> None:  # type: ignore[no-untyped-def]
    definition = {
        "where": {"field": "create_date", "op": "within_last", "value": {"days": 30}},
        "exclude_opt_out": False,
    }
    counts = {
        when: sum(len(b) for b in real.targets.iter(definition, now=when))
        for when in (dt.datetime(2023, 6, 1), dt.datetime(2022, 1, 1))
    }
    for when, n in counts.items():
        stamp = when.strftime("%Y-%m-%d %H:%M:%S")
        want = oracle(
            "SELECT COUNT(*) AS n FROM customer WHERE create_date >= %s - INTERVAL 30 DAY "
            "AND create_date <= %s",
            (stamp, stamp),
        )[0]["n"]
        assert n == want
    assert counts[dt.datetime(2023, 6, 1)] != counts[dt.datetime(2022, 1, 1)]
    aware = dt.datetime(2023, 6, 1, tzinfo=dt.UTC)  # 09:00 in Seoul
    seoul = sum(len(b) for b in real.targets.iter(definition, now=aware))
    local = sum(len(b) for b in real.targets.iter(definition, now=dt.datetime(2023, 6, 1, 9)))
    assert seoul == local


@pytest.mark.parametrize(
    "where",
    [
        {"any": []},
        {"all": []},
        {"all": [{"field": "active", "op": "eq", "value": True}, {"any": []}]},
        {"exists": "payment", "where": {"all": []}},
    ],
    ids=["any", "all", "nested", "inside-exists"],
)
def test_an_empty_group_is_refused(real, where) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="empty group"):
        real.targets.validate({"where": where})


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ({"field": "address.nope", "op": "eq", "value": 1}, "no mapped field 'nope'"),
        ({"field": "galaxy.name", "op": "eq", "value": 1}, "no relation 'galaxy'"),
        ({"field": "payment.amount", "op": "gt", "value": 1}, "one-to-many"),
        ({"exists": "galaxy"}, "no relation 'galaxy'"),
        ({"aggregate": "sum", "relation": "payment", "op": "gt", "value": 1}, "needs 'field'"),
        (
            {
                "aggregate": "sum",
                "relation": "payment",
                "field": "payment_date",
                "op": "gt",
                "value": 1,
            },
            "not a number",
        ),
        ({"field": "create_date", "op": "within_last", "value": {"weeks": 2}}, "days"),
        ({"field": "create_date", "op": "within_last", "value": {"days": -1}}, "days"),
        ({"field": "first_name", "op": "within_last", "value": {"days": 1}}, "does not apply"),
    ],
    ids=[
        "unknown-field",
        "unknown-relation",
        "to-many-as-field",
        "exists-unknown",
        "sum-no-field",
        "sum-of-date",
        "bad-span",
        "negative-span",
        "relative-on-text",
    ],
)
def test_bad_relation_conditions_are_explained(real, where, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(HybridwbError, match=words):
        real.targets.validate({"where": where})


def test_a_target_whose_recipient_is_empty_for_every_row_is_refused(real) -> None:  # type: ignore[no-untyped-def]
    no_phone = {"where": {"field": "address.phone", "op": "is_null"}, "exclude_opt_out": False}
    with pytest.raises(ValidationError, match="no matching row has a recipient"):
        real.targets.validate(no_phone)
    real.targets.validate({**no_phone, "recipient": "email"})  # another recipient works


# -- saved-SQL targets ------------------------------------------------------------------------
def test_saved_query_must_return_the_key_and_the_recipient(real) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="audience key column 'customer_id'"):
        real.targets.validate({"sql": "SELECT email FROM customer"})
    with pytest.raises(ValidationError, match="recipient column 'phone'"):
        real.targets.validate({"sql": "SELECT customer_id FROM customer"})


def test_saved_query_is_paged_by_key_to_the_end_past_the_row_cap(real, oracle) -> None:  # type: ignore[no-untyped-def]
    real.source.row_cap = 100  # pages must not be cut by the cap, nor the whole set
    definition = {
        "sql": "SELECT c.customer_id, a.phone FROM customer c JOIN address a "
        "ON a.address_id = c.address_id WHERE c.store_id = :store",
        "params": {"store": 1},
        "exclude_opt_out": False,  # the query returns no consent column (round 29)
    }
    got = [r["customer_id"] for b in real.targets.iter(definition, 64) for r in b]
    assert got == ids(oracle("SELECT customer_id FROM customer WHERE store_id = 1"))
    assert len(got) > 500


def test_saved_query_with_a_repeated_key_is_refused_not_cut(real) -> None:  # type: ignore[no-untyped-def]
    definition = {
        "sql": "SELECT c.customer_id, a.phone, p.amount FROM customer c JOIN address a "
        "ON a.address_id = c.address_id JOIN payment p ON p.customer_id = c.customer_id",
        "exclude_opt_out": False,  # the query returns no consent column (round 29)
    }
    with pytest.raises(ValidationError, match="repeats"):
        for _ in real.targets.iter(definition, 50):
            pass


def test_keyword_target_walks_every_search_page(real, oracle, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hybridwb.targets import service

    monkeypatch.setattr(service, "KEYWORD_PAGE", 13)
    definition = {"keyword": "JOHN", "exclude_opt_out": False}
    got = [r["customer_id"] for b in real.targets.iter(definition, 10) for r in b]
    want = oracle(
        "SELECT customer_id FROM customer WHERE first_name LIKE 'JOHN%%' "
        "OR last_name LIKE 'JOHN%%' OR email LIKE 'JOHN%%'"
    )
    assert got == ids(want) and len(got) > 13


def test_generated_sql_quotes_every_identifier(real) -> None:  # type: ignore[no-untyped-def]
    preview = real.targets.preview(
        {"where": {"exists": "payment", "where": {"field": "amount", "op": "gt", "value": 1}}},
        now=NOW,
    )
    for name in ("customer", "payment", "amount", "customer_id"):
        assert f"`{name}`" in preview.sql
    assert "190" not in preview.sql and ":" in preview.sql  # values are bound


def test_a_crafted_relation_table_never_reaches_sql(real, tmp_path, realshop_db) -> None:  # type: ignore[no-untyped-def]
    mapping = json.loads(json.dumps(MAPPING))
    mapping["mysql.user"] = {"displayName": "x", "fields": {"User": _f("u")}}
    mapping["customer"]["relations"].append(
        {
            "table": "mysql.user",
            "localField": "customer_id",
            "foreignField": "User",
            "kind": "many-to-one",
            "name": "u",
        }
    )
    write_mapping(tmp_path, realshop_db, mapping)
    before = len(real.querylog)
    report = real.templates.automap("{{ u.User }}")
    with pytest.raises(HybridwbError, match="mysql.user"):
        real.templates.related(report, [{"customer_id": 1}])
    sent = [e.query for e in list(real.querylog.entries)[before:]]
    assert not any("FROM `mysql" in q or "FROM mysql" in q for q in sent), sent
