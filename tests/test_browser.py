"""The widgets in a real JupyterLab, worked as a person would, in Debian's Chromium.

Chromium comes from apt (`scripts/services.sh` installs it as root); Playwright drives it
through `executable_path` and never downloads a browser. Without Chromium these tests are
skipped with that reason. Screenshots land in reports/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
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
from playwright.sync_api import expect

from tests._guides import GUIDES, copy_cleared
from tests.conftest import REPO

expect.set_options(timeout=60_000)  # page state, not sleeps; generous on a loaded machine
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
        not Path(CHROMIUM).exists() and os.environ.get("HYBRIDWB_REQUIRE_BROWSER") != "1",
        reason=f"Chromium is not installed at {CHROMIUM}: run `apt-get install chromium` (scripts/services.sh does it as root)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A JupyterLab of its own: fresh root, settings, workspaces and runtime folders, so
    no state from the home folder or from another module reaches these tests."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRIDWB_", "MYSQL_", "SUPABASE_", "JUPYTER"))
    }
    env |= {
        "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
    }
    # no "news?" toast over the widgets (and their screenshots), no request to a news site
    notification = base / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8"
    )
    log = (base / "server.log").open("w")
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
            "--LabApp.expose_app_in_browser=True",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "JupyterLab did not start: "
                        + (base / "server.log").read_text(errors="replace")[-2000:]
                    )
                time.sleep(0.3)
        yield {"url": url, "token": token, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def project(lab: dict, sample_db: Path, request: pytest.FixtureRequest) -> Path:
    """This test's own folder under the lab root: its own sample copy and mapping file
    (the kernel's working directory is the notebook's folder), so no test sees another's
    saves."""
    folder = lab["root"] / request.node.name.replace("[", "_").replace("]", "")
    (folder / ".hybridwb").mkdir(parents=True)
    (folder / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    (folder / "mappings").mkdir()
    shutil.copy(
        REPO / "mappings" / "table-mappings.json", folder / "mappings" / "table-mappings.json"
    )
    return folder


def _notebook(folder: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path = folder / "widgets.ipynb"
    nbformat.write(nb, path)
    return path


def _open_and_run(browser, lab: dict, notebook: Path):  # type: ignore[no-untyped-def]
    """A fresh page on the notebook; runs every cell once the kernel is idle and waits
    until the kernel is idle again with every cell executed."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    # hermetic: nothing leaves the machine; what a page tried to fetch elsewhere is kept
    # for the test to assert on (the grid's library must be inline, not from a CDN)
    external: list[str] = []

    def block(route) -> None:  # type: ignore[no-untyped-def]
        external.append(route.request.url)
        route.abort()

    context.route(re.compile(rf"^(?!{re.escape(lab['url'])}/)(?!data:|blob:)"), block)
    page = context.new_page()
    page.external_requests = external  # type: ignore[attr-defined]
    page.set_default_timeout(90_000)
    rel = notebook.relative_to(lab["root"]).as_posix()
    # a workspace of its own, reset: no tab of another test is restored beside this one
    workspace = notebook.parent.name
    page.goto(f"{lab['url']}/lab/workspaces/{workspace}/tree/{rel}?token={lab['token']}&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible")
    page.wait_for_function(
        "() => { const w = window.jupyterapp?.shell?.currentWidget;"
        " return w?.sessionContext?.session?.kernel?.status === 'idle'; }"
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const cells = w.content.widgets;"
        " return w.sessionContext.session.kernel.status === 'idle'"
        " && cells.every(c => c.model.type !== 'code' || c.model.executionCount); }"
    )
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert not errors.filter(has_text="Error").count(), errors.all_inner_texts()
    return page


def _output(page, index: int):  # type: ignore[no-untyped-def]
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    return panel.locator(".jp-Cell").nth(index).locator(".jp-OutputArea-output")


SETUP = "%load_ext hybridwb\nimport hybridwb.widgets as W"


