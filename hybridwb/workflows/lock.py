"""One active run per workflow, also for a run processed by a call of its own.

`hybridwb run` takes the workflow's lock before its kernel starts and hands its owner to
the notebook's `wb.workflows.process(..., owner=owner)`, which checks it on every batch. A
notebook run by hand (or two kernels) calls it without one: `held` then takes the lock for
that call, under an owner of its own (`call_owner`: two calls at once are two owners, and
a dead process's lock is taken over at once), beats it while the call works and releases
it at the end, only if it still holds it. While another owner holds it, the call is
refused in one line before it reads or writes anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from hybridwb.errors import HybridwbError
from hybridwb.platform.campaigns import Campaigns, call_owner
from hybridwb.workflows import runner


@contextlib.contextmanager
def held(
    campaigns: Campaigns,
    wf: dict[str, Any],
    run_id: Any,
    stale_after: float = runner.STALE_AFTER_S,
) -> Iterator[str]:
    """The workflow's lock for `run_id`, held for the block; yields its owner."""
    owner = call_owner()
    holder = campaigns.acquire(wf["id"], run_id, owner, stale_after)
    if holder is not None:
        raise runner.refusal(wf, holder)
    beat = runner._Heartbeat(campaigns, wf["id"], run_id, owner)
    beat.start()
    try:
        yield owner
    except BaseException:
        beat.stop()
        # the store down: the error in hand is the one to see; the lock goes stale
        with contextlib.suppress(HybridwbError):
            campaigns.release(wf["id"], run_id, owner)
        raise
    beat.stop()
    campaigns.release(wf["id"], run_id, owner)
