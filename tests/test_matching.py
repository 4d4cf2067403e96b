"""Variable matching as a pure function: the documented order (individual variable, a field
of the main table, a field through relations, nearest first), what counts as ambiguous,
fallbacks, unreachable and unfetchable paths, formatter types, and the completeness
report. A small hand-written mapping; no database."""

from __future__ import annotations

from typing import Any

import pytest

from hybridwb.mapping.graph import Graph
from hybridwb.mapping.model import parse as parse_mappings
from hybridwb.templating.matching import (
    Report,
    Source,
    VariableStatus,
    automap,
    fallback_for,
    match_one,
)
from hybridwb.templating.parse import VariableUse

MAPPINGS = parse_mappings(
    {
        "customers": {
            "displayName": "고객",
            "key": "customer_id",
            "fields": {
                "customer_id": {"displayName": "고객ID", "type": "number"},
                "name": {"displayName": "고객명", "aliases": ["customer_name", "이름"]},
                "grade": {"displayName": "등급"},
                "points": {"displayName": "포인트", "type": "number"},
                "joined": {"displayName": "가입일", "type": "date"},
            },
            "relations": [
                {"table": "subscriptions", "localField": "customer_id",
                 "foreignField": "customer_id", "orderBy": "ends_at"},
                {"table": "notes", "localField": "customer_id", "foreignField": "customer_id"},
                {"table": "cards", "localField": "customer_id", "foreignField": "customer_id",
                 "orderBy": "issued"},
            ],
        },
        "subscriptions": {
            "displayName": "구독",
            "key": "subscription_id",
            "fields": {
                "subscription_id": {"displayName": "구독ID", "type": "number"},
                "ends_at": {"displayName": "만료일", "type": "datetime"},
                "plan_id": {"displayName": "요금제ID", "type": "number"},
                "status": {"displayName": "구독상태"},
            },
            "relations": [
                {"table": "plans", "localField": "plan_id", "foreignField": "plan_id",
                 "kind": "many-to-one"},
            ],
        },
        "plans": {
            "displayName": "요금제",
            "key": "plan_id",
            "fields": {
                "plan_id": {"displayName": "요금제 번호", "type": "number"},
                "fee": {"displayName": "월요금", "type": "number"},
            },
        },
        "notes": {
            "displayName": "메모",
            "fields": {"memo": {"displayName": "메모내용"}, "status": {"displayName": "메모상태"}},
        },
        "cards": {
            "displayName": "카드",
            "fields": {"issued": {"displayName": "발급일", "type": "date"},
                       "status": {"displayName": "카드상태"}},
        },
        "ghosts": {
            "displayName": "비활성",
            "isActive": False,
            "fields": {"boo": {"displayName": "유령"}},
        },
    }
).tables()  # fmt: skip


def uses(*names: str, filters: tuple[str, ...] = ()) -> list[VariableUse]:
    return [VariableUse(n, "jinja", 1, 1, filters) for n in names]


def var(name: str, source: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "source_type": "field", "source": source, **extra}


def one(name: str, individual: dict[str, Any] | None = None, **kw: Any) -> VariableStatus:
    return automap(uses(name, **kw), "customers", MAPPINGS, individual).get(name)


# -- the order: variable, root field, relation -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("name", "name"),
        ("고객명", "name"),
        ("이름", "name"),
        ("customer_name", "name"),
        ("customers.name", "name"),
        ("customer.name", "name"),
        ("고객.고객명", "name"),
        ("포인트", "points"),
    ],
)
def test_a_field_of_the_main_table_is_step_two(name: str, field: str) -> None:
    found, step = match_one(name, "customers", MAPPINGS, {})
    assert step == 2
    assert found == [Source("field", "customers", field, field_type=found[0].field_type,
                            path=found[0].path)]  # fmt: skip
    assert found[0].path is not None and found[0].path.hops == ()
    assert found[0].describe() == f"customers.{field}"


