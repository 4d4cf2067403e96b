"""SQL cells in a real JupyterLab (Debian's Chromium through Playwright): the %%mysql grid
(page, search, CSV download, pii masked) and SQL highlighting of %%mysql/%%platform cells.

A JupyterLab of this module's own (fresh root, settings, workspaces; fixtures of
tests/test_browser.py instantiated again here), waits on page state, never on sleeps. The
oracle is sqlite3 on the test's own copy of the sample.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

from playwright.sync_api import expect

from hybridwb.render import mask
from tests.test_browser import (  # the module-scoped fixtures run again for this module
    SETUP,
    SHOTS,
    _notebook,
    _open_and_run,
    _output,
    browser,
    lab,
    project,
    pytestmark,
)

__all__ = ["browser", "lab", "project", "pytestmark"]

QUERY = "SELECT customer_id, name, grade, city FROM customers ORDER BY customer_id LIMIT 30"


def _oracle(project: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(project / ".hybridwb" / "sample.db") as db:
        return db.execute(sql).fetchall()


def test_mysql_grid_pages_searches_and_downloads_the_csv(browser, lab: dict, project: Path) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(project, [SETUP, f"%%mysql -o r\n{QUERY}"])
    page = _open_and_run(browser, lab, nb)
    out = _output(page, 1)
    info = out.locator(".dt-info")
    expect(info).to_contain_text("1 to 10 of 30")  # paged: 10 of the 30 rows at a time
    expect(out).to_contain_text("30 rows ·")
    assert "cut at" not in out.inner_text()
    truth = _oracle(project, QUERY)

    with page.expect_download() as download:
        out.locator("button:has-text('CSV')").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    assert rows[0] == ["customer_id", "name", "grade", "city"]
    assert len(rows) == 31
    for got, (cid, name, grade, city) in zip(rows[1:], truth, strict=True):
        # the CSV is what the grid shows: every row, the pii name masked, the rest as stored
        assert got == [str(cid), mask(name), grade, city or ""]
        assert name not in text
    grid_cells = out.locator("table.dataTable tbody tr").first.locator("td")
    expect(grid_cells.nth(1)).to_have_text(mask(truth[0][1]))

    vip = sum(1 for row in truth if row[2] == "VIP")
    out.locator(".dt-search input").fill("VIP")
    expect(info).to_contain_text(f"of {vip} entries")
    out.screenshot(path=str(SHOTS / "05-mysql-grid.png"))
    page.context.close()


_TOKENS = """(index) => Object.fromEntries(
  window.jupyterapp.shell.currentWidget.content.widgets[index].editor.getTokens()
    .map(t => [t.value, t.type]))"""

_COLOR_OF = """([index, word]) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[index];
  const walker = document.createTreeWalker(cell.node.querySelector('.cm-content'), NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.textContent.includes(word)) { return getComputedStyle(n.parentElement).color; }
  }
  return null;
}"""


def test_sql_cells_are_highlighted_as_sql(browser, lab: dict, project: Path) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(
        project,
        [
            SETUP,
            "%%mysql\nSELECT customer_id FROM customers WHERE grade = 'VIP'",
            "%%platform\nSELECT name FROM message_templates",
            "import os\nSELECT = 'x'",
        ],
    )
    page = _open_and_run(browser, lab, nb)
    mimes = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => c.model.mimeType)"
    )
    assert mimes[1:] == ["text/x-mysql", "text/x-pgsql", "text/x-ipython"]
    # the editor's own syntax tree: SQL keywords in the SQL cells, a plain name in Python
    for index in (1, 2):
        page.wait_for_function(f"() => ({_TOKENS})({index})['SELECT'] === 'Keyword'")
        assert page.evaluate(_TOKENS, index)["FROM"] == "Keyword"
    assert page.evaluate(_TOKENS, 3)["SELECT"] == "VariableName"
    # and what a person sees: SQL keywords in the keyword colour, as Python's `import`
    keyword = page.evaluate(_COLOR_OF, [3, "import"])
    for index in (1, 2):
        assert page.evaluate(_COLOR_OF, [index, "SELECT"]) == keyword
        assert page.evaluate(_COLOR_OF, [index, "FROM"]) == keyword
    assert page.evaluate(_COLOR_OF, [3, "SELECT"]) != keyword

    # removing the magic gives the cell back to Python, adding it makes it SQL again
    page.evaluate(
        "() => { const m = window.jupyterapp.shell.currentWidget.content.widgets[1].model;"
        " m.sharedModel.setSource('SELECT = 1'); }"
    )
    page.wait_for_function(f"() => ({_TOKENS})(1)['SELECT'] === 'VariableName'")
    page.evaluate(
        "() => { const m = window.jupyterapp.shell.currentWidget.content.widgets[3].model;"
        " m.sharedModel.setSource('%%mysql\\nSELECT 1'); }"
    )
    page.wait_for_function(f"() => ({_TOKENS})(3)['SELECT'] === 'Keyword'")
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(2).screenshot(
        path=str(SHOTS / "06-sql-cell.png")
    )
    page.context.close()
