# ruff: noqa: F811  (the fixtures imported from the round-36 tests are parameters here)
"""Round 38: attacks on "a workflow run's every period ends exactly once, with its own end;
nothing meant for one period lands in another; no lock is left behind by a run that
ended; and a run is processed as it was made".

Round 37's fix (ca27d28): `stale_runs` reads the runs, then the locks, and refuses a
`stale_after` under three beats (`check_stale_after`); every period tried is noted before
it is written (`open_period(tried=)`) and a stopped call ends the one the run is in;
`pending.flush` releases the kept owner's lock in every case; Ctrl-C at the runner's end
keeps no entry over one kept (`keep(replace=False)`); a by-hand release failure is kept.

Tried here with the real runner (papermill's `execute_notebook` replaced by the kernel's
own in-process `wb.workflows.process(..., owner=<the runner's>)`, as in rounds 36 and 37)
and real by-hand calls, on a SQLite source and a SQLite store; the oracle is plain SQL on
the store (sqlite3: `workflow_runs`, `run_locks`, `send_records`) and the kept files on
disk (`pending-runs/`):

1. `wb.workflows.run(wf, stale_after=0)` (or 1, or `True`; or the scheduler's
   `wb.workflows.run_due(owner, stale_after=0)`) while a by-hand call of the workflow is
   mid-run: `Runner.run` takes the lock with that `stale_after` (`Campaigns.acquire`)
   before `mark_stale` checks it, so it takes the living call's lock over, is then
   refused (`check_stale_after`) and releases it; the living call meets `RunTakenOver`
   and writes no end: its period is left `running`, no lock, nothing sent. (BREAK)
2. a runner's resume on a host that still holds an earlier period's kept end (the
   resume's own first `pending.flush` met the store down for a moment), Ctrl-C as the
   resume ends: `keep(replace=False)` keeps nothing (an entry is there: the earlier
   period's), the flush then drops that entry ("resumed since"), and the resume's period
   is left `running`, no end, nothing kept. (BREAK)
3. a fresh run whose store goes down at `open_period`'s reopen (not applied) and stays
   down while it ends: `end_or_keep` keeps the end naming the last period tried (never
   written) instead of the run as made; the next command's flush writes nothing (no
   such period) and unlinks it: the run is left `queued`, no end. (BREAK)
3b. the same for a by-hand call of a run never opened (`outcome.end_by_hand` keeps
   `ends[-1]`): the run stays `queued`, the call's failure never written. (BREAK)
4. a by-hand call's end written, its release failing (kept on disk, round 37): the next
   by-hand call of the workflow in the same notebook (no command opened the store since)
   is refused by the ended call's lock, its owner this living process. (BREAK)
5. HOLDS: a by-hand call of a run that succeeded (made dry or real), called again with
   its own `dry_run`: its stats returned, the run left as it is (same row, no lock, no
   record added); with the other `dry_run`: refused.
6. a zombie runner A and a resume B on the same host (one home), the store down as both
   end: A's `_finish` keeps its end with `replace=True` over B's (a later period); the
   flush drops A's ("resumed since"): B's period never ends and B's lock stays. (BREAK)
7. a runner's kernel whose runner's lock was taken over between its beat and its going
   on with the runner's period (`_process`: `runners`) goes on with the new holder's
   period unchecked; with nothing pending, its pass's counts and stats land in the
   other period. (BREAK)
All the breaks below are fixed and pass (each was a strict xfail): `check_stale_after` runs
before `acquire`; a kept entry is one per period of a run (`<run>.<period>.json`), and an
end kept for several possible periods keeps one for each (the run as made included); a
by-hand call flushes what earlier calls kept first; a runner's kernel checks that the
period it goes on with is still the one it read (else `RunTakenOver`).
Every break was a strict xfail whose reason gave the interleaving and the damage, with a
control (the same steps without the interleaving) that passes. 2, 3, 3b and 6 share one
root: a kept entry is one file per run, not per period, and names one period (the last
tried, or whichever was kept last), so an end kept for one period is lost or dropped as
another's. 1 is the stale time checked after it was used; 7 is round 37's "a kernel's
period chosen by `runners`, not checked" again, through a takeover instead of a status.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _once import down_while, fail_once

from hybridwb.errors import ConnectionFailed, ValidationError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.platform.repos import Runs
from hybridwb.workflows import audience, pending
from hybridwb.workflows.lock import RunRefused, RunTakenOver
from tests.test_attack_round36_periods import (  # noqa: F401  (fixtures: shop)
    DAY,
    ON_SQLITE,
    N,
    Shop,
    shop,
)
from tests.test_attack_round37_periods import _kept, _kernel, _only_run

#: on a SQLite store and a PostgreSQL one (the session's database, emptied)
BOTH = pytest.mark.parametrize(
    "shop", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C, as raised by a stand-in; always caught in the test that raises it."""


