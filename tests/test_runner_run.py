"""`Runner.run` around the notebook, fast: papermill's `execute_notebook` is replaced by a
stand-in that does what the campaign notebook does to the store (freezes targets, writes
records under the lock, as the `owner` it was given) and looks at the rows while it "runs".

What this proves, on a real SQLite store read back by the oracle: which parameters reach
the notebook and which are stored; that the lock is held (for the chosen run id and owner)
and the run row is `running` while the notebook works; that every way the notebook can
fail is recorded in the row's error, frees the lock and stops the heartbeat; resume
(merged parameters, same run id, row reset); the pending status and stale marking done
before the run; the notebook UI path. Real kernels run the same path in
tests/test_runner_state.py and tests/test_run_feedback.py (slow); these tests exist so
each mutant of the runner costs a second, not a kernel start.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _stores
import nbformat
import papermill
import pytest
from _stores import Oracle, workflow_with_run
from nbclient.exceptions import CellTimeoutError as NbCellTimeout

from hybridwb.config import load_settings
from hybridwb.errors import CellTimeoutError, HybridwbError, ValidationError
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.campaigns import Campaigns, this_owner
from hybridwb.platform.store import Store
from hybridwb.workflows import lock, pending
from hybridwb.workflows import runner as runner_module
from hybridwb.workflows.runner import Runner, RunRefused

ME = this_owner()
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MESSAGE = "#{이름}님, 봄 세일이 시작됩니다"


class Notebook:
    """Stands in for papermill: records the call, runs `body(params)` as the notebook's
    work, writes the executed notebook (cells marked started up to `started`), then
    raises `error` if given."""

    def __init__(self, store: Store, oracle: Oracle) -> None:
        self.store, self.oracle = store, oracle
        self.calls: list[dict[str, Any]] = []
        self.seen: dict[str, Any] = {}
        self.body: Any = None
        self.error: BaseException | None = None
        self.started = 0  # how many code cells papermill marked as started
        #: what the run kernel writes to its own stdout/stderr: the kernel manager sends it
        #: to the log file beside the executed notebook (opened, so made, at launch)
        self.kernel_said: str | None = None

    def __call__(self, input_path: str, output_path: str, **kw: Any) -> None:
        self.calls.append({"input": input_path, "output": output_path, **kw})
        params = kw["parameters"]
        run = params["run_id"]
        self.seen["lock"] = self.oracle.rows("SELECT run_id, owner FROM run_locks")
        self.seen["row"] = self.oracle.rows(
            "SELECT status, error, finished_at FROM workflow_runs WHERE id = ?",
            self.oracle.uid(run),
        )
        self.seen["beating"] = [t.name for t in threading.enumerate() if t.is_alive()]
        if self.kernel_said is not None:
            with Path(output_path).with_suffix(".kernel.log").open("a") as log:
                log.write(self.kernel_said)
        if self.body is not None:
            self.body(params)
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(f"x = {i}") for i in range(1, 5)]
        for cell in nb.cells[: self.started]:
            cell.metadata["papermill"] = {"start_time": "2026-03-01T09:00:00"}
        nbformat.write(nb, output_path)
        if self.error is not None:
            raise self.error


@pytest.fixture
def runner(tmp_path: Path) -> Any:
    st = Store(SqlBackend(_stores.migrated_sqlite(tmp_path / "platform.db")), actor="tester")
    yield Runner(load_settings(tmp_path, {}), st)
    st.close()


@pytest.fixture
def oracle(runner: Runner) -> Oracle:
    return Oracle(runner.store.backend.url)


@pytest.fixture
def notebook(
    runner: Runner, oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Notebook:
    fake = Notebook(runner.store, oracle)
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    own = tmp_path / "own.ipynb"
    own.write_text("{}")
    runner.store.workflows.create(
        name="봄 세일", notebook=str(own), message_config={"content": MESSAGE}
    )
    return fake


def send_two(store: Store) -> Any:
    """The notebook's work: three frozen targets, two sent and one excluded, under the
    run's lock."""

    def body(params: dict[str, Any]) -> None:
        c = Campaigns(store.backend)
        run, wf, owner = params["run_id"], params["workflow"], params["owner"]
        c.freeze(run, [[("a", "01012340001"), ("b", "01012340002"), ("c", "01012340003")]])
        written = c.write_batch(
            run, wf, owner, records=[("a", "r", "m"), ("b", "r", "m")], channel="o",
            skips=[("c", "cap")],
        )  # fmt: skip
        assert written is not False

    return body


