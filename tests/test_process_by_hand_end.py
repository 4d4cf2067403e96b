"""A run processed by hand (`wb.workflows.process` without an owner: a notebook of one's
own, no `hybridwb run` to write its end) that stops mid-run ends `failed`, with its error,
before its lock goes; one taken over by another process is left to its new owner.

Before, such a run stayed `running` with its lock released: the next run called it stale
("its heartbeat stopped") and nothing said what had stopped it. The failures themselves
(a consent column retyped, Ctrl-C) are tests/test_consent_altered_mid_run.py's and
tests/test_interrupt_batch_loop.py's, which check the row too; this file holds the
takeover. Sources are fresh MariaDB databases, stores SQLite files and PostgreSQL
databases; the oracle is direct SQL on `workflow_runs` and `run_locks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hybridwb.workflows import audience
from hybridwb.workflows.process import RunTakenOver
from tests._stores import store_sql
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    DAY,
    any_store,  # noqa: F401  (a fixture: pytest finds it by name)
    oracle,
    pg_store,  # noqa: F401
    start,
)
from tests.test_consent_altered_mid_run import ROWS, TABLES, _workbench

pytestmark = [pytest.mark.mysql]
THIEF = "elsewhere:4242"  # another host's process: alive as far as this one knows


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_hand")


def test_a_run_taken_over_mid_run_is_left_to_its_new_owner(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches of two; before the second batch is read, another process has taken the run
    over (the lock is its own, the row `running`). The call stops with
    `RunTakenOver` and writes nothing over the run: the row stays the new owner's
    `running`, with no error and no end, and the lock stays the new owner's."""
    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, any_store, {"template": "안내"}, {"table": "members"})
    real, calls = audience.fetch, {"n": 0}

    def fetch(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            # what a takeover leaves (the call's own process is alive here, so no stale
            # time would give its lock away: the new owner's lock is written as it is)
            store_sql(any_store, "UPDATE run_locks SET owner = %s", (THIEF,))
            wb.store.runs.update(run_id, status="running", error=None, finished_at=None)
        return real(*a, **kw)

    monkeypatch.setattr(audience, "fetch", fetch)
    try:
        run_id = start(wb, wf)
        with pytest.raises(RunTakenOver):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    assert oracle(any_store, "SELECT status, error, finished_at FROM workflow_runs") == [
        ("running", None, None)
    ]
    assert oracle(any_store, "SELECT owner FROM run_locks") == [(THIEF,)]


def test_a_call_taken_over_after_its_last_batch_leaves_the_new_period_alone(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After its last batch (between its last heartbeat and its counts), another process
    takes the run over and opens a new period of it (`Runs.reopen`: a resume elsewhere),
    with stats of its own. The call's counts and stats (written after its last batch) and
    its end are for its own period: none of them lands on the new one."""
    from hybridwb.platform.campaigns import Campaigns

    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, any_store, {"template": "안내"}, {"table": "members"})
    real, calls = Campaigns.counts, {"n": 0}

    def counts(self: Campaigns, run_id: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the first is the freeze's; the second follows the last batch
            store_sql(any_store, "UPDATE run_locks SET owner = %s", (THIEF,))
            wb.store.runs.reopen(wb.store.runs.get(run_id), error=None)
            wb.store.runs.update(run_id, target_count=-1, stats={"theirs": True})
        return real(self, run_id)

    monkeypatch.setattr(Campaigns, "counts", counts)
    try:
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    assert calls["n"] >= 2
    [(status, ended, targets, stats)] = oracle(
        any_store, "SELECT status, finished_at, target_count, stats FROM workflow_runs"
    )
    assert (status, ended, targets) == ("running", None, -1)
    assert stats in ({"theirs": True}, '{"theirs": true}', '{"theirs":true}')
    assert oracle(any_store, "SELECT owner FROM run_locks") == [(THIEF,)]


def test_two_calls_on_one_clock_open_two_periods(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """Two by-hand calls on one run, both given the same clock (`clock=`, as a test or a
    replay gives it): each opens its own period (`started_at` by the wall clock, not the
    run's clock), so a write sent late for the first cannot land in the second."""
    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, any_store, {"template": "안내"}, {"table": "members"})
    starts = []
    try:
        run_id = start(wb, wf)
        for _ in range(2):
            wb.workflows.process(wf["id"], run_id, progress=False, clock=lambda: DAY)
            starts += oracle(any_store, "SELECT started_at FROM workflow_runs")
            # a pass that failed (a succeeded run is not worked again): the next call
            # opens another period of it
            wb.store.runs.update(run_id, status="failed")
        # a succeeded run called again by hand is left as it is: no new period
        wb.store.runs.update(run_id, status="succeeded")
        wb.workflows.process(wf["id"], run_id, progress=False, clock=lambda: DAY)
        assert oracle(any_store, "SELECT status, started_at FROM workflow_runs") == [
            ("succeeded", starts[-1][0])
        ]
    finally:
        wb.close()
    assert len(starts) == 2 and starts[0][0] is not None
    assert starts[0] != starts[1]


def test_a_call_stopped_before_it_opened_the_run_still_ends_it_with_its_error(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run made by hand and never opened (`queued`, no start): the call fails before it
    opens a period (its audience cannot be built). Under its lock, it ends the run
    `failed` with the error, as before periods: the row says what stopped it."""
    from hybridwb.errors import ValidationError

    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, any_store, {"template": "안내"}, {"table": "members"})

    def refused(*a: Any, **kw: Any) -> Any:
        raise ValidationError("The audience table is not mapped; map it first.")

    monkeypatch.setattr(audience, "audience_for", refused)
    try:
        run_id = start(wb, wf)
        with pytest.raises(ValidationError):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    [(status, error, ended)] = oracle(
        any_store, "SELECT status, error, finished_at FROM workflow_runs"
    )
    assert (status, ended is not None) == ("failed", True)
    assert "not mapped" in error


def test_a_dry_run_processed_by_hand_without_dry_run_is_refused(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """A run made as a dry run, processed by hand without `dry_run=True`, is refused before
    anything is taken or written (round 36: it wrote real send records); with it, it
    sends nothing."""
    from hybridwb.errors import ValidationError
    from hybridwb.platform.campaigns import Campaigns

    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, any_store, {"template": "안내"}, {"table": "members"})
    try:
        run = wb.store.runs.create(wf["id"], {}, dry_run=True)
        Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
        with pytest.raises(ValidationError, match=r"is a dry run; process it with dry_run=True"):
            wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY)
        assert oracle(any_store, "SELECT status, started_at FROM workflow_runs") == [
            ("queued", None)
        ]
        assert oracle(any_store, "SELECT COUNT(*) FROM run_locks") == [(0,)]
        wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY, dry_run=True)
    finally:
        wb.close()
    assert oracle(any_store, "SELECT COUNT(*) FROM send_records") == [(0,)]