def test_a_field_through_relations_is_step_three_nearest_first() -> None:
    found, step = match_one("만료일", "customers", MAPPINGS, {})
    assert step == 3 and len(found) == 1
    [source] = found
    assert (source.kind, source.table, source.field, source.field_type) == (
        "relation",
        "subscriptions",
        "ends_at",
        "datetime",
    )
    assert source.describe() == "subscriptions.ends_at"
    [deep], step = match_one("월요금", "customers", MAPPINGS, {})
    assert step == 3 and deep.describe() == "plans.fee (customers -> subscriptions -> plans)"


def test_an_individual_variable_is_step_one_and_wins_over_a_field() -> None:
    individual = {"name": {"name": "name", "source_type": "constant", "source": "고객님"}}
    found, step = match_one("name", "customers", MAPPINGS, individual)
    assert step == 1 and found == [Source("variable", variable=individual["name"])]
    assert found[0].describe() == "individual variable name (constant: 고객님)"
    status = one("name", individual)
    assert status.status == "mapped" and status.source == found[0] and status.warning is None


def test_nothing_found_is_step_zero() -> None:
    assert match_one("nothing", "customers", MAPPINGS, {}) == ([], 0)
    assert match_one("name", "ghosts", MAPPINGS, {}) == ([], 0)
    assert match_one("name", "customers", Graph(MAPPINGS), {})[1] == 2


# -- statuses and warnings -------------------------------------------------------------------


def test_a_missing_variable_says_how_to_map_it() -> None:
    status = one("생일")
    assert (status.status, status.source, status.candidates) == ("missing", None, [])
    assert status.warning == (
        "생일: no mapped field or individual variable has this name; add an alias in the "
        "mapping or create an individual variable."
    )


def test_two_matches_at_one_depth_are_ambiguous_not_guessed() -> None:
    status = one("status")  # three related tables one hop away have a status
    assert status.status == "ambiguous" and status.source is None
    assert status.candidates == ["subscriptions.status", "notes.status", "cards.status"]
    assert status.warning == (
        "status: matches subscriptions.status, notes.status, cards.status; create an "
        "individual variable to choose one."
    )


def test_a_to_many_path_without_order_is_missing_with_the_reason() -> None:
    status = one("메모내용")
    assert status.status == "missing"
    assert status.source is not None and status.source.table == "notes"
    assert status.warning == (
        "메모내용: customers -> notes is one-to-many and its relation has no orderBy; set "
        "orderBy so the latest notes row is used."
    )


@pytest.mark.parametrize(
    ("name", "filters", "status", "warning"),
    [
        ("포인트", ("won",), "mapped", None),
        (
            "등급",
            ("won",),
            "type mismatch",
            "등급: formatter won needs number, but customers.grade is string.",
        ),
        (
            "만료일",
            ("won",),
            "type mismatch",
            "만료일: formatter won needs number, but subscriptions.ends_at is datetime.",
        ),
        (
            "포인트",
            ("date_ko",),
            "type mismatch",
            "포인트: formatter date_ko needs date or datetime, but customers.points is number.",
        ),
        ("가입일", ("date_ko",), "mapped", None),
        ("등급", ("upper",), "mapped", None),  # not a typed formatter: no check
        ("등급", ("upper", "won"), "type mismatch",
         "등급: formatter won needs number, but customers.grade is string."),
        ("등급", ("truncate", "won"), "mapped", None),  # the first typed formatter decides
    ],
    ids=[
        "won-on-number",
        "won-on-string",
        "won-on-datetime",
        "date-on-number",
        "date-on-date",
        "untyped-filter",
        "typed-after-untyped",
        "first-typed-decides",
    ],
)  # fmt: skip
def test_a_formatter_must_accept_the_field_type(
    name: str, filters: tuple[str, ...], status: str, warning: str | None
) -> None:
    got = one(name, filters=filters)
    assert (got.status, got.warning) == (status, warning)
    assert got.filters == tuple(f for f in filters if f != "upper")


