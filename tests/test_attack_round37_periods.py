# ruff: noqa: F811  (the fixtures imported from the round-36 tests are parameters here)
"""Round 37: attacks on "a workflow run's every period ends exactly once, with its own end,
and nothing meant for one period lands in another".

Round 36's fix (7fbb2ff): periods opened under the lock and verified by their own start
(`periods.open_period`); by-hand calls always open their own period; a run that never
started ends `failed` (or kept); a written end stands when the release fails (the lock
kept on disk to release); Ctrl-C or the store down at an end keeps it on disk; a call with
no period ends only a never-opened run; a dry run is not sent by hand.

Tried here with the real runner (papermill's `execute_notebook` replaced by the kernel's
own in-process `wb.workflows.process(..., owner=<the runner's>)`, as in round 36) and real
by-hand calls, on a SQLite source and a SQLite (or PostgreSQL) store; the oracle is plain
SQL on the store (sqlite3 / psycopg) and the kept files on disk:

1. another `hybridwb run`'s `mark_stale` (of any workflow, on any host) reads the locks
   table, then the runs: a run whose runner took its lock and opened its period between
   the two reads is marked `stale`; its kernel, reading `stale`, opens a period of its own,
   and the runner's end (into its period) lands nowhere. The same with no race: a user's
   `wb.workflows.stale(stale_after=1)` as the kernel starts. (SQLite and PostgreSQL.)
2. the write of a new period (`Runs.reopen` in `open_period`) applied, then the store
   failing / Ctrl-C / a lost answer before the call reads it back: a runner's fresh run, a
   runner's resume, a by-hand call: the period is never ended;
3. the runner's end applied by the store but its answer lost: the kept `failed` is
   dropped by the next command (the run has an end), and the lock is never released;
4. the runner's end written, its release failing (kept: release only), then Ctrl-C as the
   store still fails: the kept release is overwritten by a kept `failed`, dropped later,
   the lock never released;
5. a by-hand call's end written, its lock's release failing: an error, nothing kept;
6. a real run tried dry by hand (allowed: it sends nothing) ends `succeeded`, and
   `hybridwb run --resume` then refuses it;
7. HOLDS: a release-only kept entry meets a later run of the same workflow;
8. HOLDS: two kept ends for one run (two hosts, each its own period), flushed in
   either order;
9. Ctrl-C after the runner kept its unwritten end: the kernel's error is replaced by
   'interrupted as it ended';
10. over REST (tests/_postgrest.py's stand-in): 2. with a real lost answer (the gateway's
   504 on a PATCH the database ran);
11. the run's row inserted, its answer lost: left `queued`, never ended;
12. HOLDS: a run made as a dry run, resumed by the runner: processed dry, no records, and a
   by-hand send of it refused;
13. a by-hand call of a run that already succeeded opens a period and, failing, ends the
   succeeded run `failed`;
14. a by-hand call given `owner=''` goes on with a dead runner's period;
15. the next command writes a kept end and its release fails: the command after drops
   the entry without releasing the lock.
Every break was a strict xfail whose reason gave the interleaving and the damage, and whose
assertion shows the damage (the next run's refusal, the later `stale`); each has a control
(the same steps without the interleaving). All are fixed and pass:
- 1: `stale_runs` reads the runs, then the locks (a run read active took its lock first),
  and a `stale_after` under three beats is refused (`check_stale_after`);
- 2, 10, 11: every period a call tries to open is noted before it is written
  (`open_period(tried=)`), and a call stopped ends the one the run is in (at most one
  lands), a fresh run as made whether or not its insert's answer came;
- 3, 4, 15: `pending.flush` releases the kept owner's lock in every case (owner-checked);
  a Ctrl-C at the end does not replace an entry already kept (`keep(replace=False)`);
- 5: a by-hand call's failed release after its end is kept on disk, not raised;
- 12: a real run tried dry by hand is refused, as a dry run sent by hand is;
- 13: a succeeded run called again by hand is left as it is (its stats returned);
- 14: only a non-empty owner is the runner's kernel. 3, 4 and 15 share one root (a kept
entry dropped by `pending.flush` as "resumed since" never releases its lock), as do 1 and
14 (a kernel's period chosen by status/`runners`, not checked) and 2, 10 and 11 (a write
applied whose answer never came back).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _once import down_while, fail_once

from hybridwb.errors import ConnectionFailed, ValidationError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.platform.repos import Runs
from hybridwb.workflows import pending
from hybridwb.workflows.lock import RunRefused
from tests.test_attack_round36_periods import (  # noqa: F401  (fixtures: shop, rest_dsn)
    DAY,
    ON_SQLITE,
    N,
    Shop,
    rest_dsn,
    shop,
)


def _kernel(
    monkeypatch: pytest.MonkeyPatch,
    shop: Shop,
    before: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """papermill's `execute_notebook` as the notebook's own call, in this process
    (`wb.workflows.process(workflow, run_id, owner=<the runner's>)`), `before(parameters)`
    run first, as the kernel starts."""
    import papermill

    def execute(*a: Any, parameters: dict[str, Any], **kw: Any) -> None:
        if before is not None:
            before(parameters)
        shop.wb.workflows.process(
            parameters["workflow"],
            parameters["run_id"],
            owner=parameters["owner"],
            progress=False,
            now=DAY,
        )

    monkeypatch.setattr(papermill, "execute_notebook", execute)


def _kept(shop: Shop, host: str) -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text()) for p in sorted((shop.tmp / host).rglob("pending-runs/*.json"))
    ]


def _next_run(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> str:
    """The workflow's next `hybridwb run` from this (living) process: its status, or the
    refusal it met. The store's stand-ins of the case are undone first: they belong to
    the run under attack, not to this one."""
    monkeypatch.undo()
    _kernel(monkeypatch, shop)
    try:
        return str(shop.runner("a").run(shop.wf["id"], progress=False)["status"])
    except RunRefused as exc:
        return f"refused: {str(exc).split(';')[0]}"


def _marked_later(shop: Shop, rid: Any) -> str:
    """The run's status after the next `mark_stale` (any `hybridwb run`)."""
    shop.runner("c").mark_stale()
    return str(shop.row(rid)[0])


