"""Runs whose heartbeat stopped: which runs claim to be active and have no living lock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hybridwb.errors import ValidationError
from hybridwb.platform.campaigns import Campaigns, is_stale
from hybridwb.workflows.lock import BEAT_EVERY_S, STALE_AFTER_S

if TYPE_CHECKING:
    from hybridwb.platform.store import Store

ACTIVE = ("queued", "running")


def stale_runs(store: Store, stale_after: float = STALE_AFTER_S) -> list[dict[str, Any]]:
    """Runs that claim to be active (or were marked stale) whose heartbeat stopped: read only."""
    check_stale_after(stale_after)
    campaigns = Campaigns(store.backend)
    # the runs first, then the locks: a run read as active took its lock before it was
    # made or opened, so the locks read after it show that lock unless it is gone (round
    # 37: locks read first missed a runner that took its lock and opened its run between
    # the two reads, and its just-opened run was marked stale)
    runs = [
        (status, run)
        for status in (*ACTIVE, "stale")
        for run in store.backend.select("workflow_runs", {"status": status})
    ]
    at = campaigns.clock()  # the clock heartbeats are stamped by (the server's, on Postgres)
    locks = {str(lk["run_id"]): lk for lk in campaigns.locks()}
    stale = []
    for status, run in runs:
        lock = locks.get(str(run["id"]))
        if status == "stale" or lock is None or is_stale(lock, at, stale_after):
            stale.append(run)
    return stale


def check_stale_after(stale_after: Any) -> None:
    """A heartbeat is stale after `stale_after` seconds: at least three beats, or a living
    run between two beats is called dead (round 37: `stale(stale_after=1)` marked a run
    stale as its kernel started)."""
    least = 3 * BEAT_EVERY_S
    if (
        isinstance(stale_after, bool)
        or not isinstance(stale_after, int | float)
        or not least <= stale_after < float("inf")
    ):
        raise ValidationError(
            f"stale_after must be a number of seconds of at least {least:g} (a running "
            f"run's heartbeat beats every {BEAT_EVERY_S:g} s)."
        )
