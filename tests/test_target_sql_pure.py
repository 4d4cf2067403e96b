"""Target conditions -> SQL: the exact statement text (MySQL dialect, `:name` binds) and
the exact bound values for every operator, relative date, relation and aggregate, and
the exact one-line error for every condition that is refused. The schema comes from the
SQLite sample (identifiers are checked against a live schema); nothing is executed."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.mapping.resolve import Resolver, compile_sql
from hybridwb.targets.consent import NO_SPELLINGS, YES_SPELLINGS
from hybridwb.targets.definition import Condition, parse
from hybridwb.targets.sql import Builder, coerce, truthy

NOW = dt.datetime(2026, 3, 1, 9, 30)
HEAD = "SELECT `customers`.`customer_id` \nFROM `customers` \nWHERE "
C = "`customers`"
JOIN = "r1.`customer_id` = `customers`.`customer_id`"


@pytest.fixture(scope="module")
def shop(sample_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The sample shop with the shipped mappings, once for the module (nothing writes)."""
    root = tmp_path_factory.mktemp("targets")
    (root / ".hybridwb").mkdir()
    shutil.copy(sample_db, root / ".hybridwb" / "sample.db")
    (root / "mappings").mkdir()
    repo = Path(__file__).resolve().parents[1]
    shutil.copy(repo / "mappings" / "table-mappings.json", root / "mappings")
    wb = hybridwb.connect(cwd=root, env={})
    yield wb
    wb.close()


def build(wb: Any, node: dict[str, Any], root: str = "customers") -> tuple[str, dict[str, Any]]:
    resolver = Resolver(wb.mappings)
    sel = resolver.selection(root)
    clause = Builder(resolver, NOW).clause(parse({"where": node}).where, sel)
    return compile_sql(sa.select(sel.key).select_from(sel.from_clause()).where(clause))


def _sub(select: str, table: str = "payments", extra: str = "") -> str:
    return f"(SELECT {select} \nFROM `{table}` AS r1 \nWHERE {JOIN}{extra})"


