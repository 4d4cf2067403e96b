"""`hybridwb.render.table` and `wb.table`: the one renderer guides, widgets and magics share.

The oracle for every masked value is the sample database read directly with sqlite3."""

from __future__ import annotations

import math
import sqlite3
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hybridwb
from hybridwb.mapping.model import FieldMapping, TableMapping
from hybridwb.render import Table, table

PAYMENTS = TableMapping(
    displayName="결제",
    fields={
        "payment_id": FieldMapping(displayName="결제ID", type="number", role="id"),
        "amount": FieldMapping(displayName="결제 금액", type="number"),
        "paid_on": FieldMapping(displayName="결제일", type="date"),
        "paid_at": FieldMapping(displayName="결제일시", type="datetime"),
        "payer": FieldMapping(displayName="결제자", pii=True),
        "memo": FieldMapping(displayName="메모"),
    },
)
ROW = {
    "payment_id": 1234567,
    "amount": Decimal("39800"),
    "paid_on": "2026-11-25 00:00:00",
    "paid_at": pd.Timestamp("2026-11-25 14:30:00"),
    "payer": "김수빈",
    "memo": None,
}


def cells(t: Table) -> list[str]:
    """The body cells of the text form, one row."""
    return t.text.splitlines()[1].split()


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        pytest.param("amount", Decimal("39800"), "39,800", id="amount-grouped"),
        pytest.param("amount", 39800.0, "39,800", id="float-amount-whole"),
        pytest.param("amount", 1234.5, "1,234.5", id="float-amount-fraction"),
        pytest.param("payment_id", 1234567, "1234567", id="id-not-grouped"),
        pytest.param("paid_on", "2026-11-25 00:00:00", "2026-11-25", id="date-without-time"),
        pytest.param(
            "paid_at", pd.Timestamp("2026-11-25 14:30"), "2026-11-25 14:30", id="datetime"
        ),
        pytest.param("memo", None, "", id="null-empty"),
        pytest.param("amount", math.nan, "", id="nan-empty"),
        pytest.param("payer", "김수빈", "김**", id="pii-masked"),
    ],
)
def test_values_are_formatted_by_the_mappings_field_types(
    column: str, value: object, shown: str
) -> None:
    t = table([{column: value}], PAYMENTS)
    assert f">{shown}</td>" in t.html
    assert t.text.splitlines()[1].strip() == shown


def test_headers_are_display_names_and_labels_win() -> None:
    t = table([ROW], PAYMENTS, labels={"memo": "비고"})
    assert '<th title="amount">결제 금액</th>' in t.html
    assert '<th title="memo">비고</th>' in t.html
    assert t.text.splitlines()[0].split() == [
        "결제ID",
        "결제",
        "금액",
        "결제일",
        "결제일시",
        "결제자",
        "비고",
    ]


def test_korean_wraps_by_word_not_by_syllable() -> None:
    html = table([ROW], PAYMENTS).html
    assert "word-break: keep-all" in html.split("<table", 1)[1].split(">", 1)[0]
    assert (
        ".hybridwb-table th, .hybridwb-table td { padding: 2px 8px; word-break: keep-all;" in html
    )


def test_pii_is_masked_in_both_forms_unless_revealed() -> None:
    hidden = table([ROW], PAYMENTS)
    assert "김수빈" not in hidden.html and "김수빈" not in hidden.text
    shown = table([ROW], PAYMENTS, reveal=True)
    assert "김수빈" in shown.html and "김수빈" in shown.text


def test_values_are_escaped() -> None:
    t = table([{"memo": "<script>alert(1)</script>"}], PAYMENTS)
    assert "<script>alert" not in t.html and "&lt;script&gt;" in t.html


def test_the_caption_counts_rows_and_says_when_they_were_cut() -> None:
    rows = [dict(ROW, payment_id=i) for i in range(7)]
    assert table(rows, PAYMENTS).text.endswith("(7 rows)")
    cut = table(rows, PAYMENTS, max_rows=3)
    assert cut.text.endswith("(7 rows · cut at 3 rows)") and len(cut.text.splitlines()) == 5
    assert cut.html.count("<tr><td") == 3 and "cut at 3 rows" in cut.html


