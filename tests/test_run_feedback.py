"""Feedback during and after a run: a live bar and a report link in the notebook, plain-text
progress in the executed notebook, and a report that shows what was sent, to whom it was
meant, what was excluded (downloadable, masked), and says when most targets were excluded.

Real kernels (papermill/nbclient) on the sample; the oracle is sqlite3 on the store's file."""

from __future__ import annotations

import ast
import base64
import csv
import datetime as dt
import html as html_lib
import io
import json
import os
import re
import sqlite3
from pathlib import Path

import nbformat
import pytest

import hybridwb
from hybridwb.workflows.report import MOST, render_html
from tests.test_workflows import TARGET, TEMPLATE, make_workflow

pytestmark = pytest.mark.slow


def _report_csv(text: str) -> list[list[str]]:
    match = re.search(r'href="data:text/csv;charset=utf-8;base64,([A-Za-z0-9+/=]+)"', text)
    assert match, "the report offers no exclusions download"
    data = base64.b64decode(match.group(1)).decode("utf-8").lstrip("\ufeff")
    return [row for row in csv.reader(io.StringIO(data)) if row]


def test_report_shows_template_target_and_a_masked_exclusions_download(
    shop, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    wf = make_workflow(shop)
    final = shop.workflows.run(wf["name"], progress=False)
    report = Path(final["report_path"]).read_text(encoding="utf-8")
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as store:
        skips = store.execute(
            "SELECT s.target_key, t.recipient, s.reason FROM run_skips s JOIN run_targets t "
            "ON t.run_id = s.run_id AND t.target_key = s.target_key "
            "WHERE replace(s.run_id, '-', '') = ? ORDER BY t.seq",
            (str(final["id"]).replace("-", ""),),
        ).fetchall()
        template = store.execute(
            "SELECT content FROM message_templates WHERE name = ?", (TEMPLATE,)
        ).fetchone()[0]
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as source:
        phones = [p for (p,) in source.execute("SELECT phone FROM customers") if p]
    assert skips, "the sample has targets without a phone: they are excluded"
    rows = _report_csv(report)
    assert rows[0] == ["target_key", "recipient", "reason"]
    assert [(k, r) for k, _, r in rows[1:]] == [(str(k), r) for k, _, r in skips]
    for phone in phones:
        assert phone not in report, "a phone number reached the report"
    pre = re.search(r'<pre class="template">(.*?)</pre>', report, re.S)
    assert pre and html_lib.unescape(pre.group(1)) == template
    target = re.search(r'<pre class="target">(.*?)</pre>', report, re.S)
    # the definition as written, each condition value masked whole (it may be a name)
    assert TARGET["where"]["value"] == ["VIP", "GOLD"]
    shown = {**TARGET, "where": {**TARGET["where"], "value": ["V**", "G***"]}}
    assert target and json.loads(html_lib.unescape(target.group(1))) == shown
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as store:
        stored = store.execute(
            "SELECT started_at, finished_at FROM workflow_runs WHERE replace(id, '-', '') = ?",
            (str(final["id"]).replace("-", ""),),
        ).fetchone()
    for label, value in zip(("started", "finished"), stored, strict=True):
        shown = re.search(rf"<th>{label}</th><td>([^<]+)</td>", report)
        assert shown, f"the report has no {label} time"
        assert dt.datetime.fromisoformat(shown.group(1)) == dt.datetime.fromisoformat(value)
    assert "<th>trigger</th><td>manual</td>" in report


def test_a_second_once_per_recipient_run_reports_most_excluded_with_masked_recipients(
    shop, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    wf = make_workflow(shop)
    config = {"template": TEMPLATE, "mode": "strict", "policy": {"once_per_recipient": True}}
    shop.workflows.update(wf["id"], message_config=config)
    first = shop.workflows.run(wf["name"], progress=False)
    second = shop.workflows.run(wf["name"], progress=False)
    report = Path(second["report_path"]).read_text(encoding="utf-8")
    assert "Most targets were excluded" in report
    assert "Most targets were excluded" not in Path(first["report_path"]).read_text("utf-8")
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as store:
        recipients = dict(
            store.execute(
                "SELECT target_key, recipient FROM run_targets WHERE replace(run_id, '-', '') = ?",
                (str(second["id"]).replace("-", ""),),
            ).fetchall()
        )
    rows = _report_csv(report)[1:]
    assert len(rows) == second["skipped_count"] > 0
    for key, shown, _reason in rows:
        real = recipients[key]
        if real:
            assert shown != real and real[-2:] == shown[-2:] and "*" in shown, (shown, real)


@pytest.mark.parametrize(
    ("targets", "skipped", "warns"),
    [(100, 60, True), (100, 50, True), (100, 37, False), (100, 0, False), (0, 0, False)],
    ids=["60-percent", "half", "37-percent", "none", "no-targets"],
)
def test_report_says_clearly_when_most_targets_were_excluded(
    targets: int, skipped: int, warns: bool
) -> None:
    run = {"id": "r1", "status": "succeeded", "target_count": targets, "skipped_count": skipped}
    text = render_html({"name": "w", "message_config": {"content": "hi"}}, run)
    assert ("Most targets were excluded" in text) is warns
    if skipped and not warns:
        assert f"{skipped} of {targets} targets excluded ({skipped} %)" in text
    assert MOST == 0.5


def test_executed_notebook_has_plain_text_progress(shop, capfd) -> None:  # type: ignore[no-untyped-def]
    wf = make_workflow(shop)
    final = shop.workflows.run(wf["name"])  # progress on: the terminal sees the kernel's bar
    assert final["status"] == "succeeded", final["error"]
    executed = nbformat.read(Path(final["report_path"]).with_suffix(".ipynb"), as_version=4)
    streams = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "stream"]
    assert not [o for o in streams if o.name == "stderr"], "a red stderr block in the notebook"
    progress = [o.text for o in streams if "target" in o.text and "100%" in o.text]
    assert progress, "no plain-text progress in the executed notebook"
    assert "100%" in capfd.readouterr().out


def test_run_in_a_notebook_shows_a_live_bar_and_links_the_report(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`wb.workflows.run` called in a real kernel: a tqdm.auto widget bar and a report link."""
    from nbclient import NotebookClient

    wf = make_workflow(shop)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import hybridwb\nwb = hybridwb.connect()"),
        nbformat.v4.new_code_cell(f"final = wb.workflows.run({wf['name']!r})\nfinal['status']"),
    ]
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = nb.cells[1].outputs
    kinds = [set(o.get("data", {})) for o in outputs]
    assert any("application/vnd.jupyter.widget-view+json" in k for k in kinds), kinds
    assert not [o for o in outputs if o.get("name") == "stderr"], outputs
    links = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    run_id = nb.cells[1].outputs[-1]["data"]["text/plain"]
    assert run_id == "'succeeded'"
    [link] = [h for h in links if "report:" in h]
    href = re.search(r'href="([^"]+)"', link).group(1)
    assert (tmp_path / href).is_file() and href.endswith(".html")
    # the kernel's own output (usually nothing; a loaded machine may get a shutdown warning)
    # is linked exactly when it was kept, and kept only when the kernel wrote something
    # (`test_an_empty_kernel_log_is_removed_and_a_written_one_kept`)
    logs = list((tmp_path / href).parent.glob("*.kernel.log"))
    assert all(p.stat().st_size for p in logs)
    assert ("kernel output" in link) == bool(logs), link


def test_an_empty_kernel_log_is_removed_and_a_written_one_kept(tmp_path: Path) -> None:
    from hybridwb.workflows.context import kept_log

    silent, spoke = tmp_path / "silent.kernel.log", tmp_path / "spoke.kernel.log"
    silent.write_bytes(b"")
    spoke.write_bytes(b"warning\n")
    assert kept_log(silent) is None and not silent.exists()
    assert kept_log(spoke) == spoke and spoke.read_bytes() == b"warning\n"
    assert kept_log(tmp_path / "never-written.kernel.log") is None


def _run_from_a_notebook(shop, tmp_path: Path, sitecustomize: str) -> list:  # type: ignore[no-untyped-def]
    """`wb.workflows.run` in a real kernel whose run kernels load `sitecustomize` (set on
    PYTHONPATH inside the notebook: only kernels started from then on see it); the outputs
    of the run cell, whose last one is the run's final dict."""
    from nbclient import NotebookClient

    wf = make_workflow(shop)
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    (noisy / "sitecustomize.py").write_text(sitecustomize, encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import hybridwb\nwb = hybridwb.connect()"),
        nbformat.v4.new_code_cell(
            f"import os\nos.environ['PYTHONPATH'] = {str(noisy)!r} + os.pathsep + "
            "os.environ.get('PYTHONPATH', '')"
        ),
        nbformat.v4.new_code_cell(
            f"final = wb.workflows.run({wf['name']!r})\n{{k: str(v) for k, v in final.items()}}"
        ),
    ]
    # ipykernel forwards its process's stderr into the notebook, except under pytest
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=env)
    return nb.cells[2].outputs


def _kernel_output_link(outputs: list, tmp_path: Path) -> Path:
    [line] = [
        o["data"]["text/html"]
        for o in outputs
        if "kernel output:" in o.get("data", {}).get("text/html", "")
    ]
    href = re.search(r'kernel output: <a href="([^"]+)"', line).group(1)
    return (tmp_path / html_lib.unescape(href)).resolve()


def test_the_run_kernels_own_stderr_stays_out_of_the_notebook_and_in_its_log(
    shop, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The run's kernel would inherit the notebook kernel's stderr, which ipykernel forwards
    into the cell: what the run kernel writes there while starting (here a sitecustomize)
    is not a red block in the notebook, but kept in a log beside the executed notebook,
    linked from the cell."""
    outputs = _run_from_a_notebook(
        shop, tmp_path, "import os\nos.write(2, b'CHILD-KERNEL-STDERR\\n')\n"
    )
    final = ast.literal_eval(outputs[-1]["data"]["text/plain"])
    assert final["status"] == "succeeded", final
    assert "CHILD-KERNEL-STDERR" not in json.dumps(outputs), outputs
    executed = Path(final["report_path"]).with_suffix(".ipynb")
    assert executed.is_file()
    log = executed.with_suffix(".kernel.log")  # the oracle: the file on disk
    assert "CHILD-KERNEL-STDERR" in log.read_text(encoding="utf-8")
    assert _kernel_output_link(outputs, tmp_path) == log.resolve()


def test_a_run_kernel_that_dies_at_start_says_where_its_output_is(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A run kernel that cannot start (its start-up code exits) fails the run; the run's
    error names the log holding what the kernel said, and the store records the failure."""
    outputs = _run_from_a_notebook(
        shop, tmp_path, "import os\nos.write(2, b'BROKEN-AT-START\\n')\nos._exit(3)\n"
    )
    final = ast.literal_eval(outputs[-1]["data"]["text/plain"])
    assert final["status"] == "failed", final
    assert "BROKEN-AT-START" not in json.dumps(outputs), outputs
    log = Path(final["report_path"]).with_suffix(".kernel.log")
    assert "BROKEN-AT-START" in log.read_text(encoding="utf-8")
    assert _kernel_output_link(outputs, tmp_path) == log.resolve()
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as db:
        [(status, error)] = db.execute("SELECT status, error FROM workflow_runs").fetchall()
    assert status == "failed"
    assert error.endswith(f"the kernel's own output is in {log.name}"), error


def test_the_cli_warns_when_most_targets_were_excluded(shop) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from hybridwb.cli import main

    wf = make_workflow(shop)
    config = {"template": TEMPLATE, "mode": "strict", "policy": {"once_per_recipient": True}}
    shop.workflows.update(wf["id"], message_config=config)
    first = CliRunner().invoke(main, ["run", wf["name"]])
    assert first.exit_code == 0 and "most targets were excluded" not in first.output
    second = CliRunner().invoke(main, ["run", wf["name"]])
    assert "warning: most targets were excluded" in second.output, second.output


def _notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell("workflow = run_id = owner = now = limit = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)
    return path


def _run_row(tmp_path: Path, run_id: object) -> tuple[str, str | None, int]:
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as store:
        status, error = store.execute(
            "SELECT status, error FROM workflow_runs WHERE replace(id, '-', '') = ?",
            (str(run_id).replace("-", ""),),
        ).fetchone()
        locks = store.execute("SELECT COUNT(*) FROM run_locks").fetchone()[0]
    return status, error, locks


def test_a_cell_past_its_time_limit_fails_the_run_and_raises_one_line(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(120)")
    shop.store.workflows.create(name="slow", notebook=str(nb))
    with pytest.raises(hybridwb.CellTimeoutError) as caught:
        shop.workflows.run("slow", cell_timeout=3, progress=False)
    err = caught.value
    run_id = err.run_id
    assert str(err) == (
        f"Cell 3 of workflow 'slow' ran past its 3 s time limit; run {run_id} is marked "
        "failed. Make the cell faster or raise cell_timeout, then resume with: "
        f"hybridwb run --resume {run_id}"
    )
    assert (err.cell, err.timeout, err.run["status"]) == (3, 3, "failed")
    assert isinstance(err, hybridwb.HybridwbError)
    assert _run_row(tmp_path, run_id) == (
        "failed",
        "CellTimeoutError: cell 3 ran past its 3 s time limit",
        0,
    )
    assert (tmp_path / "reports" / "slow" / f"{run_id}.html").is_file()


def test_a_cell_within_its_time_limit_does_not_time_out(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nb = _notebook(tmp_path / "quick.ipynb", "import time\ntime.sleep(0.2)")
    shop.store.workflows.create(name="quick", notebook=str(nb))
    final = shop.workflows.run("quick", cell_timeout=30, progress=False)
    assert _run_row(tmp_path, final["id"]) == (
        "empty",
        "no targets matched the workflow's target definition",
        0,
    )