CASES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("eq", {"field": "grade", "op": "eq", "value": "VIP"}, f"{C}.`grade` = :grade_1",
     {"grade_1": "VIP"}),
    ("ne", {"field": "grade", "op": "ne", "value": "VIP"}, f"{C}.`grade` != :grade_1",
     {"grade_1": "VIP"}),
    ("gt-text-number", {"field": "customer_id", "op": "gt", "value": "10"},
     f"{C}.`customer_id` > :customer_id_1", {"customer_id_1": 10}),
    ("gte-float", {"field": "customer_id", "op": "gte", "value": 1.5},
     f"{C}.`customer_id` >= :customer_id_1", {"customer_id_1": 1.5}),
    ("lt", {"field": "customer_id", "op": "lt", "value": 3},
     f"{C}.`customer_id` < :customer_id_1", {"customer_id_1": 3}),
    ("lte", {"field": "customer_id", "op": "lte", "value": 3},
     f"{C}.`customer_id` <= :customer_id_1", {"customer_id_1": 3}),
    ("in", {"field": "grade", "op": "in", "value": ["VIP", "GOLD"]},
     f"{C}.`grade` IN (:grade_1_1, :grade_1_2)", {"grade_1_1": "VIP", "grade_1_2": "GOLD"}),
    ("not-in", {"field": "grade", "op": "not_in", "value": ["VIP"]},
     f"({C}.`grade` NOT IN (:grade_1_1))", {"grade_1_1": "VIP"}),
    ("between", {"field": "customer_id", "op": "between", "value": [1, 9]},
     f"{C}.`customer_id` BETWEEN :customer_id_1 AND :customer_id_2",
     {"customer_id_1": 1, "customer_id_2": 9}),
    ("prefix-escapes-wildcards", {"field": "name", "op": "prefix", "value": "김_%!"},
     f"{C}.`name` LIKE :name_1 ESCAPE '!'", {"name_1": "김!_!%!!%"}),
    ("is-null", {"field": "email", "op": "is_null"}, f"{C}.`email` IS NULL", {}),
    ("not-null", {"field": "email", "op": "not_null"}, f"{C}.`email` IS NOT NULL", {}),
    ("number-as-string-field", {"field": "grade", "op": "eq", "value": 7},
     f"{C}.`grade` = :grade_1", {"grade_1": "7"}),
    ("within-last-datetime", {"field": "created_at", "op": "within_last", "value": {"days": 30}},
     f"{C}.`created_at` >= :created_at_1 AND {C}.`created_at` <= :created_at_2",
     {"created_at_1": dt.datetime(2026, 1, 30, 9, 30), "created_at_2": NOW}),
    ("within-next-datetime",
     {"field": "created_at", "op": "within_next", "value": {"hours": 12}},
     f"{C}.`created_at` >= :created_at_1 AND {C}.`created_at` <= :created_at_2",
     {"created_at_1": NOW, "created_at_2": dt.datetime(2026, 3, 1, 21, 30)}),
    ("older-than-datetime", {"field": "created_at", "op": "older_than", "value": {"days": 1}},
     f"{C}.`created_at` < :created_at_1", {"created_at_1": dt.datetime(2026, 2, 28, 9, 30)}),
    ("within-last-date", {"field": "birth_date", "op": "within_last", "value": {"days": 30}},
     f"{C}.`birth_date` >= :birth_date_1 AND {C}.`birth_date` <= :birth_date_2",
     {"birth_date_1": dt.date(2026, 1, 30), "birth_date_2": dt.date(2026, 3, 1)}),
    ("within-next-date", {"field": "birth_date", "op": "within_next", "value": {"days": 2}},
     f"{C}.`birth_date` >= :birth_date_1 AND {C}.`birth_date` <= :birth_date_2",
     {"birth_date_1": dt.date(2026, 3, 1), "birth_date_2": dt.date(2026, 3, 3)}),
    ("older-than-date", {"field": "birth_date", "op": "older_than", "value": {"days": 365}},
     f"{C}.`birth_date` < :birth_date_1", {"birth_date_1": dt.date(2025, 3, 1)}),
    ("date-value", {"field": "birth_date", "op": "eq", "value": "1990-01-02"},
     f"{C}.`birth_date` = :birth_date_1", {"birth_date_1": dt.date(1990, 1, 2)}),
    ("datetime-value", {"field": "created_at", "op": "gte", "value": "2026-01-02T03:04:05"},
     f"{C}.`created_at` >= :created_at_1", {"created_at_1": dt.datetime(2026, 1, 2, 3, 4, 5)}),
    ("datetime-between",
     {"field": "created_at", "op": "between", "value": ["2026-01-01T00:00:00", "2026-02-01"]},
     f"{C}.`created_at` BETWEEN :created_at_1 AND :created_at_2",
     {"created_at_1": dt.datetime(2026, 1, 1), "created_at_2": dt.datetime(2026, 2, 1)}),
    ("all", {"all": [{"field": "grade", "op": "eq", "value": "VIP"},
                     {"field": "customer_id", "op": "gt", "value": 5}]},
     f"{C}.`grade` = :grade_1 AND {C}.`customer_id` > :customer_id_1",
     {"grade_1": "VIP", "customer_id_1": 5}),
    ("any", {"any": [{"field": "grade", "op": "eq", "value": "VIP"},
                     {"field": "customer_id", "op": "gt", "value": 5}]},
     f"{C}.`grade` = :grade_1 OR {C}.`customer_id` > :customer_id_1",
     {"grade_1": "VIP", "customer_id_1": 5}),
    ("exists", {"exists": "payments"},
     f"EXISTS {_sub(':param_1 AS anon_1')}", {"param_1": 1}),
    ("exists-where", {"exists": "payments", "where": {"field": "amount", "op": "gt", "value": 100}},
     f"EXISTS {_sub(':param_1 AS anon_1', extra=' AND r1.`amount` > :amount_1')}",
     {"param_1": 1, "amount_1": 100}),
    ("not-exists", {"not_exists": "subscriptions"},
     f"NOT (EXISTS {_sub(':param_1 AS anon_1', 'subscriptions')})", {"param_1": 1}),
    ("exists-through-a-to-one-hop",
     {"exists": "payments", "where": {"field": "subscriptions.plan", "op": "eq", "value": "b"}},
     "EXISTS (SELECT :param_1 AS anon_1 \nFROM `payments` AS r1 LEFT OUTER JOIN "
     "`subscriptions` AS r1j1 ON r1.`subscription_id` = r1j1.`subscription_id` \n"
     f"WHERE {JOIN} AND r1j1.`plan` = :plan_1)", {"param_1": 1, "plan_1": "b"}),
    ("count", {"aggregate": "count", "relation": "payments", "op": "gte", "value": 2},
     f"{_sub('count(*) AS count_1')} >= :param_1", {"param_1": 2}),
    ("sum-of-nothing-is-zero",
     {"aggregate": "sum", "relation": "payments", "field": "amount", "op": "gt", "value": 100},
     f"{_sub('coalesce(sum(r1.`amount`), :coalesce_2) AS coalesce_1')} > :param_1",
     {"coalesce_2": 0, "param_1": 100}),
    ("avg", {"aggregate": "avg", "relation": "payments", "field": "amount", "op": "lt",
             "value": 50},
     f"{_sub('avg(r1.`amount`) AS avg_1')} < :param_1", {"param_1": 50}),
    ("min-datetime", {"aggregate": "min", "relation": "payments", "field": "paid_at",
                      "op": "lt", "value": "2026-01-01T00:00:00"},
     f"{_sub('min(r1.`paid_at`) AS min_1')} < :param_1", {"param_1": dt.datetime(2026, 1, 1)}),
    ("min-string", {"aggregate": "min", "relation": "payments", "field": "method", "op": "eq",
                    "value": "card"},
     f"{_sub('min(r1.`method`) AS min_1')} = :param_1", {"param_1": "card"}),
    ("max-between", {"aggregate": "max", "relation": "payments", "field": "amount",
                     "op": "between", "value": [1, 2]},
     f"{_sub('max(r1.`amount`) AS max_1')} BETWEEN :param_1 AND :param_2",
     {"param_1": 1, "param_2": 2}),
    ("count-in-a-window-on-order-by",
     {"aggregate": "count", "relation": "payments", "op": "eq", "value": 0,
      "within_last": {"days": 90}},
     _sub("count(*) AS count_1",
          extra=" AND r1.`paid_at` >= :paid_at_1 AND r1.`paid_at` <= :paid_at_2")
     + " = :param_1",
     {"paid_at_1": dt.datetime(2025, 12, 1, 9, 30), "paid_at_2": NOW, "param_1": 0}),
    ("count-in-a-window-on-date-field",
     {"aggregate": "count", "relation": "subscriptions", "op": "eq", "value": 0,
      "within_last": {"days": 9}, "date_field": "started_at"},
     _sub("count(*) AS count_1", "subscriptions",
          " AND r1.`started_at` >= :started_at_1 AND r1.`started_at` <= :started_at_2")
     + " = :param_1",
     {"started_at_1": dt.datetime(2026, 2, 20, 9, 30), "started_at_2": NOW, "param_1": 0}),
    ("sum-where", {"aggregate": "sum", "relation": "payments", "field": "amount", "op": "gt",
                   "value": 1, "where": {"field": "status", "op": "eq", "value": "paid"}},
     _sub("coalesce(sum(r1.`amount`), :coalesce_2) AS coalesce_1",
          extra=" AND r1.`status` = :status_1") + " > :param_1",
     {"coalesce_2": 0, "status_1": "paid", "param_1": 1}),
    ("each-subquery-its-own-alias",
     {"all": [{"exists": "payments"},
              {"aggregate": "count", "relation": "subscriptions", "op": "gt", "value": 0}]},
     f"(EXISTS {_sub(':param_1 AS anon_1')}) AND (SELECT count(*) AS count_1 \n"
     "FROM `subscriptions` AS r2 \nWHERE r2.`customer_id` = `customers`.`customer_id`) "
     "> :param_2", {"param_1": 1, "param_2": 0}),
]  # fmt: skip


