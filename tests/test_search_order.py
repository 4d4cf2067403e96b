"""Which search branches a large table can answer in key order, which are probed first,
and which are refused with the reason (`search.sql.order_plan` / `expand`, pure)."""

from __future__ import annotations

import pytest

from hybridwb.mapping.discovery import ColumnInfo, TableInfo
from hybridwb.mapping.graph import Graph
from hybridwb.mapping.model import parse
from hybridwb.search.predicates import Cmp, Predicate
from hybridwb.search.sql import PROBE_VALUES, Probe, exact_index, expand, order_plan

GRAPH = Graph(
    parse(
        {
            "people": {
                "displayName": "people",
                "key": "person_id",
                "fields": {
                    n: {"displayName": n}
                    for n in ("person_id", "first_name", "last_name", "nick", "phone", "ext_id")
                },
                "relations": [
                    {
                        "table": "addr",
                        "localField": "address_id",
                        "foreignField": "address_id",
                        "kind": "many-to-one",
                    },
                    {
                        "table": "addr",
                        "localField": "other_id",
                        "foreignField": "address_id",
                        "kind": "many-to-one",
                        "name": "second",
                    },
                ],
            },
            "addr": {
                "displayName": "addr",
                "key": "address_id",
                "fields": {"address_id": {"displayName": "a"}, "phone": {"displayName": "p"}},
            },
        }
    ).tables()
)


def _index(name: str, *cols: str) -> dict:
    return {"name": name, "column_names": list(cols), "unique": False}


INFO = TableInfo(
    "people",
    1_000_000,
    [ColumnInfo(c, "VARCHAR(40)", True) for c in ("person_id", "first_name", "last_name")],
    ["person_id"],
    [
        _index("ix_first", "first_name"),
        _index("ix_name", "last_name", "first_name"),
        _index("ix_nick", "nick", "last_name"),
        _index("ix_phone", "phone"),
        _index("ix_address", "address_id"),
    ],
)


def p(*cmps: Cmp, label: str = "f") -> Predicate:
    return Predicate(label, "k", tuple(cmps), True)


@pytest.mark.parametrize(
    ("branch", "kept", "probed", "refused"),
    [
        (p(Cmp("first_name", "eq", "JANE")), 1, 0, ""),
        (p(Cmp("person_id", "eq", 7)), 1, 0, ""),
        (p(Cmp("last_name", "eq", "DOE"), Cmp("first_name", "eq", "JANE")), 1, 0, ""),
        (p(Cmp("phone", "in", ["010-1", "0101"])), 2, 0, ""),
        (p(Cmp("person_id", "in", [1, 2, 3])), 3, 0, ""),
        (p(Cmp("first_name", "like", "JAN%")), 0, 1, ""),
        (p(Cmp("addr.phone", "in", ["010-1", "0101"])), 0, 1, ""),
        (p(Cmp("last_name", "eq", "DOE")), 0, 0, "no index on last_name alone"),
        (p(Cmp("nick", "like", "ab%")), 0, 0, "no index on nick alone"),
        (p(Cmp("second.phone", "eq", "010")), 0, 0, "no index on other_id alone"),
    ],
    ids=[
        "eq-own-index",
        "eq-primary-key",
        "pair-on-one-index",
        "phone-forms-split",
        "keys-split",
        "prefix-probed",
        "related-probed",
        "composite-only",
        "prefix-composite-only",
        "related-local-unindexed",
    ],
)
def test_order_plan(branch: Predicate, kept: int, probed: int, refused: str) -> None:
    keep, probes, why = order_plan(GRAPH, "people", INFO, [branch])
    assert (len(keep), len(probes)) == (kept, probed)
    assert all(c.op == "eq" for q in keep for c in q.cmps)
    assert (refused in why[0]) if refused else not why


def test_a_related_field_is_probed_through_the_relation_key() -> None:
    _, probes, _ = order_plan(GRAPH, "people", INFO, [p(Cmp("addr.phone", "eq", "010"))])
    assert probes[0].column == "address_id"


