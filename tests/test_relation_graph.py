"""The relation graph is the mapping's relations plus the live schema's foreign keys.

A mapping with no `relations` at all still reaches `address.phone`, `address.city.city` and
the payments of a customer, because the foreign keys the SELECT-only account reads from
`information_schema` (PRAGMAs on the SQLite sample) become edges of the one graph that
search, targets, variables, completeness and rendering walk. Where the mapping names an
edge itself, the mapping wins. A to-many edge found by a foreign key has no `orderBy`, so a
"latest" value through it is reported missing, never guessed. Every result is compared with
hand-written SQL run directly (pymysql, sqlite3).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.mapping.graph import Graph, relations_from_foreign_keys
from hybridwb.mapping.model import Relation, parse
from tests.conftest import REPO, sel_url
from tests.test_relations import MAPPING, NOW, ids, write_mapping


def _without_relations(mapping: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(mapping))
    for table in out.values():
        table.pop("relations", None)
    return out


# -- pure: how foreign keys become edges, and who wins -------------------------------------------
FKS = {
    "customer": [
        {
            "name": "fk_customer_address",
            "constrained_columns": ["address_id"],
            "referred_table": "address",
            "referred_columns": ["address_id"],
        }
    ],
    "payment": [
        {
            "name": "fk_payment_customer",
            "constrained_columns": ["customer_id"],
            "referred_table": "customer",
            "referred_columns": ["customer_id"],
        },
        {
            "name": "fk_payment_refund_of",
            "constrained_columns": ["refunded_customer_id"],
            "referred_table": "customer",
            "referred_columns": ["customer_id"],
        },
        {
            "name": "fk_two_columns",
            "constrained_columns": ["a", "b"],
            "referred_table": "customer",
            "referred_columns": ["a", "b"],
        },
    ],
}


def test_foreign_keys_become_named_edges_both_ways() -> None:
    rels = relations_from_foreign_keys(FKS)
    got = {t: [(r.path_name, r.table, r.kind, r.orderBy) for r in rs] for t, rs in rels.items()}
    assert got == {
        "customer": [
            ("address", "address", "many-to-one", None),
            ("payment", "payment", "one-to-many", None),
            ("payment_by_refunded_customer_id", "payment", "one-to-many", None),
        ],
        "address": [("customer", "customer", "one-to-many", None)],
        "payment": [
            ("customer", "customer", "many-to-one", None),
            ("refunded_customer", "customer", "many-to-one", None),
        ],
    }
    assert isinstance(rels["customer"][0], Relation)


def _graph(relations: dict[str, list[dict[str, Any]]]) -> Graph:
    tables = {}
    for name in ("customer", "address", "payment"):
        tables[name] = {
            "displayName": name,
            "fields": {"x": {"displayName": f"{name}-x"}},
            "relations": relations.get(name, []),
        }
    return Graph(parse(tables).tables(), relations_from_foreign_keys(FKS))


def test_the_mapping_wins_over_a_foreign_key() -> None:
    own = {"table": "address", "localField": "address_id", "foreignField": "address_id"}
    # the mapping joins the same columns under its own name: no second edge `address`
    graph = _graph({"customer": [{**own, "kind": "many-to-one", "name": "home"}]})
    assert [h.name for h in graph.edges("customer") if h.target == "address"] == ["home"]
    # the mapping uses the name `payment` for another table: the foreign key's edge is dropped
    other = {**own, "name": "payment", "kind": "many-to-one"}
    graph = _graph({"customer": [other]})
    payment = [h for h in graph.edges("customer") if h.name == "payment"]
    assert [(h.target, h.to_one) for h in payment] == [("address", True)]
    # the mapping's to-many settings (orderBy) are kept over the foreign key's
    ordered = {"table": "payment", "localField": "customer_id", "foreignField": "customer_id"}
    graph = _graph({"customer": [{**ordered, "orderBy": "x"}]})
    assert [h.order_by for h in graph.edges("customer") if h.target == "payment"] == ["x", None]
    assert not graph.path("customer", "payment.x").problem


def test_a_to_many_edge_from_a_foreign_key_has_no_order_so_latest_is_a_problem() -> None:
    graph = _graph({})
    path = graph.path("customer", "payment.x")
    assert path.problem and "orderBy" in path.problem
    assert graph.path("payment", "customer.address.x").to_one


# -- realshop (MariaDB, SELECT-only account): a mapping without relations -------------------------
@pytest.fixture
def oracle(realshop_db: str, mysql_admin: pymysql.Connection):  # type: ignore[no-untyped-def]
    """Hand-written SQL run directly by pymysql (the admin account): rows as dicts."""

    def run(sql: str, args: Any = None) -> list[dict[str, Any]]:
        with mysql_admin.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(f"USE `{realshop_db}`")
            cur.execute(sql, args)
            return list(cur.fetchall())

    return run


@pytest.fixture
def bare(realshop_db: str, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    write_mapping(tmp_path, realshop_db, _without_relations(MAPPING))
    wb = hybridwb.connect(source=sel_url(realshop_db).render_as_string(hide_password=False))
    yield wb
    wb.close()


@pytest.mark.mysql
def test_search_reaches_the_phone_through_a_foreign_key(bare, oracle) -> None:  # type: ignore[no-untyped-def]
    phone = oracle(
        "SELECT a.phone FROM customer c JOIN address a ON a.address_id = c.address_id "
        "WHERE c.customer_id = 1"
    )[0]["phone"]
    result = bare.search("customer", phone, limit=50)
    assert "address.phone:phone" in result.meta["predicates"]
    want = oracle(
        "SELECT c.customer_id FROM customer c JOIN address a ON a.address_id = c.address_id "
        "WHERE a.phone = %s",
        (phone,),
    )
    assert ids(result.raw_rows) == ids(want) and 1 in ids(want)


FK_TARGETS = [
    (
        {"field": "address.city.city", "op": "eq", "value": "서울"},
        "SELECT c.customer_id FROM customer c JOIN address a ON a.address_id = c.address_id "
        "JOIN city ci ON ci.city_id = a.city_id WHERE ci.city = '서울'",
    ),
    (
        {"exists": "payment", "where": {"field": "amount", "op": "gt", "value": 190}},
        "SELECT c.customer_id FROM customer c WHERE EXISTS (SELECT 1 FROM payment p "
        "WHERE p.customer_id = c.customer_id AND p.amount > 190)",
    ),
    (
        {"aggregate": "sum", "relation": "payment", "field": "amount", "op": "gt", "value": 500},
        "SELECT customer_id FROM payment GROUP BY customer_id HAVING SUM(amount) > 500",
    ),
    (
        {"not_exists": "rental"},
        "SELECT c.customer_id FROM customer c WHERE NOT EXISTS (SELECT 1 FROM rental r "
        "WHERE r.customer_id = c.customer_id)",
    ),
]


@pytest.mark.mysql
@pytest.mark.parametrize(
    ("where", "oracle_sql"), FK_TARGETS, ids=["to-one-two-hops", "exists", "sum", "not-exists"]
)
def test_targets_follow_foreign_keys(bare, oracle, where, oracle_sql) -> None:  # type: ignore[no-untyped-def]
    definition = {"where": where, "exclude_opt_out": False}
    got = [r["customer_id"] for b in bare.targets.iter(definition, 97, now=NOW) for r in b]
    want = ids(oracle(oracle_sql))
    assert got == want and want
    assert bare.targets.preview(definition, now=NOW).count == len(want)


@pytest.mark.mysql
def test_variables_through_foreign_keys_render_what_the_report_promises(bare, oracle) -> None:  # type: ignore[no-untyped-def]
    text = "{{ 성 }}{{ 이름 }}님 {{ city.city }} {{ address.city.country.country }}"
    rows = bare.source.records("SELECT * FROM customer WHERE customer_id <= 40")
    report = bare.templates.automap(text)
    assert report.completeness == 100, report.rows()
    related = bare.templates.related(report, rows)
    want = {
        r["customer_id"]: r
        for r in oracle(
            "SELECT c.customer_id, c.first_name, c.last_name, ci.city, co.country "
            "FROM customer c JOIN address a ON a.address_id = c.address_id "
            "JOIN city ci ON ci.city_id = a.city_id JOIN country co ON co.country_id = ci.country_id "
            "WHERE c.customer_id <= 40"
        )
    }
    for row, rel in zip(rows, related, strict=True):
        out = bare.templates.render(text, row, related=rel, report=report)
        w = want[row["customer_id"]]
        assert out.text == f"{w['last_name']}{w['first_name']}님 {w['city']} {w['country']}"


@pytest.mark.mysql
def test_latest_through_a_foreign_key_without_order_is_missing_and_skipped(bare) -> None:  # type: ignore[no-untyped-def]
    rows = bare.source.records("SELECT * FROM customer WHERE customer_id <= 5")
    report = bare.templates.automap("{{ payment.amount }}")
    status = report.get("payment.amount")
    assert status.status == "missing" and "orderBy" in (status.warning or "")
    related = bare.templates.related(report, rows)
    rendered = [
        bare.templates.render("{{ payment.amount }}", r, related=x, report=report)
        for r, x in zip(rows, related, strict=True)
    ]
    assert all(out.skipped for out in rendered)


@pytest.mark.mysql
def test_a_recipient_path_through_a_foreign_key_can_be_saved(bare, oracle) -> None:  # type: ignore[no-untyped-def]
    saved = bare.mappings.save("customer", _without_relations(MAPPING)["customer"])
    assert saved.recipient == "address.phone"
    definition = {"where": {"field": "customer_id", "op": "lte", "value": 30}}
    rows = [r for b in bare.targets.iter(definition, 50) for r in b]
    want = {
        r["customer_id"]: r["phone"]
        for r in oracle(
            "SELECT c.customer_id, a.phone FROM customer c JOIN address a "
            "ON a.address_id = c.address_id WHERE c.customer_id <= 30 AND c.marketing_opt_in = 1"
        )
    }
    assert {r["customer_id"]: r["address.phone"] for r in rows} == want and want
    with pytest.raises(ValidationError, match="galaxy"):
        bare.mappings.save(
            "customer", {**_without_relations(MAPPING)["customer"], "recipient": "galaxy.phone"}
        )


@pytest.mark.mysql
def test_the_mapping_wins_on_the_live_schema(real_named, oracle) -> None:  # type: ignore[no-untyped-def]
    # the mapping calls the rental relation `payment`: `exists payment` means rentals
    got = [
        r["customer_id"]
        for b in real_named.targets.iter({"where": {"exists": "payment"}, "exclude_opt_out": False})
        for r in b
    ]
    want = ids(oracle("SELECT DISTINCT customer_id FROM rental"))
    assert got == want
    assert len(want) != len(oracle("SELECT DISTINCT customer_id FROM payment"))


@pytest.fixture
def real_named(realshop_db: str, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    mapping = _without_relations(MAPPING)
    mapping["customer"]["relations"] = [
        {
            "table": "rental",
            "localField": "customer_id",
            "foreignField": "customer_id",
            "name": "payment",
        }
    ]
    write_mapping(tmp_path, realshop_db, mapping)
    wb = hybridwb.connect(source=sel_url(realshop_db).render_as_string(hide_password=False))
    yield wb
    wb.close()


# -- the sample shop (SQLite): its declared foreign keys ----------------------------------------
@pytest.fixture
def bare_shop(sample_db: Path, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    (tmp_path / ".hybridwb").mkdir(exist_ok=True)
    shutil.copy(sample_db, tmp_path / ".hybridwb" / "sample.db")
    data = json.loads((REPO / "mappings" / "table-mappings.json").read_text("utf-8"))
    path = tmp_path / "mappings" / "table-mappings.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(_without_relations(data), ensure_ascii=False), "utf-8")
    wb = hybridwb.connect()
    yield wb
    wb.close()


def _sqlite(wb: hybridwb.Workbench, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(Path.cwd() / ".hybridwb" / "sample.db")
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def test_sample_targets_follow_its_foreign_keys(bare_shop) -> None:  # type: ignore[no-untyped-def]
    definition = {
        "where": {
            "exists": "subscriptions",
            "where": {"field": "status", "op": "eq", "value": "active"},
        },
        "exclude_opt_out": False,
    }
    got = [r["customer_id"] for b in bare_shop.targets.iter(definition, 300) for r in b]
    want = [
        r[0]
        for r in _sqlite(
            bare_shop,
            "SELECT customer_id FROM customers c WHERE EXISTS (SELECT 1 FROM subscriptions s "
            "WHERE s.customer_id = c.customer_id AND s.status = 'active') ORDER BY customer_id",
        )
    ]
    assert got == want and want


def test_sample_variables_through_foreign_keys(bare_shop) -> None:  # type: ignore[no-untyped-def]
    text = "{{ customer.name }} {{ subscription.plan }}"
    rows = bare_shop.source.records("SELECT * FROM payments WHERE payment_id <= 50")
    report = bare_shop.templates.automap(text, "payments")
    assert report.completeness == 100, report.rows()
    related = bare_shop.templates.related(report, rows)
    want = dict(
        (r[0], f"{r[1]} {r[2]}")
        for r in _sqlite(
            bare_shop,
            "SELECT p.payment_id, c.name, s.plan FROM payments p JOIN customers c "
            "ON c.customer_id = p.customer_id LEFT JOIN subscriptions s "
            "ON s.subscription_id = p.subscription_id WHERE p.payment_id <= 50",
        )
    )
    for row, rel in zip(rows, related, strict=True):
        out = bare_shop.templates.render(text, row, related=rel, report=report, mode="fallback")
        if "None" in want[row["payment_id"]]:
            continue
        assert out.text == want[row["payment_id"]]
    latest = bare_shop.templates.automap("{{ subscriptions.ends_at }}")
    assert latest.get("subscriptions.ends_at").status == "missing"


# -- attack: a to-one relation that is not one ---------------------------------------------------
@pytest.fixture
def fake_to_one(realshop_db: str, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["customer"]["relations"].append(
        {
            "table": "payment",
            "localField": "customer_id",
            "foreignField": "customer_id",
            "kind": "many-to-one",  # wrong: a customer has many payments
            "name": "pay",
        }
    )
    write_mapping(tmp_path, realshop_db, mapping)
    wb = hybridwb.connect(source=sel_url(realshop_db).render_as_string(hide_password=False))
    yield wb
    wb.close()


@pytest.mark.mysql
def test_a_to_one_relation_to_a_column_that_is_not_unique_is_refused(fake_to_one, oracle) -> None:  # type: ignore[no-untyped-def]
    """Joined as to-one, payment.customer_id would repeat customers: the preview would count
    join rows the run never sends. Refused everywhere it would be joined, with the fix."""
    assert oracle(
        "SELECT customer_id FROM payment GROUP BY customer_id HAVING COUNT(*) > 1 LIMIT 1"
    )
    where = {"where": {"field": "pay.amount", "op": "gt", "value": 100}, "exclude_opt_out": False}
    with pytest.raises(ValidationError, match="one-to-many"):
        fake_to_one.targets.preview(where)
    with pytest.raises(ValidationError, match="one-to-many"):
        list(fake_to_one.targets.iter(where))


@pytest.mark.mysql
def test_the_preview_explains_the_statement_it_shows(real_named, realshop_db, mysql_admin) -> None:  # type: ignore[no-untyped-def]
    """The EXPLAIN a preview shows is the server's plan of the SQL it shows (the shape the
    run's pages are sent in), not of some other statement."""
    preview = real_named.targets.preview(
        {"where": {"field": "address.city.city", "op": "eq", "value": "서울"}}
    )
    sql = preview.sql
    for name, value in sorted(_params_of(real_named, preview).items(), key=lambda kv: -len(kv[0])):
        sql = sql.replace(f":{name}", mysql_admin.escape(value))
    with mysql_admin.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(f"USE `{realshop_db}`")
        cur.execute("EXPLAIN " + sql)
        want = [(r["table"], r["type"], r["key"]) for r in cur.fetchall()]
    assert [(r["table"], r["type"], r["key"]) for r in preview.explain] == want