def _marked_later(shop: Shop, rid: Any) -> str:
    """The run's status after the next `mark_stale` (any `hybridwb run`)."""
    shop.runner("c").mark_stale()
    return str(shop.row(rid)[0])


# -- 1. a stale_after under three beats given to the runner ------------------------------------
_AFTER: dict[str, Any] = {"0": 0, "1": 1, "True": True, "0, by the scheduler": 0}


def _stolen(age: str, after: str, who: str = "") -> str:
    who = who or f"`wb.workflows.run(wf, stale_after={after})`"
    return _STOLEN.format(age=age, after=after, who=who)


_STOLEN = (
    "BREAK: a by-hand `wb.workflows.process(wf, R)` is mid-run (its lock held, its period P "
    "open, its heartbeat {age}); another call {who} takes the workflow's lock with "
    "that stale time in `Campaigns.acquire` BEFORE `mark_stale` checks it "
    "(`check_stale_after`): the living call's lock is swapped to the new run, which is then "
    "refused ('stale_after must be ... at least 15') and releases it. The by-hand call's "
    "next write (`write_batch` as its owner) finds no lock: `RunTakenOver`, so it writes no "
    "end (a takeover's end is the new owner's, and there is none). Damage: period P of R is "
    "left `running` with no end and no lock, no record sent; the next `mark_stale` calls it "
    "`stale`, 'its heartbeat stopped', though nothing took it over. Oracle: SELECT status, "
    "finished_at FROM workflow_runs; SELECT * FROM run_locks (empty); send_records (0)."
)


@BOTH
@pytest.mark.parametrize(
    "after",
    [
        "control: the default stale_after",
        "0",
        "1",
        "0, by the scheduler",
        "True",
    ],
)
def test_a_run_refused_for_its_stale_after_leaves_a_living_call_its_lock(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, after: str
) -> None:
    if after == "0, by the scheduler":  # every minute: due now
        cron = {"cron": "* * * * *", "timezone": "Asia/Seoul"}
        shop.wb.workflows.update(
            shop.wf["id"], trigger_type="schedule", schedule_config=cron, status="active"
        )
    rid = shop.wb.store.runs.create(shop.wf["id"], {})["id"]
    real_fetch, seen = audience.fetch, {"n": 0}
    other: list[str] = []

    def fetch(*a: Any, **kw: Any) -> Any:
        # the by-hand call reads its batch: another call asks for a run of the workflow
        seen["n"] += 1
        if seen["n"] == 1:
            before = shop.locks()
            assert len(before) == 1
            if after in ("1", "True"):
                beat = datetime.now(UTC) - timedelta(seconds=2)
                stamp = beat.strftime("%Y-%m-%d %H:%M:%S.%f")
                shop.oracle.execute(
                    "UPDATE run_locks SET heartbeat_at = ?",
                    stamp + ("+00" if shop.oracle.postgres else ""),
                )
            kwargs = {} if after.startswith("control") else {"stale_after": _AFTER[after]}
            try:
                if after == "0, by the scheduler":
                    (_,) = shop.wb.workflows.run_due("sched", progress=False, **kwargs) or [None]
                    problem = shop.wb.workflows.last_problems[0]
                    other.append(f"refused: {problem.split('(ValidationError: ')[1]}")
                    return real_fetch(*a, **kw)
                shop.wb.workflows.run(shop.wf["id"], progress=False, **kwargs)
                other.append("ran")
            except RunRefused:
                other.append("refused: active run")
            except ValidationError as exc:
                other.append(f"refused: {str(exc)[:40]}")
        return real_fetch(*a, **kw)

    monkeypatch.setattr(audience, "fetch", fetch)
    _kernel(monkeypatch, shop)  # the other call's kernel, should it ever start
    taken = False
    try:
        shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY)
    except RunTakenOver:
        taken = True
    monkeypatch.undo()
    why = "refused: active run" if after.startswith("control") else "refused: stale_after must"
    assert len(other) == 1 and other[0].startswith(why), other
    status, ended, _, _, sent = shop.row(rid)
    runs = shop.oracle.rows("SELECT id FROM workflow_runs")
    # the living call goes on and ends its own period, sending its set; the refused call
    # made no run
    assert (taken, status, ended is not None, sent, shop.records(rid)) == (
        False,
        "succeeded",
        True,
        N,
        N,
    )
    assert (len(runs), shop.locks(), _marked_later(shop, rid)) == (1, [], "succeeded")


