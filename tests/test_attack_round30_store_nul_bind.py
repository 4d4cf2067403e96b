"""Round 30 residue: a NUL character in a `%%platform` / `wb.store.sql` bind value.

Before: on PostgreSQL the statement failed as "The platform store failed: PostgreSQL text
fields cannot contain NUL (0x00) bytes." (no parameter named, nothing to do); on SQLite a
read returned it and a `--write` stored it, text a PostgreSQL store cannot hold (round 29
refuses a NUL alike on every store for every text the store keeps). Now both stores refuse
it before anything is sent, in one `BindError` line naming the parameter and what to do.

Stores: SQLite and PostgreSQL. Oracle: the exception's type and text; the rows, read with
the plain driver (sqlite3 / psycopg).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from hybridwb.errors import BindError, ValidationError
from hybridwb.platform.store import Store

sys.path.insert(0, str(Path(__file__).parent))
import _stores
from _stores import Oracle

store = _stores.store
oracle = _stores.oracle

READS = [
    ("SELECT :a AS a", {"a": "x\x00y"}),
    ("SELECT count(*) AS n FROM message_templates WHERE name = :a", {"a": "\x00"}),
    ("SELECT count(*) AS n FROM message_templates WHERE name IN :a", {"a": ["ok", "b\x00"]}),
]


def assert_says_what_to_do(exc: BaseException) -> None:
    assert isinstance(exc, BindError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert "\n" not in text and len(text) < 200, text
    assert "Parameter 'a'" in text and "NUL" in text and "remove it" in text, text


@pytest.mark.parametrize(("query", "params"), READS, ids=["select", "where", "in-list"])
def test_a_nul_in_a_store_bind_value_is_refused_saying_what_to_do(
    store: Store, query: str, params: dict[str, Any]
) -> None:
    with pytest.raises(Exception) as caught:
        store.sql(query, params)
    assert_says_what_to_do(caught.value)
    assert store.sql("SELECT :a AS a", {"a": "x"})["a"].tolist() == ["x"]  # text still binds


def test_a_write_with_a_nul_in_a_bind_value_stores_nothing(store: Store, oracle: Oracle) -> None:
    store.templates.create(name="welcome", content="안녕하세요")
    audits = oracle.one("SELECT count(*) FROM audit_log")
    with pytest.raises(Exception) as caught:
        store.sql(
            "UPDATE message_templates SET category = :a WHERE name = 'welcome'",
            {"a": "VIP\x00"},
            write=True,
        )
    assert_says_what_to_do(caught.value)
    assert oracle.rows("SELECT category FROM message_templates") == [(None,)]
    assert oracle.one("SELECT count(*) FROM audit_log") == audits


@pytest.mark.parametrize(
    "query",
    ["SELECT 'a\x00b' AS a", "SELECT 1 AS a -- \x00", "SELECT 1 AS a\x00"],
    ids=["literal", "comment", "end"],
)
def test_a_nul_in_the_store_query_text_is_refused_saying_what_to_do(
    store: Store, query: str
) -> None:
    """Before: SQLite "the query contains a null character"; PostgreSQL "unterminated quoted
    string at or near '?'" for a literal, and the text after the NUL dropped unseen for a
    comment (the statement ran)."""
    with pytest.raises(Exception) as caught:
        store.sql(query)
    exc = caught.value
    assert isinstance(exc, ValidationError), f"{type(exc).__name__}: {exc}"
    assert str(exc) == "The query holds a NUL character (\\x00); remove it and run it again."