def _only_run(shop: Shop) -> uuid.UUID:
    [(rid,)] = shop.oracle.rows("SELECT id FROM workflow_runs")
    return uuid.UUID(str(rid))


# -- 1. mark_stale's two reads straddle a runner's start --------------------------------------
@pytest.mark.parametrize(
    "reads",
    [
        "control: B's reads of the locks and of the runs both after A's start",
        "B read the runs before A started, the locks after A took its lock",
        "a user's wb.workflows.stale(stale_after=1) as A's kernel starts, A's beat 2 s old",
    ],
)
def test_the_runners_end_lands_though_another_runs_mark_stale_read_its_locks_early(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, reads: str
) -> None:
    early = Campaigns(shop.wb.store.backend).locks()  # B's read of the locks: A's not there
    assert early == []
    marked: list[Any] = []

    def host_b(parameters: dict[str, Any]) -> None:
        # A's period is open now (the kernel is starting): B reads the runs
        if reads.startswith("control"):
            marked.extend(shop.runner("b").mark_stale())
            return
        if reads.startswith("a user's"):
            beat = datetime.now(UTC) - timedelta(seconds=2)  # A beats every 5 s
            shop.oracle.execute(
                "UPDATE run_locks SET heartbeat_at = ?",
                beat.strftime("%Y-%m-%d %H:%M:%S.%f") + ("+00" if shop.oracle.postgres else ""),
            )
            # fixed: a stale time shorter than three beats is refused, in one line
            with pytest.raises(ValidationError, match=r"^stale_after must be .* at least 15"):
                shop.wb.workflows.stale(stale_after=1)
        else:  # fixed (`stale_runs` reads the runs, then the locks): see the next test
            marked.extend(shop.runner("b").mark_stale())
        assert marked == []

    _kernel(monkeypatch, shop, host_b)
    final = shop.runner("a").run(shop.wf["id"], progress=False)
    status, ended, _, _, sent = shop.row(final["id"])
    assert shop.records(final["id"]) == N
    later = _marked_later(shop, final["id"])
    assert (status, ended is not None, sent, shop.locks(), final["status"], later) == (
        "succeeded",
        True,
        N,
        [],
        "succeeded",
        "succeeded",
    )


