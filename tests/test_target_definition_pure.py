"""Target definitions as a pure model: which shapes parse to which nodes, and the exact
one-line error (with its path) for every shape that is refused. No database."""

from __future__ import annotations

import json

import pytest

from hybridwb.errors import ValidationError
from hybridwb.targets.definition import (
    AGGREGATES,
    MAX_SPAN_DAYS,
    OPS_BY_TYPE,
    RELATIVE,
    Aggregate,
    Condition,
    Exists,
    Group,
    Span,
    TargetDefinition,
    _kind,
    parse,
)

ALL_OPS = (
    "eq, ne, in, not_in, gt, gte, lt, lte, between, prefix, is_null, not_null, "
    "within_last, within_next, older_than"
)
AGGREGATE_OPS = "eq, ne, gt, gte, lt, lte, between"
EQ = {"field": "grade", "op": "eq", "value": "VIP"}
COUNT = {"aggregate": "count", "relation": "payment", "op": "gt", "value": 1}
TOP = "target.(top level): "


@pytest.mark.parametrize(
    ("data", "message", "path"),
    [
        (
            {"table": "customers", "sql": "SELECT 1"},
            "target: give either 'table' (with conditions) or 'sql' (a saved query), not both.",
            None,
        ),
        (
            {"sql": "SELECT 1", "where": EQ},
            TOP + "give either conditions/keyword on a table or 'sql' (a saved query), not both.",
            "",
        ),
        (
            {"sql": "SELECT 1", "keyword": "kim"},
            TOP + "give either conditions/keyword on a table or 'sql' (a saved query), not both.",
            "",
        ),
        ({"sql": "  "}, TOP + "'sql' is empty; write the saved query or remove it.", ""),
        ({"keyword": " "}, TOP + "'keyword' is empty; give a search term or remove it.", ""),
        (
            {"timezone": "Mars/Olympus"},
            "target.timezone: 'Mars/Olympus' is not a time zone name (e.g. Asia/Seoul).",
            "timezone",
        ),
        (
            {"timezone": "../etc/passwd"},
            "target.timezone: '../etc/passwd' is not a time zone name (e.g. Asia/Seoul).",
            "timezone",
        ),
        ({"tabel": "customers"}, "target.tabel: is not a known key.", "tabel"),
        (
            {"where": {"field": "grade", "op": "like", "value": 1}},
            f"target.where.op: must be one of {ALL_OPS}.",
            "where.op",
        ),
        (
            {"where": {"field": "", "op": "eq", "value": 1}},
            "target.where.field: String should have at least 1 character.",
            "where.field",
        ),
        ({"where": {"field": "grade"}}, "target.where.op: is required.", "where.op"),
        (
            {"where": {"all": []}},
            "target.where: an empty group would select everyone or no one; add a condition "
            "or remove it.",
            "where",
        ),
        (
            {"where": {"any": []}},
            "target.where: an empty group would select everyone or no one; add a condition "
            "or remove it.",
            "where",
        ),
        (
            {"where": {"all": [EQ], "any": [EQ]}},
            "target.where: a group has exactly one of 'all' or 'any'.",
            "where",
        ),
        (
            {"where": {"exists": "payment", "not_exists": "payment"}},
            "target.where: give exactly one of 'exists' or 'not_exists' (a relation name).",
            "where",
        ),
        (
            {"where": {"aggregate": "sum", "relation": "payment", "op": "gt", "value": 1}},
            "target.where: sum needs 'field' (the related field to aggregate).",
            "where",
        ),
        (
            {"where": {**COUNT, "relation": ""}},
            "target.where.relation: String should have at least 1 character.",
            "where.relation",
        ),
        (
            {"where": {**COUNT, "aggregate": "median", "field": "amount"}},
            "target.where: must be 'count', 'sum', 'min', 'max' or 'avg' (got 'median').",
            "where",
        ),
        (
            {"where": {**COUNT, "op": "like"}},
            f"target.where.op: must be one of {AGGREGATE_OPS}.",
            "where.op",
        ),
        (  # a condition operator is not an aggregate operator: the list says which are
            {"where": {"all": [{**COUNT, "op": "within_last"}]}},
            f"target.where.all.0.op: must be one of {AGGREGATE_OPS}.",
            "where.all.0.op",
        ),
        (  # a condition inside an aggregate's where takes condition operators
            {"where": {**COUNT, "where": {"field": "amount", "op": "bogus"}}},
            f"target.where.where.op: must be one of {ALL_OPS}.",
            "where.where.op",
        ),
        (
            {"where": {**COUNT, "within_last": {"days": 1, "hours": 2}}},
            "target.where.within_last: give exactly one of 'days' or 'hours'.",
            "where.within_last",
        ),
        (
            {"where": {**COUNT, "within_last": {}}},
            "target.where.within_last: give exactly one of 'days' or 'hours'.",
            "where.within_last",
        ),
        (
            {"where": {**COUNT, "within_last": {"days": 0}}},
            "target.where.within_last.days: Input should be greater than 0.",
            "where.within_last.days",
        ),
        (
            {"where": {**COUNT, "within_last": {"days": MAX_SPAN_DAYS + 1}}},
            "target.where.within_last.days: Input should be less than or equal to 36600.",
            "where.within_last.days",
        ),
        (
            {"where": {**COUNT, "within_last": {"hours": MAX_SPAN_DAYS * 24 + 1}}},
            "target.where.within_last.hours: Input should be less than or equal to 878400.",
            "where.within_last.hours",
        ),
        (
            {"where": {"all": [{"any": [{"field": "grade", "op": "bogus"}]}]}},
            f"target.where.all.0.any.0.op: must be one of {ALL_OPS}.",
            "where.all.0.any.0.op",
        ),
        (
            {"where": {"all": [{"not_exists": "rental", "where": {"field": "x"}}]}},
            "target.where.all.0.where.op: is required.",
            "where.all.0.where.op",
        ),
        (
            "{nope",
            "The target definition is not valid JSON (Expecting property name enclosed in "
            "double quotes at line 1 column 2); nothing was saved.",
            None,
        ),
        (
            [1],
            TOP + "Input should be a valid dictionary or instance of TargetDefinition.",
            "",
        ),
    ],
    ids=[
        "table-and-sql",
        "sql-and-conditions",
        "sql-and-keyword",
        "blank-sql",
        "blank-keyword",
        "unknown-zone",
        "path-as-zone",
        "misspelt-key",
        "unknown-operator",
        "empty-field-name",
        "missing-operator",
        "empty-all",
        "empty-any",
        "all-and-any",
        "exists-and-not-exists",
        "sum-without-field",
        "aggregate-without-relation",
        "unknown-aggregate",
        "unknown-aggregate-operator",
        "condition-operator-on-an-aggregate",
        "unknown-operator-in-an-aggregates-where",
        "span-days-and-hours",
        "span-neither",
        "span-zero",
        "span-over-a-century",
        "span-hours-over-a-century",
        "nested-path-names-the-place",
        "nested-exists-where",
        "not-json",
        "not-an-object",
    ],
)
def test_a_bad_definition_is_one_error_naming_its_path(
    data: object, message: str, path: str | None
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(data)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert caught.value.fields.get("path") == path
    assert caught.value.__cause__ is None


def test_a_definition_parses_to_the_right_node_kinds() -> None:
    d = parse(
        {
            "table": "customers",
            "where": {
                "all": [
                    EQ,
                    {"exists": "payment", "where": {"field": "amount", "op": "gt", "value": 5}},
                    {"not_exists": "rental"},
                    {**COUNT, "within_last": {"hours": 6}, "date_field": "paid_at"},
                    {"any": [{"field": "city.city", "op": "in", "value": ["서울"]}]},
                ]
            },
        }
    )
    assert isinstance(d.where, Group) and d.where.any is None
    cond, exists, not_exists, agg, group = d.where.all or []
    assert cond == Condition(field="grade", op="eq", value="VIP")
    assert isinstance(exists, Exists) and exists.exists == "payment"
    assert exists.relation == "payment" and exists.not_exists is None
    assert exists.where == Condition(field="amount", op="gt", value=5)
    assert isinstance(not_exists, Exists) and not_exists.exists is None
    assert not_exists.relation == "rental" and not_exists.where is None
    assert isinstance(agg, Aggregate) and agg.field is None and agg.date_field == "paid_at"
    assert agg.where is None
    assert agg.within_last == Span(hours=6) and agg.within_last.seconds() == 6 * 3600
    assert isinstance(group, Group) and group.all is None and len(group.any or []) == 1


def test_defaults_of_a_definition() -> None:
    d = parse({})
    assert d.model_dump() == {
        "table": None,
        "where": None,
        "keyword": None,
        "sql": None,
        "params": {},
        "recipient": None,
        "exclude_opt_out": True,
        "timezone": "Asia/Seoul",
    }


def test_json_text_and_bytes_parse_like_the_dict() -> None:
    data = {"table": "customers", "where": EQ, "timezone": "UTC"}
    expected = parse(data)
    assert parse(json.dumps(data)) == expected
    assert parse(json.dumps(data).encode()) == expected
    assert parse(expected) is expected


@pytest.mark.parametrize(
    ("span", "seconds"),
    [
        ({"days": 1}, 86_400),
        ({"days": 0.5}, 43_200),
        ({"hours": 3}, 10_800),
        ({"hours": 0.5}, 1_800),
        ({"days": MAX_SPAN_DAYS}, MAX_SPAN_DAYS * 86_400),
        ({"hours": MAX_SPAN_DAYS * 24}, MAX_SPAN_DAYS * 86_400),
    ],
    ids=["a-day", "half-a-day", "hours", "half-an-hour", "a-century", "a-century-in-hours"],
)
def test_span_seconds(span: dict[str, float], seconds: float) -> None:
    assert Span.model_validate(span).seconds() == seconds


@pytest.mark.parametrize(
    ("aggregate", "field"), [("min", "amount"), ("max", "amount"), ("avg", "amount")]
)
def test_aggregates_other_than_count_keep_their_field(aggregate: str, field: str) -> None:
    node = parse({"where": {**COUNT, "aggregate": aggregate, "field": field}}).where
    assert isinstance(node, Aggregate) and node.field == field and node.aggregate == aggregate


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"all": []}, "group"),
        ({"any": []}, "group"),
        ({"exists": "p"}, "exists"),
        ({"not_exists": "p"}, "exists"),
        ({"aggregate": "count"}, "aggregate"),
        ({"field": "a"}, "condition"),
        (Group(all=[Condition(field="a", op="eq")]), "group"),
        (Exists(exists="p"), "exists"),
        (Aggregate(aggregate="count", relation="p", op="gt", value=1), "aggregate"),
        (Condition(field="a", op="eq"), "condition"),
        ("text", "condition"),
    ],
    ids=[
        "all",
        "any",
        "exists",
        "not-exists",
        "aggregate",
        "condition",
        "group-model",
        "exists-model",
        "aggregate-model",
        "condition-model",
        "other",
    ],
)
def test_a_node_kind_is_read_from_its_keys(value: object, kind: str) -> None:
    assert _kind(value) == kind


