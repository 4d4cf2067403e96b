"""The %%mysql result grid, its summary line and the chart helper, through a real
InteractiveShell on the sample; values are checked against sqlite3 on the same file."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from hybridwb import grid
from hybridwb.errors import ValidationError
from hybridwb.grid import display_frame, summary
from tests.conftest import install_sample_mappings
from tests.test_magics import RaisingShell


@pytest.fixture
def shell(sample_db: Path, tmp_path: Path) -> RaisingShell:
    sh = RaisingShell()
    home = tmp_path / ".hybridwb"
    home.mkdir()
    (home / "sample.db").write_bytes(sample_db.read_bytes())
    install_sample_mappings(tmp_path)  # name, phone, email, birth_date are pii
    sh.run_cell("%load_ext hybridwb")
    yield sh
    sh.run_cell("%unload_ext hybridwb")
    InteractiveShell.clear_instance()


def oracle(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as db:
        return db.execute(sql).fetchall()


def forms(value: str) -> set[str]:
    """A value as it may appear in HTML: raw, or JSON-escaped (the grid's data is JSON)."""
    return {value, json.dumps(value)[1:-1]}


def test_grid_masks_pii_columns_but_the_frame_keeps_the_values(
    shell: RaisingShell, tmp_path: Path
) -> None:
    shell.run_cell(
        "%%mysql -o r\nSELECT customer_id, name, phone, grade FROM customers ORDER BY customer_id LIMIT 20"
    )
    truth = oracle(
        tmp_path,
        "SELECT customer_id, name, phone, grade FROM customers ORDER BY customer_id LIMIT 20",
    )
    frame = shell.user_ns["r"]
    kept = frame.astype(object).where(frame.notna(), None)
    assert list(kept.itertuples(index=False, name=None)) == truth  # values kept
    html = frame._repr_html_()
    text = repr(frame)
    for _, name, phone, grade in truth:
        for value in filter(None, (name, phone)):
            assert not any(form in html for form in forms(value)), "pii reached the grid"
            assert value not in text, "a pii value reached the text repr"
        assert grade in html
        assert any(form in html for form in forms(name[0] + "*" * min(len(name) - 1, 8)))


def test_grid_is_sortable_searchable_and_offline(shell: RaisingShell) -> None:
    first = shell.run_cell("%%mysql\nSELECT grade, COUNT(*) AS n FROM customers GROUP BY grade")
    grid._init_sent = False  # as in a new kernel
    html = first.result._repr_html_()
    assert "csvHtml5" in html and '"searching"' not in html  # CSV button, default search on
    # offline: the DataTables bundle is inline, nothing is loaded from a URL
    assert "_itables_" in html and "injectModule" in html
    assert not re.search(r"<script[^>]+src=|import\s+[^;]*https?://", html)
    again = first.result._repr_html_()
    assert "injectModule" not in again, "the bundle is sent once per kernel"


@pytest.mark.parametrize(
    ("cell", "rows", "cut"),
    [
        ("%%mysql --limit 5\nSELECT customer_id FROM customers LIMIT 3", 3, False),
        ("%%mysql --limit 5\nSELECT customer_id FROM customers", 5, True),
        ("%%mysql\nSELECT customer_id FROM customers WHERE customer_id = 1", 1, False),
    ],
    ids=["limit-not-reached", "limit-cuts", "one-row"],
)
def test_summary_says_cut_only_when_rows_were_cut(
    shell: RaisingShell, cell: str, rows: int, cut: bool
) -> None:
    frame = shell.run_cell(cell).result
    note = frame._grid_note
    assert len(frame) == rows
    assert note.startswith("1 row ·" if rows == 1 else f"{rows} rows ·")
    assert re.search(r"· [\d,.]+ ms", note)
    assert ("cut at" in note) is cut
    if cut:  # the user's own --limit cut them: named, not advised
        assert note.endswith("cut at 5 rows (--limit 5)"), note
    assert note in repr(frame)


def test_platform_results_show_a_real_time(shell: RaisingShell) -> None:
    frame = shell.run_cell("%%platform\nSELECT name FROM message_templates").result
    assert float(re.search(r"· ([\d,.]+) ms", frame._grid_note).group(1)) > 0


def test_display_frame_shows_whole_numbers_and_empty_nulls() -> None:
    df = pd.DataFrame(
        {"amount": [39800.0, None], "memo": ["a", None], "phone": ["01012345678", None]}
    )
    shown = display_frame(df, {"phone"})
    assert list(shown["amount"]) == [39800, ""]
    assert isinstance(shown["amount"][0], int)  # still a number: the grid sorts it as one
    assert list(shown["memo"]) == ["a", ""]
    assert list(shown["phone"]) == ["0********", ""]
    assert df["phone"][0] == "01012345678"  # the caller's frame is untouched


def test_summary_line() -> None:
    assert summary({"elapsed_ms": 3.25}, 1) == "1 row · 3.2 ms"
    assert summary({"elapsed_ms": 1200, "truncated": True}, 5) == (
        "5 rows · 1,200.0 ms · cut at 5 rows (add a WHERE, or pass --limit N)"
    )
    assert summary({"elapsed_ms": 2, "truncated": True, "limit": 5}, 5) == (
        "5 rows · 2.0 ms · cut at 5 rows (--limit 5)"
    )


def test_chart_is_one_line_and_draws_the_counts(shell: RaisingShell, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    frame = shell.run_cell(
        "%%mysql\nSELECT grade, COUNT(*) AS n FROM customers GROUP BY grade ORDER BY grade"
    ).result
    ax = grid.chart(frame)
    truth = oracle(tmp_path, "SELECT grade, COUNT(*) FROM customers GROUP BY grade ORDER BY grade")
    assert [p.get_height() for p in ax.patches] == [n for _, n in truth]
    assert [t.get_text() for t in ax.get_xticklabels()] == [g for g, _ in truth]
    with pytest.raises(ValidationError, match="not a column"):
        grid.chart(frame, x="nope")
    with pytest.raises(ValidationError, match="kind must be"):
        grid.chart(frame, kind="radar")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_platform_results_mask_recipients_not_the_sources_pii_names(
    shell: RaisingShell, tmp_path: Path
) -> None:
    """`name` is pii in the source's mapping, not in the store: template names stay readable,
    while a store recipient is masked."""
    frame = shell.run_cell("%%platform\nSELECT name FROM message_templates ORDER BY name").result
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as store:
        names = [n for (n,) in store.execute("SELECT name FROM message_templates ORDER BY name")]
    html = frame._repr_html_()
    assert names and all(any(f in html for f in forms(n)) for n in names)
    shell.run_cell("phone = '01012345678'")
    frame = shell.run_cell("%%platform\nSELECT :phone AS recipient").result
    assert "01012345678" not in frame._repr_html_() and frame["recipient"][0] == "01012345678"