@pytest.mark.parametrize("shop", ["sqlite", "postgres"], indirect=True)
def test_a_runner_starting_between_mark_stales_two_reads_is_not_marked(shop: Shop) -> None:
    """Runner A takes its lock, makes its run and opens its period right after B's
    `mark_stale` made its first read (whichever it is), before its second: A's run is not
    marked stale. (Locks read first, runs second, as before round 37: A's run read
    `running` with no lock in B's earlier read, and was marked.)"""
    from hybridwb.workflows import periods
    from hybridwb.workflows.stale import stale_runs

    store, wf = shop.wb.store, shop.wf
    rid = uuid.uuid4()
    backend = type(store.backend)
    real_locks, real_select = Campaigns.locks, backend.select
    first = {"done": False}

    def a_starts() -> None:
        if first["done"]:
            return
        first["done"] = True
        assert Campaigns(store.backend).acquire(wf["id"], rid, "host-a:1#x", 120) is None
        made = store.runs.create(wf["id"], {}, run_id=rid)
        periods.open_period(store, rid, made)

    def locks(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_locks(self, *a, **kw)
        a_starts()
        return out

    def select(self: Any, table: str, *a: Any, **kw: Any) -> Any:
        out = real_select(self, table, *a, **kw)
        if table == "workflow_runs":
            a_starts()
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Campaigns, "locks", locks)
        m.setattr(backend, "select", select)
        marked = stale_runs(store)
    assert first["done"] and [str(r["id"]) for r in marked] == []
    assert shop.row(rid)[:2] == ("running", None)


# -- 2. a period's write applied, then the call stopped before it knew its period ------------
class _Interrupted(KeyboardInterrupt):
    pass


def _reopen_then(monkeypatch: pytest.MonkeyPatch, exc: type[BaseException], applied: bool) -> None:
    """The first `Runs.reopen` (`open_period`'s) fails with `exc`: after the store applied
    it (`applied`: the store gone, or Ctrl-C, as it answered; the answer lost) or before."""
    error = (lambda: exc("the store is unreachable")) if exc is ConnectionFailed else exc
    fail_once(monkeypatch, Runs, "reopen", applied=applied, error=error)


_OPENED_UNKNOWN = (
    "BREAK: {who}: `open_period`'s `Runs.reopen` is applied by the store (the run "
    "`running`, a new `started_at` P), then {how} before its read-back, so the call never "
    "learns its period: {then} Damage: the period P this call opened is never ended: the "
    "run is left `running` with no end and its lock released (after the next command's "
    "flush too); the next `mark_stale` calls it `stale`, 'its heartbeat stopped', though "
    "its notebook never started. Oracle: SELECT status, finished_at FROM workflow_runs; "
    "pending-runs/ empty."
)


@ON_SQLITE
@pytest.mark.parametrize(
    ("who", "exc", "applied"),
    [
        ("control: a runner's fresh run, the store failing at the reopen", ConnectionFailed, 0),
        ("control: a runner's fresh run, Ctrl-C at the reopen", _Interrupted, 0),
        ("a runner's fresh run, the store failing after the reopen", ConnectionFailed, 1),
        ("a runner's fresh run, Ctrl-C after the reopen", _Interrupted, 1),
        ("a runner's resume, Ctrl-C after the reopen", _Interrupted, 1),
    ],
)
def test_a_runner_whose_period_was_written_but_not_read_back_still_ends_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, who: str, exc: type[BaseException], applied: int
) -> None:
    runner = shop.runner("a")
    resume = None
    if "resume" in who:
        import papermill

        def boom(*a: Any, **kw: Any) -> None:
            raise papermill.PapermillExecutionError(1, 1, "x", "ValueError", "boom", [])

        monkeypatch.setattr(papermill, "execute_notebook", boom)
        resume = runner.run(shop.wf["id"], progress=False)["id"]
        assert shop.row(resume)[0] == "failed"
    _kernel(monkeypatch, shop)
    _reopen_then(monkeypatch, exc, bool(applied))
    with pytest.raises((ConnectionFailed, _Interrupted)):
        if resume is None:
            runner.run(shop.wf["id"], progress=False)
        else:
            runner.run(resume=resume, workflow=None, progress=False)
    pending.flush(shop.wb.store, runner.settings.home)  # the next command on the host
    rid = _only_run(shop)
    status, ended, _, _, _ = shop.row(rid)
    assert (shop.locks(), _kept(shop, "a")) == ([], [])
    assert (status, ended is not None, _marked_later(shop, rid)) == ("failed", True, "failed")