def test_a_run_passes_its_parameters_and_works_under_its_lock(
    runner: Runner, oracle: Oracle, notebook: Notebook, tmp_path: Path
) -> None:
    notebook.body = send_two(runner.store)
    final = runner.run(
        "봄 세일", {"greeting": "hi"}, limit=3, now=NOW, progress=False, trigger="schedule",
        cell_timeout=77,
    )  # fmt: skip
    run = str(final["id"])
    [call] = notebook.calls
    wf = runner.store.workflows.get("봄 세일")
    owner = call["parameters"]["owner"]  # this call's own: two runs of a process are two
    assert owner.startswith(f"{ME}#")
    assert call["parameters"] == {
        "greeting": "hi",
        "limit": 3,
        "workflow": str(wf["id"]),
        "run_id": run,
        "owner": owner,
        "dry_run": False,
        "now": "2026-03-01T09:00:00+00:00",
    }
    assert call["input"] == str(tmp_path / "own.ipynb")
    assert call["output"] == str(tmp_path / "reports" / "봄-세일" / f"{run}.ipynb")
    assert call["kernel_name"] == "python3" and call["execution_timeout"] == 77
    assert call["progress_bar"] is False and call["cwd"] == str(Path.cwd())
    assert call["stdout_file"] is None and call["stderr_file"] is None
    assert issubclass(call["kernel_manager_class"], object)
    # while the notebook ran: the lock was this run's, the row existed, opened by the
    # runner (`running`, no error, no end; its period's start is the one it kept)
    assert notebook.seen["lock"] == [(oracle.uid(run), owner)]
    assert notebook.seen["row"] == [("running", None, None)]
    assert "hybridwb-heartbeat" in notebook.seen["beating"]
    # after: the truth from the rows, the lock freed, the heartbeat stopped
    assert oracle.rows(
        "SELECT status, error, dry_run, target_count, sent_count, skipped_count FROM workflow_runs"
    ) == [("succeeded", None, 0, 3, 2, 1)]
    assert final["status"] == "succeeded"
    assert oracle.rows("SELECT owner, trigger FROM run_state") == [(owner, "schedule")]
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0
    assert runner.store.runs.get(run)["parameters"] == {"greeting": "hi", "limit": 3}
    assert not any(t.name == "hybridwb-heartbeat" and t.is_alive() for t in threading.enumerate())
    html = tmp_path / "reports" / "봄-세일" / f"{run}.html"
    assert final["report_path"] == str(html)
    # the report shows the message as written and offers the exclusions (masked) for download
    report = html.read_text(encoding="utf-8")
    assert f'<pre class="template">{MESSAGE}</pre>' in report
    link = re.search(
        r'download="([^"]+)" href="data:text/csv;charset=utf-8;base64,([^"]+)"', report
    )
    assert link and link.group(1) == f"{run}-exclusions.csv"
    csv = base64.b64decode(link.group(2)).decode("utf-8")
    assert "c," in csv and "cap" in csv and "01012340003" not in csv


def test_without_now_the_stored_parameter_is_passed_and_a_dry_run_says_so(
    runner: Runner, oracle: Oracle, notebook: Notebook
) -> None:
    final = runner.run(
        "봄 세일", {"now": "2026-01-02T03:04:05+00:00"}, dry_run=True, progress=False
    )
    [call] = notebook.calls
    assert call["parameters"]["now"] == "2026-01-02T03:04:05+00:00"
    assert call["parameters"]["dry_run"] is True and call["parameters"]["limit"] is None
    assert call["execution_timeout"] == 3600  # an hour a cell unless told otherwise
    # a dry run writes no records: its rendered targets stay pending and it succeeds
    assert oracle.rows("SELECT dry_run, status FROM workflow_runs") == [(1, "succeeded")]
    assert final["status"] == "succeeded"
    assert oracle.rows("SELECT owner, trigger FROM run_state") == [
        (call["parameters"]["owner"], "manual")
    ]


