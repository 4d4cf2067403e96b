"""Workflows end to end: real kernels through papermill, faults in the middle of real runs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pymysql
import pytest

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.source.source import READ_ATTEMPTS
from tests.conftest import REPO, install_sample_mappings, ro_url

HYBRIDWB = str(Path(sys.executable).parent / "hybridwb")
TEMPLATE = "테스트 안내"
TARGET = {"table": "customers", "where": {"field": "grade", "op": "in", "value": ["VIP", "GOLD"]}}


def make_workflow(wb: hybridwb.Workbench, name: str = "test-campaign", **extra) -> dict:  # type: ignore[no-untyped-def]
    try:
        wb.templates.get(TEMPLATE)
    except hybridwb.NotFound:
        wb.templates.create(
            TEMPLATE, "#{고객명}님 안녕하세요. 등급: {{ 등급 }}", message_type="SMS"
        )
    return wb.workflows.create(
        name, target_config=TARGET, message_config={"template": TEMPLATE, "mode": "strict"}, **extra
    )


def expected_targets(wb: hybridwb.Workbench) -> set[str]:
    rows = wb.source.records(
        "SELECT customer_id FROM customers WHERE grade IN ('VIP', 'GOLD') AND marketing_opt_in = 1 AND phone IS NOT NULL AND name IS NOT NULL"
    )
    return {str(r["customer_id"]) for r in rows}


def assert_exactly_once(wb: hybridwb.Workbench, run_id: object) -> None:
    """send_records read with sqlite3 from the store's file, not through the store."""
    url = wb.store.backend.url
    assert url.get_backend_name() == "sqlite", url
    with sqlite3.connect(url.database) as conn:  # SQLAlchemy's Uuid is 32 hex digits here
        rows = conn.execute(
            "SELECT target_key FROM send_records WHERE run_id = ?", (uuid.UUID(str(run_id)).hex,)
        ).fetchall()
    keys = [r[0] for r in rows]
    assert keys, "no send records for the run (or not found by its id)"
    assert len(keys) == len(set(keys)), "a target has two records"
    assert set(keys) == expected_targets(wb), "a target is missing a record"