@ON_SQLITE
@pytest.mark.parametrize(
    ("how", "exc", "applied"),
    [
        ("control: Ctrl-C at the reopen", _Interrupted, 0),
        ("control: the store failing at the reopen", ConnectionFailed, 0),
        ("Ctrl-C after the reopen", _Interrupted, 1),
        ("the store failing after the reopen", ConnectionFailed, 1),
    ],
)
def test_a_by_hand_call_whose_period_was_written_but_not_read_back_still_ends_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, how: str, exc: type[BaseException], applied: int
) -> None:
    rid = shop.wb.store.runs.create(shop.wf["id"], {})["id"]
    _reopen_then(monkeypatch, exc, bool(applied))
    with pytest.raises((ConnectionFailed, _Interrupted)):
        shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY)
    pending.flush(shop.wb.store, shop.wb.settings.home)  # the next command
    status, ended, _, _, _ = shop.row(rid)
    assert (shop.locks(), list(shop.tmp.rglob("pending-runs/*.json"))) == ([], [])
    assert (status, ended is not None, _marked_later(shop, rid)) == ("failed", True, "failed")


# -- 3. the runner's end applied, its answer lost --------------------------------------------
@pytest.mark.parametrize(
    "lost",
    [
        "control: the store fails before it applies the end",
        "the store applies the end, its answer is lost",
    ],
)
def test_a_lost_answer_at_the_runners_end_leaves_no_lock(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    # the first `update_open` is the end's write (no stale run to mark before it)
    real = Runs.update_open
    calls = fail_once(monkeypatch, Runs, "update_open", applied=not lost.startswith("control"))
    _kernel(monkeypatch, shop)
    runner = shop.runner("a")
    rid = runner.run(shop.wf["id"], progress=False)["id"]
    assert calls["n"] == 1 and len(_kept(shop, "a")) == 1
    monkeypatch.setattr(Runs, "update_open", real)
    assert pending.flush(shop.wb.store, runner.settings.home) == 1  # the next command
    status, ended, _, _, _ = shop.row(rid)
    assert ended is not None and status in ("succeeded", "failed")
    locks = shop.locks()
    assert (_kept(shop, "a"), locks, _next_run(shop, monkeypatch)) == ([], [], "succeeded")


# -- 4. release kept, then Ctrl-C while the store is still down --------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    "ctrl_c",
    [
        "control: no Ctrl-C",
        "Ctrl-C as the final read retries",
    ],
)
def test_a_kept_release_survives_ctrl_c_as_the_run_ends(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, ctrl_c: str
) -> None:
    down = {"on": False}
    real_open, real_release, real_get = Runs.update_open, Campaigns.release, Runs.get
    real_lock = Campaigns.lock

    def update_open(self: Runs, *a: Any, **kw: Any) -> Any:
        real_open(self, *a, **kw)
        down["on"] = True  # the store goes down right after the end was written

    release = down_while(lambda: down["on"], real_release)

    lock = down_while(lambda: down["on"], real_lock)

    def get(self: Runs, *a: Any, **kw: Any) -> Any:
        if down["on"]:
            if not ctrl_c.startswith("control"):
                raise _Interrupted  # Ctrl-C while the read retries
            raise ConnectionFailed("the store is unreachable")
        return real_get(self, *a, **kw)

    monkeypatch.setattr(Runs, "update_open", update_open)
    monkeypatch.setattr(Campaigns, "release", release)
    monkeypatch.setattr(Campaigns, "lock", lock)
    monkeypatch.setattr(Runs, "get", get)
    _kernel(monkeypatch, shop)
    runner = shop.runner("a")
    with contextlib.suppress(_Interrupted):
        runner.run(shop.wf["id"], progress=False)
    down["on"] = False  # the store is back
    rid = _only_run(shop)
    assert len(_kept(shop, "a")) == 1
    pending.flush(shop.wb.store, runner.settings.home)  # the next command
    status, ended, _, _, sent = shop.row(rid)
    assert (status, ended is not None, sent) == ("succeeded", True, N)
    locks = shop.locks()
    assert (_kept(shop, "a"), locks, _next_run(shop, monkeypatch)) == ([], [], "succeeded")


