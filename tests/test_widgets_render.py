"""The shared table renderer (pure): masking, Korean line breaking, formatting, escaping."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from hybridwb.errors import HybridwbError
from hybridwb.mapping.model import FieldMapping, TableMapping, parse
from hybridwb.render import field_index, format_value, render_table
from tests.conftest import REPO

SHIPPED = parse(
    json.loads((REPO / "mappings" / "table-mappings.json").read_text(encoding="utf-8"))
).tables()
PII = [
    (table, name)
    for table, mapping in SHIPPED.items()
    for name, field in mapping.fields.items()
    if field.pii
]
HOSTILE = "<script>alert('x')</script>"


def _value_for(field: FieldMapping) -> Any:
    return {
        "number": 98765432,
        "date": dt.date(1987, 6, 5),
        "datetime": dt.datetime(2024, 3, 2, 11, 22, 33),
        "boolean": True,
    }.get(field.type, "김수빈 secret-01098765432@example.com")


def test_the_shipped_mapping_has_pii_fields() -> None:
    assert len(PII) >= 4  # name, phone, email, birth date at least


@pytest.mark.parametrize(("table", "field"), PII, ids=[f"{t}.{f}" for t, f in PII])
def test_every_pii_field_is_masked_unless_revealed(table: str, field: str) -> None:
    mapping = SHIPPED[table]
    value = _value_for(mapping.fields[field])
    shown = format_value(value, mapping.fields[field], reveal=True)
    assert len(shown) > 2
    html = render_table([{field: value}], mapping)
    assert shown not in html and str(value) not in html
    assert shown[1:] not in html  # only the first character survives
    assert shown in render_table([{field: value}], mapping, reveal=True)


def test_pii_masking_also_covers_related_columns() -> None:
    fields = field_index({"a": SHIPPED["customers"]}, "a")
    fields["rel.phone"] = SHIPPED["customers"].fields["phone"]
    html = render_table([{"rel.phone": "010-1234-5678"}], fields=fields)
    assert "1234-5678" not in html and "휴대폰번호" in html


def test_korean_cells_do_not_break_per_syllable() -> None:
    html = render_table([{"name": "김수빈"}])
    assert "word-break: keep-all" in html
    assert 'style="word-break: keep-all"' in html  # on the table itself, not only in CSS


def test_headers_use_the_display_names_and_keep_the_field_name_as_title() -> None:
    html = render_table([{"grade": "VIP"}], SHIPPED["customers"])
    assert '<th title="grade">등급</th>' in html


NUMBER = FieldMapping(displayName="금액", type="number", role="amount")
ID = FieldMapping(displayName="번호", type="number", role="id")
DATE = FieldMapping(displayName="날짜", type="date")
STAMP = FieldMapping(displayName="시각", type="datetime")
FLAG = FieldMapping(displayName="동의", type="boolean")
TEXT = FieldMapping(displayName="이름", type="string")


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        (39800.0, NUMBER, "39,800"),
        (39800, NUMBER, "39,800"),
        ("39800.0", NUMBER, "39,800"),
        (Decimal("1234.50"), NUMBER, "1,234.5"),
        (0.25, NUMBER, "0.25"),
        (1234567, ID, "1234567"),
        (1234567.0, ID, "1234567"),
        (39800.0, None, "39,800"),
        (float("nan"), NUMBER, ""),
        (None, NUMBER, ""),
        (pd.NA, TEXT, ""),
        (pd.NaT, DATE, ""),
        (float("nan"), None, ""),
        ("2024-01-05", DATE, "2024-01-05"),
        ("2024-01-05 00:00:00", DATE, "2024-01-05"),
        (dt.datetime(2024, 1, 5, 9, 30), STAMP, "2024-01-05 09:30"),
        ("2024-01-05 09:30:15", STAMP, "2024-01-05 09:30:15"),
        (pd.Timestamp("2024-01-05 09:30"), STAMP, "2024-01-05 09:30"),
        (dt.date(2024, 1, 5), None, "2024-01-05"),
        (1, FLAG, "예"),
        (0, FLAG, "아니오"),
        ("not a date", DATE, "not a date"),
        ("abc", NUMBER, "abc"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_values_are_formatted_by_the_mapping_type(
    value: Any, field: FieldMapping | None, expected: str
) -> None:
    assert format_value(value, field) == expected


def test_a_dataframe_renders_like_records_and_nan_is_empty() -> None:
    df = pd.DataFrame({"amount": [39800.0, math.nan]})
    mapping = TableMapping(displayName="결제", fields={"amount": NUMBER})
    html = render_table(df, mapping)
    assert "39,800" in html and "39800.0" not in html and "nan" not in html.lower()
    assert html == render_table(df.to_dict("records"), mapping)


@pytest.mark.parametrize(
    ("rows", "kw", "caption"),
    [
        ([{"a": 1}], {}, "1 row"),
        ([{"a": 1}, {"a": 2}], {}, "2 rows"),
        ([{"a": i} for i in range(5)], {"max_rows": 3}, "5 rows · cut at 3 rows"),
        ([{"a": i} for i in range(3)], {"max_rows": 3}, "3 rows"),
        ([{"a": i} for i in range(3)], {"cut_at": 3}, "3 rows · cut at 3 rows"),
        ([], {}, "0 rows"),
    ],
    ids=["one", "two", "cut", "exactly-the-cap", "cut-upstream", "empty"],
)
def test_the_caption_counts_rows_and_says_cut_only_when_cut(
    rows: list[dict[str, Any]], kw: dict[str, Any], caption: str
) -> None:
    html = render_table(rows, **kw)
    assert caption in html
    if "cut" not in caption:
        assert "cut at" not in html
    if "max_rows" in kw:
        assert html.count("<tr>") == min(len(rows), kw["max_rows"]) + 1


@pytest.mark.parametrize(
    "where",
    ["value", "header", "label", "caption"],
)
def test_hostile_values_are_escaped(where: str) -> None:
    row = {HOSTILE if where == "header" else "c": HOSTILE if where == "value" else "x"}
    kw: dict[str, Any] = {}
    if where == "label":
        kw["labels"] = {"c": HOSTILE}
    if where == "caption":
        kw["caption"] = HOSTILE
    html = render_table([row], **kw)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_no_special_glyph_fonts_and_theme_colours() -> None:
    html = render_table([{"ok": True, "name": "김"}])
    assert "var(--jp-" in html
    assert not any(ch in html for ch in "✅❌✔✘")


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(HybridwbError, match="DataFrame or a list"):
        render_table("rows")
    with pytest.raises(HybridwbError, match="max_rows"):
        render_table([], max_rows=0)
