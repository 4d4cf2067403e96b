"""Round 25: how a run ends (`Runner._finish`) when its lock is no longer its own, or when
Ctrl-C lands in it; and a lock's workflow changed under it.

`hybridwb run` takes the workflow's lock, the kernel works, and `_finish` writes the
status from the rows and releases the lock. papermill is replaced here by a stand-in that
does what a kernel does to the store while it "runs" (tests/test_runner_run.py's way), on
SQLite and PostgreSQL; the oracle is direct SQL on the store.
"""

from __future__ import annotations

import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import _stores
import papermill
import psycopg
import pytest
from _stores import Oracle, workflow_with_run

from hybridwb.config import load_settings
from hybridwb.platform.campaigns import Campaigns, this_owner
from hybridwb.platform.store import Store
from hybridwb.workflows.runner import Runner

store = _stores.store
oracle = _stores.oracle
THIEF = "elsewhere:4242"  # another host's process: alive as far as this one knows


def _kernel(monkeypatch: pytest.MonkeyPatch, body: Any) -> None:
    """papermill's `execute_notebook` as `body(parameters)`: the kernel's work."""

    def execute(_input: str, _output: str, **kw: Any) -> None:
        body(kw["parameters"])

    monkeypatch.setattr(papermill, "execute_notebook", execute)


def _taken_over(
    store: Store, oracle: Oracle, tmp_path: Path, params: dict[str, Any], ended: bool
) -> None:
    """The kernel pauses past the lock's stale time; another process resumes the run (its
    lock, its row `running`) and, if `ended`, sends and ends it (`succeeded`, its lock
    released); the kernel then finds it has lost the lock and fails."""
    old = "2000-01-01 00:00:00" + ("+00" if oracle.postgres else ".000000")
    oracle.execute("UPDATE run_locks SET heartbeat_at = ?", old)
    wf, run = params["workflow"], params["run_id"]
    c = Campaigns(store.backend)
    assert c.acquire(wf, run, THIEF, 120) is None
    store.runs.update(run, status="running", error=None, finished_at=None)
    if ended:
        c.freeze(run, [[("a", "01012340001")]])
        assert c.write_batch(run, wf, THIEF, records=[("a", "r", "m")], channel="o", skips=[])
        elsewhere = Runner(load_settings(tmp_path / "elsewhere", {}), store)
        elsewhere._finish(store.workflows.get(wf), store.runs.get(run), None,
                          tmp_path / "e.html", "manual", False, owner=THIEF)  # fmt: skip
    raise papermill.PapermillExecutionError(
        2, 2, "wb.workflows.process(...)", "RunTakenOver", f"Run {run} was taken over", []
    )


@pytest.mark.parametrize("ended", [False, True], ids=["resume running", "resume ended"])
def test_a_runner_whose_run_was_taken_over_leaves_the_new_holders_lock_and_status(
    store: Store, oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ended: bool
) -> None:
    """BREAK: the runner whose kernel lost its lock to a resume in another process ended
    the run as its own: it released the lock without naming its owner (the resuming
    process's lock was deleted: a third process could start the workflow beside it) and
    wrote `failed` over the run the other process was working on, or had ended since."""
    wf = store.workflows.create(name="r25-takeover", message_config={"content": "안내"})
    _kernel(monkeypatch, lambda params: _taken_over(store, oracle, tmp_path, params, ended))
    final = Runner(load_settings(tmp_path, {}), store).run(wf["id"], progress=False)
    run = oracle.uid(final["id"])
    if ended:
        assert oracle.rows("SELECT owner FROM run_locks") == []
        assert oracle.rows("SELECT status, error, sent_count FROM workflow_runs") == [
            ("succeeded", None, 1)
        ]
        return
    assert oracle.rows("SELECT CAST(run_id AS TEXT), owner FROM run_locks") == [(run, THIEF)]
    assert oracle.rows("SELECT status, error FROM workflow_runs") == [("running", None)]
    other = store.workflows.create(name="r25-other")  # a new run is refused meanwhile
    assert Campaigns(store.backend).acquire(wf["id"], uuid.uuid4(), "third:3", 120) is not None
    assert Campaigns(store.backend).acquire(other["id"], uuid.uuid4(), "third:3", 120) is None


