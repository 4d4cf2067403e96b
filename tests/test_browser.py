"""The widgets in a real JupyterLab, worked as a person would, in Debian's Chromium.

Chromium comes from apt (`scripts/services.sh` installs it as root); Playwright drives it
through `executable_path` and never downloads a browser. Without Chromium these tests are
skipped with that reason. Screenshots land in reports/screenshots/.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.conftest import REPO

CHROMIUM = os.environ.get("HYBRIDWB_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "reports" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"Chromium is not installed at {CHROMIUM}: run `apt-get install chromium` (scripts/services.sh does it as root)",
    ),
]

CELLS = [
    "%load_ext hybridwb",
    "import hybridwb.widgets as W\nsearch_widget = W.search(wb, 'customers')\nsearch_widget",
    "editor = W.mapping_editor(wb, 'customers')\neditor",
    "preview_widget = W.preview('#{고객명}님 안녕하세요', wb)\npreview_widget",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, sample_db: Path) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("lab")
    (root / ".hybridwb").mkdir()
    (root / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    (root / "mappings").mkdir()
    shutil.copy(
        REPO / "mappings" / "table-mappings.json", root / "mappings" / "table-mappings.json"
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbformat.write(nb, root / "widgets.ipynb")
    shutil.copy(REPO / "notebooks" / "guides" / "01_getting_started.ipynb", root / "guide.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRIDWB_", "MYSQL_", "SUPABASE_"))
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start: " + (proc.stderr.read() if proc.stderr else ""))
    yield {"url": url, "token": token, "root": root}
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(lab: dict) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(f"{lab['url']}/lab/tree/widgets.ipynb?token={lab['token']}")
        pg.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible")
        pg.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-KernelStatus-success, .jp-Toolbar-kernelName",
            timeout=60_000,
        )
        time.sleep(2)
        pg.click("text=Run", timeout=30_000)
        pg.click("text=Run All Cells")
        pg.wait_for_selector(".jp-OutputArea-output .widget-text input", timeout=120_000)
        pg.wait_for_selector("textarea.widget-textarea, .widget-textarea textarea", timeout=120_000)
        pg.screenshot(path=str(SHOTS / "01-notebook.png"), full_page=True)
        yield pg
        browser.close()


def _output(page, index: int):  # type: ignore[no-untyped-def]
    return page.locator(".jp-Cell").nth(index).locator(".jp-OutputArea-output")


def test_search_widget_in_the_browser(page) -> None:  # type: ignore[no-untyped-def]
    out = _output(page, 1)
    term = out.locator("input[placeholder='이름, 휴대폰번호, 이메일, ID']")
    term.fill("김")
    term.press("Enter")
    out.locator("table.hybridwb").first.wait_for()
    assert "고객명" in out.locator("table.hybridwb").first.inner_text()
    first_id = out.locator("table.hybridwb tbody tr td").first.inner_text()
    out.locator("button:has-text('다음')").click()
    page.wait_for_function(
        "([el, old]) => el.querySelector('table.hybridwb tbody tr td')?.innerText !== old",
        arg=[out.element_handle(), first_id],
    )
    second_id = out.locator("table.hybridwb tbody tr td").first.inner_text()
    assert int(second_id) > int(first_id)
    out.locator("select[multiple]").select_option(index=0)
    out.locator("button:has-text('변수 보기')").click()
    out.locator("text=변수").last.wait_for()
    page.wait_for_function("el => el.innerText.includes('고객ID')", arg=out.element_handle())
    out.screenshot(path=str(SHOTS / "02-search.png"))
    assert "고객명" in out.inner_text()


def test_mapping_editor_in_the_browser(page, lab: dict) -> None:  # type: ignore[no-untyped-def]
    out = _output(page, 2)
    name_row = out.locator(".widget-hbox").filter(has=page.locator("label", has_text="name")).first
    name_input = name_row.locator("input[type='text']").first
    name_input.fill("회원명")
    name_input.press("Tab")
    city_row = out.locator(".widget-hbox").filter(has=page.locator("label", has_text="city")).first
    city_row.locator("input[type='checkbox']").first.check()
    time.sleep(0.5)
    out.locator("button:has-text('저장')").click()
    page.wait_for_function(
        "el => el.innerText.includes('saved customers')", arg=out.element_handle()
    )
    out.screenshot(path=str(SHOTS / "03-mapping-editor.png"))
    saved = json.loads(
        (lab["root"] / "mappings" / "table-mappings.json").read_text(encoding="utf-8")
    )
    assert saved["customers"]["fields"]["name"]["displayName"] == "회원명"
    assert saved["customers"]["fields"]["city"]["filterable"] is True


def test_variable_preview_in_the_browser(page) -> None:  # type: ignore[no-untyped-def]
    out = _output(page, 3)
    editor = out.locator("textarea")
    editor.fill("#{회원명}님, {{ 등급 }} 회원 혜택 안내입니다.")
    page.wait_for_function(
        "el => el.innerText.includes('customers.grade')", arg=out.element_handle()
    )
    assert (
        "customers.name" in out.inner_text()
    )  # 회원명 is the display name saved by the editor test
    box = out.locator("input[placeholder='이름, 전화번호, 이메일, ID']")
    box.fill("7")
    out.locator("button:has-text('찾기')").click()
    page.wait_for_function(
        "el => el.querySelectorAll('select option').length > 5", arg=out.element_handle()
    )
    selects = out.locator("select")
    customer_select = selects.nth(selects.count() - 1)
    customer_select.select_option(index=0)
    out.locator("pre.hybridwb-rendered").wait_for()
    text = out.locator("pre.hybridwb-rendered").inner_text()
    assert "님," in text and "회원 혜택 안내입니다." in text
    assert "bytes (EUC-KR)" in out.inner_text()
    out.screenshot(path=str(SHOTS / "04-variable-preview.png"))


def test_a_guide_runs_in_jupyterlab(page, lab: dict) -> None:  # type: ignore[no-untyped-def]
    guide = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
    guide.set_default_timeout(60_000)
    guide.goto(f"{lab['url']}/lab/tree/guide.ipynb?token={lab['token']}")
    guide.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible")
    time.sleep(2)
    guide.click("text=Run", timeout=30_000)
    guide.click("text=Run All Cells")
    # JupyterLab renders only the cells in view, so check the status line while it shows
    guide.wait_for_function(
        "document.body.innerText.includes('hybridwb: source SQLite') "
        "&& document.body.innerText.includes('embedded sample, read-only')"
    )
    guide.wait_for_function("document.querySelectorAll('.jp-OutputArea-output table').length >= 3")
    assert (
        not guide.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        .filter(has_text="Error")
        .count()
    )
    guide.screenshot(path=str(SHOTS / "00-guide.png"), full_page=True)
    guide.close()