def test_search_widget_pages_and_shows_variables(browser, lab: dict, project: Path) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(project, [SETUP, "W.search(wb, 'customers')"])
    page = _open_and_run(browser, lab, nb)
    out = _output(page, 1)
    term = out.locator("input[placeholder='이름, 휴대폰번호, 이메일, ID']")
    term.fill("김")
    term.press("Enter")
    table = out.locator("table.hybridwb").first
    expect(table).to_contain_text("고객명")
    first_id = out.locator("table.hybridwb tbody tr td").first.inner_text()
    out.locator("button:has-text('다음')").click()
    expect(out.locator("table.hybridwb tbody tr td").first).not_to_have_text(first_id)
    second_id = out.locator("table.hybridwb tbody tr td").first.inner_text()
    assert int(second_id) > int(first_id)
    first_pick = out.locator("input[type=checkbox]").first  # a row is picked by its checkbox
    first_pick.check()
    expect(first_pick).to_be_checked()
    out.locator("button:has-text('변수 보기')").click()
    expect(out).to_contain_text("고객ID")
    out.screenshot(path=str(SHOTS / "02-search.png"))
    page.context.close()


def test_mapping_editor_saves_to_the_file(browser, lab: dict, project: Path) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(project, [SETUP, "W.mapping_editor(wb, 'customers')"])
    page = _open_and_run(browser, lab, nb)
    out = _output(page, 1)
    row = "xpath=ancestor::div[contains(concat(' ', @class, ' '), ' widget-hbox ')][1]"
    # each field row: name, display name, type, role, filterable, searchable, pii, sample
    name_input = out.locator("span[title='name']").locator(row).locator("input[type=text]")
    name_input.fill("회원명")
    name_input.press("Tab")
    city_row = out.locator("span[title='city']").locator(row)
    city_box = city_row.locator("input[type=checkbox]").first
    city_box.check()
    expect(city_box).to_be_checked()
    out.locator("button:has-text('저장')").click()
    expect(out).to_contain_text("saved customers")
    out.screenshot(path=str(SHOTS / "03-mapping-editor.png"))
    saved = json.loads((project / "mappings" / "table-mappings.json").read_text(encoding="utf-8"))
    assert saved["customers"]["fields"]["name"]["displayName"] == "회원명"
    assert saved["customers"]["fields"]["city"]["filterable"] is True
    page.context.close()


def test_variable_preview_renders_a_chosen_customer(browser, lab: dict, project: Path) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(project, [SETUP, "W.preview('안녕하세요', wb)"])
    page = _open_and_run(browser, lab, nb)
    out = _output(page, 1)
    out.locator("textarea").fill("#{고객명}님, {{ 등급 }} 회원 혜택 안내입니다.")
    expect(out).to_contain_text("customers.grade")
    expect(out).to_contain_text("customers.name")
    out.locator("input[placeholder='이름, 전화번호, 이메일, ID']").fill("7")
    out.locator("button:has-text('찾기')").click()
    customer_select = out.get_by_label("고객", exact=True)
    expect(customer_select.locator("option").first).to_be_attached()  # found customer 7
    customer_select.select_option(index=0)
    rendered = out.locator("div.hybridwb-bubble").first
    expect(rendered).to_contain_text("회원 혜택 안내입니다.")
    assert "님," in rendered.inner_text()
    expect(out).to_contain_text("bytes (EUC-KR)")
    out.screenshot(path=str(SHOTS / "04-variable-preview.png"))
    page.context.close()


def test_a_guide_runs_in_jupyterlab(browser, lab: dict, project: Path) -> None:  # type: ignore[no-untyped-def]
    guide = project / "guide.ipynb"
    copy_cleared(GUIDES / "01_getting_started.ipynb", guide)  # only this run's outputs
    page = _open_and_run(browser, lab, guide)
    # JupyterLab renders only the cells in view: check the kernel-side outputs in the model
    outputs = page.evaluate(
        "() => JSON.stringify(window.jupyterapp.shell.currentWidget.content.model.toJSON())"
    )
    assert "hybridwb: source SQLite" in outputs and "embedded sample, read-only" in outputs
    assert '"output_type":"error"' not in outputs, "a guide cell raised"
    page.screenshot(path=str(SHOTS / "00-guide.png"), full_page=True)
    page.context.close()