# -- 2. Ctrl-C as a resume ends, an earlier period's entry still on disk -----------------------
_OLD_ENTRY = (
    "BREAK: host A's run R ends with the store failing at its end: kept on A "
    "(pending-runs/R.json: `failed`, period P1, owner O1); O1's process dies (lock stale). "
    "`hybridwb run --resume R` on A: its first `pending.flush` meets the store down for a "
    "moment (`Campaigns.lock` in `_resumed_since`) and leaves R.json on disk; the resume "
    "takes the lock (O2), opens P2, its kernel sends every target; Ctrl-C as the run ends "
    "(as `_finish` reads its counts): the handler's `pending.keep(..., replace=False)` sees "
    "R.json (P1's entry, not one `_finish` kept) and keeps nothing; its `pending.flush` "
    "then drops P1's entry unwritten ('resumed since': the lock is O2's) and unlinks it; "
    "`let_go` releases O2. Damage: P2 is never ended: R left `running` with no end, no "
    "lock, nothing on disk; the next `mark_stale` calls it `stale` ('its heartbeat "
    "stopped') though it ended by Ctrl-C. Oracle: SELECT status, finished_at FROM "
    "workflow_runs; pending-runs/ empty; run_locks empty."
)


@ON_SQLITE
@pytest.mark.parametrize(
    "blip",
    [
        "control: the resume's first flush writes P1's entry",
        "the resume's first flush meets the store down",
    ],
)
def test_ctrl_c_as_a_resume_ends_keeps_its_end_over_an_earlier_periods_entry(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, blip: str
) -> None:
    with pytest.MonkeyPatch.context() as m:
        fail_once(m, Runs, "update_open")  # the first run's end
        _kernel(m, shop)
        rid = shop.runner("a").run(shop.wf["id"], progress=False)["id"]
    [first] = _kept(shop, "a")
    assert first["status"] == "failed" and first[pending.PERIOD]
    shop.age_locks()  # A's process died

    real_lock, locks_read = Campaigns.lock, {"n": 0}

    def lock(self: Campaigns, *a: Any, **kw: Any) -> Any:
        locks_read["n"] += 1
        if locks_read["n"] == 1 and not blip.startswith("control"):
            raise ConnectionFailed("the store is unreachable")  # the resume's first flush
        return real_lock(self, *a, **kw)

    real_counts, armed = Campaigns.counts, {"on": False}

    def counts(self: Campaigns, *a: Any, **kw: Any) -> Any:
        if armed["on"]:
            armed["on"] = False
            raise _Interrupted  # Ctrl-C as the runner's `_finish` reads the counts
        return real_counts(self, *a, **kw)

    import papermill

    def execute(*a: Any, parameters: dict[str, Any], **kw: Any) -> None:
        shop.wb.workflows.process(
            parameters["workflow"],
            parameters["run_id"],
            owner=parameters["owner"],
            progress=False,
            now=DAY,
        )
        armed["on"] = True  # the kernel is done: the runner ends the run

    interrupted = False
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Campaigns, "lock", lock)
        m.setattr(Campaigns, "counts", counts)
        m.setattr(papermill, "execute_notebook", execute)
        try:
            shop.runner("a").run(resume=rid, workflow=None, progress=False)
        except _Interrupted:
            interrupted = True
    assert interrupted and shop.records(rid) == N
    pending.flush(shop.wb.store, shop.tmp / "a" / ".hybridwb")  # the next command on A
    status, ended, _, error, _ = shop.row(rid)
    assert (_kept(shop, "a"), shop.locks()) == ([], [])
    assert (status, ended is not None, _marked_later(shop, rid)) == ("failed", True, "failed")
    assert "interrupted" in (error or ""), error