def test_run_writes_records_report_and_statistics(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    wf = make_workflow(shop)
    final = shop.workflows.run(wf["name"], progress=False)
    assert final["status"] == "succeeded", final["error"]
    assert_exactly_once(shop, final["id"])
    with sqlite3.connect(tmp_path / ".hybridwb" / "sample.db") as oracle:  # not the code under test
        frozen, no_phone = oracle.execute(
            "SELECT COUNT(*), SUM(phone IS NULL OR phone = '') FROM customers "
            "WHERE grade IN ('VIP', 'GOLD') AND marketing_opt_in = 1"
        ).fetchone()
    assert final["target_count"] == frozen and final["sent_count"] == frozen - no_phone
    assert final["skipped_count"] == no_phone
    assert final["stats"]["skipped_by_reason"] == ({"no recipient": no_phone} if no_phone else {})
    notebook = tmp_path / "reports" / "test-campaign" / f"{final['id']}.ipynb"
    html = notebook.with_suffix(".html")
    assert notebook.is_file() and html.is_file()
    text = html.read_text(encoding="utf-8")
    assert '<b class="status">succeeded</b>' in text
    assert f'<td class="sent">{final["sent_count"]:,}</td>' in text
    executed = json.loads(notebook.read_text(encoding="utf-8"))
    assert any(
        "injected-parameters" in c.get("metadata", {}).get("tags", []) for c in executed["cells"]
    )
    assert shop.templates.get(TEMPLATE)["usage_count"] == 1
    record = shop.store.runs.records(final["id"])[0]
    assert (
        record["status"] == "queued"
        and record["channel"] == "outbox"
        and "님 안녕하세요" in record["content"]
    )


def test_dry_run_writes_no_records(shop) -> None:  # type: ignore[no-untyped-def]
    wf = make_workflow(shop)
    final = shop.workflows.run(wf["id"], dry_run=True, limit=50, progress=False)
    assert final["status"] == "succeeded" and final["dry_run"] is True
    assert final["target_count"] == 50 and final["rendered_count"] > 0
    assert shop.store.runs.record_count(final["id"]) == 0
    assert shop.templates.get(TEMPLATE)["usage_count"] == 0


@pytest.mark.mysql
def test_secrets_never_reach_the_notebook_or_report(mysql_db: str, tmp_path: Path) -> None:
    from tests.conftest import RO_PASSWORD

    install_sample_mappings(tmp_path, ro_url(mysql_db))
    wb = hybridwb.connect(source=ro_url(mysql_db).render_as_string(hide_password=False))
    wf = make_workflow(wb)
    final = wb.workflows.run(wf["id"], limit=5, progress=False)
    assert final["status"] == "succeeded", final["error"]
    for path in (tmp_path / "reports" / "test-campaign").iterdir():
        assert RO_PASSWORD not in path.read_text(encoding="utf-8"), path
    assert RO_PASSWORD not in str(wb.store.sql("SELECT * FROM workflow_runs").to_dict("records"))
    wb.close()


def test_broken_workflow_fails_with_its_error_and_keeps_the_notebook(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wf = make_workflow(shop)
    shop.templates.update(
        TEMPLATE, content="#{고객명}님 {{ 등급 | truncate('x') }}"
    )  # fails at render time
    final = shop.workflows.run(wf["id"], progress=False)
    assert final["status"] == "failed"
    assert "TemplateError" in final["error"]
    assert (tmp_path / "reports" / "test-campaign" / f"{final['id']}.ipynb").is_file()
    shop.templates.update(TEMPLATE, content="#{고객명}님")
    good = shop.workflows.run(wf["id"], limit=3, progress=False)
    with pytest.raises(ValidationError, match="already succeeded"):
        shop.workflows.run(None, resume=good["id"])


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {
                "target_config": {
                    "table": "customers",
                    "where": {"field": "nick", "op": "eq", "value": 1},
                }
            },
            "no mapped field",
        ),
        ({"message_config": {"template": "없는 템플릿"}}, "No template"),
        ({"message_config": {"content": "{{ 고객명 "}}, "does not parse"),
        ({"message_config": {"content": "x", "mode": "loose"}}, "strict' or 'fallback"),
        ({"message_config": {"content": "x", "channel": "sms-gateway"}}, "outbox"),
        ({"trigger_type": "schedule", "schedule_config": {"cron": "sometimes"}}, "cron"),
    ],
    ids=["target", "template", "content", "mode", "channel", "cron"],
)
def test_bad_workflow_configs_are_refused(shop, fields: dict, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(hybridwb.HybridwbError, match=words):
        shop.workflows.create("bad", **fields)
    assert shop.workflows.list() == []


def test_cli_run_exit_status(shop) -> None:  # type: ignore[no-untyped-def]
    make_workflow(shop)
    ok = subprocess.run(
        [HYBRIDWB, "run", "test-campaign", "--limit", "10", "-p", "batch_size", "5"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "succeeded" in ok.stdout and "report:" in ok.stdout
    missing = subprocess.run([HYBRIDWB, "run", "no-such-workflow"], capture_output=True, text=True)
    assert (
        missing.returncode == 1
        and "No workflow" in missing.stderr
        and "Traceback" not in missing.stderr
    )


def _children(pid: int, pattern: str) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(pid), "-f", pattern], capture_output=True, text=True
    ).stdout
    return [int(x) for x in out.split()]


def _wait_for_records(
    wb: hybridwb.Workbench, minimum: int, proc: subprocess.Popen, timeout: float = 60
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = wb.store.runs.list()
        if runs and wb.store.runs.record_count(runs[0]["id"]) >= minimum:
            return str(runs[0]["id"])
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the run wrote no records in time")


def _slow_run(*extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            HYBRIDWB,
            "run",
            "test-campaign",
            "-p",
            "batch_size",
            "20",
            "-p",
            "batch_pause",
            "0.25",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _resume(run_id: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [HYBRIDWB, "run", "--resume", run_id, "-p", "batch_pause", "0"],
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_killed_kernel_then_resume_is_exactly_once(shop) -> None:  # type: ignore[no-untyped-def]
    make_workflow(shop)
    proc = _slow_run()
    run_id = _wait_for_records(shop, 40, proc)
    kernels = _children(proc.pid, "ipykernel")
    assert kernels, "no kernel found"
    for pid in kernels:
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert shop.store.runs.get(run_id)["status"] == "failed"  # resume below really resumes
    partial = shop.store.runs.record_count(run_id)
    assert 0 < partial < len(expected_targets(shop))
    resumed = _resume(run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert shop.store.runs.get(run_id)["status"] == "succeeded"
    assert_exactly_once(shop, run_id)


@pytest.mark.slow
@pytest.mark.mysql
def test_mysql_connections_killed_mid_run_still_write_each_record_once(
    mysql_db: str, mysql_admin: pymysql.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_sample_mappings(tmp_path, ro_url(mysql_db))
    monkeypatch.setenv(
        "HYBRIDWB_SOURCE_URL", ro_url(mysql_db).render_as_string(hide_password=False)
    )
    wb = hybridwb.connect()
    make_workflow(wb)
    proc = _slow_run()
    run_id = _wait_for_records(wb, 20, proc)
    killed = 0
    # at most one fewer kills than a read's tries: each could hit the same read
    while proc.poll() is None and killed < READ_ATTEMPTS - 1:
        with mysql_admin.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE user = 'hybridwb_ro' AND db = %s",
                (mysql_db,),
            )
            for (conn_id,) in cur.fetchall():
                try:
                    cur.execute(f"KILL {int(conn_id)}")
                    killed += 1
                except pymysql.err.OperationalError:
                    pass
        time.sleep(0.3)
    proc.communicate(timeout=180)
    assert killed > 0
    # the source reconnects (a killed connection is a transient fault): the run finishes by
    # itself, exactly once; the resume path is proven by the SIGKILL tests
    run = wb.store.runs.get(run_id)
    assert run["status"] == "succeeded", (killed, run["error"])
    assert_exactly_once(wb, run_id)
    wb.close()


def test_two_schedulers_never_run_the_same_slot_twice(shop) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    cron = f"{now.minute} * * * *"
    make_workflow(
        shop,
        status="active",
        trigger_type="schedule",
        schedule_config={"cron": cron, "timezone": "Asia/Seoul"},
    )
    assert [wf["name"] for wf, _ in shop.workflows.due()] == ["test-campaign"]
    procs = [
        subprocess.Popen(
            [HYBRIDWB, "run", "--due"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    runs = shop.store.runs.list()
    assert len(runs) == 1, outs
    assert sum("nothing is due" in out for out, _ in outs) == 1
    again = subprocess.run([HYBRIDWB, "run", "--due"], capture_output=True, text=True)
    assert "nothing is due" in again.stdout and len(shop.store.runs.list()) == 1


def test_inactive_or_manual_workflows_are_never_due(shop) -> None:  # type: ignore[no-untyped-def]
    make_workflow(shop, "manual-one")
    make_workflow(
        shop,
        "paused-one",
        status="paused",
        trigger_type="schedule",
        schedule_config={"cron": "* * * * *"},
    )
    assert shop.workflows.due() == []


def test_individual_variables_count_their_use_per_run(shop) -> None:  # type: ignore[no-untyped-def]
    shop.variables.create(name="회사명", source_type="constant", source="하이브리드")
    shop.templates.create("회사 안내", "#{고객명}님, #{회사명}입니다.")
    wf = shop.workflows.create(
        "company", target_config=TARGET, message_config={"template": "회사 안내"}
    )
    assert shop.workflows.run(wf["id"], limit=20, progress=False)["status"] == "succeeded"
    usage = {u["name"]: u for u in shop.variables.usage()}
    assert usage["회사명"]["usage_count"] == 1 and usage["회사명"]["last_used_at"] is not None


def test_a_workflow_can_name_its_own_notebook(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / "workflows" / "campaign.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('custom notebook ran')"))
    custom = tmp_path / "custom.ipynb"
    nbformat.write(nb, custom)
    wf = make_workflow(shop, notebook=str(custom))
    final = shop.workflows.run(wf["id"], limit=5, progress=False)
    assert final["status"] == "succeeded"
    executed = (tmp_path / "reports" / "test-campaign" / f"{final['id']}.ipynb").read_text(
        encoding="utf-8"
    )
    assert "custom notebook ran" in executed


def test_schedule_once_runs_what_is_due(shop) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    make_workflow(
        shop,
        status="active",
        trigger_type="schedule",
        schedule_config={"cron": f"{now.minute} * * * *", "timezone": "UTC"},
    )
    result = subprocess.run(
        [HYBRIDWB, "schedule", "--once"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stdout and len(shop.store.runs.list()) == 1


def test_a_final_status_the_store_missed_is_written_by_the_next_command(
    shop, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from hybridwb.workflows import pending

    wf = make_workflow(shop)
    run = shop.store.runs.create(wf["id"], {})
    pending.keep(
        shop.settings.home, wf["id"], run["id"], {"status": "failed", "error": "store was down"}
    )
    later = hybridwb.connect()  # the next command: opening the store writes it
    later.store  # noqa: B018
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as oracle:
        row = oracle.execute(
            "SELECT status, error FROM workflow_runs WHERE id = ?", (run["id"].hex,)
        ).fetchone()
    assert row == ("failed", "store was down")
    assert not list((tmp_path / ".hybridwb" / "pending-runs").glob("*.json"))
    later.close()
