"""Runs broken in the middle by real faults, then resumed: every eligible target gets
exactly one send record, counted by SQL on the store and on the source.

Each test first proves the fault really stopped the run (the stored status is not
`succeeded` before the resume), so the resume path, not luck, is what is tested.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from tests.conftest import PRIVATE_RO_USER
from tests.faults.conftest import (
    WORKFLOW,
    FaultLab,
    kernel_pids,
    kill_group,
    wait_gone,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _assert_stopped_not_succeeded(lab: FaultLab, run_id: str, code: int, output: str) -> None:
    status = lab.run_row(run_id)["status"]
    assert status != "succeeded", f"the fault did not stop the run ({output})"
    assert code != 0, output
    assert "Traceback" not in output, output


def _resume_and_count(lab: FaultLab, run_id: str) -> None:
    resumed = lab.resume(run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert lab.run_row(run_id)["status"] == "succeeded"
    assert len(lab.runs()) == 1, "the resume made a second run"
    lab.assert_exactly_once(run_id)


@pytest.mark.parametrize("minimum", [0, 40], ids=["before-first-record", "after-40-records"])
def test_kernel_sigkill_then_resume_is_exactly_once(lab: FaultLab, minimum: int) -> None:
    proc = lab.start()
    run_id = lab.wait_for_records(proc, minimum)
    kernels = kernel_pids(proc.pid)
    assert kernels, "no kernel found under the run"
    for pid in kernels:
        os.kill(pid, signal.SIGKILL)
    code, output = lab.finish(proc)
    _assert_stopped_not_succeeded(lab, run_id, code, output)
    assert lab.run_row(run_id)["status"] == "failed", "the parent saw the kernel die"
    assert len(set(lab.record_keys(run_id))) < len(lab.eligible())
    _resume_and_count(lab, run_id)


@pytest.mark.parametrize("group", [False, True], ids=["parent-only", "process-group"])
def test_parent_sigkill_then_resume_is_exactly_once(lab: FaultLab, group: bool) -> None:
    proc = lab.start()
    run_id = lab.wait_for_records(proc, 40)
    kernels = kernel_pids(proc.pid)
    if group:
        kill_group(proc)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_gone(kernels)  # a kernel whose parent died must not keep writing
    written = len(lab.record_keys(run_id))
    time.sleep(1.0)
    assert len(lab.record_keys(run_id)) == written, "records still appear after the kill"
    assert lab.run_row(run_id)["status"] != "succeeded"
    assert written < len(lab.eligible())
    _resume_and_count(lab, run_id)


def test_mariadb_restart_mid_run_then_resume(lab: FaultLab) -> None:
    proc = lab.start()
    run_id = lab.wait_for_records(proc, 40)
    lab.mariadb.stop()  # type: ignore[attr-defined]
    try:
        code, output = lab.finish(proc)
    finally:
        lab.mariadb.start()  # type: ignore[attr-defined]
    _assert_stopped_not_succeeded(lab, run_id, code, output)
    assert "resume with: hybridwb run --resume" in output
    _resume_and_count(lab, run_id)


def test_mysql_connection_killed_mid_query_then_resume(lab: FaultLab) -> None:
    """Hold a write lock so the run's next query waits on the server, then KILL the
    connection that is inside that query (idle pooled connections are recovered by
    pre-ping and prove nothing)."""
    proc = lab.start()
    run_id = lab.wait_for_records(proc, 40)
    locker = lab.mariadb.admin("shop")  # type: ignore[attr-defined]
    killer = lab.mariadb.admin()  # type: ignore[attr-defined]
    killed = 0
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES customers WRITE")
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            with killer.cursor() as cur:
                cur.execute(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE user = %s AND command = 'Query'",
                    (PRIVATE_RO_USER,),
                )
                for (conn_id,) in cur.fetchall():
                    try:
                        cur.execute(f"KILL CONNECTION {int(conn_id)}")
                        killed += 1
                    except pymysql.err.OperationalError:
                        pass
            time.sleep(0.2)
    finally:
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        locker.close()
        killer.close()
    code, output = lab.finish(proc)
    assert killed > 0, "no connection was caught inside a query"
    _assert_stopped_not_succeeded(lab, run_id, code, output)
    _resume_and_count(lab, run_id)


def test_postgres_stopped_for_ten_seconds_then_resume(lab: FaultLab) -> None:
    proc = lab.start()
    run_id = lab.wait_for_records(proc, 40)
    lab.pg.stop()  # type: ignore[attr-defined]
    outage = threading.Timer(10.0, lab.pg.start)  # type: ignore[attr-defined]
    outage.start()
    try:
        code, output = lab.finish(proc)
    finally:
        outage.join()
        lab.pg.start()  # type: ignore[attr-defined]
    assert code != 0, output
    assert "Traceback" not in output, output
    # the final status could not be written during the outage: the next command that
    # opens the store writes it, so the run never stays `running` forever
    lab.cli("doctor")
    status = lab.run_row(run_id)["status"]
    assert status not in ("queued", "running", "succeeded"), status
    _resume_and_count(lab, run_id)


def _mount(*argv: str) -> None:
    done = subprocess.run(["mount", *argv], capture_output=True, text=True)
    if done.returncode != 0:  # not root, or no mount namespace: say why, never pass silently
        pytest.skip(f"cannot mount here ({done.stderr.strip()}); run the fault tier as root")


def test_read_only_reports_directory_refuses_the_start_and_leaves_no_run(lab: FaultLab) -> None:
    """Unwritable before the start: one line, no run row, no record; once writable, a new
    run sends to every target exactly once."""
    reports = lab.cwd / "reports"
    (reports / WORKFLOW).mkdir(parents=True)
    _mount("--bind", "-o", "ro", str(reports), str(reports))
    try:
        proc = lab.start(pause=0.0, batch=200)
        code, output = lab.finish(proc)
    finally:
        subprocess.run(["umount", str(reports)], check=True)
    assert code == 1, output
    assert "Traceback" not in output and "OSError" not in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert "Read-only file system" in output and "HYBRIDWB_REPORTS" in output, output
    assert lab.runs() == [], "a refused start left a run row"
    assert lab.all_record_keys() == [], "a refused start sent"
    proc = lab.start(pause=0.0, batch=200)
    code, output = lab.finish(proc)
    assert code == 0, output
    (run,) = lab.runs()
    lab.assert_exactly_once(str(run["id"]))


def _fill(path: Path) -> int:
    """Write a filler file into `path` until the file system says ENOSPC; its size."""
    written = 0
    chunk = b"\0" * 65536
    with (path / "filler.bin").open("wb", buffering=0) as fh:
        while True:
            try:
                written += fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    return written


def _every_frozen_target_once(lab: FaultLab, run_id: str) -> tuple[set[str], int]:
    """By SQL: records and exclusions never overlap nor repeat; returns (the frozen targets
    they account for, how many frozen targets are still pending)."""
    records, skipped = lab.record_keys(run_id), lab.skip_keys(run_id)
    done = records + skipped
    assert len(done) == len(set(done)), "a target has two rows (record or exclusion)"
    frozen = set(lab.frozen_keys(run_id))
    assert set(done) <= frozen, "a record outside the frozen set"
    return set(done), len(frozen - set(done))


@pytest.fixture
def small_reports(lab: FaultLab) -> Iterator[Path]:
    """The reports directory as a 1 MiB tmpfs: ENOSPC and EROFS come from the kernel."""
    reports = lab.cwd / "reports"
    reports.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(reports))
    yield reports
    subprocess.run(["umount", "-l", str(reports)], check=False)


@pytest.mark.parametrize(
    ("fault", "message"),
    [("full", "No space left on device"), ("read-only", "Read-only file system")],
)
def test_reports_directory_failing_mid_run_gives_one_line_and_resume_completes(
    lab: FaultLab, small_reports: Path, fault: str, message: str
) -> None:
    """The reports directory fills up (real ENOSPC) or is remounted read-only (EROFS) while
    targets are sent. papermill's failed notebook save surfaces when the sending cell ends
    (nbclient raises an output hook's error with the cell's reply), so the sending itself
    is not cut: the run must end `failed` with one line, lose or double nothing, and a
    resume after the space is freed must write the report and finish the frozen set."""
    reports = small_reports
    proc = lab.start()
    run_id = lab.wait_for_records(proc, 40)
    if fault == "full":
        assert _fill(reports) > 0
        free = os.statvfs(reports)
        assert free.f_bavail * free.f_frsize < 4096, "the tmpfs still has room"
    else:
        _mount("-o", "remount,ro", str(reports))
    code, output = lab.finish(proc)
    _assert_stopped_not_succeeded(lab, run_id, code, output)
    assert lab.run_row(run_id)["status"] == "failed"
    assert "OSError" not in output and "Errno" not in output, output
    failure = [line for line in output.splitlines() if line.startswith("failed:")]
    assert len(failure) == 1, output
    assert message in failure[0] and "free space, then resume" in failure[0], output
    assert message in lab.run_row(run_id)["error"]
    _every_frozen_target_once(lab, run_id)
    # the operator frees space / fixes the mount; the run resumes from its records
    if fault == "full":
        (reports / "filler.bin").unlink()
    else:
        _mount("-o", "remount,rw", str(reports))
    _resume_and_count(lab, run_id)
    done, pending = _every_frozen_target_once(lab, run_id)
    assert pending == 0 and done == set(lab.frozen_keys(run_id)), "not the frozen set, once"
    executed = json.loads((reports / WORKFLOW / f"{run_id}.ipynb").read_text())
    assert executed["cells"], "the resume did not write the executed notebook"
    assert (reports / WORKFLOW / f"{run_id}.html").stat().st_size > 0


def test_resume_onto_a_full_reports_directory_keeps_the_run_resumable(
    lab: FaultLab, small_reports: Path
) -> None:
    """A run stopped with frozen targets pending (kernel SIGKILL) is resumed while the
    reports directory is full: one line, nothing sent, the run still `failed` and unlocked
    (SQL); once space is freed, the resume sends exactly the pending targets."""
    reports = small_reports
    proc = lab.start()
    run_id = lab.wait_for_records(proc, 40)
    for pid in kernel_pids(proc.pid):
        os.kill(pid, signal.SIGKILL)
    lab.finish(proc)
    before, pending = _every_frozen_target_once(lab, run_id)
    assert pending > 0, "the kill came after the last target: nothing left to resume"
    assert _fill(reports) > 0
    refused = lab.resume(run_id)
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output
    assert "Traceback" not in output and "OSError" not in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert "No space left on device" in output and "free space" in output, output
    assert _every_frozen_target_once(lab, run_id) == (before, pending), "sent while refusing"
    assert lab.run_row(run_id)["status"] == "failed"
    assert lab.lock_rows() == [], "a refused resume kept the workflow locked"
    (reports / "filler.bin").unlink()
    _resume_and_count(lab, run_id)
    done, left = _every_frozen_target_once(lab, run_id)
    assert left == 0 and done == set(lab.frozen_keys(run_id)) and before <= done


def test_resume_never_reprocesses_a_done_target_even_when_the_source_changed(
    lab: FaultLab,
) -> None:
    """The unique key alone keeps a second record out, so it cannot show whether the
    resume skips done targets. Between the crash and the resume a customer that already
    has a send record withdraws consent: a resume that re-processed done targets would
    give it an exclusion row next to its record (SQL on run_skips and send_records)."""
    proc = lab.start()
    run_id = lab.wait_for_records(proc, 40)
    for pid in kernel_pids(proc.pid):
        os.kill(pid, signal.SIGKILL)
    lab.finish(proc)
    before, pending = _every_frozen_target_once(lab, run_id)
    assert pending > 0, "the kill came after the last target: nothing left to resume"
    sent = sorted(lab.record_keys(run_id), key=int)[0]
    admin = lab.mariadb.admin("shop")  # type: ignore[attr-defined]
    try:
        with admin.cursor() as cur:
            cur.execute(
                "UPDATE customers SET marketing_opt_in = 0 WHERE customer_id = %s", (int(sent),)
            )
        resumed = lab.resume(run_id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    finally:
        with admin.cursor() as cur:
            cur.execute(
                "UPDATE customers SET marketing_opt_in = 1 WHERE customer_id = %s", (int(sent),)
            )
        admin.close()
    assert lab.record_keys(run_id).count(sent) == 1
    assert sent not in lab.skip_keys(run_id), "the resume re-processed a target already sent"
    done, left = _every_frozen_target_once(lab, run_id)
    assert left == 0 and before <= done
    assert not set(lab.record_keys(run_id)) & set(lab.skip_keys(run_id))
    # the counters add up after the source changed (issue 15: 98,004 + 1,995 != 99,998)
    row, records, skips = lab.run_row(run_id), lab.record_keys(run_id), lab.skip_keys(run_id)
    assert (row["sent_count"], row["skipped_count"]) == (len(records), len(skips)), row
    assert row["target_count"] == len(lab.frozen_keys(run_id)) == len(records) + len(skips), row


def test_counters_after_crash_and_resume_are_counted_from_the_records(lab: FaultLab) -> None:
    """After a kernel SIGKILL and a resume, the run's counters equal what SQL counts in
    send_records (issue 15: rendered_count counted only the resumed pass)."""
    proc = lab.start()
    run_id = lab.wait_for_records(proc, 40)
    for pid in kernel_pids(proc.pid):
        os.kill(pid, signal.SIGKILL)
    lab.finish(proc)
    _resume_and_count(lab, run_id)
    row = lab.run_row(run_id)
    records = len(lab.record_keys(run_id))
    assert row["sent_count"] == records, row
    assert row["rendered_count"] == records, row