# -- 3. a fresh run: the store down from the reopen to the end -------------------------------
_WRONG_PERIOD = (
    "BREAK: `hybridwb run wf` makes run R (`queued`, started_at NULL); the store goes down "
    "as `open_period` writes the period P1 (the reopen not applied) and stays down while "
    "the run ends: `_not_started` -> `end_or_keep(ends=[R as made, P1])`: the write into R "
    "as made fails, and the end is kept naming `periods[-1]` = P1, a period never written "
    "(the run is still as made). The store comes back; the next command's `pending.flush` "
    "writes the end WHERE started_at = P1 (no row), counts it written and unlinks it; the "
    "lock is released. Damage: R is left `queued` with no end and nothing on disk; the "
    "next `mark_stale` calls it `stale`, 'its heartbeat stopped', though its notebook "
    "never started and its failure (the store unreachable) was kept. Oracle: SELECT "
    "status, finished_at, started_at FROM workflow_runs; pending-runs/ empty."
)


@ON_SQLITE
@pytest.mark.parametrize(
    "down",
    [
        "control: the store fails at the reopen only",
        "the store stays down from the reopen to the end",
    ],
)
def test_a_fresh_runs_end_kept_with_the_store_down_lands_on_the_run_as_made(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, down: str
) -> None:
    state = {"down": False}
    stays = not down.startswith("control")
    real_open, real_release = Runs.update_open, Campaigns.release

    def reopen(self: Runs, *a: Any, **kw: Any) -> Any:
        state["down"] = stays
        raise ConnectionFailed("the store is unreachable")  # not applied

    update_open = down_while(lambda: state["down"], real_open)

    release = down_while(lambda: state["down"], real_release)

    runner = shop.runner("a")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Runs, "reopen", reopen)
        m.setattr(Runs, "update_open", update_open)
        m.setattr(Campaigns, "release", release)
        _kernel(m, shop)
        with pytest.raises(ConnectionFailed):
            runner.run(shop.wf["id"], progress=False)
    rid = _only_run(shop)
    kept = _kept(shop, "a")
    # (kept: one entry per period it may be in, the run as made and P1: at most one lands)
    assert (shop.row(rid)[0], bool(kept)) == (("queued", True) if stays else ("failed", False))
    pending.flush(shop.wb.store, runner.settings.home)  # the next command, the store back
    status, ended, started, error, _ = shop.row(rid)
    assert (shop.locks(), _kept(shop, "a")) == ([], [])
    assert (status, ended is not None, started) == ("failed", True, None), kept
    assert "unreachable" in (error or "")
    assert _marked_later(shop, rid) == "failed"


# -- 4. a by-hand call's kept release, the same notebook's next call ---------------------------
_OWN_LOCK = (
    "BREAK: a by-hand `wb.workflows.process(wf, R1)` ends `succeeded` (its end written), its "
    "lock's release fails (the store unreachable for a moment): kept on disk (round 37) and "
    "the call returns. The store is back; the same notebook's next call "
    "`wb.workflows.process(wf, R2)` (a new run of the workflow) takes no flush (only "
    "`hybridwb run` and a workbench opening the store flush `pending-runs/`) and is refused: "
    '"already has an active run (R1, <this process\'s owner>, heartbeat ...)". Damage: the '
    "lock of a call that ended stays in `run_locks` and refuses the workflow's by-hand calls "
    "from this living process until its heartbeat is 120 s old (its owner is alive, so it "
    "is not taken over). Oracle: SELECT run_id, owner FROM run_locks (R1's); "
    "pending-runs/R1.json on disk; R2 `queued`, 0 records."
)