def test_a_dataframe_renders_like_its_records() -> None:
    df = pd.DataFrame([ROW])
    assert table(df, PAYMENTS).text == table([ROW], PAYMENTS).text


@pytest.mark.parametrize("rows", ["text", 42, None], ids=["str", "int", "none"])
def test_rows_that_are_not_rows_are_refused(rows: object) -> None:
    with pytest.raises(hybridwb.ValidationError, match="DataFrame or a list of row dicts"):
        table(rows)


def test_wb_table_masks_the_sample_by_its_mapping(shop, sample_db: Path) -> None:  # type: ignore[no-untyped-def]
    df = shop.sql(
        "SELECT c.customer_id, c.name, c.phone, s.monthly_fee FROM customers c "
        "JOIN subscriptions s ON s.customer_id = c.customer_id ORDER BY c.customer_id LIMIT 5"
    )
    with sqlite3.connect(sample_db) as conn:  # the oracle: the values as stored
        stored = conn.execute(
            "SELECT c.name, c.phone, s.monthly_fee FROM customers c JOIN subscriptions s "
            "ON s.customer_id = c.customer_id ORDER BY c.customer_id LIMIT 5"
        ).fetchall()
    t = shop.table(df, "customers")
    assert isinstance(t, Table)
    assert (
        '<th title="name">고객명</th>' in t.html and '<th title="phone">휴대폰번호</th>' in t.html
    )
    for name, phone, fee in stored:
        for secret in (name, phone):
            if secret:
                assert secret not in t.html and secret not in t.text
        assert f">{fee:,}</td>" in t.html  # a joined column known by its bare name
    revealed = shop.table(df, "customers", reveal=True)
    assert stored[0][0] in revealed.html and stored[0][0] in revealed.text


def test_wb_table_names_a_mapped_table(shop) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(hybridwb.NotFound, match="No mapping for 'nope'"):
        shop.table([{"a": 1}], "nope")
    with pytest.raises(hybridwb.ValidationError, match="Name the table as text"):
        shop.table([{"a": 1}], 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        pytest.param("checked_rows", 1187, "1,187", id="int-grouped"),
        pytest.param("count", np.int64(81300), "81,300", id="numpy-int-grouped"),
        pytest.param("total", Decimal("1234567"), "1,234,567", id="decimal-grouped"),
        pytest.param("paid", 29800, "29,800", id="ends-in-id-letters-grouped"),
        pytest.param("p50_ms", 1234.5, "1,234.5", id="float-grouped"),
        pytest.param("customer_id", 1234567, "1234567", id="snake-id-plain"),
        pytest.param("customerId", 1234567, "1234567", id="camel-id-plain"),
        pytest.param("ID", 1234567, "1234567", id="upper-id-plain"),
        pytest.param("orders.order_no", 100234, "100234", id="related-no-plain"),
        pytest.param("birth_year", 1987, "1987", id="year-plain"),
        pytest.param("zip", 13529, "13529", id="zip-plain"),
        pytest.param("flag", True, "예", id="bool-not-a-number"),
    ],
)
def test_numbers_in_unmapped_columns_are_grouped_unless_named_as_ids(
    column: str, value: object, shown: str
) -> None:
    t = table([{column: value}])
    assert f'<td class="num">{shown}</td>' in t.html or f"<td>{shown}</td>" in t.html
    assert t.text.splitlines()[1].strip() == shown


def test_counts_of_a_real_query_are_grouped_and_ids_are_not(shop, sample_db: Path) -> None:  # type: ignore[no-untyped-def]
    """Unmapped columns of a real result (an aggregate and an id the mapping does not know
    under its alias) read as the sample holds them: the count grouped, the id plain."""
    df = shop.sql(
        "SELECT COUNT(*) AS n, MAX(customer_id) AS last_customer_id, SUM(amount) AS paid "
        "FROM payments"
    )
    with sqlite3.connect(sample_db) as conn:
        n, last, paid = conn.execute(
            "SELECT COUNT(*), MAX(customer_id), SUM(amount) FROM payments"
        ).fetchone()
    assert n >= 1000 and last >= 1000  # both would show a separator if grouped
    t = table(df)
    assert t.text.splitlines()[1].split() == [f"{n:,}", str(last), f"{paid:,}"]
    assert f">{n:,}</td>" in t.html and f">{last}</td>" in t.html
