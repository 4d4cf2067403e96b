"""Calls a user can get wrong by typing: a misspelt keyword, one argument too many or too
few, a method name that does not exist. Each is a one-line `HybridwbError` that names the
call and, where one is close, what was meant; never a raw TypeError or AttributeError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hybridwb

MISSPELT: list[tuple[str, Callable[[Any], Any], str]] = [
    (
        "sql",
        lambda wb: wb.sql("SELECT 1", limt=3),
        "wb.sql() takes no argument 'limt'; did you mean limit=?",
    ),
    ("search", lambda wb: wb.search("customers", "김", limitt=2), "did you mean limit=?"),
    ("table", lambda wb: wb.table("customers", rowz=3), "wb.table()"),
    ("mappings", lambda wb: wb.mappings.sample("customers", row=3), "did you mean rows=?"),
    (
        "templates",
        lambda wb: wb.templates.render("{{ name }}", {}, mdoe="strict"),
        "did you mean mode=?",
    ),
    ("targets", lambda wb: wb.targets.preview({}, limitt=3), "wb.targets.preview()"),
    ("workflows", lambda wb: wb.workflows.create(nmae="w"), "wb.workflows.create()"),
    ("store", lambda wb: wb.store.listing(wat="runs"), "did you mean what=?"),
    ("variables", lambda wb: wb.variables.get(keyy="x"), "did you mean key=?"),
    ("connect", lambda wb: hybridwb.connect("a", "b", "c", "d"), "hybridwb.connect()"),
    ("too-many", lambda wb: wb.sql("SELECT 1", None, 5), "wb.sql(): too many positional arguments"),
    ("missing", lambda wb: wb.store.listing(), "wb.store.listing(): missing a required argument"),
]


@pytest.mark.parametrize(("case", "call", "says"), MISSPELT, ids=[c for c, _, _ in MISSPELT])
def test_a_call_the_signature_does_not_take_is_a_one_line_validation_error(
    shop: Any, case: str, call: Callable[[Any], Any], says: str
) -> None:
    with pytest.raises(hybridwb.ValidationError) as info:
        call(shop)
    text = str(info.value)
    assert says in text and "\n" not in text and len(text) < 300, text
    assert not isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    ("get", "says"),
    [
        (lambda wb: wb.serch, "wb has no 'serch'; did you mean .search?"),
        (lambda wb: wb.mappings.discovr, "wb.mappings has no 'discovr'; did you mean .discover?"),
        (lambda wb: wb.store.zzzz, "wb.store has no 'zzzz'; see help(wb.store)."),
        (lambda wb: wb.workflows.lst, "did you mean .list?"),
    ],
    ids=["wb", "mappings", "store-no-match", "workflows"],
)
def test_an_unknown_name_is_a_one_line_error_that_is_still_an_attribute_error(
    shop: Any, get: Callable[[Any], Any], says: str
) -> None:
    with pytest.raises(hybridwb.UnknownAttribute) as info:
        get(shop)
    assert says in str(info.value)
    assert isinstance(info.value, AttributeError) and isinstance(info.value, hybridwb.HybridwbError)


def test_hasattr_and_getattr_with_a_default_keep_working(shop: Any) -> None:
    assert not hasattr(shop, "nope") and getattr(shop.store, "nope", 7) == 7
    assert hasattr(shop, "sql") and not hasattr(shop, "_private_probe")


def test_a_good_call_still_runs_and_keeps_its_signature(shop: Any) -> None:
    import inspect

    assert shop.sql("SELECT 1 AS a")["a"].tolist() == [1]
    assert list(inspect.signature(shop.sql).parameters)[:2] == ["query", "params"]
