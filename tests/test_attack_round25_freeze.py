# ruff: noqa: F811  (the fixtures imported are test parameters here)
"""Round 25: a run created without the runner (`wb.store.runs.create`, then
`wb.workflows.process` in a notebook of one's own) keeps its target set frozen.

The freeze marks the set frozen in the run's `run_state` row, which only `hybridwb run`
creates (`start_state`): a run made another way had none, so the mark wrote nothing and
every `process` call froze the set anew, from the source as it then was. Source: a fresh
MariaDB database; oracle: direct SQL on the store's `run_targets`, `run_state`,
`send_records`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hybridwb.errors import InternalError
from hybridwb.platform.campaigns import Campaigns
from tests._stores import dies_at_batch
from tests.test_attack_once_round2 import (  # noqa: F401  (any_store's PostgreSQL store)
    DAY,
    any_store,
    frozen,
    oracle,
    pg_store,
    records,
    source,
    src,
    workbench,
)
from tests.test_attack_store_steps import MAPPING, _members, _workflow

pytestmark = [pytest.mark.mysql]


def test_a_run_made_without_the_runner_is_frozen_once(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK: the run crashes at its second batch; a member joins; the resume must complete
    the set frozen at the start (9 members), not freeze again and message the newcomer."""
    store = any_store
    db = _members(source, n=9, phones=9)
    wb = workbench(db, store, MAPPING)
    real_write = Campaigns.write_batch
    write_batch = dies_at_batch(2)

    try:
        wf = _workflow(wb)
        run_id = wb.store.runs.create(wf["id"], {})["id"]  # no `hybridwb run`
        monkeypatch.setattr(Campaigns, "write_batch", write_batch)
        with pytest.raises(InternalError, match="unexpected RuntimeError"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
        monkeypatch.setattr(Campaigns, "write_batch", real_write)
        assert frozen(store, run_id) == 9
        src(db, "INSERT INTO members VALUES (10, '새회원', '010-7777-0010')")  # joins
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=3)
    finally:
        wb.close()
    assert frozen(store, run_id) == 9
    keys = sorted(int(k) for k, _ in records(store, run_id))
    assert keys == list(range(1, 10)), keys
    assert oracle(store, "SELECT count(*) FROM run_state WHERE frozen_at IS NOT NULL") == [(1,)]


def test_a_run_processed_by_hand_to_its_end_says_so(
    source: Callable[..., str], any_store: str
) -> None:
    """BREAK: `wb.workflows.process` without the runner (a notebook of one's own) sent to
    every target, released its lock, and left the run `running`: the next `hybridwb run`
    (or `wb.workflows.stale()`) marked it `stale`, "its heartbeat stopped", and `doctor`
    failed on a run that had ended. Its status is written from the rows as it ends."""
    store = any_store
    wb = workbench(_members(source, n=6, phones=6), store, MAPPING)
    try:
        wf = _workflow(wb)
        run_id = wb.store.runs.create(wf["id"], {})["id"]
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=4)
        stale = wb.workflows.stale()
    finally:
        wb.close()
    assert stale == []
    assert len(records(store, run_id)) == 6
    rows = oracle(
        store, "SELECT status, error, sent_count, finished_at IS NOT NULL FROM workflow_runs"
    )
    assert rows == [("succeeded", None, 6, True)]