def test_a_condition_without_value_holds_none() -> None:
    node = parse({"where": {"field": "email", "op": "is_null"}}).where
    assert isinstance(node, Condition) and node.value is None
    bare = Aggregate(aggregate="count", relation="p", op="gt", value=1)
    assert bare.where is None and bare.within_last is None and bare.date_field is None
    assert Exists(exists="p").where is None and Exists(exists="p").not_exists is None
    assert Group(any=[Condition(field="a", op="eq")]).all is None


def test_models_already_built_are_accepted_as_nodes() -> None:
    d = TargetDefinition(where=Group(any=[Exists(not_exists="rental")]))
    assert isinstance(d.where, Group) and isinstance((d.where.any or [])[0], Exists)


def test_the_operators_each_field_type_accepts() -> None:
    assert {t: sorted(ops) for t, ops in OPS_BY_TYPE.items()} == {
        "string": ["eq", "in", "is_null", "ne", "not_in", "not_null", "prefix"],
        "number": [
            "between",
            "eq",
            "gt",
            "gte",
            "in",
            "is_null",
            "lt",
            "lte",
            "ne",
            "not_in",
            "not_null",
        ],
        "date": [
            "between",
            "eq",
            "gt",
            "gte",
            "is_null",
            "lt",
            "lte",
            "ne",
            "not_null",
            "older_than",
            "within_last",
            "within_next",
        ],
        "datetime": [
            "between",
            "eq",
            "gt",
            "gte",
            "is_null",
            "lt",
            "lte",
            "ne",
            "not_null",
            "older_than",
            "within_last",
            "within_next",
        ],
        "boolean": ["eq", "is_null", "ne", "not_null"],
    }
    assert {"within_last", "within_next", "older_than"} == RELATIVE
    assert AGGREGATES == ("count", "sum", "min", "max", "avg")
    assert MAX_SPAN_DAYS == 36_600