@ON_SQLITE
@pytest.mark.parametrize(
    "release",
    [
        "control: the release works",
        "the release fails once",
    ],
)
def test_a_by_hand_calls_kept_release_does_not_refuse_the_next_call(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, release: str
) -> None:
    r1 = shop.wb.store.runs.create(shop.wf["id"], {})["id"]
    with pytest.MonkeyPatch.context() as m:
        fail_once(m, Campaigns, "release", armed=not release.startswith("control"))
        shop.wb.workflows.process(shop.wf["id"], r1, progress=False, now=DAY)
    assert shop.row(r1)[0] == "succeeded"
    r2 = shop.wb.store.runs.create(shop.wf["id"], {})["id"]
    try:
        second = str(
            shop.wb.workflows.process(shop.wf["id"], r2, progress=False, now=DAY)["records"]
        )
    except RunRefused as exc:
        second = f"refused: {str(exc).split(';')[0]}"
    status, ended, _, _, sent = shop.row(r2)
    assert (second, status, ended is not None, sent, shop.locks()) == (
        str(N),
        "succeeded",
        True,
        N,
        [],
    )


# -- 5. HOLDS: a succeeded run called again by hand, dry or not ---------------------------------
@ON_SQLITE
@pytest.mark.parametrize(
    ("made_dry", "again_dry"),
    [(True, True), (False, False), (False, True), (True, False)],
)
def test_a_succeeded_run_called_again_by_hand_is_left_as_it_is(
    shop: Shop, made_dry: bool, again_dry: bool
) -> None:
    """HOLDS: a run made dry (or real) and processed by hand to `succeeded`, then called
    again by hand (a notebook cell run twice): with its own `dry_run`, the stats of its pass
    are returned and the run is left as it is (same start, same end, no lock, no record
    added); with the other `dry_run`, refused before anything is taken. Oracle:
    workflow_runs, run_locks, send_records."""
    rid = shop.wb.store.runs.create(shop.wf["id"], {}, dry_run=made_dry)["id"]
    shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY, dry_run=made_dry)
    before = shop.row(rid)
    assert before[0] == "succeeded"
    stats_before = json.loads(
        shop.oracle.one("SELECT stats FROM workflow_runs WHERE id = ?", shop.oracle.uid(rid))
    )
    if made_dry == again_dry:
        stats = shop.wb.workflows.process(
            shop.wf["id"], rid, progress=False, now=DAY + timedelta(hours=1), dry_run=again_dry
        )
        assert stats["now"] == stats_before["now"]
    else:
        with pytest.raises(ValidationError):
            shop.wb.workflows.process(
                shop.wf["id"], rid, progress=False, now=DAY, dry_run=again_dry
            )
    assert (shop.row(rid), shop.locks(), shop.records(rid)) == (
        before,
        [],
        0 if made_dry else N,
    )


# -- 3b. a by-hand call of a run never opened: the store down from the reopen to the end -------
_WRONG_PERIOD_BY_HAND = (
    "BREAK: a run R made by `wb.store.runs.create` (`queued`, never opened); a by-hand "
    "`wb.workflows.process(wf, R)`: the store goes down as `open_period` writes its period "
    "P1 (not applied) and stays down while the call ends: `outcome.end_by_hand` keeps the end "
    "naming `ends[-1]` = P1 (a period never written) and the lock's release fails. The "
    "store comes back; the next command's flush writes WHERE started_at = P1 (no row) and "
    "unlinks the entry. Damage: the call's failure (kept) is never written: R stays "
    "`queued`, no end, as if never called (with the store failing at the reopen only, the "
    "same call ends R `failed`, round 37's control). Oracle: SELECT status, finished_at "
    "FROM workflow_runs; pending-runs/ empty."
)