def test_an_individual_variables_formatter_is_checked_against_its_field() -> None:
    individual = {"금액": var("금액", "customers.grade", formatter="won")}
    got = one("금액", individual, filters=("truncate",))
    assert got.status == "type mismatch"
    assert got.warning == (
        "금액: formatter won needs number, but individual variable 금액 "
        "(field: customers.grade) is string."
    )
    individual = {"금액": var("금액", "customers.points", formatter="won")}
    assert one("금액", individual, filters=("date_ko",)).status == "mapped"


def test_an_individual_variable_pointing_at_a_field_resolves_its_path() -> None:
    individual = {"요금": var("요금", "plans.fee")}
    got = one("요금", individual)
    assert got.status == "mapped" and got.source is not None
    source = got.source
    assert (source.kind, source.table, source.field, source.field_type) == (
        "variable",
        "plans",
        "fee",
        "number",
    )
    assert source.variable == individual["요금"]
    assert source.path is not None and [h.target for h in source.path.hops] == [
        "subscriptions",
        "plans",
    ]
    own = one("내이름", {"내이름": var("내이름", "customers.name")})
    assert own.status == "mapped" and own.source is not None
    assert (own.source.table, own.source.field) == ("customers", "name")
    assert own.source.path is not None and own.source.path.hops == ()


@pytest.mark.parametrize(
    ("variable", "status", "warning"),
    [
        (
            var("v", "ghosts.boo"),
            "missing",
            "v: its individual variable points at ghosts.boo, which is not reachable from "
            "customers.",
        ),
        (
            var("v", "ghosts.boo", fallback_value="-"),
            "fallback",
            "v: ghosts.boo is not reachable from customers; its fallback value is used.",
        ),
        (
            var("v", "ghosts.boo", default_value="-"),
            "fallback",
            "v: ghosts.boo is not reachable from customers; its fallback value is used.",
        ),
        (
            var("v", "plans.nothing", fallback_value=""),
            "missing",
            "v: its individual variable points at plans.nothing, which is not reachable from "
            "customers.",
        ),
        (
            var("v", "subscriptions.status"),
            "mapped",
            None,
        ),
        (
            var("v", "cards.status"),
            "mapped",
            None,
        ),
        (
            var("v", "notes.memo"),
            "missing",
            "v: customers -> notes is one-to-many and its relation has no orderBy; set orderBy "
            "so the latest notes row is used.",
        ),
    ],
    ids=[
        "unreachable",
        "unreachable-with-fallback",
        "unreachable-with-default",
        "unknown-field-empty-fallback",
        "ambiguous-name-pinned-by-table",
        "the-other-table",
        "unfetchable-path",
    ],
)
def test_an_individual_variable_to_a_field_that_cannot_be_reached(
    variable: dict[str, Any], status: str, warning: str | None
) -> None:
    got = one("v", {"v": variable})
    assert (got.status, got.warning) == (status, warning)
    if status == "mapped":
        assert got.source is not None and got.source.table == variable["source"].split(".")[0]


def test_a_constant_individual_variable_is_not_looked_up() -> None:
    got = one("v", {"v": {"name": "v", "source_type": "constant", "source": "x.y"}})
    assert got.status == "mapped" and got.source is not None and got.source.table is None


# -- the report -----------------------------------------------------------------------------


def test_the_report_counts_each_variable_once_and_keeps_order() -> None:
    individual = {"v": var("v", "ghosts.boo", fallback_value="-")}
    report = automap(
        uses("고객명", "생일", "고객명", "v", "status"), "customers", MAPPINGS, individual
    )
    assert isinstance(report, Report) and report.table == "customers"
    assert [v.name for v in report.variables] == ["고객명", "생일", "v", "status"]
    assert report.completeness == 50.0
    assert report.warnings == [
        report.get("생일").warning,
        report.get("v").warning,
        report.get("status").warning,
    ]
    assert report.rows() == [
        {"variable": "고객명", "source": "customers.name", "status": "mapped", "warning": ""},
        {
            "variable": "생일",
            "source": "",
            "status": "missing",
            "warning": report.get("생일").warning,
        },
        {
            "variable": "v",
            "source": "individual variable v (field: ghosts.boo)",
            "status": "fallback",
            "warning": report.get("v").warning,
        },
        {
            "variable": "status",
            "source": "",
            "status": "ambiguous",
            "warning": report.get("status").warning,
        },
    ]
    with pytest.raises(StopIteration):
        report.get("nothing")