# -- 5. a by-hand call's end written, its release failing --------------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    "release",
    [
        "control: the release works",
        "the release fails",
    ],
)
def test_a_by_hand_calls_written_end_stands_and_its_lock_goes_when_the_release_fails(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, release: str
) -> None:
    rid = shop.wb.store.runs.create(shop.wf["id"], {})["id"]
    fail_once(monkeypatch, Campaigns, "release", armed=not release.startswith("control"))
    raised = None
    try:
        shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY)
    except ConnectionFailed as exc:
        raised = exc
    status, ended, _, _, sent = shop.row(rid)
    assert (status, ended is not None, sent) == ("succeeded", True, N)
    pending.flush(shop.wb.store, shop.wb.settings.home)  # the next command
    locks, kept = shop.locks(), list(shop.tmp.rglob("pending-runs/*.json"))
    assert (raised, locks, kept, _next_run(shop, monkeypatch)) == (None, [], [], "succeeded")


# -- 6. a real run tried dry by hand -------------------------------------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    "dry",
    [
        "control: a dry run processed dry",
        "a real run tried dry",
    ],
)
def test_a_run_tried_dry_by_hand_ends_as_what_it_is(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, dry: str
) -> None:
    made_dry = dry.startswith("control")
    rid = shop.wb.store.runs.create(shop.wf["id"], {}, dry_run=made_dry)["id"]
    if made_dry:
        shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY, dry_run=True)
    else:  # fixed: a real run is not tried dry by hand; nothing is taken or written
        with pytest.raises(ValidationError, match=r"sends \(it is not a dry run\)"):
            shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY, dry_run=True)
    assert shop.records(rid) == 0
    status, ended, _, _, sent = shop.row(rid)
    if made_dry:
        assert (status, ended is not None, sent) == ("succeeded", True, 0)
        return
    assert (status, ended, shop.locks()) == ("queued", None, [])
    _kernel(monkeypatch, shop)
    try:
        resumed = str(shop.runner("a").run(resume=rid, workflow=None, progress=False)["status"])
    except ValidationError as exc:
        resumed = f"refused: {exc}"
    # the real run's end after a dry pass: not `succeeded` with every target pending; the
    # runner then sends it
    assert (status == "succeeded", resumed, shop.records(rid)) == (False, "succeeded", N)


# -- 7. HOLDS: a release-only kept entry meets a later run of the same workflow ---------------
@ON_SQLITE
def test_a_kept_release_does_not_release_a_later_runs_lock(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HOLDS: A's run R1 ends `succeeded`, its release fails (a release-only entry kept on
    A); A's process dies (its lock goes stale); B's run R2 of the same workflow takes the
    lock over; while B's kernel works, A's next command flushes its kept release: B's lock
    (another run, another owner) stays, and R2 ends once, `succeeded`; R1 keeps its end.
    Oracle: run_locks read in B's kernel and after; workflow_runs."""
    fail_once(monkeypatch, Campaigns, "release")
    _kernel(monkeypatch, shop)
    a = shop.runner("a")
    r1 = a.run(shop.wf["id"], progress=False)["id"]
    [entry] = _kept(shop, "a")
    assert {k for k in entry if k not in ("workflow_id", "run_id", "owner")} == {pending.PERIOD}
    shop.age_locks()
    during: list[Any] = []

    def a_flushes(parameters: dict[str, Any]) -> None:
        assert pending.flush(shop.wb.store, a.settings.home) == 1
        during.extend(shop.locks())

    _kernel(monkeypatch, shop, a_flushes)
    r2 = shop.runner("b").run(shop.wf["id"], progress=False)["id"]
    assert [shop.oracle.uid(str(r)) for r, _ in during] == [shop.oracle.uid(r2)]
    assert (shop.row(r1)[0], shop.row(r2)[0], shop.locks()) == ("succeeded", "succeeded", [])


