# ruff: noqa: F811  (the fixtures imported are test parameters here)
"""Round 25: `hybridwb_set_stats` (migration 0009's `p_seq`) after a run has ended.

A stats request the server runs late (its first attempt, whose answer was lost) or one
sent by a process that wakes after its run ended must not write over the run's final
statistics: the request beats the lock as its owner first, and the lock is gone. Held on
real PostgreSQL, the function called as PostgREST calls it; oracle: plain psycopg.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_rest_campaigns import _fz, _hold_lock, db, rows, run  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("seq", [10, 11, 2**63 - 1], ids=["late first attempt", "newer", "max"])
def test_a_stats_request_after_the_run_ended_writes_nothing_over_its_final_stats(
    db: str, run: tuple[str, str], seq: int
) -> None:
    """HOLDS: the run writes its frozen stats (seq 10), ends (final stats, lock released);
    then a request of the same owner arrives: the late first attempt (seq 10), a newer
    seq, the largest a bigint holds. Each answers false and writes nothing."""
    wf, rid = run
    _hold_lock(db, wf, rid, "me:1#a1")
    frozen = {"frozen": {"as_of": "start"}}
    assert _fz(db, "hybridwb_set_stats", wf, rid, "me:1#a1", p_stats=frozen, p_seq=10) is True
    final: dict[str, Any] = {"targets": 5, "records": 4, "skipped": 1, "pending": 0}
    rows(db, "UPDATE workflow_runs SET stats = %s::jsonb WHERE id = %s", _json(final), rid)
    rows(db, "DELETE FROM run_locks WHERE workflow_id = %s", wf)
    late = {"frozen": {"as_of": "late"}}
    assert _fz(db, "hybridwb_set_stats", wf, rid, "me:1#a1", p_stats=late, p_seq=seq) is False
    assert rows(db, "SELECT stats FROM workflow_runs WHERE id = %s", rid) == [(final,)]
    assert rows(db, "SELECT stats_owner, stats_seq FROM run_state WHERE run_id = %s", rid) == [
        ("me:1#a1", 10)
    ]
    assert rows(db, "SELECT count(*) FROM run_locks WHERE workflow_id = %s", wf) == [(0,)]


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
