"""Final statuses the store did not take: kept on disk, written by the next command.

When the store is unreachable at the end of a run, the status goes to
`<home>/pending-runs/<run id>.json`; every command that opens the store writes these first
(the workbench calls `flush` when it opens the store), so the run row becomes the truth.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridwb.errors import HybridwbError

if TYPE_CHECKING:
    from hybridwb.platform.store import Store


#: the kept status's key for the start of the run's period it ends (`Runs.update_open`)
PERIOD = "period_started_at"


def _dir(home: Path) -> Path:
    return home / "pending-runs"


def _name(run_id: Any, run: dict[str, Any] | None) -> str:
    """`<run id>.json` for an entry of no period (any open one), else `<run id>.<period>.json`
    with the period's start as an instant (one name however a store reads it back)."""
    if run is None:
        return f"{run_id}.json"
    from hybridwb.workflows.periods import instant

    try:
        start = instant(run.get("started_at"))
    except ValueError:  # not a time: named by its text
        return (
            f"{run_id}.{hashlib.sha256(str(run.get('started_at')).encode()).hexdigest()[:16]}.json"
        )
    tag = "never-opened" if start is None else f"{start.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"
    return f"{run_id}.{tag}.json"


def keep(
    home: Path,
    workflow_id: Any,
    run_id: Any,
    fields: dict[str, Any],
    owner: str | None = None,
    run: dict[str, Any] | None = None,
    replace: bool = True,
) -> None:
    """Keep `fields` for the run, with the `owner` whose lock they end and, when the run
    was read, the start of the period they end (`period`; see `flush`). No `fields`: the
    run's end was written but its lock not released; `flush` releases it (as `owner`).
    One entry per period of a run (round 38: one per run, a later period's end was
    replaced by an earlier one's, or not kept beside it); not `replace`: an entry already
    kept for that period stays (it is what happened first)."""
    try:
        _dir(home).mkdir(parents=True, exist_ok=True)
        path = _dir(home) / _name(run_id, run)
        if not replace and path.exists():
            return
        data = {"workflow_id": str(workflow_id), "run_id": str(run_id), "owner": owner, **fields}
        if run is not None:
            data[PERIOD] = run.get("started_at")  # a time as text (`default=str`), or None
        _write_whole(path, json.dumps(data, default=str))
    except OSError:
        pass  # nowhere to keep it: the run stays `running`, turns `stale`, doctor says FAIL


def _write_whole(path: Path, text: str) -> None:
    """`text` as `path`, whole or not at all: written beside it under a name `flush` never
    reads, then renamed over it. Written in place, a write cut short (a full disk, a file
    size limit, the process killed) left a truncated entry that `flush` skipped forever
    (its lock never released), and over an entry kept before, lost that one too."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with part.open("w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


#: a part file's writer and the pid in its name (`_write_whole`)
_PART = re.compile(r"\.(?P<entry>.+)\.(?P<pid>[0-9]+)\.part")
#: a part file older than this is dropped even when a process has its writer's pid (a pid
#: reused since the writer was killed): a whole write takes milliseconds
PART_MAX_AGE = 3600.0


def _drop_dead_parts(folder: Path) -> None:
    """Remove the part files of writers that are gone (killed mid-write: `_write_whole`
    could not remove its own), so they do not pile up in the folder for ever. A part whose
    writer may still be writing is left alone; the entry itself is never touched here."""
    now = time.time()
    for part in folder.glob(".*.part"):
        found = _PART.fullmatch(part.name)
        if found is None:
            continue
        pid = int(found["pid"])
        try:
            young = now - part.stat().st_mtime < PART_MAX_AGE
        except OSError:
            continue  # renamed into place or removed since the listing
        if young and (pid == os.getpid() or _alive(pid)):
            continue
        part.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one we may not signal counts;
    0 and a pid too large for the system are no process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def flush(store: Store, home: Path) -> int:
    """Write every kept status; returns how many were settled. One a resume came after is
    dropped unwritten: the resume's status is the truth, its lock not this one's."""
    from datetime import datetime

    from hybridwb.platform.campaigns import Campaigns
    from hybridwb.platform.repos import ANY_END

    folder = _dir(home)
    if not folder.is_dir():
        return 0
    _drop_dead_parts(folder)
    written = 0
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            run_id, wf_id = data.pop("run_id"), data.pop("workflow_id")
            owner = data.pop("owner", None)
            if data.get("finished_at"):
                data["finished_at"] = datetime.fromisoformat(data["finished_at"])
            # the period it ends, as read then (kept before the period was: any open one)
            started = data.pop(PERIOD, ANY_END)
            if isinstance(started, str):
                started = datetime.fromisoformat(started)
            campaigns = Campaigns(store.backend)
            if data and not _resumed_since(store, campaigns, wf_id, run_id, owner):
                store.runs.update(run_id, ended=None, started=started, **data)
            # the kept owner's lock goes in every case (an entry with no fields: the end
            # was written, the lock not released; one the run has moved past: the end is
            # another's, the lock may still be this owner's: round 37, dropped without it,
            # it refused the workflow's next run); as `owner` only, never one taken over
            if owner is not None:
                campaigns.release(wf_id, run_id, owner)
        except (HybridwbError, OSError, ValueError, KeyError):
            continue
        path.unlink(missing_ok=True)
        written += 1
    return written


def _resumed_since(
    store: Store, campaigns: Any, wf_id: Any, run_id: Any, owner: str | None
) -> bool:
    """Whether the run was resumed after its status was kept: its lock is another owner's
    now, or the store holds an end of it. The runner cleared the run's end when it began
    (`Runner.run`) and could not write its own, so any end there is another process's (or
    this one's, written after all): told without comparing two hosts' clocks, as a later
    end was (a resume ended by a host whose clock is behind this one's looked earlier,
    and the kept `failed` was written over its `succeeded`)."""
    from hybridwb.workflows.lock import held_by_another

    if owner is not None and held_by_another(campaigns.lock(wf_id), run_id, owner):
        return True
    return store.runs.get(run_id).get("finished_at") is not None
