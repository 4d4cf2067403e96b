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
