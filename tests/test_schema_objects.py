"""Which names `Source` trusts as plain tables (no read-back after a statement naming them):
only a base table known when the schema's list was read, and nothing else by that name."""

from __future__ import annotations

import pytest

from hybridwb.source.cache import ViewNames


@pytest.mark.parametrize(
    ("tables", "others", "name", "plain"),
    [
        (["customers"], [], "customers", True),
        (["Customers"], [], "customers", True),  # names are compared in lower case
        (["customers"], [], "v_new", False),  # made since the list was read: maybe a view
        (["customers"], ["v_rw"], "v_rw", False),
        (["v"], ["V"], "v", False),  # a table and a view differing only in case
        ([], [], "customers", False),
        (["고객"], [], "고객", True),
    ],
)
def test_only_a_known_base_table_is_plain(
    tables: list[str], others: list[str], name: str, plain: bool
) -> None:
    names = ViewNames()
    names.put("shop", tables, others)
    objects = names.get("SHOP")
    assert objects is not None
    assert objects.is_plain_table(name) is plain


def test_an_unread_schema_is_not_known() -> None:
    assert ViewNames().get("shop") is None