@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("at", ["counts", "status", "release"])
def test_ctrl_c_as_the_runner_finishes_frees_the_lock_for_a_resume_elsewhere(
    store: Store, oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    """BREAK: Ctrl-C (a real SIGINT) as `hybridwb run` in a notebook writes the run's end
    (reads its counts, writes its status, releases its lock) left the lock under this
    living process: the resume from a terminal (another process) was refused as "already
    has an active run" until the heartbeat went stale. The lock is released all the same,
    and the resume elsewhere is taken at once, once."""
    from hybridwb.platform.repos import Runs

    wf = store.workflows.create(name="r25-finish", message_config={"content": "안내"})
    hooked = {"counts": (Campaigns, "counts"), "release": (Campaigns, "release"),
              "status": (Runs, "update")}  # fmt: skip
    armed = {"on": True}
    owner, name = hooked[at]
    real = getattr(owner, name)

    def press(*a: Any, **kw: Any) -> Any:
        if armed["on"] and (at != "status" or "finished_at" in kw):
            armed["on"] = False
            signal.raise_signal(signal.SIGINT)
        return real(*a, **kw)

    def kernel(params: dict[str, Any]) -> None:
        c = Campaigns(store.backend)
        run = params["run_id"]
        c.freeze(run, [[("a", "01012340001"), ("b", "01012340002")]])
        assert c.write_batch(run, params["workflow"], params["owner"], records=[("a", "r", "m")],
                             channel="o", skips=[])  # fmt: skip
        monkeypatch.setattr(owner, name, press)

    _kernel(monkeypatch, kernel)
    with pytest.raises(KeyboardInterrupt):
        Runner(load_settings(tmp_path, {}), store).run(wf["id"], progress=False)
    assert not armed["on"]
    monkeypatch.undo()
    assert oracle.rows("SELECT owner FROM run_locks") == []
    [(rid,)] = oracle.rows("SELECT id FROM workflow_runs")
    c = Campaigns(store.backend)
    assert c.acquire(wf["id"], rid, "terminal:7", 120) is None  # the resume, elsewhere
    assert c.acquire(wf["id"], rid, "terminal:8", 120) is not None  # and only once
    assert oracle.rows("SELECT owner FROM run_locks") == [("terminal:7",)]


def test_a_run_holding_its_lock_cannot_be_moved_to_another_workflow(
    store: Store, oracle: Oracle
) -> None:
    """HOLDS: the run a lock names is moved to another workflow by direct SQL (the lock
    would then name another workflow's run: its holder could clear that run's frozen
    set); refused on both stores, and the lock and run are as they were."""
    import sqlite3

    wf, run = workflow_with_run(store)
    other = store.workflows.create(name="r25-elsewhere")["id"]
    assert Campaigns(store.backend).acquire(wf, run, this_owner(), 120) is None
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        oracle.execute(
            "UPDATE workflow_runs SET workflow_id = ? WHERE id = ?",
            oracle.uid(other),
            oracle.uid(run),
        )
    assert oracle.rows("SELECT CAST(workflow_id AS TEXT) FROM workflow_runs") == [(oracle.uid(wf),)]


def test_a_run_resumed_again_while_its_resume_works_in_the_same_process_is_refused(
    store: Store, oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed run is resumed (`wb.workflows.run(resume=...)` in a notebook's thread) and,
    while that resume's kernel works, resumed again from the same process (another
    thread, a second click): the second is refused, once; the first keeps its lock."""
    from hybridwb.workflows.runner import RunRefused

    wf = store.workflows.create(name="r25-twice", message_config={"content": "안내"})
    runner = Runner(load_settings(tmp_path, {}), store)
    seen: dict[str, Any] = {}

    def fail(params: dict[str, Any]) -> None:
        raise papermill.PapermillExecutionError(1, 1, "x", "RuntimeError", "boom", [])

    _kernel(monkeypatch, fail)
    failed = runner.run(wf["id"], progress=False)
    assert failed["status"] == "failed"

    def resumed(params: dict[str, Any]) -> None:
        _kernel(monkeypatch, lambda p: seen.setdefault("second kernel", p))
        try:
            runner.run(None, resume=failed["id"], progress=False)
        except RunRefused as exc:
            seen["refused"] = str(exc)
        seen["lock"] = oracle.rows("SELECT owner FROM run_locks")

    _kernel(monkeypatch, resumed)
    runner.run(None, resume=failed["id"], progress=False)
    assert "second kernel" not in seen and "already has an active run" in seen["refused"]
    assert len(seen["lock"]) == 1


@pytest.mark.parametrize("table", ["run_locks", "workflow_runs"])
def test_an_upsert_cannot_make_a_lock_name_a_run_of_another_workflow(
    store: Store, oracle: Oracle, table: str
) -> None:
    """HOLDS: what a REST upsert (`on_conflict`) sends, by direct SQL: W2's lock row
    upserted onto a run of W1 (`ON CONFLICT (workflow_id) DO UPDATE SET run_id`), or W1's
    run, which W1's lock names, upserted under W2 (`ON CONFLICT (id) DO UPDATE SET
    workflow_id`). Both refused by 0009/0010's update triggers, on both stores."""
    import sqlite3

    w1, r1 = workflow_with_run(store, "w1")
    w2, r2 = workflow_with_run(store, "w2")
    c = Campaigns(store.backend)
    assert c.acquire(w1, r1, "a:1", 120) is None and c.acquire(w2, r2, "b:2", 120) is None
    stamp = "2026-01-01 00:00:00" + ("+00" if oracle.postgres else ".000000")
    if table == "run_locks":
        sql = (
            "INSERT INTO run_locks (workflow_id, run_id, owner, acquired_at, heartbeat_at)"
            " VALUES (?, ?, 'b:2', ?, ?) ON CONFLICT (workflow_id) DO UPDATE"
            " SET run_id = excluded.run_id"
        )
        params = (oracle.uid(w2), oracle.uid(r1), stamp, stamp)
    else:
        sql = (
            "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run,"
            " target_count, rendered_count, skipped_count, failed_count, sent_count,"
            " missing_variables, stats, created_at) VALUES (?, ?, 'running', '{}', false,"
            " 0, 0, 0, 0, 0, '[]', '{}', ?) ON CONFLICT (id) DO UPDATE"
            " SET workflow_id = excluded.workflow_id"
        )
        params = (oracle.uid(r1), oracle.uid(w2), stamp)
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.CheckViolation)):
        oracle.execute(sql, *params)
    assert oracle.rows(
        "SELECT count(*) FROM run_locks l JOIN workflow_runs r ON r.id = l.run_id"
        " WHERE r.workflow_id <> l.workflow_id"
    ) == [(0,)]
    assert oracle.rows("SELECT CAST(run_id AS TEXT) FROM run_locks ORDER BY owner") == [
        (oracle.uid(r1),),
        (oracle.uid(r2),),
    ]


@pytest.mark.parametrize("resume", ["running", "finished"])
def test_a_kept_status_does_not_overwrite_a_resume_that_came_after_it(
    store: Store, oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resume: str
) -> None:
    """BREAK: a run ends while the store is unreachable: its `failed` is kept on disk
    (`pending.keep`). The run is then resumed from another machine; the next command here
    writes what was kept (`pending.flush`). It wrote `failed` over the resume, running or
    succeeded since, and deleted the resuming process's lock without naming its owner."""
    from hybridwb.workflows import pending

    wf = store.workflows.create(name="r25-kept", message_config={"content": "안내"})
    runner = Runner(load_settings(tmp_path, {}), store)
    real_counts = Campaigns.counts

    def kernel(params: dict[str, Any]) -> None:
        Campaigns(store.backend).freeze(params["run_id"], [[("a", "01012340001")]])

        def gone(*a: Any, **kw: Any) -> Any:
            from hybridwb.errors import StoreError

            raise StoreError("connection refused")

        monkeypatch.setattr(Campaigns, "counts", gone)

    _kernel(monkeypatch, kernel)
    kept = runner.run(wf["id"], progress=False)
    monkeypatch.setattr(Campaigns, "counts", real_counts)
    assert list((tmp_path / ".hybridwb" / "pending-runs").glob("*.json"))
    # elsewhere: the lock (left, its owner alive here) goes stale and the run is resumed
    old = "2000-01-01 00:00:00" + ("+00" if oracle.postgres else ".000000")
    oracle.execute("UPDATE run_locks SET heartbeat_at = ?", old)
    c = Campaigns(store.backend)
    assert c.acquire(wf["id"], kept["id"], THIEF, 120) is None
    store.runs.update(kept["id"], status="running", error=None, finished_at=None)
    if resume == "finished":
        assert c.write_batch(kept["id"], wf["id"], THIEF, records=[("a", "r", "m")],
                             channel="o", skips=[])  # fmt: skip
        runner._finish(wf, store.runs.get(kept["id"]), None, tmp_path / "r.html", "manual", False,
                       owner=THIEF)  # fmt: skip
    before = oracle.rows("SELECT status, error FROM workflow_runs")
    locks = oracle.rows("SELECT owner FROM run_locks")
    assert before == [("running" if resume == "running" else "succeeded", None)]
    pending.flush(store, runner.settings.home)
    assert oracle.rows("SELECT status, error FROM workflow_runs") == before
    assert oracle.rows("SELECT owner FROM run_locks") == locks
    assert not list((tmp_path / ".hybridwb" / "pending-runs").glob("*.json"))


def _beating() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hybridwb-heartbeat" and t.is_alive()]


@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize("at", ["state started", "heartbeat started", "notebook asked"])
def test_ctrl_c_as_the_runner_starts_its_kernel_leaves_no_lock_and_no_heartbeat(
    store: Store, oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    """BREAK: Ctrl-C (a real SIGINT) after the run's state is written, its heartbeat
    started, or as the runner asks whether it runs in a notebook (the steps between the
    lock's taking and the kernel's start): the lock stayed, and with the heartbeat
    thread left beating it never went stale while the process lived. The lock is released,
    the heartbeat stopped, no kernel started, and the resume elsewhere is taken once."""
    from hybridwb.workflows import lock
    from hybridwb.workflows import runner as runner_module

    wf = store.workflows.create(name="r25-start", message_config={"content": "안내"})
    kernels: list[Any] = []
    _kernel(monkeypatch, kernels.append)
    armed = {"on": True}

    def after(point: str, real: Any) -> Any:
        def call(*a: Any, **kw: Any) -> Any:
            out = real(*a, **kw)
            if armed["on"] and at == point:
                armed["on"] = False
                signal.raise_signal(signal.SIGINT)
            return out

        return call

    monkeypatch.setattr(Campaigns, "start_state", after("state started", Campaigns.start_state))
    monkeypatch.setattr(lock.Heartbeat, "start", after("heartbeat started", lock.Heartbeat.start))
    monkeypatch.setattr(
        runner_module, "in_notebook", after("notebook asked", runner_module.in_notebook)
    )
    before = set(_beating())
    with pytest.raises(KeyboardInterrupt):
        Runner(load_settings(tmp_path, {}), store).run(wf["id"], progress=False)
    assert not armed["on"] and kernels == []
    monkeypatch.undo()
    assert set(_beating()) - before == set()
    assert oracle.rows("SELECT owner FROM run_locks") == []
    [(rid,)] = oracle.rows("SELECT id FROM workflow_runs")
    c = Campaigns(store.backend)
    assert c.acquire(wf["id"], rid, "terminal:7", 120) is None
    assert c.acquire(wf["id"], rid, "terminal:8", 120) is not None