# -- 8. HOLDS: two kept ends for one run, two hosts, flushed in either order -------------------
@pytest.mark.parametrize("order", ["a then b", "b then a"])
def test_two_kept_ends_of_one_run_leave_the_later_periods_end(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """HOLDS: host A's run fails (its kernel raises) and its end meets the store down: kept
    on A with period P1; A dies. Host B resumes (P2): its kernel sends the whole set, its end
    meets the store down: kept on B with P2. The next commands on A and on B flush, in either
    order: the run ends once, with B's end (`failed`: the store was unreachable, resume),
    never A's `boom`; no lock left. Oracle: workflow_runs, run_locks, the kept files."""
    import papermill

    real, down = Runs.update_open, {"on": True}

    update_open = down_while(lambda: down["on"], real)

    monkeypatch.setattr(Runs, "update_open", update_open)

    def boom(*a: Any, **kw: Any) -> None:
        raise papermill.PapermillExecutionError(1, 1, "x", "ValueError", "boom", [])

    monkeypatch.setattr(papermill, "execute_notebook", boom)
    rid = shop.runner("a").run(shop.wf["id"], progress=False)["id"]
    [kept_a] = _kept(shop, "a")
    shop.age_locks()
    _kernel(monkeypatch, shop)
    shop.runner("b").run(resume=rid, workflow=None, progress=False)
    [kept_b] = _kept(shop, "b")
    assert kept_a[pending.PERIOD] != kept_b[pending.PERIOD]
    assert shop.row(rid)[:2] == ("running", None)
    down["on"] = False
    for host in order.split(" then "):
        pending.flush(shop.wb.store, shop.tmp / host / ".hybridwb")
    status, ended, _, error, sent = shop.row(rid)
    assert (status, ended is not None, sent) == ("failed", True, N)
    assert "boom" not in (error or "") and "unreachable" in (error or "")
    assert (_kept(shop, "a"), _kept(shop, "b"), shop.locks()) == ([], [], [])


# -- 9. Ctrl-C after the runner kept its unwritten end -----------------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    "ctrl_c",
    [
        "control: no Ctrl-C",
        "Ctrl-C as the report is written",
    ],
)
def test_ctrl_c_after_the_end_was_kept_keeps_the_runs_own_error(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, ctrl_c: str
) -> None:
    import papermill

    from hybridwb.workflows import runner as runner_module

    def boom(*a: Any, **kw: Any) -> None:
        raise papermill.PapermillExecutionError(1, 1, "x", "ValueError", "boom", [])

    monkeypatch.setattr(papermill, "execute_notebook", boom)
    fail_once(monkeypatch, Runs, "update_open")
    real_render = runner_module.render_html

    def render(*a: Any, **kw: Any) -> str:
        if not ctrl_c.startswith("control"):
            raise _Interrupted  # Ctrl-C as the report is rendered
        return str(real_render(*a, **kw))

    monkeypatch.setattr(runner_module, "render_html", render)
    runner = shop.runner("a")
    with contextlib.suppress(_Interrupted):
        runner.run(shop.wf["id"], progress=False)
    pending.flush(shop.wb.store, runner.settings.home)  # the next command
    status, ended, _, error, _ = shop.row(_only_run(shop))
    assert (status, ended is not None, shop.locks(), _kept(shop, "a")) == ("failed", True, [], [])
    assert "boom" in (error or ""), error


