"""Round 30: a batch written again after its commit's acknowledgement was lost.

A run's batch is one transaction: the heartbeat, the send records, the exclusions and
the count of targets that changed in the source since the freeze (`run_state
.changed_count`, the report's "changed in source"). When the commit reached the store and
its reply was lost (the network dropped: the driver raises the error of a closed
connection), the store layer writes the batch again. Records and exclusions are keyed by
(run, target) and were not doubled, but the changed count was added a second time.

The fault is the one `test_store_retry.py` injects: the driver's commit succeeds, then
raises. The oracle is direct SQL on the store (sqlite3 / psycopg).
"""

from __future__ import annotations

from typing import Any

import _stores
import pytest
from _stores import Oracle

from hybridwb.platform.store import Store
from tests.test_runner_state import ME, frozen
from tests.test_store_retry import lose_next_commit_ack

store = _stores.store
oracle = _stores.oracle


def changed_count(oracle: Oracle, run: Any) -> int:
    return int(oracle.one("SELECT changed_count FROM run_state WHERE run_id = ?", oracle.uid(run)))


@pytest.mark.parametrize("fresh", [True, False], ids=["first pass", "resume"])
def test_a_batch_written_again_after_a_lost_ack_counts_its_changed_targets_once(
    store: Store, oracle: Oracle, monkeypatch: pytest.MonkeyPatch, fresh: bool
) -> None:
    """BREAK: the batch's commit reached the store and its reply was lost; the batch was
    written again and its two targets gone from the source were counted four times."""
    c, wf, run = frozen(store)
    c.acquire(wf, run, ME, 120)
    lost = lose_next_commit_ack(store, monkeypatch)
    assert c.write_batch(
        run,
        wf,
        ME,
        records=[("a", "+821012340000", "안내")],
        channel="outbox",
        skips=[("b", "gone from source"), ("c", "gone from source")],
        changed=2,
        fresh=fresh,
    )
    assert lost == [1]
    assert oracle.one("SELECT count(*) FROM send_records") == 1
    assert oracle.one("SELECT count(*) FROM run_skips") == 2
    assert changed_count(oracle, run) == 2
    # the next batch still adds its own
    assert c.write_batch(
        run, wf, ME, records=[], channel="outbox", skips=[("d", "gone from source")], changed=1
    )
    assert changed_count(oracle, run) == 3
