"""A run's periods: opened under the run's lock, verified, and ended once.

A run is worked in periods: `hybridwb run` opens one (a fresh run, a resume), a by-hand
`wb.workflows.process` opens its own, and each is told apart by its `started_at`. Every
write meant for a period names it (`Runs.update_open`), so a late one finds the run moved
on and writes nothing. Here: opening a period from a read taken under the lock and checking
that it was this call's write that opened it, and the end of a period that could not be
written to the store kept on disk for the next command (`pending`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridwb.errors import HybridwbError, StoreError, ValidationError
from hybridwb.workflows import pending

if TYPE_CHECKING:
    from hybridwb.platform.store import Store

#: reads and reopens tried before a run that keeps changing under its lock is given up
_TRIES = 3


def instant(value: Any) -> datetime | None:
    """A stored time as an aware datetime: SQLite reads back naive UTC, PostgreSQL aware in
    its session's zone, the REST store ISO text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def open_period(
    store: Store,
    run_id: Any,
    read: dict[str, Any] | None = None,
    *,
    resume: bool = False,
    tried: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Open a new period of the run (`running`, no end, a new `started_at`), as the holder
    of its lock, and return the run as read back after it. From `read` (the row as just
    created) first, else from a read taken now, under the lock: a read taken before the
    lock may be out of date (another host's kept end flushed meanwhile, another resume
    finished the run), and a reopen from it writes nothing. The read back must hold this
    call's own start; one that does not (the run changed between the read and the reopen)
    is read and reopened again. A resume refuses a run that has meanwhile succeeded.
    Each period it tries to open is added to `tried` before it is written: when the write
    or the read back fails (a lost answer, Ctrl-C), the caller can still end it (round 37:
    a period written and never read back was left `running`, no end)."""
    for _ in range(_TRIES):
        current = read if read is not None else store.runs.get(run_id)
        read = None
        if resume and current.get("status") == "succeeded":
            raise ValidationError(f"Run {run_id} already succeeded; there is nothing to resume.")
        stamp = datetime.now(UTC)
        if tried is not None:
            tried.append(
                {"id": current["id"], "workflow_id": current["workflow_id"], "started_at": stamp}
            )
        store.runs.reopen(current, started_at=stamp, **fields)
        opened = store.runs.get(run_id)
        if (
            opened.get("status") == "running"
            and opened.get("finished_at") is None
            and instant(opened.get("started_at")) == stamp
        ):
            return opened
    raise StoreError(
        f"Run {run_id} kept changing while it was being opened (another process is writing "
        "it); try again."
    )


def end_or_keep(
    store: Store,
    home: Path | None,
    wf_id: Any,
    run_id: Any,
    periods: list[dict[str, Any]],
    fields: dict[str, Any],
    owner: str | None,
) -> bool:
    """Write `fields` (an end) into whichever of `periods` the run is in (each write names
    its period, so at most one lands), or keep them on disk for the next command, one
    entry per period (the flush writes each: at most one lands; round 38: only the last
    was kept, a period never written, and the run stayed `queued`), when the store fails
    (or Ctrl-C lands) as they are written; True when written."""
    try:
        for period in periods:
            store.runs.update_open(period, **fields)
        return True
    except (HybridwbError, KeyboardInterrupt) as exc:
        if home is not None:
            for period in periods:
                pending.keep(home, wf_id, run_id, fields, owner=owner, run=period)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return False


def interrupted_end(run_id: Any, where: str) -> dict[str, Any]:
    """The end of a period stopped by Ctrl-C `where` (e.g. "before its notebook started")."""
    return {
        "status": "failed",
        "finished_at": datetime.now(UTC),
        "error": f"KeyboardInterrupt: the run was interrupted {where}; resume with: "
        f"hybridwb run --resume {run_id}",
    }
