"""The campaign owner's report (issue 12, item 9) and the layout (item 8), checked against
independent oracles: the report's SMS/LMS split, byte sizes and exclusion counts against
the stored records and exclusions read with sqlite3 and sized with Python's own EUC-KR
codec; its samples against the source's values; the layout against the modules' imports
read with `ast`.
"""

from __future__ import annotations

import ast
import re
import sqlite3
import uuid
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest

import hybridwb
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows.report import render_html

ROOT = Path(hybridwb.__file__).parent
DAY = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 in Seoul
N = 12
#: 46 bytes in EUC-KR before the name; a name of 10+ syllables passes 90 bytes (LMS)
TEXT = "{{ 이름 }}님, 이번 달 정기 안내입니다. 자세한 내용은 앱에서 확인하세요."


def _source(tmp_path: Path) -> tuple[str, list[tuple[str, str, str | None]]]:
    people = [
        (
            f"c{i:02d}",
            ("가나다라마바사아자차카타" * 3)[: 2 + 2 * i],
            None if i == 5 else f"010-3{i:03d}-77{i:02d}",
        )
        for i in range(N)
    ]
    path = tmp_path / "people.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (code TEXT PRIMARY KEY, name TEXT, mobile TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)", people)
    return f"sqlite:///{path}", people


MAPPING = {
    "displayName": "사람",
    "key": "code",
    "recipient": "mobile",
    "channel": "sms",
    "audience": True,
    "fields": {
        "code": {"displayName": "번호", "type": "string", "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name"},
        "mobile": {"displayName": "휴대폰", "type": "string", "role": "phone"},
    },
}


def test_the_report_splits_sms_and_lms_by_the_stored_texts_bytes(tmp_path: Path) -> None:
    source, people = _source(tmp_path)
    store_path = tmp_path / "store.db"
    wb = hybridwb.connect(source=source, store=f"sqlite:///{store_path}", cwd=tmp_path)
    wb.store.init()
    wb.mappings.save("people", MAPPING)
    wf = wb.workflows.create(
        "monthly", target_config={"table": "people"}, message_config={"content": TEXT}
    )
    run = wb.store.runs.create(wf["id"], {})
    Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
    wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY)
    run = wb.store.runs.get(run["id"])
    html = unescape(render_html(wf, run))
    wb.close()

    with sqlite3.connect(store_path) as conn:
        contents = [
            c
            for (c,) in conn.execute(
                "SELECT content FROM send_records WHERE run_id = ?",
                (uuid.UUID(str(run["id"])).hex,),
            )
        ]
        reasons = dict(conn.execute("SELECT reason, count(*) FROM run_skips GROUP BY reason"))
    sizes = [len(c.encode("euc-kr")) for c in contents]
    sms = [n for n in sizes if n <= 90]
    lms = [n for n in sizes if 90 < n <= 2000]
    assert sms and lms and len(sms) + len(lms) == N - 1  # both kinds occur; one has no phone
    assert f"SMS{len(sms):,} messages{sum(sms):,} bytes (EUC-KR)" in _cells(html)
    assert f"LMS{len(lms):,} messages{sum(lms):,} bytes (EUC-KR)" in _cells(html)
    assert reasons == {"no recipient": 1}
    assert "no recipient" in html
    # three samples, and none shows a name or a phone number of the source
    assert html.count('class="sample"') == 3
    samples = re.findall(r'<pre class="sample">(.*?)</pre>', html, re.S)
    for _, name, mobile in people:
        for sample in samples:
            assert name not in sample
            if mobile:
                assert mobile not in sample and mobile.replace("-", "") not in sample
    assert "messages/s" in html  # timing of the pass


def _cells(html: str) -> str:
    """The report's text with tags removed (cells run together)."""
    return re.sub(r"<[^>]+>", "", html)


# -- item 8: one module per concept, no cycle back into the workbench ------------------------
LOWER = ["workflows", "platform", "mapping", "targets", "templating", "search", "source"]
FRONT = ("hybridwb.workbench", "hybridwb.magics", "hybridwb.widgets", "hybridwb.cli")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (TYPE_CHECKING blocks and functions too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_layer_below_the_workbench_imports_it_or_a_front_end() -> None:
    offenders = []
    for layer in LOWER:
        for path in sorted((ROOT / layer).rglob("*.py")):
            bad = {m for m in _imports(path) if m.startswith(FRONT) or m == "hybridwb.Workbench"}
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert offenders == []


def test_the_workflows_package_keeps_one_concept_per_module() -> None:
    """CRUD, in-kernel processing, the papermill runner and the scheduler live apart, and no
    module of the package grows past a few hundred lines; `crud` composes them."""
    modules = {p.stem: p for p in (ROOT / "workflows").glob("*.py")}
    assert {"crud", "process", "runner", "scheduler"} <= set(modules)
    assert "service" not in modules
    assert all(len(p.read_text(encoding="utf-8").splitlines()) < 500 for p in modules.values())
    assert not any(m.startswith("hybridwb.workflows.runner") for m in _imports(modules["process"]))


# -- item 7: the scheduler survives any one check's error ------------------------------------
def test_the_schedule_loop_goes_on_after_a_failed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check that fails (the store is down) is reported and the loop checks again; a
    workflow that raises inside a check is already handled by `run_due` (tests/test_campaigns)."""
    from click.testing import CliRunner

    from hybridwb.cli import main
    from hybridwb.errors import StoreError
    from hybridwb.workflows.crud import WorkflowService

    calls: list[int] = []

    def run_due(self: WorkflowService, owner: str, **kw: object) -> list[dict[str, object]]:
        calls.append(len(calls))
        if len(calls) == 1:
            raise StoreError("The store did not answer; is it running?")
        if len(calls) == 2:
            return [{"status": "succeeded", "id": "r1", "report_path": "x.html"}]
        raise KeyboardInterrupt

    monkeypatch.setattr(WorkflowService, "run_due", run_due)
    monkeypatch.setattr(hybridwb.Workbench, "ensure_sample", lambda self, *a, **k: None)
    result = CliRunner().invoke(
        main,
        ["schedule", "--interval", "0.1"],
        env={"HYBRIDWB_STORE_URL": f"sqlite:///{tmp_path / 's.db'}"},
    )
    assert result.exit_code == 0, result.output
    assert len(calls) == 3
    assert "problem: The store did not answer" in result.output
    assert "succeeded  run r1" in result.output and "scheduler stopped" in result.output