@pytest.mark.parametrize(("node", "where", "params"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_condition_builds_exactly_this_sql(
    shop: Any, node: dict[str, Any], where: str, params: dict[str, Any]
) -> None:
    text, bound = build(shop, node)
    assert text == HEAD + where
    assert bound == params


ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("operator-not-for-strings", {"field": "grade", "op": "gt", "value": "A"},
     "target condition on 'grade': operator gt does not apply to a string field; use one of "
     "eq, in, is_null, ne, not_in, not_null, prefix."),
    ("operator-not-for-numbers", {"field": "customer_id", "op": "prefix", "value": "1"},
     "target condition on 'customer_id': operator prefix does not apply to a number field; "
     "use one of between, eq, gt, gte, in, is_null, lt, lte, ne, not_in, not_null."),
    ("relative-not-for-numbers", {"field": "customer_id", "op": "within_last",
                                  "value": {"days": 1}},
     "target condition on 'customer_id': operator within_last does not apply to a number "
     "field; use one of between, eq, gt, gte, in, is_null, lt, lte, ne, not_in, not_null."),
    ("in-empty", {"field": "grade", "op": "in", "value": []},
     "target condition on 'grade': in needs a non-empty list of values."),
    ("not-in-scalar", {"field": "grade", "op": "not_in", "value": "VIP"},
     "target condition on 'grade': not_in needs a non-empty list of values."),
    ("between-three", {"field": "customer_id", "op": "between", "value": [1, 2, 3]},
     "target condition on 'customer_id': between needs [low, high]."),
    ("between-scalar", {"field": "customer_id", "op": "between", "value": 5},
     "target condition on 'customer_id': between needs [low, high]."),
    ("eq-without-value", {"field": "grade", "op": "eq"},
     "target condition on 'grade': eq needs a value (use is_null for missing values)."),
    ("not-a-number", {"field": "customer_id", "op": "eq", "value": "abc"},
     "target condition on 'customer_id': 'abc' is not a number; fix the value."),
    ("bool-is-not-a-number", {"field": "customer_id", "op": "eq", "value": True},
     "target condition on 'customer_id': True is not a number; fix the value."),
    ("list-is-not-a-number", {"field": "customer_id", "op": "eq", "value": [1]},
     "target condition on 'customer_id': [1] is not a number; fix the value."),
    ("bool-is-not-a-string", {"field": "grade", "op": "eq", "value": False},
     "target condition on 'grade': False is not a string; fix the value."),
    ("float-is-not-a-string", {"field": "grade", "op": "eq", "value": 1.5},
     "target condition on 'grade': 1.5 is not a string; fix the value."),
    ("none-prefix", {"field": "grade", "op": "prefix", "value": None},
     "target condition on 'grade': None is not a string; fix the value."),
    ("in-list-bad-item", {"field": "customer_id", "op": "in", "value": [1, "x"]},
     "target condition on 'customer_id': 'x' is not a number; fix the value."),
    ("between-bad-item", {"field": "customer_id", "op": "between", "value": [1, "x"]},
     "target condition on 'customer_id': 'x' is not a number; fix the value."),
    ("not-a-date", {"field": "birth_date", "op": "eq", "value": "yesterday"},
     "target condition on 'birth_date': 'yesterday' is not a date; fix the value."),
    ("datetime-for-a-date", {"field": "birth_date", "op": "lt", "value": "2026-01-05T10:00:00"},
     "target condition on 'birth_date': '2026-01-05T10:00:00' is not a date; fix the value."),
    ("not-a-datetime", {"field": "created_at", "op": "eq", "value": "2026-13-01"},
     "target condition on 'created_at': '2026-13-01' is not a datetime; fix the value."),
    ("span-in-weeks", {"field": "created_at", "op": "within_last", "value": {"weeks": 1}},
     'target condition on \'created_at\': give the span as {"days": N} or {"hours": N} '
     "(N > 0)."),
    ("span-bare-number", {"field": "created_at", "op": "older_than", "value": 3},
     'target condition on \'created_at\': give the span as {"days": N} or {"hours": N} '
     "(N > 0)."),
    ("unknown-relation", {"exists": "orders"},
     "customers has no relation 'orders' (relations: payments, subscriptions)."),
    ("unknown-aggregate-relation",
     {"aggregate": "count", "relation": "orders", "op": "gt", "value": 1},
     "customers has no relation 'orders' (relations: payments, subscriptions)."),
    ("sum-of-text", {"aggregate": "sum", "relation": "payments", "field": "method", "op": "gt",
                     "value": 1},
     "aggregate sum over 'payments': 'method' is string, not a number."),
    ("avg-of-text", {"aggregate": "avg", "relation": "payments", "field": "method", "op": "gt",
                     "value": 1},
     "aggregate avg over 'payments': 'method' is string, not a number."),
    ("aggregate-between-one", {"aggregate": "count", "relation": "payments", "op": "between",
                               "value": [1]},
     "aggregate count over 'payments': between needs [low, high]."),
    ("aggregate-between-scalar", {"aggregate": "count", "relation": "payments",
                                  "op": "between", "value": 3},
     "aggregate count over 'payments': between needs [low, high]."),
    ("window-on-a-number", {"aggregate": "count", "relation": "payments", "op": "gt",
                            "value": 0, "within_last": {"days": 1}, "date_field": "amount"},
     "aggregate count over 'payments': 'amount' is not a date field."),
    ("count-compared-with-text", {"aggregate": "count", "relation": "payments", "op": "gt",
                                  "value": "many"},
     "aggregate count over 'payments': 'many' is not a number; fix the value."),
    ("unknown-field", {"field": "nope", "op": "eq", "value": 1},
     "'nope': customers has no mapped field 'nope'."),
    ("unknown-aggregated-field", {"aggregate": "max", "relation": "payments", "field": "nope",
                                  "op": "gt", "value": 1},
     "'nope': payments has no mapped field 'nope'."),
]  # fmt: skip


@pytest.mark.parametrize(("node", "message"), [c[1:] for c in ERRORS],
                         ids=[c[0] for c in ERRORS])  # fmt: skip
def test_a_bad_condition_is_one_clear_error(shop: Any, node: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build(shop, node)
    assert str(caught.value) == message


def test_a_window_needs_a_date_when_the_relation_has_no_order(shop: Any) -> None:
    node = {"aggregate": "count", "relation": "customers", "op": "gt", "value": 0,
            "within_last": {"days": 1}}  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        build(shop, node, root="subscriptions")
    assert str(caught.value) == (
        "aggregate count over 'customers': within_last needs 'date_field' (or an orderBy on "
        "the relation)."
    )


def test_an_unknown_node_is_refused(shop: Any) -> None:
    resolver = Resolver(shop.mappings)
    with pytest.raises(ValidationError, match=r"^Unknown target condition 'x'\.$"):
        Builder(resolver, NOW).clause("x", resolver.selection("customers"))


def test_the_builder_counts_aliases_per_definition(shop: Any) -> None:
    resolver = Resolver(shop.mappings)
    builder = Builder(resolver, NOW)
    node = Condition.model_validate({"field": "grade", "op": "eq", "value": "A"})
    builder.clause(node, resolver.selection("customers"))
    assert builder._aliases == 0 and builder.now is NOW and builder.resolver is resolver


@pytest.mark.parametrize(
    ("value", "ftype", "expected"),
    [
        ("12", "number", 12),
        ("1.25", "number", 1.25),
        (3, "number", 3),
        (2.0, "number", 2.0),
        (dt.datetime(2026, 1, 2, 3, 4), "date", dt.date(2026, 1, 2)),
        (dt.date(2026, 1, 2), "date", dt.date(2026, 1, 2)),
        ("2026-01-02", "date", dt.date(2026, 1, 2)),
        (dt.datetime(2026, 1, 2, 3, 4), "datetime", dt.datetime(2026, 1, 2, 3, 4)),
        ("2026-01-02 03:04", "datetime", dt.datetime(2026, 1, 2, 3, 4)),
        (True, "boolean", 1),
        (False, "boolean", 0),
        (1, "boolean", 1),
        (0, "boolean", 0),
        ("kim", "string", "kim"),
        (5, "string", "5"),
    ],
    ids=lambda v: repr(v),
)
def test_coerce_gives_the_field_type(value: Any, ftype: str, expected: Any) -> None:
    got = coerce(value, ftype, "w")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("value", "ftype"),
    [
        ("Y", "boolean"),
        (2, "boolean"),
        (None, "number"),
        (False, "number"),
        ("x1", "number"),
        (None, "date"),
        ("2026-02-30", "date"),
        ("tomorrow", "datetime"),
        (None, "string"),
        (True, "string"),
        (b"kim", "string"),
    ],
    ids=lambda v: repr(v),
)
def test_coerce_refuses_values_of_another_type(value: Any, ftype: str) -> None:
    with pytest.raises(ValidationError) as caught:
        coerce(value, ftype, "where")
    assert str(caught.value) == f"where: {value!r} is not a {ftype}; fix the value."
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("ftype", "sql", "params"),
    [
        ("boolean", "t.c != :c_1", {"c_1": 0}),  # any non-zero: MySQL's BOOL, `truthy`
        ("number", "t.c != :c_1", {"c_1": 0}),
        (
            "string",
            # by the text's UTF-8 bytes: no collation folds 'ñ' into 'n' (round 24)
            "(hex(lower(trim(CAST(t.c AS CHAR)))) NOT IN ("
            + ", ".join(f":hex_1_{i}" for i in range(1, 8))
            + "))",
            {f"hex_1_{i}": v.encode().hex().upper() for i, v in enumerate(NO_SPELLINGS, 1)},
        ),
    ],
)
def test_consent_is_truthy_by_field_type(ftype: str, sql: str, params: dict[str, Any]) -> None:
    """The filter keeps what is not a clear no: unclear values reach the run, which
    excludes and counts them (`policies.UNCLEAR_CONSENT`)."""
    text, bound = compile_sql(truthy(sa.table("t", sa.column("c")).c.c, ftype))
    assert (text, bound) == (sql, params)
    assert YES_SPELLINGS == ("1", "y", "yes", "true", "t", "동의")
    assert NO_SPELLINGS == ("0", "n", "no", "false", "f", "", "미동의")


