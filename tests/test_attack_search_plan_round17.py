"""Attack round 17 on the search plan decided once per branch shape (branch srch4):
`order_plan` says what happens to a branch depends on its paths and operators only,
never its values. Pure (no server): the oracle is `order_plan` on a fresh cache."""

from __future__ import annotations

import pytest

from hybridwb.search import sql as search_sql
from hybridwb.search.predicates import Cmp
from hybridwb.search.sql import order_plan
from tests.test_search_order import GRAPH, INFO, p


@pytest.fixture(autouse=True)
def _fresh_decisions() -> None:
    search_sql._DECISIONS.clear()


def _fresh(values: list[str]) -> object:
    search_sql._DECISIONS.clear()
    return order_plan(GRAPH, "people", INFO, [p(Cmp("last_name", "in", values))])


@pytest.mark.parametrize(
    "order",
    [[[], ["DOE"]], [["DOE"], []], [[], ["DOE", "ROE"], []]],
    ids=["empty-then-values", "values-then-empty", "empty-values-empty"],
)
def test_an_empty_in_list_does_not_decide_the_shape_for_the_next_search(
    order: list[list[str]],
) -> None:
    """An IN list with no value gives no branch; it must not decide what an IN list of the
    same field with values gets: on `last_name` (no index on it alone) a value is refused
    with the reason, never kept as if an index returned it in key order. Mutation (the
    code of srch4): the empty list's "split" cached for the shape -> `last_name = 'DOE'`
    kept (a page of a large table read in an order no index gives)."""
    for values in order:
        got = order_plan(GRAPH, "people", INFO, [p(Cmp("last_name", "in", values))])
        assert got == _fresh(values), values
    assert _fresh([]) == ([], [], [])
    refused = _fresh(["DOE"])
    assert refused[0] == [] and refused[1] == []
    assert "no index on last_name alone" in refused[2][0]