def test_expand_turns_values_into_key_order_branches_or_says_type_more() -> None:
    probes = [
        Probe(p(Cmp("first_name", "like", "JAN%"), label="first_name"), "first_name"),
        Probe(p(Cmp("email", "like", "p1%"), label="email"), "email"),
    ]
    rows = [{"b": 0, "v0": "JANE", "v1": None}, {"b": 0, "v0": "JANE", "v1": None}]
    rows += [{"b": 1, "v0": None, "v1": f"p1{i}@x"} for i in range(PROBE_VALUES + 1)]
    found, why = expand("people", probes, rows)
    assert [(q.field, q.cmps) for q in found] == [
        ("first_name", (Cmp("first_name", "eq", "JANE"),))
    ]
    assert len(why) == 1 and f"more than {PROBE_VALUES} different people.email" in why[0]
    assert "p1" not in why[0]  # the typed term is never repeated (it may be a phone)


class _Walked(list):  # type: ignore[type-arg]
    """A list of indexes that counts how often it is walked."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        type(self).walks += 1
        return super().__iter__()


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (("email",), "ix_email"),
        (("last_name", "first_name"), "ix_name"),
        (("first_name", "last_name"), "ix_name"),
        (("first_name",), None),  # leads ix_name, but is not all of it
        (("phone",), None),  # only in an index that names it twice
        (("status",), "ix_status_a"),  # the first of two indexes on the same column
    ],
    ids=["one-column", "two-columns", "either-order", "a-prefix", "doubled", "first-of-two"],
)
def test_the_index_of_exactly_a_branchs_columns_is_found_once_per_schema_facts(
    columns: tuple[str, ...], expected: str | None
) -> None:
    indexes = _Walked(
        [
            {"name": "ix_email", "column_names": ["email"]},
            {"name": "ix_name", "column_names": ["last_name", "first_name"]},
            {"name": "ix_phone", "column_names": ["phone", "phone"]},
            {"name": None, "column_names": ["status"]},
            {"name": "ix_status_a", "column_names": ["status"]},
            {"name": "ix_status_b", "column_names": ["status"]},
        ]
    )
    info = TableInfo("people", 10**6, [], ["person_id"], indexes=indexes)
    branch = Predicate("x", "equal", tuple(Cmp(c, "eq", 1) for c in columns), True)
    _Walked.walks = 0
    for _ in range(3):
        assert exact_index(info, branch) == expected
    assert _Walked.walks == 1  # a search asks several times per branch: walked once
    ranged = Predicate("x", "equal", tuple(Cmp(c, "like", "a%") for c in columns), True)
    assert exact_index(info, ranged) is None


def test_a_branchs_fate_is_decided_per_shape_and_schema_facts_and_applied_to_its_values() -> None:
    """`order_plan` works out what to do with a branch once per shape (paths, operators),
    graph and schema facts object (branch srch4), then applies it to each search's values.
    Mutations: the schema facts left out of the key -> a dropped index still keeps the
    branch; the decision's branch reused instead of this search's -> the values of the first
    search come back."""
    first = order_plan(GRAPH, "people", INFO, [p(Cmp("first_name", "eq", "JANE"))])
    second = order_plan(GRAPH, "people", INFO, [p(Cmp("first_name", "eq", "SUSAN"))])
    split = order_plan(GRAPH, "people", INFO, [p(Cmp("phone", "in", ["1", "2"]))])
    split_again = order_plan(GRAPH, "people", INFO, [p(Cmp("phone", "in", ["3"]))])
    empty = order_plan(GRAPH, "people", INFO, [p(Cmp("phone", "in", []))])
    dropped = TableInfo(
        INFO.name,
        INFO.rows_estimate,
        INFO.columns,
        INFO.primary_key,
        [i for i in INFO.indexes if i["name"] != "ix_first"],
    )
    after = order_plan(GRAPH, "people", dropped, [p(Cmp("first_name", "eq", "JANE"))])
    assert [b.cmps[0].value for b in first[0]] == ["JANE"]
    assert [b.cmps[0].value for b in second[0]] == ["SUSAN"]
    assert [b.cmps[0].value for b in split[0]] == ["1", "2"]
    assert [b.cmps[0].value for b in split_again[0]] == ["3"]
    assert all(b.cmps[0].op == "eq" for b in split[0] + split_again[0])
    assert empty == ([], [], [])
    assert after[0] == [] and after[1] == []
    assert after[2] and "no index on first_name alone" in after[2][0]