def _params_of(wb: hybridwb.Workbench, preview: Any) -> dict[str, Any]:
    """The values bound in the shown SQL, as the query log saw them sent (by name)."""
    from hybridwb.mapping.resolve import compile_sql

    plan = wb.targets.plan({"where": {"field": "address.city.city", "op": "eq", "value": "서울"}})
    from hybridwb.targets.service import QUALITY_SAMPLE

    sql, params = compile_sql(plan.statement(n=QUALITY_SAMPLE))
    assert sql == preview.sql
    return params


@pytest.mark.mysql
def test_a_phone_reached_through_a_foreign_key_is_masked_like_a_mapped_one(
    realshop_db, tmp_path, oracle
) -> None:  # type: ignore[no-untyped-def]
    """The preview's sample carries `address.phone` through the foreign-key edge; the
    widgets label and mask it from the same graph, so the raw number never reaches HTML."""
    from hybridwb.render import render_table
    from hybridwb.widgets._html import fields_of

    mapping = _without_relations(MAPPING)
    mapping["address"]["fields"]["phone"]["pii"] = True
    write_mapping(tmp_path, realshop_db, mapping)
    wb = hybridwb.connect(source=sel_url(realshop_db).render_as_string(hide_password=False))
    try:
        preview = wb.targets.preview({"where": {"field": "customer_id", "op": "lte", "value": 20}})
        assert "address.phone" in preview.sample.columns
        html = render_table(preview.sample, fields=fields_of(wb, "customer"))
    finally:
        wb.close()
    phones = [
        r["phone"]
        for r in oracle(
            "SELECT a.phone FROM customer c JOIN address a ON a.address_id = c.address_id "
            "WHERE c.customer_id <= 20 AND c.marketing_opt_in = 1 AND a.phone <> ''"
        )
    ]
    assert phones and not any(p in html for p in phones)