def test_a_window_on_a_related_date_field_compares_dates(shop: Any) -> None:
    node = {"aggregate": "count", "relation": "customers", "op": "gt", "value": 0,
            "within_last": {"days": 10}, "date_field": "birth_date"}  # fmt: skip
    text, bound = build(shop, node, root="subscriptions")
    assert text == (
        "SELECT `subscriptions`.`subscription_id` \nFROM `subscriptions` \nWHERE "
        "(SELECT count(*) AS count_1 \nFROM `customers` AS r1 \nWHERE r1.`customer_id` = "
        "`subscriptions`.`customer_id` AND r1.`birth_date` >= :birth_date_1 AND "
        "r1.`birth_date` <= :birth_date_2) > :param_1"
    )
    assert bound == {
        "birth_date_1": dt.date(2026, 2, 19),
        "birth_date_2": dt.date(2026, 3, 1),
        "param_1": 0,
    }


def test_a_condition_through_a_to_many_relation_is_refused(shop: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        build(shop, {"field": "payments.amount", "op": "gt", "value": 1})
    assert str(caught.value) == (
        "'payments.amount': customers -> payments is one-to-many; use an exists or aggregate "
        "condition for to-many relations."
    )


def test_a_condition_through_a_to_one_relation_joins_it(shop: Any) -> None:
    text, bound = build(shop, {"field": "customers.grade", "op": "eq", "value": "VIP"},
                        root="payments")  # fmt: skip
    assert text == (
        "SELECT `payments`.`payment_id` \nFROM `payments` LEFT OUTER JOIN `customers` AS j1 ON "
        "`payments`.`customer_id` = j1.`customer_id` \nWHERE j1.`grade` = :grade_1"
    )
    assert bound == {"grade_1": "VIP"}


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (
            {"aggregate": "count", "relation": "subscriptions", "op": "gt", "value": 0,
             "within_last": {"days": 1}, "date_field": "payments.paid_at"},
            "'payments.paid_at': subscriptions -> payments is one-to-many; use an exists or "
            "aggregate condition for to-many relations.",
        ),
        (
            {"aggregate": "max", "relation": "subscriptions", "field": "payments.amount",
             "op": "gt", "value": 0},
            "'payments.amount': subscriptions -> payments is one-to-many; use an exists or "
            "aggregate condition for to-many relations.",
        ),
    ],
    ids=["window-date-through-to-many", "aggregated-field-through-to-many"],
)  # fmt: skip
def test_an_aggregate_path_through_a_second_to_many_relation_is_refused(
    shop: Any, node: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        build(shop, node)
    assert str(caught.value) == message
