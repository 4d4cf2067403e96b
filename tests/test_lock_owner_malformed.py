"""A lock's owner that hybridwb did not write is judged by its heartbeat alone.

`owner_alive` reads a pid from the end of a lock's owner (`host:pid#tag`) and, when the
host is this one, asks the system about that process. An owner written into `run_locks` by
hand (an operator clearing a lock, a script, another version) may name no pid hybridwb
would write: a superscript digit (`str.isdigit` says yes, `int` says no: ValueError), a
number past what a pid can be (OverflowError from `os.kill`), a digit of another script
(`int` reads it as a pid that is some other process), pid 0 (`os.kill(0, 0)` asks about the
caller's own process group). Each raised a raw Python error out of every `acquire`, every
run and every `stale_runs`, or judged a process the owner never named. Such an owner is
not judgeable: its lock holds while its heartbeat is fresh and is taken once it stops, as
for another host's owner.

The owners are written with direct SQL on `run_locks`; the oracle reads it back the same way.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _stores
import pytest
from _stores import Oracle

from hybridwb.config import load_settings
from hybridwb.platform.campaigns import Campaigns, is_stale, owner_alive, this_host, this_owner
from hybridwb.platform.store import Store
from hybridwb.workflows.runner import Runner, RunRefused, stale_runs

store = _stores.store
oracle = _stores.oracle

HOST = this_host()

MALFORMED = {
    "superscript-pid": f"{HOST}:\u00b2",
    "superscript-pid-tagged": f"{HOST}:\u00b9\u00b2#abcd1234",
    "no-pid": f"{HOST}:",
    "pid-past-any-pid": f"{HOST}:99999999999999999999",
    "pid-past-c-int": f"{HOST}:{2**40}",
    "pid-past-pid_t": f"{HOST}:{2**31}",
    "arabic-indic-digit": f"{HOST}:\u0663",
    "fullwidth-digits": f"{HOST}:\uff11\uff12",
    "pid-zero": f"{HOST}:0",
    "pid-zeros": f"{HOST}:000",
    "garbage": "\u00b2\u00b2\u00b2 ::: ###",
}


@pytest.mark.parametrize("owner", MALFORMED.values(), ids=MALFORMED.keys())
def test_an_owner_naming_no_pid_hybridwb_writes_is_not_judged(owner: str) -> None:
    assert owner_alive(owner) is None


@pytest.mark.parametrize("owner", MALFORMED.values(), ids=MALFORMED.keys())
def test_is_stale_of_a_malformed_owner_goes_by_its_heartbeat(owner: str) -> None:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    fresh = {"owner": owner, "heartbeat_at": (at - timedelta(seconds=5)).replace(tzinfo=None)}
    old = {"owner": owner, "heartbeat_at": (at - timedelta(seconds=500)).replace(tzinfo=None)}
    assert is_stale(fresh, at, 120) is False
    assert is_stale(old, at, 120) is True


def _hand_written(oracle: Oracle, wf: Any, owner: str) -> None:
    oracle.execute("UPDATE run_locks SET owner = ? WHERE workflow_id = ?", owner, oracle.uid(wf))


def _age(oracle: Oracle, wf: Any, seconds: float) -> None:
    at = datetime.now(UTC) - timedelta(seconds=seconds)
    value: Any = at if oracle.postgres else at.replace(tzinfo=None).isoformat(" ")
    oracle.execute(
        "UPDATE run_locks SET heartbeat_at = ? WHERE workflow_id = ?", value, oracle.uid(wf)
    )


def _lock(oracle: Oracle) -> list[tuple[str, str]]:
    return [
        (str(uuid.UUID(str(r))), o) for r, o in oracle.rows("SELECT run_id, owner FROM run_locks")
    ]


@pytest.mark.parametrize("owner", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_owners_lock_holds_while_fresh_and_is_taken_once_stale(
    store: Store, oracle: Oracle, tmp_path: Path, owner: str
) -> None:
    wf = store.workflows.create(name="weekly")
    theirs = uuid.uuid4()
    campaigns = Campaigns(store.backend)
    assert campaigns.acquire(wf["id"], theirs, "otherhost:1", 120) is None
    _hand_written(oracle, wf["id"], owner)

    # fresh: every reader of the lock refuses in its own words, none raises a raw error
    held = campaigns.acquire(wf["id"], uuid.uuid4(), this_owner(), 120)
    assert held is not None and held["owner"] == owner
    with pytest.raises(RunRefused) as caught:
        Runner(load_settings(tmp_path, {}), store).run("weekly", progress=False)
    assert str(caught.value).startswith("Workflow 'weekly' already has an active run (")
    assert "\n" not in str(caught.value)
    assert stale_runs(store) == []  # no run row: nothing claims to be active
    assert _lock(oracle) == [(str(theirs), owner)]
    assert oracle.one("SELECT COUNT(*) FROM workflow_runs") == 0

    # its heartbeat stopped: taken over
    _age(oracle, wf["id"], 500)
    mine = uuid.uuid4()
    assert campaigns.acquire(wf["id"], mine, this_owner(), 120) is None
    assert _lock(oracle) == [(str(mine), this_owner())]


@pytest.mark.parametrize("owner", MALFORMED.values(), ids=MALFORMED.keys())
def test_stale_runs_reads_a_malformed_owners_lock_by_its_heartbeat(
    store: Store, oracle: Oracle, owner: str
) -> None:
    wf = store.workflows.create(name="weekly")
    run = store.runs.create(wf["id"])
    store.runs.update(run["id"], status="running")
    assert Campaigns(store.backend).acquire(wf["id"], run["id"], "otherhost:1", 120) is None
    _hand_written(oracle, wf["id"], owner)

    assert stale_runs(store) == []
    _age(oracle, wf["id"], 500)
    assert [str(r["id"]) for r in stale_runs(store)] == [str(run["id"])]
