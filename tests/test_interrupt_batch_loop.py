# ruff: noqa: F811  (the fixtures imported are test parameters here)
"""Ctrl-C (a real SIGINT, `signal.raise_signal`) at each point of a run's batch loop.

The guarantee: after Ctrl-C no batch is written that was not given to the store before
it (a batch is written whole or not at all), the run's lock and the cap lock are free,
and a resume ends every frozen target with one record or one exclusion, each phone
messaged once. A SQLite store runs its steps in the run's own thread (`StoreSteps`
without a thread), so the interrupt is raised where it lands: the file holds exactly
what it held when the interrupt was raised, and nothing of the run (a read, a render, a
pause, a check, a write) comes after it. A PostgreSQL store runs them in a thread of its
own: a batch whose write was given before the interrupt is written (it was decided),
no other. Ctrl-C as the call ends (its heartbeat stopped, its lock released), or
pressed again as an interrupted call stops, still frees the lock. The oracle is direct SQL on the store (`send_records`, `run_skips`,
`run_targets`, `run_locks`; `pg_locks`, `pg_stat_activity`; a SQLite `BEGIN IMMEDIATE`
and `flock` on the cap's lock file).
"""

from __future__ import annotations

import fcntl
import signal
from collections.abc import Callable
from typing import Any

import pytest

from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import audience, lock, rendering
from hybridwb.workflows import process as process_module
from tests.test_attack_interrupt_round22 import _ends, _nothing_held, a_store  # noqa: F401
from tests.test_attack_once_round2 import DAY, oracle, source, start, workbench  # noqa: F401
from tests.test_attack_store_steps import MAPPING, PHONES, N, _members, _workflow
from tests.test_campaign_runs import pg_store  # noqa: F401  (a_store's PostgreSQL store)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]
BATCH = 3

#: where the interrupt lands, on the second batch unless named (Ctrl-C in a SQLite store's
#: check and write: `test_attack_store_steps.py`, `..._a_sqlite_stores_step_stops_the_run_there`)
POINTS = [
    "analyze",  # the history's statistics: a store step after batch 1's write here
    "render ahead",  # batch 2 rendered before its check's answer
    "decide",  # batch 2 decided with the check's answer (the cap lock held)
    "pause",  # `batch_pause` after batch 2's write was given
    "store read",  # the third batch's frozen targets read from the store
    "source read",  # the third batch's rows read from the source
    "heartbeat stop",  # every batch written: the call's heartbeat stopped
    "lock release",  # every batch written: the call's lock released
    "decide, then heartbeat stop",  # a second Ctrl-C as the first stops the heartbeat
]
#: on a PostgreSQL store (and a MariaDB source) these run in the store's thread or the
#: read-ahead worker: `test_attack_store_steps`, `test_attack_interrupt_round22` cover those
THREADED = {"analyze", "store read", "source read"}
CASES = [pytest.param("sqlite", at, id=f"sqlite-{at}") for at in POINTS] + [
    pytest.param("postgres", at, id=f"postgres-{at}") for at in POINTS if at not in THREADED
]
CAP = {"frequency_cap": {"messages": 1, "days": 7}}  # the cap lock is held from check to write


ENDING = {"stop", "release"}  # what a call does to end, after an interrupt too


def _done(store: str, run_id: Any) -> int:
    recs, sk, _ = _ends(store, run_id)
    return len(recs) + len(sk)