@ON_SQLITE
@pytest.mark.parametrize(
    "down",
    [
        "control: the store fails at the reopen only",
        "the store stays down from the reopen to the end",
    ],
)
def test_a_by_hand_calls_end_kept_with_the_store_down_lands_on_the_run_never_opened(
    shop: Shop, down: str
) -> None:
    rid = shop.wb.store.runs.create(shop.wf["id"], {})["id"]
    state = {"down": False}
    stays = not down.startswith("control")
    real_get, real_open, real_release = Runs.get, Runs.update_open, Campaigns.release

    def reopen(self: Runs, *a: Any, **kw: Any) -> Any:
        state["down"] = stays
        raise ConnectionFailed("the store is unreachable")  # not applied

    def failing(real: Any) -> Any:
        return down_while(lambda: state["down"], real)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Runs, "reopen", reopen)
        m.setattr(Runs, "get", failing(real_get))
        m.setattr(Runs, "update_open", failing(real_open))
        m.setattr(Campaigns, "release", failing(real_release))
        with pytest.raises(ConnectionFailed):
            shop.wb.workflows.process(shop.wf["id"], rid, progress=False, now=DAY)
    kept = list(shop.tmp.rglob("pending-runs/*.json"))
    pending.flush(shop.wb.store, shop.wb.settings.home)  # the next command, the store back
    status, ended, _, error, _ = shop.row(rid)
    assert (shop.locks(), list(shop.tmp.rglob("pending-runs/*.json"))) == ([], [])
    assert (status, ended is not None) == ("failed", True), (kept, error)
    assert _marked_later(shop, rid) == "failed"


# -- 6. a zombie runner's kept end over a later period's, on one host ---------------------------
_REPLACED = (
    "BREAK: runner A (owner O_A, host H) opens period P1 of run R and hangs in its kernel "
    "(its heartbeat stops: a laptop asleep); `hybridwb run --resume R` on the same host H "
    "(B, owner O_B, the same home) takes the stale lock over, opens P2, its kernel sends "
    "every target, and the store goes down as B ends: B keeps its end "
    "(pending-runs/R.json: `failed`, period P2, owner O_B; its lock not released). A wakes "
    "and ends with the store still down: `_finish` keeps its own end with "
    "`pending.keep(replace=True)` OVER B's (P1, owner O_A). The store comes back; the next "
    "command's flush finds the lock O_B's ('resumed since'), drops A's entry unwritten and "
    "releases O_A's lock (none). Damage: P2 is never ended (R left `running`, no end; the "
    "next `mark_stale` calls it `stale`) and B's lock is left in `run_locks` under this "
    "living process's owner, refusing the workflow's next run until its heartbeat is 120 s "
    "old; nothing is left on disk. Oracle: SELECT status, finished_at FROM workflow_runs; "
    "SELECT owner FROM run_locks; pending-runs/ empty."
)


@BOTH
@pytest.mark.parametrize(
    "host",
    [
        "control: B resumes on another host",
        "B resumes on A's host",
    ],
)
def test_a_zombie_runners_kept_end_does_not_replace_a_later_periods(shop: Shop, host: str) -> None:
    import papermill

    state = {"down": False, "calls": 0}
    real_counts, real_open, real_release = Campaigns.counts, Runs.update_open, Campaigns.release
    b_host = "b" if host.startswith("control") else "a"

    def failing(real: Any) -> Any:
        return down_while(lambda: state["down"], real)

    def execute(*a: Any, parameters: dict[str, Any], **kw: Any) -> None:
        state["calls"] += 1
        if state["calls"] == 1:  # A's kernel: hangs; B resumes meanwhile
            rid = parameters["run_id"]
            shop.age_locks()
            resumed = shop.runner(b_host).run(resume=rid, workflow=None, progress=False)
            assert resumed["status"] == "failed"  # B's end kept: the store is down
            return  # A wakes up; the store is still down as it ends
        shop.wb.workflows.process(  # B's kernel
            parameters["workflow"],
            parameters["run_id"],
            owner=parameters["owner"],
            progress=False,
            now=DAY,
        )
        state["down"] = True  # the store goes down as B ends

    with pytest.MonkeyPatch.context() as m:
        m.setattr(papermill, "execute_notebook", execute)
        m.setattr(Campaigns, "counts", failing(real_counts))
        m.setattr(Runs, "update_open", failing(real_open))
        m.setattr(Campaigns, "release", failing(real_release))
        shop.runner("a").run(shop.wf["id"], progress=False)
    state["down"] = False  # the store is back
    rid = _only_run(shop)
    assert shop.records(rid) == N
    for home in ("a", "b"):  # the next command on each host
        pending.flush(shop.wb.store, shop.tmp / home / ".hybridwb")
    status, ended, _, error, _ = shop.row(rid)
    kept, locks = _kept(shop, "a") + _kept(shop, "b"), len(shop.locks())
    assert (status, ended is not None, kept, locks) == ("failed", True, [], 0), error
    assert "unreachable" in (error or ""), error
    assert _marked_later(shop, rid) == "failed"