# -- 10. over REST: the period's PATCH applied, its answer lost --------------------------------
def _lost_reopen(dsn: str, applied: bool) -> Any:
    """The stand-in whose first PATCH of `workflow_runs` setting `running` (the runner's
    `open_period`) is run by the server (if `applied`) and answered 504, as is every retry:
    the gateway timed out on a write the database made."""
    import httpx
    from _postgrest import PostgrestBridge

    class Lost(PostgrestBridge):
        seen = 0

        def table(self, request: httpx.Request, table: str) -> httpx.Response:
            body = request.content.decode().replace(" ", "")
            if (
                request.method == "PATCH"
                and table == "workflow_runs"
                and '"status":"running"' in body
            ):
                self.seen += 1
                if self.seen == 1 and applied:
                    super().table(request, table)
                return httpx.Response(504, json={"code": "504", "message": "timeout"})
            return super().table(request, table)

    return Lost(dsn)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "applied",
    [
        "control: the gateway times out before the server runs it",
        "the server runs it, the gateway's answer is lost",
    ],
)
def test_rest_a_lost_answer_at_the_periods_write_still_ends_the_run(
    rest_dsn: str, tmp_path: Any, applied: str
) -> None:
    import respx

    from hybridwb.config import load_settings
    from hybridwb.errors import HybridwbError
    from hybridwb.platform.rest import RestBackend
    from hybridwb.platform.store import Store
    from hybridwb.workflows.runner import Runner
    from tests.test_attack_rest_round30 import BASE, KEY, REST, oracle

    bridge = _lost_reopen(rest_dsn, not applied.startswith("control"))
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        store = Store(RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0), actor="t")
        try:
            wf = store.workflows.create(name=f"r37-{uuid.uuid4().hex[:6]}")
            settings = load_settings(tmp_path / "a", {})
            with pytest.raises(HybridwbError):
                Runner(settings, store).run(wf["id"], progress=False)
            assert bridge.seen >= 1
            pending.flush(store, settings.home)  # the next command
        finally:
            store.close()
    [(rid, status, ended, started)] = oracle(
        rest_dsn,
        "SELECT id, status, finished_at, started_at FROM workflow_runs WHERE workflow_id = %s",
        wf["id"],
    )
    locks = oracle(rest_dsn, "SELECT owner FROM run_locks WHERE run_id = %s", rid)
    assert (status, ended is not None, locks) == ("failed", True, []), (status, started)


