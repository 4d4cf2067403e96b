"""Round 30 residue: a column name nested 100,000 deep.

`wb.store.pii_columns(query, columns)` and `wb.source_pii(sql, columns)` turned each column
name into text with `str()`, which overflows the stack on a list nested 100,000 deep: a raw
`RecursionError` came out. Now it is a one-line `ValidationError` saying what to pass.

Stores: SQLite and PostgreSQL; source: the sample shop on MariaDB. Oracle: the exception's
type and text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.platform.store import Store

sys.path.insert(0, str(Path(__file__).parent))
import _stores
from conftest import install_sample_mappings, ro_url

store = _stores.store


def _deep(levels: int) -> list[Any]:
    node: list[Any] = []
    for _ in range(levels):
        node = [node]
    return node


DEEP = _deep(100_000)


def assert_one_line(exc: BaseException) -> None:
    assert isinstance(exc, ValidationError), f"{type(exc).__name__}: {str(exc)[:200]}"
    text = str(exc)
    assert "\n" not in text and len(text) < 200, text
    assert "column names" in text and "df.columns" in text, text


@pytest.fixture
def maria(mysql_db: str, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    install_sample_mappings(tmp_path, ro_url(mysql_db))
    wb = hybridwb.connect(source=ro_url(mysql_db).render_as_string(hide_password=False))
    yield wb
    wb.close()


@pytest.mark.parametrize("columns", [[DEEP], ["id", DEEP]], ids=["alone", "second"])
def test_a_store_column_name_nested_100000_deep_is_one_line(store: Store, columns: Any) -> None:
    with pytest.raises(Exception) as caught:
        store.pii_columns("SELECT 1 AS id", columns)
    assert_one_line(caught.value)
    assert store.pii_columns("SELECT 1 AS id", ["id"]) == set()  # a real name still works


@pytest.mark.mysql
@pytest.mark.parametrize("columns", [[DEEP], ["name", DEEP]], ids=["alone", "second"])
def test_a_source_column_name_nested_100000_deep_is_one_line(
    maria: hybridwb.Workbench, columns: Any
) -> None:
    with pytest.raises(Exception) as caught:
        maria.source_pii("SELECT name FROM customers", columns)
    assert_one_line(caught.value)
    _, traced = maria.source_pii("SELECT name FROM customers", ["name"])
    assert traced == {"name"}  # a real name still works
