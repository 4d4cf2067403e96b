"""The analyst's day in a real JupyterLab (Debian's Chromium through Playwright): the %%mysql
grid (page, search, CSV download, pii masked), SQL highlighting of %%mysql/%%platform cells,
every widget twice (pii masked, Korean kept whole, a screenshot each), a target built in the
visual builder, search picks that keep their table, a guide opened from its own folder.

A JupyterLab of this module's own (fresh root, settings, workspaces; fixtures of
tests/test_browser.py instantiated again here), waits on page state, never on sleeps. The
oracle is sqlite3 on the test's own copy of the sample.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path
from urllib.parse import unquote

from playwright.sync_api import expect

from hybridwb.render import mask
from tests._guides import GUIDES, copy_cleared
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
    assert page.external_requests == []  # the grid's library came inline, offline
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


TARGET = {"table": "customers", "where": {"field": "grade", "op": "eq", "value": "VIP"}}
WIDGETS = {
    "schema-browser": "x = W.schema_browser(wb)\nx = W.schema_browser(wb)\nx.show('customers')\nx",
    "mapping-editor": "x = W.mapping_editor(wb, 'customers')\nW.mapping_editor(wb, 'customers')",
    "search": "x = W.search(wb, 'customers')\nW.search(wb, 'customers')",
    "target-builder": "x = W.target_builder(wb)\nW.target_builder(wb)",
    "target-preview": f"x = W.target_preview(wb, {TARGET!r})\nx = W.target_preview(wb, {TARGET!r})\nx.run()\nx",
    "variable-preview": "x = W.preview('#{고객명}님, 안녕하세요', wb)\nW.preview('#{고객명}님, 안녕하세요', wb)",
    "monitor": "x = W.monitor(wb)\nW.monitor(wb)",
}


def test_every_widget_twice_with_pii_masked_and_korean_kept_whole(
    browser, lab: dict, project: Path
) -> None:  # type: ignore[no-untyped-def]
    """Each constructor called twice in one kernel; in every widget as drawn, no customer's
    name, phone or e-mail appears whole; a Korean table cell keeps its words whole."""
    nb = _notebook(project, [SETUP, *WIDGETS.values()])
    page = _open_and_run(browser, lab, nb)  # fails on any error output
    outs = {name: _output(page, i + 1) for i, name in enumerate(WIDGETS)}
    search = outs["search"]
    search.locator("input[placeholder='이름, 휴대폰번호, 이메일, ID']").fill("김")
    search.locator("input[placeholder='이름, 휴대폰번호, 이메일, ID']").press("Enter")
    expect(search.locator("table.hybridwb tbody tr").first).to_be_visible()
    picker = outs["variable-preview"]
    picker.locator("input[placeholder='이름, 전화번호, 이메일, ID']").fill("김")
    picker.locator("button:has-text('찾기')").click()
    expect(picker.get_by_label("고객", exact=True).locator("option").first).to_be_attached()
    expect(outs["schema-browser"].locator("table.hybridwb").last).to_contain_text("customers")
    expect(outs["target-preview"]).to_contain_text("대상")
    expect(outs["target-builder"]).to_contain_text("대상")

    with sqlite3.connect(project / ".hybridwb" / "sample.db") as db:
        personal = {
            v
            for row in db.execute("SELECT name, phone, email FROM customers")
            for v in row
            if v and len(v) >= 3
        }
    no_news = page.get_by_role("button", name="No", exact=True)
    if no_news.count():
        no_news.first.click()  # the "news?" toast would cover the screenshots
    page.set_viewport_size({"width": 1400, "height": 2400})  # whole widgets in the shots
    for index, (name, out) in enumerate(outs.items(), start=1):
        text = out.inner_text() + " ".join(
            out.locator("option").evaluate_all("els => els.map(e => e.textContent)")
        )
        leaked = sorted(v for v in personal if v in text)
        assert not leaked, f"{name} shows personal data unmasked: {leaked[:3]}"
        out.first.screenshot(path=str(SHOTS / f"1{index}-{name}.png"))

    # every button's label is read whole, not cut to "대상으로 사용 (use ..."
    cut = page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea"
        " :is(.widget-button, .widget-toggle-button)"
    ).evaluate_all(
        "els => els.filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.textContent.trim())"
    )
    assert not cut, f"button labels cut: {cut}"

    cell = search.locator("table.hybridwb tbody td", has_text="김").first
    assert cell.evaluate("td => getComputedStyle(td).wordBreak") == "keep-all"
    # and a Latin word is not cut inside either (one line box for "BRONZE", not "BRONZ/E")
    grade = search.locator("table.hybridwb tbody td", has_text="BRONZE").first
    lines = grade.evaluate(
        "td => { const r = document.createRange(); r.selectNodeContents(td);"
        " return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }"
    )
    assert lines == 1
    page.context.close()


def test_a_target_built_in_the_builder_counts_what_direct_sql_counts(
    browser, lab: dict, project: Path
) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(project, [SETUP, "b = W.target_builder(wb)\nb"])
    page = _open_and_run(browser, lab, nb)
    out = _output(page, 1)
    out.locator("button:has-text('조건 추가')").first.click()
    row = out.locator("input[placeholder='값 (value)']").last.locator(
        "xpath=ancestor::div[contains(concat(' ', @class, ' '), ' widget-hbox ')][1]"
    )
    selects = row.locator("select")
    selects.nth(0).select_option(label="등급 (grade)")
    selects.nth(1).select_option(label="= (같음)")
    value = row.locator("input[placeholder='값 (value)']")
    value.fill("GOLD")
    value.press("Enter")
    expected = _oracle(
        project, "SELECT COUNT(*) FROM customers WHERE grade = 'GOLD' AND marketing_opt_in = 1"
    )[0][0]
    expect(out).to_contain_text(f"대상 {expected:,}명")
    page.context.close()


def test_search_picks_keep_their_table_when_the_table_changes(
    browser, lab: dict, project: Path
) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(project, [SETUP, "W.search(wb, 'customers')"])
    page = _open_and_run(browser, lab, nb)
    out = _output(page, 1)
    term = out.locator("input[placeholder='이름, 휴대폰번호, 이메일, ID']")
    term.fill("김")
    term.press("Enter")
    expect(out.locator("table.hybridwb tbody tr").first).to_be_visible()
    box = out.locator("input[type=checkbox]").first
    box.check()
    expect(out).to_contain_text("1 from customers")
    table = out.locator("select").first
    other = [o for o in table.locator("option").all_inner_texts() if "customers" not in o]
    assert other, "the sample maps more than one table"
    table.select_option(label=other[0])
    expect(out).not_to_contain_text("고객명")  # the customers page is gone
    expect(out).to_contain_text("1 from customers")  # the pick still names its own table
    out.locator("button:has-text('대상으로 사용')").click()
    expect(out).to_contain_text("1명을 대상으로 선택했습니다 (customers)")
    page.context.close()


def test_a_guide_opened_from_its_folder_uses_the_projects_mapping(
    browser, lab: dict, project: Path
) -> None:  # type: ignore[no-untyped-def]
    """The kernel starts in notebooks/guides/; the project root (pyproject.toml with
    [tool.hybridwb]) two folders up gives the mapping: the guide's template is 100 % mapped."""
    (project / "pyproject.toml").write_text("[tool.hybridwb]\n", encoding="utf-8")
    guides = project / "notebooks" / "guides"
    guides.mkdir(parents=True)
    guide = guides / "04_variable_mapping.ipynb"
    copy_cleared(GUIDES / guide.name, guide)  # only this run's outputs count
    page = _open_and_run(browser, lab, guide)
    outputs = page.evaluate(
        "() => JSON.stringify(window.jupyterapp.shell.currentWidget.content.model.toJSON())"
    )
    assert "완성도 100%" in outputs
    assert '"output_type":"error"' not in outputs
    # no second project grew in the guide's folder
    assert not (guides / ".hybridwb").exists() and not (guides / "mappings").exists()
    page.context.close()