# -- 11. the run's row inserted, the answer lost ---------------------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    "lost",
    [
        "control: the store fails before the insert",
        "the store makes the row, its answer is lost",
    ],
)
def test_a_run_made_whose_answer_was_lost_still_ends(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    real = Runs.create

    def create(self: Runs, *a: Any, **kw: Any) -> Any:
        if not lost.startswith("control"):
            real(self, *a, **kw)
        raise ConnectionFailed("the store is unreachable")

    monkeypatch.setattr(Runs, "create", create)
    _kernel(monkeypatch, shop)
    runner = shop.runner("a")
    with pytest.raises(ConnectionFailed):
        runner.run(shop.wf["id"], progress=False)
    pending.flush(shop.wb.store, runner.settings.home)  # the next command
    rows = [tuple(r) for r in shop.oracle.rows("SELECT id, status, finished_at FROM workflow_runs")]
    assert shop.locks() == []
    # no row, or one ended `failed` with why; not one left `queued` to be called stale
    assert rows == [] or [(s, f is not None) for _, s, f in rows] == [("failed", True)], rows


# -- 12. HOLDS: a run made as a dry run, resumed by the runner -------------------------------
@ON_SQLITE
def test_a_dry_run_made_by_hand_is_resumed_by_the_runner_as_a_dry_run(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HOLDS: `wb.store.runs.create(wf, dry_run=True)` (never opened), then `hybridwb run
    --resume <id>` without `--dry-run`: the runner takes the run's own `dry_run` (the kernel
    is given it), writes no send record and ends the run `succeeded`; a by-hand call of it
    without `dry_run=True` afterwards is refused before it takes the lock. Oracle:
    send_records, workflow_runs, run_locks."""
    rid = shop.wb.store.runs.create(shop.wf["id"], {}, dry_run=True)["id"]
    seen: list[Any] = []
    import papermill

    def execute(*a: Any, parameters: dict[str, Any], **kw: Any) -> None:
        seen.append(parameters["dry_run"])
        shop.wb.workflows.process(
            parameters["workflow"],
            parameters["run_id"],
            owner=parameters["owner"],
            dry_run=parameters["dry_run"],
            progress=False,
            now=DAY,
        )

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    final = shop.runner("a").run(resume=rid, workflow=None, progress=False)
    assert (seen, final["status"], shop.records(rid), shop.locks()) == ([True], "succeeded", 0, [])
    with pytest.raises(ValidationError):
        shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY)
    assert (shop.records(rid), shop.row(rid)[0], shop.locks()) == (0, "succeeded", [])


# -- 13. a by-hand call of a run that already succeeded ----------------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    "again",
    [
        "control: the notebook's cell run again, nothing changed",
        "the notebook's cell run again after the mapping's key was changed",
    ],
)
def test_a_succeeded_run_called_again_by_hand_keeps_its_end(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, again: str
) -> None:
    import sqlite3

    from tests.test_attack_round36_periods import MAPPING

    _kernel(monkeypatch, shop)
    rid = shop.runner("a").run(shop.wf["id"], progress=False)["id"]
    status, _, _, _, _ = shop.row(rid)
    assert (status, shop.records(rid)) == ("succeeded", N)
    if not again.startswith("control"):  # the audience now keyed by the phone number
        with sqlite3.connect(shop.tmp / "people.db") as conn:
            conn.execute("CREATE UNIQUE INDEX people_mobile ON people (mobile)")
        shop.wb.mappings.save("people", {**MAPPING, "key": "mobile"})
    with contextlib.suppress(ValidationError):
        shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY)
    status, ended, _, error, sent = shop.row(rid)
    assert (status, ended is not None, sent, shop.records(rid), shop.locks()) == (
        "succeeded",
        True,
        N,
        N,
        [],
    ), error


# -- 14. a by-hand call given an empty owner ------------------------------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    "owner",
    [
        "control: no owner",
        "owner=''",
    ],
)
def test_a_by_hand_call_given_an_empty_owner_opens_its_own_period(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, owner: str
) -> None:
    from hybridwb.workflows import outcome

    def killed(parameters: dict[str, Any]) -> None:
        raise SystemExit(137)  # the runner's process dies as its kernel starts

    _kernel(monkeypatch, shop, killed)
    with pytest.raises(SystemExit):
        shop.runner("a").run(shop.wf["id"], progress=False)
    rid = _only_run(shop)
    s1 = shop.row(rid)[2]
    assert shop.row(rid)[0] == "running" and s1 is not None
    shop.age_locks()
    late = shop.wb.store.runs.get(rid)  # A's kernel's period, as it read it
    real = outcome.ended

    def ended(*a: Any, **kw: Any) -> Any:
        # A's kernel of P1, still running, writes its pass's counts (`_process`'s last write)
        shop.wb.store.runs.update(
            rid, ended=None, started=late["started_at"], stats={"pass": "A's"}
        )
        return real(*a, **kw)

    monkeypatch.setattr(outcome, "ended", ended)
    extra = {} if owner.startswith("control") else {"owner": ""}
    shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY, **extra)
    status, finished, started, _, sent = shop.row(rid)
    stats = json.loads(shop.oracle.one("SELECT stats FROM workflow_runs"))
    assert (status, finished is not None, sent, shop.locks()) == ("succeeded", True, N, [])
    assert (started != s1, stats.get("pass")) == (True, None)


# -- 15. the next command writes a kept end, its release fails ------------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    "release",
    [
        "control: the flush's release works",
        "the flush's release fails once",
    ],
)
def test_a_kept_end_written_whose_release_fails_still_releases_later(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, release: str
) -> None:
    fail_once(monkeypatch, Runs, "update_open")  # the runner's end
    _kernel(monkeypatch, shop)
    runner = shop.runner("a")
    rid = runner.run(shop.wf["id"], progress=False)["id"]
    assert len(_kept(shop, "a")) == 1
    real_release, releases = Campaigns.release, {"n": 0}

    def failing(self: Campaigns, *a: Any, **kw: Any) -> Any:
        releases["n"] += 1
        if releases["n"] == 1 and not release.startswith("control"):
            raise ConnectionFailed("the store is unreachable")
        return real_release(self, *a, **kw)

    monkeypatch.setattr(Campaigns, "release", failing)
    pending.flush(shop.wb.store, runner.settings.home)  # the next command
    pending.flush(shop.wb.store, runner.settings.home)  # and the one after
    status, ended, _, _, _ = shop.row(rid)
    assert (status, ended is not None) == ("failed", True)
    locks = shop.locks()
    assert (_kept(shop, "a"), locks, _next_run(shop, monkeypatch)) == ([], [], "succeeded")
