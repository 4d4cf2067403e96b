# ruff: noqa: F811  (the fixtures `source` and `table` are the attack file's, imported)
"""A page token holds the page's last key: a long text key made a token longer than the
4,096 characters a token may have, so the next page answered "The page token is not one
hybridwb made; start from the first page", and the first page gave the same token again
(real MariaDB: 600 Hangul syllables, limit 1: page 2 was never reachable). Long keys now
page (tokens up to MAX_TOKEN), and a key too long even for that is a one-line error that
says what to do, at the page that would need it. Oracle: direct SQL as root.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hybridwb.errors import HybridwbError
from hybridwb.search import service
from tests.test_attack_search_pages import follow, server_rows, source, table  # noqa: F401

pytestmark = pytest.mark.mysql


@pytest.mark.parametrize("limit", [1, 2])
@pytest.mark.parametrize(
    ("sql_type", "stem"),
    [("VARCHAR(700)", "가" * 600), ("VARCHAR(700)", "😀" * 600), ("VARCHAR(3000)", "a" * 2900)],
    ids=["hangul-600", "emoji-600", "ascii-2900"],
)
def test_a_long_text_key_pages_every_row_once(
    table: Callable[..., Any], sql_type: str, stem: str, limit: int
) -> None:
    pk = sql_type == "VARCHAR(700)"  # 2,800 bytes: within InnoDB's longest index key
    wb, db = table(sql_type, [f"{c}{stem}" for c in "dcba"], pk=pk)
    got = follow(wb, limit)
    assert sorted(got) == sorted(server_rows(db)) and len(got) == len(set(got)) == 4


@pytest.mark.xfail(strict=True, reason="residue: ORDER BY compares max_sort_length bytes only")
@pytest.mark.parametrize("limit", [1, 2])
def test_long_keys_alike_beyond_the_sort_length(table: Callable[..., Any], limit: int) -> None:
    """Keys that differ only after @@max_sort_length (1,024) bytes of their sort weights:
    the server sorts them as equal (in any order) while `key > last` compares them whole,
    so a page after the first skipped rows ('a' * 2900 + 'd', ... + 'a', limit 1: one row
    shown of four, no word). Not fixed: telling it needs the key's weight length, which
    only the server knows, on every page of a long key (see the report)."""
    wb, db = table("VARCHAR(3000)", [f"{'a' * 2900}{c}" for c in "dcba"], pk=False)
    got = follow(wb, limit)
    assert sorted(got) == sorted(server_rows(db)) and len(got) == len(set(got)) == 4


def test_a_key_too_long_for_a_token_is_one_line_error(
    table: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_KEY_TEXT", 100)
    wb, db = table("VARCHAR(300)", [f"{'가' * 200}{c}" for c in "dcba"])
    assert len(server_rows(db)) == 4
    with pytest.raises(HybridwbError, match="too long") as refused:
        follow(wb, 2)
    message = str(refused.value)
    assert "\n" not in message and "first page" not in message and "limit" in message
    assert len(follow(wb, 4)) == 4  # one page holds them all: no token needed
