"""Campaign state over the Supabase REST API: the steps that must happen as one are SQL
functions (migrations 0005 and 0008) called as PostgREST RPC, one transaction per request.

- the workflow's lock: `hybridwb_acquire` inserts or takes over a stale holder under the
  row's lock (a run of another workflow refused by 0009's trigger); `hybridwb_heartbeat`
  beats only while this owner holds it;
- a batch: `hybridwb_write_batch` checks the lock, writes records and exclusions keyed by
  (run, target) and adds the changed count in one transaction, and writes nothing twice
  when an answer was lost and the call is repeated;
- a freeze and a run's stats: `hybridwb_freeze_clear`, `hybridwb_freeze_page`,
  `hybridwb_freeze_mark` and `hybridwb_set_stats` beat the lock as the run's owner and
  write in one transaction, so a process taken over writes nothing more (0008); a page
  is checked and a stats request carries a seq, so a delayed one is not written over
  later stats (0009);
- the frequency cap: a lock cannot span two HTTP requests, so the cap is checked again
  inside `hybridwb_write_batch` under the advisory lock the SQL backend takes
  (`CapCheck`); a record that would pass the cap becomes an exclusion;
- reads that aggregate (pending targets, history, counts, exclusions) return one JSON
  value, never a row set that PostgREST's max-rows could cut.

Plain table requests do the rest (run state, lock rows).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from hybridwb.errors import StoreError
from hybridwb.platform.backend import Backend, Op
from hybridwb.platform.campaigns import (
    CHUNK,
    Campaigns,
    CapCheck,
    FrozenPage,
    RecordRows,
    as_utc,
    owner_alive,
)
from hybridwb.platform.repos import as_uuid
from hybridwb.platform.rest import RestBackend

#: frozen targets per upsert request (a request body stays well under a megabyte)
FREEZE_CHUNK = 1000
#: records and exclusions per `hybridwb_write_batch` request (texts of a few hundred bytes:
#: a body of about a megabyte at most, under API gateways' request size limits)
WRITE_CHUNK = 2000
#: the cap an uncapped batch is sent with to be written under the cap's lock: more
#: messages than any recipient is sent (PostgreSQL's largest integer), counted from the last
#: instant Python names
UNREACHED, EVER_AFTER = 2**31 - 1, datetime.max.replace(tzinfo=UTC)


class RestCampaigns(Campaigns):
    """`Campaigns` on the REST backend; same methods, same results."""

    backend: RestBackend  # type: ignore[assignment]

    def __init__(self, backend: Backend) -> None:
        if not isinstance(backend, RestBackend):  # pragma: no cover - Campaigns dispatches
            raise StoreError("RestCampaigns needs the Supabase REST backend.")
        self.backend = backend

    def _rpc(self, name: str, params: dict[str, Any], *, idempotent: bool = True) -> Any:
        return self.backend._call(self.backend.client.rpc(name, params), idempotent=idempotent)

    # -- one active run per workflow -------------------------------------------------------
    def acquire(
        self, workflow_id: Any, run_id: Any, owner: str, stale_after: float
    ) -> dict[str, Any] | None:
        """Take the workflow's lock; the holder's row when refused. A holder whose owner is
        a dead process on this host is named to the server, which replaces it only if it
        still holds the lock (the row is locked while it decides)."""
        params: dict[str, Any] = {
            "p_workflow_id": str(as_uuid(workflow_id)),
            "p_run_id": str(as_uuid(run_id)),
            "p_owner": owner,
            "p_stale_after": float(stale_after),
        }
        held = self._rpc("hybridwb_acquire", params).data
        if held and owner_alive(held.get("owner")) is False:
            held = self._rpc("hybridwb_acquire", {**params, "p_dead_owner": held["owner"]}).data
        return _lock_row(held) if held else None

    def lock(self, workflow_id: Any) -> dict[str, Any] | None:
        row = super().lock(workflow_id)
        return _lock_row(row) if row else None

    def clock(self) -> datetime:
        """The server's clock (`RestBackend.server_time`), as the functions stamp and judge
        heartbeats by it (`hybridwb_acquire`): `stale_runs` reads them by this one. This
        host's only when the server's answer carries no date."""
        return self.backend.server_time() or datetime.now(UTC)

    def locks(self) -> list[dict[str, Any]]:
        return [_lock_row(row) for row in super().locks()]

    def heartbeat(self, workflow_id: Any, run_id: Any, owner: str) -> bool:
        params = {
            "p_workflow_id": str(as_uuid(workflow_id)),
            "p_run_id": str(as_uuid(run_id)),
            "p_owner": owner,
        }
        return bool(self._rpc("hybridwb_heartbeat", params).data)

    def release(self, workflow_id: Any, run_id: Any, owner: str | None = None) -> None:
        where: dict[str, Any] = {"workflow_id": as_uuid(workflow_id), "run_id": as_uuid(run_id)}
        if owner is not None:
            where["owner"] = owner
        self.backend.apply([Op("delete", "run_locks", where=where)])

    # -- run state -------------------------------------------------------------------------
    def state(self, run_id: Any) -> dict[str, Any]:
        row = super().state(run_id)
        if isinstance(row.get("frozen_at"), str):
            row["frozen_at"] = datetime.fromisoformat(row["frozen_at"])
        return row

    def set_state(self, run_id: Any, **values: Any) -> None:
        self.backend.apply([Op("update", "run_state", values, {"run_id": as_uuid(run_id)})])

    def set_stats(
        self,
        run_id: Any,
        stats: dict[str, Any],
        *,
        workflow_id: Any = None,
        owner: str | None = None,
    ) -> bool:
        """As `Campaigns.set_stats`: one `hybridwb_set_stats` request (migration 0008)
        that beats the lock as `owner` and writes the stats in one transaction; False,
        nothing written, once another process holds it. The request carries `p_seq`
        (0009), larger than any this process sent before: a first attempt delayed past
        its retry and past later stats (the answer was lost; the server ran it late) is
        then not written over them. The run's stored seq is read first (`_count_on`), so
        a process restarted under the same owner name with its clock behind still writes."""
        from hybridwb.platform.repos import jsonable

        if owner is not None:
            self._count_on(run_id, owner)
        params = {
            **self._holder(run_id, workflow_id, owner),
            "p_stats": jsonable(stats),
            "p_seq": next_seq(),
        }
        return bool(self._rpc("hybridwb_set_stats", params).data)

    def _count_on(self, run_id: Any, owner: str) -> None:
        """Lift this process's seq above the one stored with the run's stats when `owner`
        stored it: a process that restarts under the same owner name (the same host and
        pid, pid 1 in a container) with its clock behind the last one's would else send
        seqs the store takes for stale, and its stats would not be written (the store
        answers true all the same). Read here, in the process that sends the stats (a run
        kernel, not the runner that took the lock), once per request: a plain read."""
        found = self.backend.select("run_state", {"run_id": as_uuid(run_id)})
        if found and found[0].get("stats_owner") == owner:
            seq = found[0].get("stats_seq")
            if seq is not None:
                count_on_from(int(seq))

    # -- the frozen target set -------------------------------------------------------------
    def freeze(
        self,
        run_id: Any,
        batches: Iterable[list[tuple[str, str | None]] | FrozenPage],
        *,
        workflow_id: Any = None,
        owner: str | None = None,
    ) -> int | None:
        """As `Campaigns.freeze`: the clear, each page (in requests of at most
        `FREEZE_CHUNK` targets, a key already frozen left alone: a repeated request, or a
        key the source repeated) and the mark are each one request to a function of
        migration 0008 that, with `owner`, first beats the workflow's lock in the same
        transaction (None, nothing more written, once another process holds it)."""
        rid = as_uuid(run_id)
        holder = self._holder(rid, workflow_id, owner)
        # not sent again after a lost answer: a first request only delayed (queued in the
        # server's pool) could then clear the set after the pages and the mark that
        # followed its repeat, leaving a set marked frozen with nobody in it; a clear
        # that times out stops the freeze instead, and the resume freezes anew
        if not self._rpc("hybridwb_freeze_clear", holder, idempotent=False).data:
            return None
        seq = 0
        for item in batches:
            page = self.frozen_page(rid, seq, item) if isinstance(item, list) else item
            if (page.run, page.first_seq) != (str(rid), seq):
                raise ValueError("frozen pages must be this run's, in order, each after the last")
            for start in range(0, len(page.pairs), FREEZE_CHUNK):
                params = {
                    **holder,
                    "p_first_seq": seq + start,
                    "p_pairs": [list(p) for p in page.pairs[start : start + FREEZE_CHUNK]],
                }
                if not self._rpc("hybridwb_freeze_page", params).data:
                    return None
            seq += len(page.pairs)
        marked = self._rpc("hybridwb_freeze_mark", holder).data
        return int(marked["count"]) if marked["held"] else None

    @staticmethod
    def _holder(run_id: Any, workflow_id: Any, owner: str | None) -> dict[str, Any]:
        """The run and, with `owner`, the lock a freeze or stats function beats first."""
        return {
            "p_run_id": str(as_uuid(run_id)),
            "p_workflow_id": None if workflow_id is None else str(as_uuid(workflow_id)),
            "p_owner": owner,
        }

    def pending(
        self, run_id: Any, after_seq: int, limit: int, *, check_done: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        params = {
            "p_run_id": str(as_uuid(run_id)),
            "p_after": int(after_seq),
            "p_limit": int(limit),
            "p_check_done": bool(check_done),
        }
        page = self._rpc("hybridwb_pending", params).data
        return list(page["rows"]), int(page["last"])

    def write_batch(
        self,
        run_id: Any,
        workflow_id: Any,
        owner: str | None,
        *,
        records: list[tuple[str, str | None, str]] | RecordRows,
        channel: str,
        skips: list[tuple[str, str]],
        changed: int = 0,
        fresh: bool = False,
        cap: CapCheck | None = None,
        within: Any = None,
        queue: str | None = None,
    ) -> bool:
        """A batch (see `Campaigns.write_batch`), sent in requests of at most
        `WRITE_CHUNK` records and exclusions, each one transaction that checks the lock
        first; with `cap`, records are checked against the frequency cap again where they
        are written. False when the lock has another owner (earlier requests of the batch
        were written while it was ours). Safe to repeat: written targets are left alone.

        `queue` (a batch of a workflow without a cap) is sent as a cap no recipient reaches
        (`UNREACHED`): the function takes the cap's advisory lock before it inserts the
        records and holds it to its commit, so a capped batch is never checked while this
        one's records are written but not committed (round 31: it read the history
        without them and messaged each of those recipients past its cap)."""
        if isinstance(records, RecordRows):  # made for a COPY (`record_rows`): its records
            records = records.records
        if cap is None and queue is not None and records:
            cap = CapCheck(queue, UNREACHED, EVER_AFTER, "", {})
        base: dict[str, Any] = {
            "p_run_id": str(as_uuid(run_id)),
            "p_workflow_id": str(as_uuid(workflow_id)),
            "p_owner": owner,
            "p_channel": channel,
            "p_cap": None
            if cap is None
            else {
                "space": cap.space,
                "messages": cap.messages,
                "since": as_utc(cap.since).isoformat(),
                "reason": cap.reason,
            },
        }
        items: list[tuple[str, list[Any]]] = [("r", list(r)) for r in records]
        items += [("s", [key, reason[:200]]) for key, reason in skips]
        for start in range(0, max(1, len(items)), WRITE_CHUNK):
            chunk = items[start : start + WRITE_CHUNK]
            params = {
                **base,
                "p_records": [v for kind, v in chunk if kind == "r"],
                "p_skips": [v for kind, v in chunk if kind == "s"],
                "p_changed": int(changed) if start == 0 else 0,
            }
            if cap is not None:
                mine = {v[1] for kind, v in chunk if kind == "r"}
                params["p_cap"] = {
                    **base["p_cap"],
                    "spellings": {s: c for s, c in cap.spellings.items() if c in mine},
                }
            if not self._rpc("hybridwb_write_batch", params).data["held"]:
                return False
        return True

    def clear_skips(self, run_id: Any, reason: str) -> None:
        where = {"run_id": as_uuid(run_id), "reason": reason}
        self.backend.apply([Op("delete", "run_skips", where=where)])

    def exclusions(self, run_id: Any, limit: int = 10_000) -> list[dict[str, Any]]:
        params = {"p_run_id": str(as_uuid(run_id)), "p_limit": int(limit)}
        return list(self._rpc("hybridwb_exclusions", params).data)

    # -- truth, derived from rows ----------------------------------------------------------
    def counts(self, run_id: Any) -> dict[str, Any]:
        data = self._rpc("hybridwb_run_counts", {"p_run_id": str(as_uuid(run_id))}).data
        by_reason = {str(k): int(v) for k, v in (data["by_reason"] or {}).items()}
        targets, records = int(data["targets"]), int(data["records"])
        skipped = sum(by_reason.values())
        return {
            "targets": targets,
            "records": records,
            "skipped": skipped,
            "skipped_by_reason": by_reason,
            "pending": max(0, targets - records - skipped),
        }

    # -- the store's own history, for send policies ----------------------------------------
    @contextlib.contextmanager
    def recipient_lock(self, space: str) -> Iterator[None]:
        """No lock can span two requests: the cap is checked again, under the lock, inside
        `hybridwb_write_batch` (the caller passes `cap`)."""
        yield

    def legacy_recipients(self, *, within: Any = None) -> bool:
        """Always: over REST the history is probed with every spelling, as before 0006
        (no RPC says whether legacy spellings are left)."""
        return True

    def seen(
        self,
        recipients: list[str],
        workflow_id: Any,
        run_id: Any,
        cool_since: datetime | None,
        cap_since: datetime | None,
        *,
        within: Any = None,
    ) -> list[tuple[str, int, int, int, int]]:
        out: list[tuple[str, int, int, int, int]] = []
        for start in range(0, len(recipients), CHUNK):
            params = {
                "p_recipients": recipients[start : start + CHUNK],
                "p_workflow_id": str(as_uuid(workflow_id)),
                "p_run_id": str(as_uuid(run_id)),
                "p_cool_since": None if cool_since is None else as_utc(cool_since).isoformat(),
                "p_cap_since": None if cap_since is None else as_utc(cap_since).isoformat(),
            }
            rows = self._rpc("hybridwb_seen", params).data
            out.extend((str(a), int(b), int(c), int(d), int(e)) for a, b, c, d, e in rows)
        return out


_seq_lock = threading.Lock()
_last_seq = 0


def _renew_seq_lock() -> None:
    """In a forked child: a lock another thread of the parent held at the fork (a run's
    statistics) would stay held forever, and the child's first run wait for it."""
    global _seq_lock
    _seq_lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_seq_lock)


def next_seq() -> int:
    """A number larger than any this process returned before: the wall clock in
    nanoseconds, or one more than the last (a clock set back, or a floor `count_on_from`
    lifted). The store compares it only with the same owner's; a process that comes back
    under the same owner name with its clock behind counts on from the stored seq
    (`RestCampaigns.set_stats` reads it first)."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(time.time_ns(), _last_seq + 1)
        return _last_seq


def count_on_from(seq: int) -> None:
    """Make every later `next_seq` larger than `seq` (a seq this owner stored before)."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq, seq)


def _lock_row(row: dict[str, Any]) -> dict[str, Any]:
    """A lock row as the SQL backends give it: timestamps as datetimes."""
    out = dict(row)
    for name in ("acquired_at", "heartbeat_at"):
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name])
    return out


__all__ = ["RestCampaigns"]