RUN_CELL = """wb.templates.create("브라우저 안내", "#{고객명}님 안녕하세요", message_type="SMS")
wb.workflows.create("browser-run", target_config={"table": "customers", "where": {"field": "grade",
    "op": "eq", "value": "VIP"}}, message_config={"template": "브라우저 안내", "mode": "strict"})
final = wb.workflows.run("browser-run")"""


def test_a_run_in_the_lab_shows_a_live_bar_and_links_its_report(
    browser, lab: dict, project: Path
) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(project, [SETUP, RUN_CELL, "final['status'], final['sent_count']"])
    page = _open_and_run(browser, lab, nb)
    outputs = _output(page, 1)
    out = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(1)
    out = out.locator(".jp-OutputArea").first  # the cell's outputs: the bar, then the link
    bar = out.locator(".widget-hprogress .progress-bar").first
    expect(bar).to_be_attached()  # tqdm.auto: a widget bar, not text
    expect(out).to_contain_text("browser-run")
    expect(out).to_contain_text("100%")
    link = out.locator("a:has-text('.html')")
    href = link.get_attribute("href") or ""  # JupyterLab resolves it to the /files/ URL
    assert "/files/" in href, href
    served = unquote(href.split("/files/", 1)[1].split("?", 1)[0])
    assert (lab["root"] / served).is_file() and served.endswith(".html"), served
    with sqlite3.connect(project / ".hybridwb" / "platform.db") as store:
        status, sent = store.execute(
            "SELECT status, sent_count FROM workflow_runs ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    expect(out).to_contain_text(f"run {status}")
    expect(_output(page, 2)).to_contain_text(f"('{status}', {sent})")
    kinds = outputs.evaluate_all("els => els.map(e => e.dataset.mimeType || 'widget')")
    assert "application/vnd.jupyter.stderr" not in kinds, kinds
    out.first.screenshot(path=str(SHOTS / "07-run-progress.png"))
    page.context.close()