@pytest.mark.usefixtures("sigint_interrupts")
@pytest.mark.parametrize(("a_store", "at"), CASES, indirect=["a_store"])
def test_ctrl_c_at_each_point_of_the_batch_loop_writes_nothing_after_it(
    source: Callable[..., str], a_store: str, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    sqlite = a_store.startswith("sqlite")
    wb = workbench(_members(source), a_store, MAPPING)
    calls: dict[str, int] = {}
    state: dict[str, Any] = {"armed": True, "run_id": None, "given": 0}
    after: list[str] = []  # what the run did in this thread after the interrupt was raised
    when: list[tuple[int, int]] = []  # (records + exclusions then, writes given before it)

    def interrupt() -> None:
        when.append((_done(a_store, state["run_id"]), state["given"]))
        state["armed"] = False
        signal.raise_signal(signal.SIGINT)  # what Ctrl-C does: raised here, at once
        after.append("went on past the signal")

    def hook(name: str, real: Callable[..., Any], point: str, nth: int) -> Callable[..., Any]:
        """`real`, noting a call after the interrupt, interrupting its `nth` call (before
        it runs) at `point`."""

        def call(*a: Any, **kw: Any) -> Any:
            if when and name not in ENDING:
                after.append(name)
            calls[name] = calls.get(name, 0) + 1
            if state["armed"] and at.split(",")[0] == point and calls[name] == nth:
                interrupt()
            elif at == f"decide, then {point}" and when and calls[name] == nth:
                signal.raise_signal(signal.SIGINT)  # pressed again
            return real(*a, **kw)

        return call

    real_messaged = rendering.messaged

    def messaged(*a: Any, **kw: Any) -> Any:
        state["given"] += 1  # what a batch's write waits for: it is given next
        return real_messaged(*a, **kw)

    monkeypatch.setattr(rendering, "messaged", messaged)
    monkeypatch.setattr(process_module, "ANALYZE_AFTER", 1)  # a step after every write
    for owner, name, real, point, nth in [
        (Campaigns, "seen", Campaigns.seen, "", 0),
        (Campaigns, "write_batch", Campaigns.write_batch, "", 0),
        (Campaigns, "analyze_history", Campaigns.analyze_history, "analyze", 1),
        (rendering, "render_ahead", rendering.render_ahead, "render ahead", 2),
        (rendering, "decide_and_render", rendering.decide_and_render, "decide", 2),
        (process_module.time, "sleep", lambda s: None, "pause", 2),
        (Campaigns, "pending", Campaigns.pending, "store read", 3),
        (audience, "fetch", audience.fetch, "source read", 3),
        (lock.Heartbeat, "stop", lock.Heartbeat.stop, "heartbeat stop", 1),
        (Campaigns, "release", Campaigns.release, "lock release", 1),
    ]:
        label = "write" if name == "write_batch" else name
        monkeypatch.setattr(owner, name, hook(label, real, point, nth))
    try:
        wf = _workflow(wb, CAP)
        run_id = state["run_id"] = start(wb, wf)
        with pytest.raises(KeyboardInterrupt):
            wb.workflows.process(
                wf["id"], run_id, progress=False, now=DAY, batch_size=BATCH, batch_pause=0.01
            )
        [(done_then, given)] = when
        done = _done(a_store, run_id)
        if sqlite:  # raised where it landed: nothing of the run after it, nothing written
            assert after == []
            assert done == done_then
        else:  # each write the store's thread began ends committed; none not given
            assert done == BATCH * calls.get("write", 0) and calls.get("write", 0) <= given
        assert done % BATCH == 0  # whole batches
        _nothing_held(a_store, wb)
        # processed by hand: the run row ends as the rows say, before the lock goes (an
        # interrupt while the call ends comes after every batch was written)
        [(status, error)] = oracle(a_store, "SELECT status, error FROM workflow_runs")
        if at in ("heartbeat stop", "lock release"):
            assert (status, error) == ("succeeded", None)
        else:
            assert (status, error) == (
                "failed",
                "KeyboardInterrupt: the run was interrupted; resume it",
            )
        if sqlite:  # the cap's file lock: another process takes it
            with open(f"{a_store.removeprefix('sqlite:///')}.recipients.lock", "a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=BATCH)
        _nothing_held(a_store, wb)
    finally:
        wb.close()
    recs, sk, frozen = _ends(a_store, run_id)
    assert all(n == 1 for n in recs.values()) and all(n == 1 for n in sk.values()), (recs, sk)
    assert not set(recs) & set(sk) and len(recs) + len(sk) == N
    assert (len(frozen) if sqlite else frozen) == N
    phones = oracle(a_store, "SELECT recipient FROM send_records")  # the store's one run
    assert len(phones) == len(set(phones)) == PHONES