# -- 7. a runner's kernel goes on with a period that is not its runner's ------------------------
_NOT_ITS_PERIOD = (
    "BREAK: run R's targets are all sent, R ended `failed` (a cell after `process`). "
    "`hybridwb run --resume R` on host A (owner O_A) opens P_A; its kernel "
    "(`process(owner=O_A)`) reads R (P_A), beats (O_A holds the lock) and, before it "
    "goes on with its runner's period (`_process`: `runners` and `running`: "
    "`reopen(run, started_at=P_A)`), A's heartbeat goes stale (the laptop sleeps) and host B "
    "resumes R: its lock (O_B), its period P_B. A's kernel wakes: the reopen from P_A "
    "writes nothing, it reads the run back and goes on with P_B unchecked; nothing is "
    "pending, so no owner-checked write stops it, and its last write (`Runs.update(ended="
    "None, started=P_B)`: counts, `stats`, `missing_variables`) lands in B's open period. "
    "Damage: B's period holds A's pass (its `now`, duration, samples) before B's kernel "
    "ran; B's `_finish` builds its report's stats on it (`{**run.stats, **counts}`). "
    "Oracle: SELECT stats FROM workflow_runs: `now` is A's kernel's."
)


@ON_SQLITE
@pytest.mark.parametrize(
    "when",
    [
        "control: B resumes after A's kernel went on with P_A",
        "B resumes between A's kernel's beat and its reopen",
    ],
)
def test_a_runners_kernel_does_not_go_on_with_another_runners_period(shop: Shop, when: str) -> None:
    import papermill

    from hybridwb.workflows import periods

    a_now = DAY + timedelta(hours=5)
    state = {"calls": 0, "busy": False}
    seen: dict[str, Any] = {}
    real_reopen = Runs.reopen

    def b_resumes(rid: Any) -> None:
        shop.age_locks()  # A's heartbeat stopped
        assert (
            Campaigns(shop.wb.store.backend).acquire(shop.wf["id"], rid, "host-b:1#b", 120) is None
        )
        opened = periods.open_period(shop.wb.store, rid, resume=True)
        seen["b"] = opened["started_at"]
        seen["stats"] = shop.oracle.one(
            "SELECT stats FROM workflow_runs WHERE id = ?", shop.oracle.uid(rid)
        )

    def reopen(self: Runs, run: dict[str, Any], **kw: Any) -> Any:
        going_on = kw.get("started_at") is not None and kw["started_at"] == run.get("started_at")
        second = state["calls"] == 2  # the resume's kernel
        if going_on and second and not state["busy"] and not when.startswith("control"):
            state["busy"] = True
            b_resumes(run["id"])
        return real_reopen(self, run, **kw)

    def execute(*a: Any, parameters: dict[str, Any], **kw: Any) -> None:
        state["calls"] += 1
        shop.wb.workflows.process(
            parameters["workflow"],
            parameters["run_id"],
            owner=parameters["owner"],
            progress=False,
            now=DAY if state["calls"] == 1 else a_now,
        )
        if state["calls"] == 1:  # the first run: a cell after `process` fails
            raise papermill.PapermillExecutionError(1, 2, "x", "ValueError", "boom", [])
        if when.startswith("control"):
            b_resumes(parameters["run_id"])

    with pytest.MonkeyPatch.context() as m:
        m.setattr(papermill, "execute_notebook", execute)
        m.setattr(Runs, "reopen", reopen)
        rid = shop.runner("a").run(shop.wf["id"], progress=False)["id"]
        assert (shop.row(rid)[0], shop.records(rid)) == ("failed", N)
        shop.runner("a").run(resume=rid, workflow=None, progress=False)
    status, ended, _, _, _ = shop.row(rid)
    started = shop.wb.store.runs.get(rid)["started_at"]
    stats = shop.oracle.one("SELECT stats FROM workflow_runs WHERE id = ?", shop.oracle.uid(rid))
    assert (status, ended, started == seen["b"]) == ("running", None, True)
    # B's period holds nothing of A's kernel's pass
    assert json.loads(stats) == json.loads(seen["stats"])
    assert json.loads(stats).get("now") != a_now.isoformat()
