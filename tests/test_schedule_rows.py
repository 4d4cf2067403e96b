"""A bad schedule row (written before validation, or by hand) is reported by `doctor` and
never stops the long-running scheduler, which goes on running the good ones.

Issue 15: "a schedule row with an unknown time zone kills `run --due`, `schedule --once` and
the long-running scheduler; `doctor` says nothing". `run --due` is covered in
test_campaign_runs.py; here the scheduler process itself and doctor. Oracle: the store's
SQLite file, read with sqlite3.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from hybridwb.observability import run_doctor
from tests.test_workflows import make_workflow

HYBRIDWB = str(Path(sys.executable).parent / "hybridwb")


def _break_schedule(store: Path, workflow_id: object, cfg: dict) -> None:
    """Write a schedule the API would refuse, straight into the store's file."""
    with sqlite3.connect(store) as conn:
        changed = conn.execute(
            "UPDATE workflows SET schedule_config = ? WHERE id = ?",
            (json.dumps(cfg), workflow_id.hex),  # type: ignore[attr-defined]
        ).rowcount
    assert changed == 1


def _runs(store: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(store) as conn:
        return conn.execute(
            "SELECT w.name, r.status FROM workflow_runs r JOIN workflows w ON w.id = r.workflow_id"
        ).fetchall()


def test_doctor_names_each_bad_schedule_row(shop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / ".hybridwb" / "platform.db"
    every = {"cron": "* * * * *", "timezone": "UTC"}
    for name in ("feb30", "mars", "fine"):
        make_workflow(shop, name, status="active", trigger_type="schedule", schedule_config=every)
    ids = {wf["name"]: wf["id"] for wf in shop.store.workflows.list()}
    _break_schedule(store, ids["feb30"], {"cron": "0 0 30 2 *", "timezone": "UTC"})
    _break_schedule(store, ids["mars"], {"cron": "* * * * *", "timezone": "Mars/Olympus"})
    report = run_doctor(shop)
    text = report.render()
    assert report.status_of("schedule") == "FAIL"
    assert "'feb30'" in text and "never fires" in text
    assert "'mars'" in text and "time zone" in text
    assert "'fine'" not in text
    cli = subprocess.run([HYBRIDWB, "doctor"], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1 and "'feb30'" in cli.stdout and "'mars'" in cli.stdout


def test_doctor_says_the_schedules_can_run_when_they_can(shop) -> None:  # type: ignore[no-untyped-def]
    make_workflow(
        shop,
        status="active",
        trigger_type="schedule",
        schedule_config={"cron": "0 9 * * *", "timezone": "Asia/Seoul"},
    )
    report = run_doctor(shop)
    assert report.status_of("schedules") == "OK"
    assert "schedule " not in [c.name + " " for c in report.checks]


def test_the_long_running_scheduler_skips_a_bad_row_and_keeps_running(  # type: ignore[no-untyped-def]
    shop, tmp_path: Path
) -> None:
    store = tmp_path / ".hybridwb" / "platform.db"
    now = datetime.now(UTC)
    good = {"cron": f"{now.minute} * * * *", "timezone": "UTC"}  # due now, then in an hour
    make_workflow(shop, "good", status="active", trigger_type="schedule", schedule_config=good)
    bad = make_workflow(shop, "bad", status="active", trigger_type="schedule", schedule_config=good)
    _break_schedule(store, bad["id"], {"cron": "0 0 30 2 *", "timezone": "Nowhere/Land"})
    shop.close()
    proc = subprocess.Popen(
        [HYBRIDWB, "schedule", "--interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and ("good", "succeeded") not in _runs(store):
            assert proc.poll() is None, proc.communicate()
            time.sleep(1)
        time.sleep(3)  # more checks, each meeting the bad row again
        alive = proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert alive, (out, err)
    assert _runs(store) == [("good", "succeeded")], (out, err)
    assert err.count("'bad': bad schedule, skipped") >= 2, err
    assert "Traceback" not in err and "scheduler stopped" in out
