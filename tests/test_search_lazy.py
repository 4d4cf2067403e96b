"""A search page's DataFrame is built when it is read, once, and never by the search itself
(the widget, the CLI and targets read `raw_rows`). Oracle: pandas' own constructor, counted."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest


@pytest.fixture
def frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built: list[int] = []
    real = pd.DataFrame.from_records

    def counted(*args: Any, **kwargs: Any) -> pd.DataFrame:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "from_records", counted)
    return built


def test_a_search_builds_no_dataframe_until_rows_are_read(shop, frames: list[int]) -> None:  # type: ignore[no-untyped-def]
    shop.search("customers", "이", limit=5)  # the first search reads the schema facts
    frames.clear()
    result = shop.search("customers", "김", limit=5)
    assert len(result.raw_rows) == len(result) > 0
    assert frames == []
    first = result.rows
    assert result.rows is first and len(frames) == 1
    assert len(first) == len(result) and "고객명" in first.columns
    assert first.attrs["fields"]["고객명"] == "name"
    label = {field: shown for shown, field in first.attrs["fields"].items()}[result.key]
    assert [r[result.key] for r in result.raw_rows] == first[label].tolist()


def test_a_search_result_repr_shows_no_customer_value(shop) -> None:  # type: ignore[no-untyped-def]
    result = shop.search("customers", "김", limit=3)
    shown = repr(result)
    assert all(str(r["name"]) not in shown for r in result.raw_rows)