def test_in_a_terminal_the_kernels_output_passes_through(
    runner: Runner, notebook: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "in_notebook", lambda: False)
    runner.run("봄 세일")  # progress is on by default
    [call] = notebook.calls
    assert call["stdout_file"] is sys.stdout and call["stderr_file"] is sys.stderr


def test_in_a_notebook_a_live_bar_follows_and_the_report_is_linked(
    runner: Runner, notebook: Notebook, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(runner_module, "in_notebook", lambda: True)
    events: list[Any] = []

    class Bar:
        def __init__(self, campaigns: Any, run_id: Any, name: str) -> None:
            events.append(("bar", str(run_id), name))

        def start(self) -> None:
            events.append("start")

        def stop(self) -> None:
            events.append("stop")

    monkeypatch.setattr(runner_module, "RunProgress", Bar)
    monkeypatch.setattr(
        runner_module, "show_report_link", lambda path, status, **_: events.append((path, status))
    )
    final = runner.run("봄 세일", progress=True)
    [call] = notebook.calls
    assert call["stdout_file"] is None and call["stderr_file"] is None
    run = str(final["id"])
    html = tmp_path / "reports" / "봄-세일" / f"{run}.html"
    assert events == [("bar", run, "봄 세일"), "start", "stop", (html, "empty")]
    events.clear()
    runner.run("봄 세일", progress=False)
    assert events == []


@pytest.mark.parametrize(
    ("error", "started", "expected"),
    [
        (
            papermill.PapermillExecutionError(2, 3, "x", "ValueError", "boom", []),
            0,
            "ValueError: boom (cell 3)",
        ),
        (
            OSError(28, "No space left on device"),
            0,
            "writing the executed notebook failed (No space left on device); free space, "
            "then resume",
        ),
        (RuntimeError("kernel died\nsecond line"), 0, "RuntimeError: kernel died"),
        (RuntimeError(""), 0, "RuntimeError: "),
        (  # the notebook's own driver call: the server echoed a value behind a quote
            papermill.PapermillExecutionError(
                2, 4, "x", "IntegrityError", "(1062, \"Duplicate entry 'x'010-2345-6789' for\")", []
            ),
            0,
            "IntegrityError: (1062, '?' (cell 4)",
        ),
        (
            papermill.PapermillExecutionError(2, 5, "x", "QueryError", "Unknown column.", []),
            0,
            "QueryError: Unknown column. (cell 5)",
        ),
    ],
    ids=["cell-error", "disk-full", "dead-kernel", "no-message", "driver-error", "own-error"],
)
def test_a_failing_notebook_fails_the_run_frees_the_lock_and_stops_beating(
    runner: Runner, oracle: Oracle, notebook: Notebook, error: Exception, started: int,
    expected: str,
) -> None:  # fmt: skip
    notebook.error = error
    final = runner.run("봄 세일", progress=False)
    assert oracle.rows("SELECT status, error FROM workflow_runs") == [("failed", expected)]
    assert final["status"] == "failed" and final["error"] == expected
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0
    assert oracle.one("SELECT finished_at IS NOT NULL FROM workflow_runs") == 1
    assert not any(t.name == "hybridwb-heartbeat" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize(
    ("started", "cell", "where"), [(3, "Cell 3", "cell 3"), (0, "A cell", "a cell")]
)
def test_a_cell_past_its_limit_fails_the_run_and_raises(
    runner: Runner, oracle: Oracle, notebook: Notebook, started: int, cell: str, where: str
) -> None:
    notebook.error = NbCellTimeout("Cell execution timed out")
    notebook.started = started
    with pytest.raises(CellTimeoutError) as caught:
        runner.run("봄 세일", progress=False, cell_timeout=9)
    exc = caught.value
    [(run, status, error)] = oracle.rows("SELECT id, status, error FROM workflow_runs")
    run_id = runner.store.runs.get(run)["id"]
    assert (status, error) == ("failed", f"CellTimeoutError: {where} ran past its 9 s time limit")
    assert str(exc) == (
        f"{cell} of workflow '봄 세일' ran past its 9 s time limit; run {run_id} is marked "
        "failed. Make the cell faster or raise cell_timeout, then resume with: "
        f"hybridwb run --resume {run_id}"
    )
    assert exc.fields["run_id"] == run_id and exc.fields["timeout"] == 9
    assert exc.fields["cell"] == (started or None)
    assert exc.fields["run"]["status"] == "failed"
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0


@pytest.mark.parametrize(
    ("started", "asked"),
    [(None, {"limit": 3}), (None, {"parameters": {"limit": 3}}), (2, {"limit": 99}),
     (2, {"limit": None, "parameters": {"limit": None}})],
    ids=["none-then-3", "none-then-p-3", "2-then-99", "2-then-p-none"],
)  # fmt: skip
def test_a_resume_asked_for_another_limit_is_refused_before_anything_runs(
    runner: Runner, oracle: Oracle, notebook: Notebook, started: int | None, asked: dict[str, Any]
) -> None:
    """A resume sends the rest of the run's frozen targets: the limit it was started with
    decides how many. `--resume X --limit 3` on a run started without one sent every
    pending target, unsaid (`-p limit 3` did apply); a limit other than the run's is now
    refused in one line, and nothing runs or changes."""
    notebook.error = RuntimeError("first try")
    failed = runner.run("봄 세일", {"greeting": "hi"}, limit=started, progress=False)
    notebook.error = None
    before = oracle.rows("SELECT status, error, parameters FROM workflow_runs")
    with pytest.raises(ValidationError) as refused:
        runner.run(
            None,
            asked.get("parameters", {}),
            resume=failed["id"],
            limit=asked.get("limit"),
            progress=False,
        )
    text = str(refused.value)
    assert "\n" not in text and f"--resume {failed['id']}" in text, text
    assert len(notebook.calls) == 1  # the first run's only
    assert oracle.rows("SELECT status, error, parameters FROM workflow_runs") == before
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0
    # the run's own limit, or none, resumes it
    again = runner.run(None, {}, resume=failed["id"], limit=started, progress=False)
    assert again["id"] == failed["id"] and len(notebook.calls) == 2
    assert notebook.calls[-1]["parameters"]["limit"] == started


def test_a_resume_reuses_the_run_its_parameters_and_dry_run(
    runner: Runner, oracle: Oracle, notebook: Notebook
) -> None:
    notebook.error = RuntimeError("first try")
    failed = runner.run("봄 세일", {"greeting": "hi"}, limit=2, dry_run=True, progress=False)
    assert failed["status"] == "failed"
    notebook.error = None
    notebook.body = None
    resumed = runner.run(None, {"extra": 1}, resume=failed["id"], limit=2, progress=False)
    assert resumed["id"] == failed["id"]
    first, second = notebook.calls
    assert second["parameters"] == {
        **first["parameters"],
        "owner": second["parameters"]["owner"],  # the resume's own
        "extra": 1,
        "limit": 2,
        "dry_run": True,
    }
    assert second["output"] == first["output"]
    # reset before the notebook ran: running, no error, not finished
    assert notebook.seen["row"] == [("running", None, None)]
    assert notebook.seen["lock"] == [(oracle.uid(failed["id"]), second["parameters"]["owner"])]
    assert oracle.rows("SELECT COUNT(*), MIN(status) FROM workflow_runs") == [(1, "succeeded")]
    # the run's first owner stays recorded with its state
    assert oracle.rows("SELECT owner, trigger FROM run_state") == [
        (first["parameters"]["owner"], "manual")
    ]


def test_a_resume_of_a_succeeded_run_is_refused_before_the_notebook(
    runner: Runner, notebook: Notebook
) -> None:
    done = runner.run("봄 세일", progress=False)
    runner.store.runs.update(done["id"], status="succeeded")
    with pytest.raises(ValidationError) as caught:
        runner.run(None, resume=done["id"], progress=False)
    assert str(caught.value) == f"Run {done['id']} already succeeded; there is nothing to resume."
    assert len(notebook.calls) == 1


def test_a_held_lock_refuses_the_run_before_the_notebook_and_names_the_holder(
    runner: Runner, oracle: Oracle, notebook: Notebook
) -> None:
    wf = runner.store.workflows.get("봄 세일")
    holder = uuid.uuid4()
    Campaigns(runner.store.backend).acquire(wf["id"], holder, "otherhost:9", 120)
    with pytest.raises(RunRefused) as caught:
        runner.run("봄 세일", progress=False)
    assert str(caught.value).startswith(
        f"Workflow '봄 세일' already has an active run ({holder}, otherhost:9, heartbeat "
    )
    assert notebook.calls == [] and oracle.one("SELECT COUNT(*) FROM workflow_runs") == 0


def test_a_start_that_fails_frees_the_lock_and_runs_nothing(
    runner: Runner, oracle: Oracle, notebook: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise HybridwbError("the store went away")

    monkeypatch.setattr(Campaigns, "start_state", broken)
    with pytest.raises(HybridwbError, match="the store went away"):
        runner.run("봄 세일", progress=False)
    assert notebook.calls == []
    assert oracle.one("SELECT COUNT(*) FROM run_locks") == 0


def test_a_run_writes_kept_statuses_and_marks_dead_runs_stale_first(
    runner: Runner, oracle: Oracle, notebook: Notebook
) -> None:
    store = runner.store
    kept_wf, kept = workflow_with_run(store, "kept")
    pending.keep(runner.settings.home, kept_wf, kept, {"status": "failed", "error": "kept"})
    _dead_wf, dead = workflow_with_run(store, "dead")
    store.runs.update(dead, status="running")  # no lock: its process is gone
    runner.run("봄 세일", progress=False)
    rows = dict(oracle.rows("SELECT id, status FROM workflow_runs"))
    assert rows[oracle.uid(kept)] == "failed"
    assert rows[oracle.uid(dead)] == "stale"


def test_the_heartbeat_beats_while_the_notebook_works(
    runner: Runner, oracle: Oracle, notebook: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "BEAT_EVERY_S", 0.02)
    old = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat(" ")
    beats: list[Any] = []

    def body(params: dict[str, Any]) -> None:
        import time

        oracle.execute("UPDATE run_locks SET heartbeat_at = ?", old)
        deadline = time.monotonic() + 10
        while oracle.one("SELECT heartbeat_at FROM run_locks") == old:
            assert time.monotonic() < deadline, "no beat within 10 s"
            time.sleep(0.02)
        beats.append(True)

    notebook.body = body
    runner.run("봄 세일", progress=False)
    assert beats == [True]


class _QuietBar:
    def __init__(self, *_a: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("error", [RuntimeError("kernel died"), None], ids=["failed", "ok"])
@pytest.mark.parametrize("said", ["Kernel shutting down\n", ""], ids=["spoke", "silent"])
def test_in_a_notebook_the_run_kernels_own_output_is_kept_named_and_linked(
    runner: Runner, oracle: Oracle, notebook: Notebook, monkeypatch: pytest.MonkeyPatch,
    error: Exception | None, said: str,
) -> None:  # fmt: skip
    """From a notebook the run kernel's stdout/stderr go to a file beside the executed
    notebook: kept (and named in a failed run's error, and linked) when the kernel wrote
    anything, removed when it wrote nothing. The file on disk is the oracle."""
    monkeypatch.setattr(runner_module, "in_notebook", lambda: True)
    monkeypatch.setattr(runner_module, "RunProgress", _QuietBar)
    links: list[Any] = []
    monkeypatch.setattr(
        runner_module,
        "show_report_link",
        lambda path, status, **kw: links.append((path, status, kw.get("log"))),
    )
    notebook.error, notebook.kernel_said = error, said
    notebook.body = send_two(runner.store)
    final = runner.run("봄 세일")
    executed = Path(notebook.calls[0]["output"])
    log = executed.with_suffix(".kernel.log")
    assert log.exists() is bool(said)
    if said:
        assert log.read_text() == said
    kept = log if said else None
    expected = None if error is None else "RuntimeError: kernel died"
    if error is not None and said:
        expected = f"RuntimeError: kernel died; the kernel's own output is in {log.name}"
    status = "succeeded" if error is None else "failed"
    assert oracle.rows("SELECT status, error FROM workflow_runs") == [(status, expected)]
    assert final["error"] == expected
    assert links == [(executed.with_suffix(".html"), status, kept)]


def test_in_a_terminal_no_kernel_log_is_made_or_looked_for(
    runner: Runner, oracle: Oracle, notebook: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a terminal the kernel's output passes through: a file of that name beside the
    executed notebook is not the run's, and is neither named nor removed."""
    monkeypatch.setattr(runner_module, "in_notebook", lambda: False)
    notebook.error, notebook.kernel_said = RuntimeError("kernel died"), ""
    runner.run("봄 세일")
    assert Path(notebook.calls[0]["output"]).with_suffix(".kernel.log").exists()
    assert oracle.rows("SELECT error FROM workflow_runs") == [("RuntimeError: kernel died",)]


def test_a_store_gone_at_the_end_keeps_the_status_on_disk(
    runner: Runner, oracle: Oracle, notebook: Notebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(*_a: Any, **_k: Any) -> None:
        raise HybridwbError("connection refused")

    notebook.error = RuntimeError("boom")
    monkeypatch.setattr(Campaigns, "counts", gone)
    # in a notebook: the link names the report the run would have written
    monkeypatch.setattr(runner_module, "in_notebook", lambda: True)
    monkeypatch.setattr(runner_module, "RunProgress", _QuietBar)
    links: list[Any] = []
    monkeypatch.setattr(
        runner_module, "show_report_link", lambda path, status, **_: links.append((path, status))
    )
    final = runner.run("봄 세일")
    assert links == [(Path(notebook.calls[0]["output"]).with_suffix(".html"), "failed")]
    assert str(final["workflow_id"]) == str(runner.store.workflows.get("봄 세일")["id"])
    assert final["status"] == "failed"
    assert final["error"] == (
        "RuntimeError: boom (the store is unreachable: connection refused; the status is "
        "written by the next command)"
    )
    kept = list((runner.settings.home / "pending-runs").glob("*.json"))
    assert [p.name.split(".")[0] for p in kept] == [str(final["id"])]  # <run>.<period>.json
    fields = json.loads(kept[0].read_text(encoding="utf-8"))
    assert (fields["status"], fields["error"]) == ("failed", "RuntimeError: boom")
    assert fields["period_started_at"] is not None  # the period the runner opened
    assert oracle.rows("SELECT status FROM workflow_runs") == [("running",)]
    # a notebook that went well: what is kept is the store's error
    notebook.error = None
    second = runner.run("봄 세일", progress=False)
    [path] = (runner.settings.home / "pending-runs").glob(f"{second['id']}.*.json")
    fields = json.loads(path.read_text(encoding="utf-8"))
    assert (fields["status"], fields["error"]) == ("failed", "connection refused")
    assert second["error"] == (
        " (the store is unreachable: connection refused; the status is written by the next command)"
    )


def test_the_heartbeat_beats_well_within_the_stale_limit() -> None:
    """A lock is taken over after STALE_AFTER_S of silence: the beat comes several times
    in that span (a beat of None would never come)."""
    assert isinstance(lock.BEAT_EVERY_S, float)
    assert 0 < lock.BEAT_EVERY_S <= lock.STALE_AFTER_S / 10
