"""One active run per workflow: the workflow's lock, its heartbeat, its refusal.

`hybridwb run` takes the lock before its kernel starts, under an owner of that run's own
(`call_owner`), and hands it to the notebook's `wb.workflows.process(..., owner=owner)`,
which checks it on every batch. A
notebook run by hand (or two kernels) calls it without one: `held` then takes the lock for
that call, under an owner of its own (`call_owner`: two calls at once are two owners, and
a dead process's lock is taken over at once), beats it while the call works and releases
it at the end, only while it still holds it. While another owner holds it, the call is
refused in one line before it reads or writes anything.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.platform.campaigns import Campaigns, call_owner

if TYPE_CHECKING:
    from hybridwb.platform.store import Store
    from hybridwb.workflows.policies import Rules

STALE_AFTER_S = 120.0  # a heartbeat older than this means the run died
BEAT_EVERY_S = 5.0


class RunTakenOver(HybridwbError):
    """Another process holds this run's lock now; this one stops writing."""


def taken_over(run_id: Any) -> RunTakenOver:
    return RunTakenOver(f"Run {run_id} was taken over by another process; this one stopped.")


class RunRefused(ValidationError):
    """The workflow already has an active run (or a run that cannot be resumed)."""


def refusal(wf: dict[str, Any], held: dict[str, Any]) -> RunRefused:
    """The one-line refusal of a run while `held` (the lock's row) is the workflow's."""
    return RunRefused(
        f"Workflow {wf['name']!r} already has an active run ({held['run_id']}, "
        f"{held['owner']}, heartbeat {held['heartbeat_at']:%H:%M:%S}); wait for it to finish."
    )


def held_by_another(lock_row: dict[str, Any] | None, run_id: Any, owner: str) -> bool:
    """Whether the workflow's lock (its row, or None) names `run_id` under another owner
    than `owner`: the run was taken over, and its end is the new holder's to write."""
    from hybridwb.platform.repos import as_uuid

    return (
        lock_row is not None
        and str(as_uuid(lock_row["run_id"])) == str(as_uuid(run_id))
        and lock_row["owner"] != owner
    )


class Heartbeat(threading.Thread):
    """Beats the workflow's lock while the kernel works (a kernel start takes seconds)."""

    def __init__(self, campaigns: Campaigns, wf_id: Any, run_id: Any, owner: str) -> None:
        super().__init__(daemon=True, name="hybridwb-heartbeat")
        self.args_ = (wf_id, run_id, owner)
        self.campaigns = campaigns
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(BEAT_EVERY_S):
            with contextlib.suppress(HybridwbError):  # store down: the kernel fails and says so
                self.campaigns.heartbeat(*self.args_)

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():  # never started: an interrupt came before `start`
            self.join(timeout=2)


@contextlib.contextmanager
def held(
    campaigns: Campaigns,
    wf: dict[str, Any],
    run_id: Any,
    stale_after: float = STALE_AFTER_S,
    home: Path | None = None,
) -> Iterator[str]:
    """The workflow's lock for `run_id`, held for the block; yields its owner. With a
    `home`, a release that meets the store down after the block is kept on disk for the
    next command (`pending`) instead of raised: the call's work and end are done."""
    owner = call_owner()
    beat = Heartbeat(campaigns, wf["id"], run_id, owner)
    holder: dict[str, Any] | None = None
    try:
        # Ctrl-C from the moment the lock's row may be written (in `acquire`, after it)
        # releases it below: a row left under this living process's owner would refuse
        # every other call, the resume included, until its heartbeat went stale
        holder = campaigns.acquire(wf["id"], run_id, owner, stale_after)
        if holder is not None:
            raise refusal(wf, holder)
        beat.start()
        yield owner
    except BaseException:
        # refused: the lock is the holder's, nothing to release
        let_go(campaigns, wf["id"], run_id, owner, beat, release=holder is None)
        raise
    # the call's work is done; Ctrl-C while it ends (the heartbeat stopped, the lock
    # released) releases the lock all the same, then is raised: a row left under this
    # living process's owner would refuse the resume until its heartbeat went stale
    try:
        beat.stop()
        campaigns.release(wf["id"], run_id, owner)
    except KeyboardInterrupt:
        let_go(campaigns, wf["id"], run_id, owner, beat)
        raise
    except HybridwbError:
        if home is None:
            raise
        # round 37: the call's end was written, then this release failed: the error
        # reached the user after a run that succeeded, and no one released the lock
        from hybridwb.workflows import pending

        pending.keep(home, wf["id"], run_id, {}, owner=owner)


def let_go(
    campaigns: Campaigns,
    wf_id: Any,
    run_id: Any,
    owner: str,
    beat: Heartbeat,
    *,
    release: bool = True,
) -> None:
    """Stop the heartbeat and release the lock of a call (or of `hybridwb run` as its run
    ends) that failed or was interrupted, however often Ctrl-C lands in it (a user
    pressing it again as the call stops: both are short and tried again; a heartbeat left
    beating would keep the lock fresh), then raise that interrupt. The store down: the
    error in hand is the one to see; the lock goes stale."""
    interrupted: KeyboardInterrupt | None = None
    while True:
        try:
            beat.stop()
            if release:
                with contextlib.suppress(HybridwbError):
                    campaigns.release(wf_id, run_id, owner)
        except KeyboardInterrupt as exc:
            interrupted = interrupted or exc
            continue
        break
    if interrupted is not None:
        raise interrupted


def owning(
    store: Store, workflow: Any, run_id: Any, owner: str | None, home: Path | None = None
) -> contextlib.AbstractContextManager[str]:
    """The owner a call processes a run as: the one given (its lock taken by `hybridwb
    run`, checked on every batch), else this call's own, the lock `held` for it. A run of
    another workflow is refused first: its targets would be sent under this workflow's
    lock and policies, and the other workflow's lock would not hold it."""
    run, wf = store.runs.get(run_id), store.workflows.get(workflow)
    if str(run.get("workflow_id")) != str(wf["id"]):
        raise ValidationError(
            f"Run {run['id']} is a run of another workflow, not of {wf['name']!r}; "
            "process it with the workflow it was started for."
        )
    if owner:
        return contextlib.nullcontext(owner)
    return held(Campaigns(store.backend), wf, run["id"], home=home)


def cap_lock(
    campaigns: Campaigns, rules: Rules, channel: str
) -> contextlib.AbstractContextManager[Any]:
    """Held from a batch's frequency-cap check to its committed records, so two workflows
    running at once cannot both see a recipient under the cap and both message them."""
    if rules.policy.frequency_cap is None:
        return contextlib.nullcontext()
    from hybridwb.workflows.policies import cap_space

    return campaigns.recipient_lock(cap_space(channel))
