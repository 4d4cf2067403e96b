# ruff: noqa: F811  (the fixtures `source` and `table` are the attack file's, imported)
"""wb.search pages by `key > last key` on real MariaDB: a key that does not read back as the
server compares it got a next page that was wrong, and now gets a one-line error instead.

Found by following `next_page` with `limit=1` over four rows named alike:
- a FLOAT key (0.1, 0.2, 0.3, 0.7): MariaDB prints the stored 0.100000001 as 0.1, so
  `key > 0.1` is true of that row again: ten pages of the same row, forever;
- an ENUM key ENUM('0.7','0.1','0.3','0.2'): ORDER BY gives list order, `key > '0.7'`
  compares text, so the search stopped after '0.7' and three rows were never shown.
A DOUBLE key and an integer key page every row exactly once (the oracle: direct SQL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from tests.test_attack_search_pages import server_rows, source, table  # noqa: F401 (fixtures)

pytestmark = pytest.mark.mysql
KEYS = ["0.1", "0.2", "0.3", "0.7"]


def follow(wb: hybridwb.Workbench, limit: int, most: int = 10) -> list[Any]:
    """Every key the search shows, page after page (at most `most` pages)."""
    seen: list[Any] = []
    page = None
    for _ in range(most):
        result = wb.search("f", "회원", limit=limit, page=page)
        seen += [r["code"] for r in result.raw_rows]
        page = result.next_page
        if page is None:
            break
    return seen


def server_keys(db: str) -> list[Any]:
    return server_rows(db, column="code")


@pytest.mark.parametrize(
    "sql_type",
    ["FLOAT", "FLOAT(7,3)", "ENUM('0.7','0.1','0.3','0.2')", "SET('0.7','0.1','0.3','0.2')"],
    ids=["float", "float-m-d", "enum", "set"],
)
@pytest.mark.parametrize("limit", [1, 3])
def test_a_key_that_cannot_be_paged_gets_an_error_not_a_wrong_page(
    table: Callable[..., Any], sql_type: str, limit: int
) -> None:
    wb, db = table(sql_type, KEYS)
    assert len(server_keys(db)) == 4  # more rows than one page holds
    with pytest.raises(ValidationError, match="'code'") as refused:
        follow(wb, limit)
    message = str(refused.value)
    assert "\n" not in message and f"More than {limit} results in f" in message
    assert "limit" in message and "key" in message


@pytest.mark.parametrize(
    "sql_type", ["FLOAT", "ENUM('0.7','0.1','0.3','0.2')"], ids=["float", "enum"]
)
def test_one_page_of_such_a_key_is_shown_whole(table: Callable[..., Any], sql_type: str) -> None:
    """No next page is needed: the search answers as before, every row once."""
    wb, db = table(sql_type, KEYS)
    got = follow(wb, limit=20)
    assert sorted(map(str, got)) == sorted(map(str, server_keys(db))) == KEYS


@pytest.mark.parametrize("sql_type", ["DOUBLE", "DECIMAL(4,2)", "VARCHAR(8)"])
def test_an_exact_key_pages_every_row_once(table: Callable[..., Any], sql_type: str) -> None:
    wb, db = table(sql_type, KEYS)
    got = follow(wb, limit=1)
    assert len(got) == 4
    assert sorted(float(k) for k in got) == sorted(float(k) for k in server_keys(db))
