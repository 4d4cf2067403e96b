"""Round 30: a status kept on disk never overwrites a resume's end, whatever the clocks say.

A run ends while the store is unreachable: its `failed` is kept on disk (`pending.keep`)
with its end time by this host's clock. The run is resumed and ended from another host;
the next command here writes what was kept (`pending.flush`) unless the run was resumed
since. "Since" was judged by comparing the two hosts' clocks (the store's `finished_at`
later than the kept one): when the other host's clock was behind this one's, its later
end looked earlier, and the kept `failed` was written over the resume's `succeeded`.

The other host's end is staged as it writes it (its `finished_at` by a clock 10 minutes
behind); the oracle is direct SQL on `workflow_runs` (sqlite3 / psycopg).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import _stores
import pytest
from _stores import Oracle

from hybridwb.config import load_settings
from hybridwb.errors import StoreError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.platform.store import Store
from hybridwb.workflows import pending
from hybridwb.workflows.runner import Runner
from tests.test_attack_round25_locks import THIEF, _kernel

store = _stores.store
oracle = _stores.oracle


def test_a_kept_status_does_not_overwrite_a_resume_ended_by_a_host_whose_clock_is_behind(
    store: Store, oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK: the resume ended `succeeded` on a host whose clock is 10 minutes behind this
    one's; the next command here wrote the kept `failed` over it."""
    wf = store.workflows.create(name="r30-kept", message_config={"content": "안내"})
    runner = Runner(load_settings(tmp_path, {}), store)
    real_counts = Campaigns.counts

    def kernel(params: dict[str, Any]) -> None:
        Campaigns(store.backend).freeze(params["run_id"], [[("a", "01012340001")]])

        def gone(*a: Any, **kw: Any) -> Any:
            raise StoreError("connection refused")

        monkeypatch.setattr(Campaigns, "counts", gone)

    _kernel(monkeypatch, kernel)
    kept = runner.run(wf["id"], progress=False)
    monkeypatch.setattr(Campaigns, "counts", real_counts)
    [file] = (tmp_path / ".hybridwb" / "pending-runs").glob("*.json")
    kept_end = datetime.fromisoformat(json.loads(file.read_text())["finished_at"])
    # elsewhere: the lock goes stale, the run is resumed, sent and ended
    old = "2000-01-01 00:00:00" + ("+00" if oracle.postgres else ".000000")
    oracle.execute("UPDATE run_locks SET heartbeat_at = ?", old)
    c = Campaigns(store.backend)
    assert c.acquire(wf["id"], kept["id"], THIEF, 120) is None
    store.runs.update(kept["id"], status="running", error=None, finished_at=None)
    assert c.write_batch(kept["id"], wf["id"], THIEF, records=[("a", "r", "m")], channel="o",
                         skips=[])  # fmt: skip
    runner._finish(wf, store.runs.get(kept["id"]), None, tmp_path / "r.html", "manual", False,
                   owner=THIEF)  # fmt: skip
    # ... by a host whose clock is 10 minutes behind this one's
    behind = kept_end - timedelta(minutes=10)
    stored = behind if oracle.postgres else behind.replace(tzinfo=None).isoformat(" ")
    oracle.execute("UPDATE workflow_runs SET finished_at = ?", stored)
    assert oracle.rows("SELECT status FROM workflow_runs") == [("succeeded",)]
    pending.flush(store, runner.settings.home)
    assert oracle.rows("SELECT status, error FROM workflow_runs") == [("succeeded", None)]
    assert not list((tmp_path / ".hybridwb" / "pending-runs").glob("*.json"))