@pytest.mark.parametrize(
    ("names", "completeness"),
    [((), 100.0), (("고객명",), 100.0), (("고객명", "생일", "등급"), 66.7), (("생일",), 0.0)],
)
def test_completeness_is_the_share_of_usable_variables(
    names: tuple[str, ...], completeness: float
) -> None:
    assert automap(uses(*names), "customers", MAPPINGS).completeness == completeness


def test_a_graph_and_plain_mappings_give_the_same_report() -> None:
    names = uses("고객명", "만료일", "status", "메모내용", "x")
    assert automap(names, "customers", Graph(MAPPINGS)) == automap(names, "customers", MAPPINGS)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (VariableStatus("v", "fallback", Source("variable", variable={"fallback_value": "a"})),
         "a"),
        (VariableStatus("v", "fallback", Source("variable", variable={"default_value": "b"})),
         "b"),
        (VariableStatus("v", "fallback", Source("variable", variable={
            "fallback_value": "a", "default_value": "b"})), "a"),
        (VariableStatus("v", "fallback", Source("variable", variable={
            "fallback_value": "", "default_value": "b"})), "b"),
        (VariableStatus("v", "mapped", Source("variable", variable={"source": "x"})), None),
        (VariableStatus("v", "mapped", Source("field", "t", "f")), None),
        (VariableStatus("v", "missing"), None),
    ],
    ids=["fallback", "default", "fallback-first", "empty-fallback", "neither", "field", "none"],
)  # fmt: skip
def test_fallback_for(status: VariableStatus, expected: str | None) -> None:
    assert fallback_for(status) == expected


def test_a_source_is_an_immutable_value() -> None:
    import dataclasses

    source = Source("field", "customers", "name")
    assert (source.variable, source.field_type, source.path) == (None, None, None)
    assert Source("variable").table is None and Source("variable").field is None
    assert {source, Source("field", "customers", "name")} == {source}  # hashable, by value
    with pytest.raises(dataclasses.FrozenInstanceError):
        source.table = "other"  # type: ignore[misc]
    status = VariableStatus("v", "missing")
    assert (status.source, status.candidates, status.warning, status.filters) == (
        None,
        [],
        None,
        (),
    )


# -- names joined by a sign ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "joined"),
    [
        ("안녕 {{ e-mail }}", "e-mail"),
        ("{{ first/last }}님", "first/last"),
        ("{{ 고객-등급 | default('x') }}", "고객-등급"),
    ],
)
def test_a_name_with_a_sign_in_braces_is_told_to_be_written_with_a_hash(
    text: str, joined: str
) -> None:
    """Before: `{{ e-mail }}` (Jinja reads e minus mail) warned "e: no mapped field …; add
    an alias" and "mail: …", which sends the user to the mapping for names they never
    meant; now each missing part's warning says to write `#{e-mail}`."""
    from hybridwb.templating.parse import variables

    report = automap(variables(text), "customers", MAPPINGS)
    missing = [w for w in report.warnings if "no mapped field" in w]
    assert missing, report.warnings
    assert all(f"written #{{{joined}}}" in w for w in missing), missing


def test_arithmetic_with_spaces_keeps_the_alias_advice() -> None:
    from hybridwb.templating.parse import variables

    report = automap(variables("{{ e - mail }}"), "customers", MAPPINGS)
    assert report.warnings and all("add an alias" in w for w in report.warnings)
