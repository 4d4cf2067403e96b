"""Campaign state in the store: the frozen target set, exclusions, run locks, send history.

Everything a run's truth is derived from lives here, so counters are computed from rows
(records, exclusions, frozen targets) and stay right after any number of crashes and
resumes. On the Supabase REST API the steps that must happen as one are SQL functions
called over RPC (`rest_campaigns.RestCampaigns`, migrations 0005, 0008); `Campaigns(backend)`
gives that class for a REST backend.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import operator
import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from hybridwb.errors import StoreError, ValidationError
from hybridwb.platform import schema
from hybridwb.platform.backend import Backend, SqlBackend, retrying
from hybridwb.platform.repos import as_uuid, jsonable
from hybridwb.platform.schema import now

T = schema.metadata.tables
CHUNK = 5000

#: JIT off for the rest of the transaction (where the server has JIT, PostgreSQL 11+).
#: The history check is a nested loop of one index probe per recipient, some 10 ms for a
#: batch; but the planner prices it by its row estimates, and while the statistics of
#: `send_records` predate what the run wrote (until `analyze_history`) they overshoot,
#: the price passes `jit_above_cost`, and the server compiled the query for ~90 ms before
#: running it, in every batch: the run's longest store step (measured at 100k targets)
NO_JIT = select(func.set_config("jit", "off", true())).where(
    func.current_setting("jit", true()).is_not(None)
)
#: the columns of `send_records` whose statistics `analyze_history` refreshes: those the
#: history check (`seen`), the pending read's done-check and the counts look up, join,
#: group or filter by
HISTORY_STATISTICS = ("run_id", "target_key", "recipient", "workflow_id", "created_at")
#: the longest target key or recipient (UTF-8 bytes) a run keeps: PostgreSQL's indexes
#: of them (the frozen set's and the history's keys, the history's recipients) take rows
#: of at most 2,704 bytes, so a longer one failed the freeze (a key: nobody was messaged)
#: or its batch's write on every resume (a recipient: the targets after it never ended).
#: No address is that long (an e-mail address has at most 254 characters)
LONGEST_INDEXED = 2600


def fits_index(text: str) -> bool:
    """Whether the store's indexes can hold `text` as a key or recipient (`LONGEST_INDEXED`)."""
    return len(text) <= LONGEST_INDEXED // 4 or (
        len(text.encode("utf-8", "surrogatepass")) <= LONGEST_INDEXED
    )


RECORD_COLUMNS = (
    "id",
    "run_id",
    "workflow_id",
    "target_key",
    "recipient",
    "channel",
    "content",
    "status",
    "created_at",
)


class RecordRows(NamedTuple):
    """A batch's send records as a Postgres COPY writes them, made ahead of the write (in
    the run's thread, while the store's thread waits on the server for the batch before):
    in `in_recipient_order`, and the COPY text of every column but `created_at`, their ids
    in it, encoded in UTF-8 (`text`: each line ends where the batch's time goes, known when
    the batch is written, by the store's clock; None: the text is made then, from
    `records`). Bytes, not str: half the memory for Korean text, and no encoding of it in
    the store's step (unless the session's client encoding is another, `_copy_batch`)."""

    records: list[tuple[str, str | None, str]]
    text: bytes | None


@dataclass(frozen=True)
class CapCheck:
    """A batch's frequency cap, for a store that checks it again where the records are
    written (the REST backend: its lock cannot span the check and the insert): at most
    `messages` records per recipient since `since`, counting every stored spelling
    (`spellings`: {spelling: canonical recipient}); a record past it is excluded with
    `reason`. The SQL backends hold `recipient_lock` across both steps instead."""

    space: str
    messages: int
    since: datetime
    reason: str
    spellings: dict[str, str]


class _LockLost(Exception):
    """Raised inside a batch's transaction to roll it back: the lock has another owner."""


def store_time(conn: Any) -> datetime:
    """The time a lock's heartbeat (and a batch written with it) is stamped with: on
    PostgreSQL the server's clock, the one clock every host sharing the store reads, as the
    REST store's functions stamp and judge heartbeats (migration 0005); on SQLite (a file
    of this host) this host's. Stamped with each host's own clock, a live run on a host
    whose clock was behind looked stale to a host whose clock was ahead, which took its
    lock and ran the workflow again (round 30)."""
    if conn.dialect.name != "postgresql":
        return now()
    return as_utc(conn.execute(select(func.clock_timestamp())).scalar_one())


def _hold(conn: Any, workflow_id: Any, run_id: Any, owner: str) -> datetime:
    """Beat the workflow's lock as `owner` in `conn`'s transaction (its row locked until
    that transaction ends, so a takeover waits for it), or `_LockLost` when another owner
    holds it: what the transaction would write is rolled back. Returns the beat's time
    (`store_time`)."""
    locks = T["run_locks"]
    beat = update(locks).where(
        locks.c.workflow_id == workflow_id, locks.c.run_id == run_id, locks.c.owner == owner
    )
    if conn.dialect.name == "postgresql":  # stamped and read back in the one statement
        stamps = conn.execute(
            beat.values(heartbeat_at=func.clock_timestamp()).returning(locks.c.heartbeat_at)
        ).all()
        if len(stamps) != 1:
            raise _LockLost
        return as_utc(stamps[0][0])
    at = now()
    if conn.execute(beat.values(heartbeat_at=at)).rowcount != 1:
        raise _LockLost
    return at


@functools.cache
def _host() -> tuple[str, bool]:
    """(`this_host`, whether a pid of an owner on it names a process here)."""
    name = socket.gethostname()
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        space = os.readlink("/proc/self/ns/pid")
    except OSError:
        return name, False
    return f"{name}/{hashlib.sha256(f'{boot} {space}'.encode()).hexdigest()[:12]}", True


# a child forked into a new pid namespace (after unshare(CLONE_NEWPID)) names its own
os.register_at_fork(after_in_child=_host.cache_clear)


def this_host() -> str:
    """This host as a lock's owner names it: the hostname and, where the system tells, a
    digest of this boot and of the pid namespace the process runs in. Machines and
    containers often share a hostname (cloned VMs, a compose file's `hostname:`), and a pid
    means something only in its own namespace: `owner_alive` asks about a pid only when
    the owner's host is this one. Elsewhere (no /proc) the hostname alone, and no pid is
    judged (two laptops called `MacBook-Pro.local` share a store): a crashed run's lock
    waits for its heartbeat to stop."""
    return _host()[0]


def this_owner() -> str:
    """`host:pid` of this process (`this_host`): who holds a lock."""
    return f"{this_host()}:{os.getpid()}"


def call_owner() -> str:
    """`host:pid#tag`: one call of this process holding a lock (`lock.held`), so two calls
    at once are two owners, and `owner_alive` still knows the process."""
    return f"{this_owner()}#{uuid.uuid4().hex[:8]}"


#: a pid as `this_owner` writes it: ASCII digits, no leading zero, within a C pid_t
_PID = re.compile(r"[1-9][0-9]{0,9}")


def owner_alive(owner: str | None) -> bool | None:
    """False when the owner is a process on this host (`this_host`) that no longer exists;
    None if unknown. An owner naming no pid as hybridwb writes one (written by hand: a
    superscript or another script's digit, pid 0, a number past any pid) is unknown: its
    lock goes by its heartbeat, never by a process it did not name."""
    if not owner or ":" not in owner:
        return None
    # the pid from the end: `host:pid#tag`, where the hostname may hold ':' '/' '#'
    host, _, tail = owner.rpartition(":")
    pid = tail.partition("#")[0]
    here, pids_known = _host()
    if not pids_known or host != here or not _PID.fullmatch(pid) or int(pid) >= 2**31:
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def as_utc(at: datetime) -> datetime:
    """`at` in UTC. A naive time is a store timestamp, and those are UTC (SQLite hands them
    back naive), so it is labelled UTC; an aware one is converted. The one place that
    decides this, for every comparison of a store timestamp with a clock."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def is_stale(lock: dict[str, Any], at: datetime, stale_after: float) -> bool:
    """A lock whose heartbeat stopped, or whose owner is a dead process on this host."""
    beat = as_utc(lock["heartbeat_at"])
    return owner_alive(lock["owner"]) is False or (as_utc(at) - beat).total_seconds() > stale_after


class FrozenPage(NamedTuple):
    """A page of a run's frozen set as `Campaigns.freeze` stores it: the run, the seq
    number before its first target, its (key, recipient) pairs, and on Postgres their COPY
    text (None: written row by row)."""

    run: str
    first_seq: int
    pairs: list[tuple[str, str | None]]
    text: str | None


#: the columns a frozen page is COPied into, in `_frozen_columns`' order
FROZEN_COLUMNS = ("run_id", "seq", "target_key", "recipient")


def _frozen_columns(run: str, first_seq: int, pairs: list[tuple[str, str | None]]) -> list[Any]:
    """A frozen page as COPY columns (`FROZEN_COLUMNS`): its run once, seq numbers from
    `first_seq` + 1, keys, recipients."""
    from hybridwb.platform.idempotent import Same

    return [
        Same(run),
        range(first_seq + 1, first_seq + 1 + len(pairs)),
        [key for key, _ in pairs],
        [recipient for _, recipient in pairs],
    ]


class Campaigns:
    """Frozen sets, exclusions, locks and history; one short transaction per call.

    `Campaigns(backend)` is a `RestCampaigns` for the Supabase REST backend."""

    def __new__(cls, backend: Backend, *args: Any, **kwargs: Any) -> Campaigns:
        if cls is Campaigns and getattr(backend, "name", None) == "supabase-rest":
            from hybridwb.platform.rest_campaigns import RestCampaigns

            return super().__new__(RestCampaigns)
        return super().__new__(cls)

    def __init__(self, backend: Backend) -> None:
        if not isinstance(backend, SqlBackend):
            raise StoreError(
                "Workflow runs need a SQL connection to the store; set SUPABASE_DB_URL "
                "(Supabase: Project Settings -> Database -> Connection string)."
            )
        self.backend = backend

    def _run(self, fn: Any) -> Any:
        with self.backend.errors():
            return retrying(fn)

    # -- one active run per workflow -------------------------------------------------------
    def acquire(
        self, workflow_id: Any, run_id: Any, owner: str, stale_after: float
    ) -> dict[str, Any] | None:
        """Take the workflow's lock for `run_id`; returns the holder's row when refused.

        A stale holder (heartbeat stopped, or a dead process on this host) is replaced by a
        compare-and-swap on its old row, so two contenders never both win. A run of another
        workflow is refused by the store (a trigger of migration 0009: `ValidationError`),
        or the lock would let its owner clear that workflow's frozen set.
        """
        locks = T["run_locks"]
        wf, rid = as_uuid(workflow_id), as_uuid(run_id)
        row: dict[str, Any] = {"workflow_id": wf, "run_id": rid, "owner": owner}
        stamp = self.clock()  # the clock heartbeats are stamped and judged by
        row |= {"acquired_at": stamp, "heartbeat_at": stamp}
        if self.backend.insert_ignore("run_locks", [row], ["workflow_id"]) == 1:
            return None
        held = self.lock(wf)
        if held is None:  # released in between: try once more
            return (
                None
                if self.backend.insert_ignore("run_locks", [row], ["workflow_id"]) == 1
                else self.lock(wf)
            )
        if held["run_id"] == rid and held["owner"] == owner:
            return None
        if not is_stale(held, stamp, stale_after):
            return held

        def swap() -> int:
            with self.backend.engine.begin() as conn:
                return conn.execute(
                    update(locks)
                    .where(
                        locks.c.workflow_id == wf,
                        locks.c.run_id == held["run_id"],
                        locks.c.owner == held["owner"],
                        locks.c.heartbeat_at == held["heartbeat_at"],
                    )
                    .values(run_id=rid, owner=owner, acquired_at=stamp, heartbeat_at=stamp)
                ).rowcount

        return None if self._run(swap) == 1 else (self.lock(wf) or held)

    def clock(self) -> datetime:
        """The time by which locks' heartbeats are stamped and judged (`store_time`): the
        PostgreSQL server's, else this host's."""
        if self.backend.name != "postgresql":
            return now()

        def read() -> datetime:
            with self.backend.engine.connect() as conn:
                return store_time(conn)

        return self._run(read)

    def lock(self, workflow_id: Any) -> dict[str, Any] | None:
        rows = self.backend.select("run_locks", {"workflow_id": as_uuid(workflow_id)})
        return rows[0] if rows else None

    def locks(self) -> list[dict[str, Any]]:
        return self.backend.select("run_locks", order_by="acquired_at")

    def heartbeat(self, workflow_id: Any, run_id: Any, owner: str) -> bool:
        """Beat; False when this owner no longer holds the lock (someone took the run over)."""
        locks = T["run_locks"]

        def beat() -> int:
            with self.backend.engine.begin() as conn:
                return conn.execute(
                    update(locks)
                    .where(
                        locks.c.workflow_id == as_uuid(workflow_id),
                        locks.c.run_id == as_uuid(run_id),
                        locks.c.owner == owner,
                    )
                    .values(heartbeat_at=store_time(conn))
                ).rowcount

        return self._run(beat) == 1

    def release(self, workflow_id: Any, run_id: Any, owner: str | None = None) -> None:
        """Drop the run's lock; given an `owner`, only while that owner holds it (a lock
        taken over meanwhile is the new holder's)."""
        locks = T["run_locks"]
        where = [locks.c.workflow_id == as_uuid(workflow_id), locks.c.run_id == as_uuid(run_id)]
        if owner is not None:
            where.append(locks.c.owner == owner)

        def drop() -> None:
            with self.backend.engine.begin() as conn:
                conn.execute(delete(locks).where(*where))

        self._run(drop)

    # -- run state -------------------------------------------------------------------------
    def start_state(self, run_id: Any, owner: str, trigger: str) -> None:
        row = {
            "run_id": as_uuid(run_id),
            "owner": owner,
            "trigger": trigger,
            "frozen_at": None,
            "frozen_count": 0,
            "changed_count": 0,
        }
        self.backend.insert_ignore("run_state", [row], ["run_id"])

    def state(self, run_id: Any) -> dict[str, Any]:
        rows = self.backend.select("run_state", {"run_id": as_uuid(run_id)})
        return rows[0] if rows else {"run_id": as_uuid(run_id), "frozen_at": None}

    def set_state(self, run_id: Any, **values: Any) -> None:
        state = T["run_state"]

        def put() -> None:
            with self.backend.engine.begin() as conn:
                conn.execute(
                    update(state).where(state.c.run_id == as_uuid(run_id)).values(**values)
                )

        self._run(put)

    def set_stats(
        self,
        run_id: Any,
        stats: dict[str, Any],
        *,
        workflow_id: Any = None,
        owner: str | None = None,
    ) -> bool:
        """The run's stats, written (with `owner`) in a transaction that first beats the
        workflow's lock, as the freeze's steps are: False, nothing written, once another
        process holds it (one taken over before its freeze would record its own as-of time
        over the new owner's, and a resume would judge that owner's frozen set by it)."""
        runs, rid = T["workflow_runs"], as_uuid(run_id)

        def put() -> None:
            with self.backend.engine.begin() as conn:
                if owner is not None:
                    _hold(conn, as_uuid(workflow_id), rid, owner)
                conn.execute(update(runs).where(runs.c.id == rid).values(stats=jsonable(stats)))

        try:
            self._run(put)
        except _LockLost:
            return False
        return True

    # -- the frozen target set -------------------------------------------------------------
    def freeze(
        self,
        run_id: Any,
        batches: Iterable[list[tuple[str, str | None]] | FrozenPage],
        *,
        workflow_id: Any = None,
        owner: str | None = None,
    ) -> int | None:
        """Store (key, recipient) of every target with the run, then mark the set frozen.
        `batches`: lists of pairs, or the pages `frozen_pages` made of them (their COPY
        text built where they were read: a run's worker thread).

        A freeze interrupted half-way is discarded and redone: nothing is sent before the
        set is marked frozen, so the set a resume completes is always a whole one. The
        exclusions it recorded (`refusals.suppressing`) are discarded with it.

        With `owner` (and `workflow_id`), the clear, each page and the mark are written
        in a transaction that first beats the workflow's lock as `owner`, as a batch is
        (`write_batch`): None, with nothing more written, once another process took the
        run over. A freeze takes minutes for a large set; a process stopped that long
        (its heartbeat with it) whose lock was taken over would otherwise, on waking,
        clear the new owner's frozen set, add pages it read before to it, or mark its
        half-written set frozen."""
        rid = as_uuid(run_id)
        targets, skips = T["run_targets"], T["run_skips"]
        wf = None if workflow_id is None else as_uuid(workflow_id)

        def hold(conn: Any) -> None:
            if owner is not None:
                _hold(conn, wf, rid, owner)

        def clear() -> None:
            # the exclusions a cut-short attempt recorded go with its pages: before the
            # set is marked frozen no batch has run, so every exclusion of the run is the
            # earlier freeze's (a stale one would count a target never frozen, and make
            # the run's batches take one the new freeze did not exclude for done)
            with self.backend.engine.begin() as conn:
                hold(conn)
                conn.execute(delete(targets).where(targets.c.run_id == rid))
                conn.execute(delete(skips).where(skips.c.run_id == rid))

        def mark() -> int:
            with self.backend.engine.begin() as conn:
                hold(conn)
                count = int(
                    conn.execute(
                        select(func.count()).select_from(targets).where(targets.c.run_id == rid)
                    ).scalar_one()
                )
                state = T["run_state"]
                conn.execute(
                    update(state)
                    .where(state.c.run_id == rid)
                    .values(frozen_at=now(), frozen_count=count)
                )
                return count

        try:
            self._run(clear)
            seq = 0
            for item in batches:
                page = self.frozen_page(rid, seq, item) if isinstance(item, list) else item
                if (page.run, page.first_seq) != (str(rid), seq):
                    raise ValueError(
                        "frozen pages must be this run's, in order, each after the last"
                    )
                if self.backend.name == "postgresql":
                    self._copy_fresh(targets, page, hold)
                else:
                    self._insert_page(targets, rid, page, hold)
                seq += len(page.pairs)
            # the planner sees the frozen set before the run reads it by (run, seq) (see
            # `_analyze`); the two key columns only: the text columns' statistics cost
            # three times as much and the pending read does not use them
            self._analyze(targets, ["run_id", "seq"])
            return int(self._run(mark))
        except _LockLost:
            return None

    def _insert_page(self, tbl: Any, rid: Any, page: FrozenPage, hold: Any) -> None:
        """A page of the frozen set in one transaction (SQLite), skipping existing keys."""
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        rows = [
            {"run_id": rid, "seq": seq, "target_key": key, "recipient": recipient}
            for seq, (key, recipient) in enumerate(page.pairs, page.first_seq + 1)
        ]
        stmt = sqlite_insert(tbl).on_conflict_do_nothing(index_elements=["run_id", "target_key"])

        def write(conn: Any, _: int) -> None:
            hold(conn)
            for start in range(0, len(rows), CHUNK):
                conn.execute(stmt, rows[start : start + CHUNK])

        if rows:
            self.backend.run(write, write=True)

    def frozen_pages(
        self, run_id: Any, batches: Iterable[list[tuple[str, str | None]]]
    ) -> Iterator[FrozenPage]:
        """`batches` as the pages `freeze` stores, in order: their seq numbers and (on
        Postgres) their COPY text made here, in the thread that iterates this (a run's
        worker, while the run's thread waits on the store for the page before)."""
        rid, seq = as_uuid(run_id), 0
        for batch in batches:
            yield self.frozen_page(rid, seq, batch)
            seq += len(batch)

    def frozen_page(
        self, run_id: Any, first_seq: int, batch: list[tuple[str, str | None]]
    ) -> FrozenPage:
        """One page of the frozen set: its pairs after `first_seq`, and on Postgres their
        COPY text (None: psycopg writes the rows, see `copy_columns_text`)."""
        run, text = str(as_uuid(run_id)), None
        if max((len(key) for key, _ in batch), default=0) > LONGEST_INDEXED // 4 and not all(
            fits_index(key) for key, _ in batch
        ):
            raise ValidationError(
                f"A target key is longer than {LONGEST_INDEXED:,} bytes, more than the store "
                "can index, so it cannot be frozen; key the audience by a shorter unique column."
            )
        if self.backend.name == "postgresql" and batch:
            from hybridwb.platform.idempotent import copy_columns_text

            text = copy_columns_text(_frozen_columns(run, first_seq, batch))
        return FrozenPage(run, first_seq, batch, text)

    def _copy_fresh(self, tbl: Any, page: FrozenPage, hold: Any = None) -> None:
        """COPY a page of the frozen set straight into its table where the keys should be
        new (Postgres); if one exists after all (a retry after a lost commit
        acknowledgement, a key the source repeated), the page is written again skipping
        existing keys, as `insert_ignore`.

        A page's commit does not wait for its WAL to reach the disk (`synchronous_commit
        = off` for that transaction only; some 4 ms a page): nothing reads the frozen set
        before `freeze` marks it frozen, in a commit that does wait, and which the server
        flushes only after all WAL written before it, the pages' included. A server crash
        before that mark loses at most pages of a set not yet frozen, which a resume
        freezes again whole (see `freeze`)."""
        from hybridwb.platform.idempotent import KeyExists, copy_columns

        if not page.pairs:
            return
        columns = _frozen_columns(page.run, page.first_seq, page.pairs)

        def write(conn: Any, conflict: list[str] | None) -> None:
            if hold is not None:  # the run's lock, beaten in this transaction (`freeze`)
                hold(conn)
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            copy_columns(conn, tbl, list(FROZEN_COLUMNS), columns, conflict, text=page.text)

        try:
            self.backend.run(lambda conn, _: write(conn, None), write=True)
        except KeyExists:
            self.backend.run(lambda conn, _: write(conn, ["run_id", "target_key"]), write=True)

    def pending(
        self, run_id: Any, after_seq: int, limit: int, *, check_done: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """The next `limit` frozen targets after `after_seq` that have neither a record nor
        an exclusion, and the last seq looked at. Index range reads, no anti-join.
        `check_done=False` only on a run's first pass, when nothing can be done yet (the
        workflow's lock makes this process the only writer)."""
        rid = as_uuid(run_id)
        t, r, s = T["run_targets"], T["send_records"], T["run_skips"]
        stmt = (
            select(t.c.seq, t.c.target_key, t.c.recipient)
            .where(t.c.run_id == rid, t.c.seq > after_seq)
            .order_by(t.c.seq)
            .limit(limit)
        )

        def read() -> tuple[list[dict[str, Any]], int]:
            with self.backend.engine.connect() as conn:
                rows = [
                    {"seq": seq, "target_key": key, "recipient": recipient}
                    for seq, key, recipient in conn.execute(stmt).all()
                ]
                if not rows:
                    return [], after_seq
                last = rows[-1]["seq"]
                done: set[str] = set()
                for table in (
                    (r, s) if check_done else ()
                ):  # done keys of this seq range: a join, not a key list
                    done.update(
                        conn.execute(
                            select(t.c.target_key)
                            .join(
                                table,
                                and_(
                                    table.c.run_id == t.c.run_id,
                                    table.c.target_key == t.c.target_key,
                                ),
                            )
                            .where(t.c.run_id == rid, t.c.seq > after_seq, t.c.seq <= last)
                        ).scalars()
                    )
            return [row for row in rows if row["target_key"] not in done], last

        return self._run(read)

    def record_rows(
        self,
        run_id: Any,
        workflow_id: Any,
        records: list[tuple[str, str | None, str]],
        channel: str,
    ) -> list[tuple[str, str | None, str]] | RecordRows:
        """`records` made ready for `write_batch` ahead of it (`RecordRows`), so the
        store's step that every batch waits for only sends them; as given on a store
        that does not COPY (SQLite, REST), or when there are none.

        The ids are version-7 UUIDs of this moment (`uuid7_texts`), not of the batch's
        time: they still ascend batch after batch, so each batch's ids land at the right
        edge of the primary key's index, and a write repeated (a retry, the rewrite after
        a key met) sends the same ids."""
        if self.backend.name != "postgresql" or not records:
            return records
        from hybridwb.platform.idempotent import Same, copy_columns_text, uuid7_texts

        ordered = in_recipient_order(records)
        keys, recipients, contents = zip(*ordered, strict=True)
        # RECORD_COLUMNS less the last, `created_at`, which `_copy_batch` adds to each line
        text = copy_columns_text(
            [
                uuid7_texts(len(ordered)),
                Same(str(as_uuid(run_id))),
                Same(str(as_uuid(workflow_id))),
                keys,
                recipients,
                Same(channel),
                contents,
                Same("queued"),
            ]
        )
        return RecordRows(ordered, None if text is None else text.encode("utf-8"))

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
        """One batch's outcome in one transaction: the heartbeat, the send records
        `(target key, recipient, content)`, the exclusions `(target key, reason)` and the
        changed count. False, with nothing written, when `owner` no longer holds the
        workflow's lock (another process took the run over).

        Each record and exclusion is keyed by (run, target), so nothing is doubled. On a
        run's first pass (`fresh`: no row of this run existed when it began, and the lock
        keeps it so) Postgres rows are COPied straight into their tables; a key that exists
        after all fails that COPY, and the batch is written again skipping existing keys.
        `cap` is not needed here: the caller holds `recipient_lock` across check and write,
        and passes the connection it yielded as `within`: the batch is written in the lock's
        own transaction (under a savepoint), committed with the lock's release, so a lock
        whose connection dies takes the batch with it; no retry then, the run stops.

        `queue`: the space of `recipient_lock` a batch of a workflow without a cap is
        written under (the lock taken for the write alone), so it never lands between a
        capped workflow's history check and its write: that workflow would message its
        recipients past its cap, counted before this batch committed. `records` may be
        the `RecordRows` that `record_rows` made of them ahead (Postgres)."""
        rid, wf = as_uuid(run_id), as_uuid(workflow_id)
        ahead = records if isinstance(records, RecordRows) else None
        rows = records.records if isinstance(records, RecordRows) else records
        postgres = self.backend.name == "postgresql"

        def write(conn: Any, attempt: int, direct: bool) -> None:
            if queue is not None and postgres:  # the cap's lock, to this transaction's end
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(queue))))
            # the batch's one time: its beat's, by the store's clock (`store_time`)
            stamp = store_time(conn) if owner is None else _hold(conn, wf, rid, owner)
            # written again (a retry, or the rewrite after a key met): if the batch's first
            # exclusion is there, the batch committed before (its reply lost) and its
            # changed targets are counted already (a changed target is always excluded)
            again = changed and skips and (attempt > 1 or not direct)
            counted = again and self._excluded(conn, rid, skips[0][0])
            if postgres:
                self._copy_batch(conn, rid, wf, stamp, ahead or rows, channel, skips, direct)
            else:
                self._insert_batch(conn, rid, wf, stamp, rows, channel, skips)
            if changed and not counted:
                state = T["run_state"]
                conn.execute(
                    update(state)
                    .where(state.c.run_id == rid)
                    .values(changed_count=state.c.changed_count + changed)
                )

        def attempt(direct: bool) -> None:
            if within is None:
                self.backend.run(lambda conn, n: write(conn, n, direct), write=True)
                return
            with self.backend.errors(), within.begin_nested():
                write(within, 1, direct)

        queued = (
            self.recipient_lock(queue)
            if queue is not None and within is None and not postgres
            else nullcontext()
        )
        try:
            with queued:  # SQLite: the cap's file lock around the write
                if fresh and postgres:
                    from hybridwb.platform.idempotent import KeyExists

                    try:
                        attempt(True)
                        return True
                    except KeyExists:
                        pass  # a row of this batch exists: write it again, skipping those
                attempt(False)
        except _LockLost:
            return False
        return True

    @staticmethod
    def _excluded(conn: Any, rid: Any, key: str) -> bool:
        s = T["run_skips"]
        found = select(s.c.target_key).where(s.c.run_id == rid, s.c.target_key == key)
        return conn.execute(found).first() is not None

    @staticmethod
    def _copy_batch(
        conn: Any,
        rid: Any,
        wf: Any,
        stamp: datetime,
        records: list[tuple[str, str | None, str]] | RecordRows,
        channel: str,
        skips: list[tuple[str, str]],
        direct: bool,
    ) -> None:
        from hybridwb.platform.idempotent import Same, copy_columns, timestamptz_text, uuid7_texts

        run, workflow, at = Same(str(rid)), Same(str(wf)), Same(timestamptz_text(stamp))
        text: str | bytes | None = None
        if isinstance(records, RecordRows):
            ordered, ahead = records
        else:
            ordered, ahead = in_recipient_order(records), None
        if ordered:
            columns: list[Any] = []  # the text made ahead stands for them
            if ahead is not None:
                # each line of the text made ahead ends where the batch's time goes (a
                # line's own newlines are escaped in COPY text: `\n` is where lines end)
                text = ahead.replace(b"\n", f"\t{at.value}\n".encode())
                if _encoding(conn) != "utf-8":  # psycopg encodes text as the session's
                    text = text.decode("utf-8")
            else:
                keys, recipients, contents = zip(*ordered, strict=True)
                # by column, as RECORD_COLUMNS (a batch's run, workflow and time once)
                columns = [
                    uuid7_texts(len(ordered), stamp),
                    run,
                    workflow,
                    keys,
                    recipients,
                    Same(channel),
                    contents,
                    Same("queued"),
                    at,
                ]
            copy_columns(
                conn,
                T["send_records"],
                list(RECORD_COLUMNS),
                columns,
                None if direct else ["run_id", "target_key"],
                text=text,
            )
        if skips:
            keys, reasons = zip(*skips, strict=True)
            copy_columns(
                conn,
                T["run_skips"],
                ["run_id", "target_key", "reason", "created_at"],
                [run, keys, [reason[:200] for reason in reasons], at],
                None if direct else ["run_id", "target_key"],
            )

    @staticmethod
    def _insert_batch(
        conn: Any,
        rid: Any,
        wf: Any,
        stamp: datetime,
        records: list[tuple[str, str | None, str]],
        channel: str,
        skips: list[tuple[str, str]],
    ) -> None:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        if records:
            rows = [
                dict(zip(RECORD_COLUMNS, values, strict=True))
                for values in (
                    (uuid.uuid4(), rid, wf, key, recipient, channel, content, "queued", stamp)
                    for key, recipient, content in records
                )
            ]
            stmt = sqlite_insert(T["send_records"]).on_conflict_do_nothing(
                index_elements=["run_id", "target_key"]
            )
            for start in range(0, len(rows), CHUNK):
                conn.execute(stmt, rows[start : start + CHUNK])
        if skips:
            stmt = sqlite_insert(T["run_skips"]).on_conflict_do_nothing(
                index_elements=["run_id", "target_key"]
            )
            conn.execute(
                stmt,
                [
                    {"run_id": rid, "target_key": k, "reason": r[:200], "created_at": stamp}
                    for k, r in skips
                ],
            )

    def clear_skips(self, run_id: Any, reason: str) -> None:
        """Forget exclusions of one reason, so a resume decides them again (quiet hours)."""
        s = T["run_skips"]

        def drop() -> None:
            with self.backend.engine.begin() as conn:
                conn.execute(delete(s).where(s.c.run_id == as_uuid(run_id), s.c.reason == reason))

        self._run(drop)

    def exclusions(self, run_id: Any, limit: int = 10_000) -> list[dict[str, Any]]:
        """The run's excluded targets in frozen order (key, frozen recipient, reason), at most
        `limit`: what the report offers as a download."""
        rid = as_uuid(run_id)
        t, s = T["run_targets"], T["run_skips"]
        stmt = (
            select(t.c.target_key, t.c.recipient, s.c.reason)
            .join(s, and_(s.c.run_id == t.c.run_id, s.c.target_key == t.c.target_key))
            .where(t.c.run_id == rid)
            .order_by(t.c.seq)
            .limit(limit)
        )

        def read() -> list[dict[str, Any]]:
            with self.backend.engine.connect() as conn:
                return [dict(row._mapping) for row in conn.execute(stmt)]

        return self._run(read)

    def analyze_history(self) -> None:
        """Refresh the planner's statistics of the send history (Postgres `ANALYZE`).

        A run adds its records faster than autovacuum re-analyzes (or with autovacuum off,
        never): the planner then still sees the table as it was, guesses that each of a
        batch's recipients matches thousands of rows, and reads the whole history with a
        sequential scan per batch instead of the recipient index. Only statistics: a
        role that does not own the table gets a warning from the server and nothing else.

        Only the columns a run's queries look rows up, join, group or filter by
        (`HISTORY_STATISTICS`): the message text, the id and the status take about half
        of a whole-table ANALYZE's CPU (a sort of each column's sample) and no plan of a
        run reads their statistics; autovacuum still analyzes every column."""
        self._analyze(T["send_records"], HISTORY_STATISTICS)

    def history_statistics_rows(self) -> int:
        """How many rows the planner's statistics of the send history describe: the
        table's row count as of its last ANALYZE or VACUUM (`pg_class.reltuples`) while the
        server holds statistics of every column a run plans with (`HISTORY_STATISTICS`),
        else 0 (never analyzed, analyzed while empty, or the statistics dropped); 0 on
        SQLite.

        A run's refresh (`analyze_history`) is for a history whose statistics describe
        far fewer rows than it now holds: the planner then guesses that each recipient
        matches thousands of rows. Statistics of a history at least as large as what the
        run has written describe its recipients, keys and runs as the run's own records
        do (each distinct, as before), so the first refresh waits until the run has
        doubled the history (measured: ~150 ms of the server's CPU per ANALYZE, ~1.6 us
        a message at 100k targets; five of them at 1M)."""
        if self.backend.name != "postgresql":
            return 0
        from sqlalchemy import column, table  # the catalog's, by name (`_analyze` has a `table`)

        tbl = T["send_records"]
        pg_class = table(
            "pg_class",
            column("oid"),
            column("relname"),
            column("relnamespace"),
            column("reltuples"),
            schema="pg_catalog",
        )
        pg_namespace = table("pg_namespace", column("oid"), column("nspname"), schema="pg_catalog")
        pg_stats = table(
            "pg_stats", column("schemaname"), column("tablename"), column("attname"),
            schema="pg_catalog",
        )  # fmt: skip
        analyzed = (
            select(func.count(pg_stats.c.attname.distinct()))
            .where(
                pg_stats.c.schemaname == pg_namespace.c.nspname,
                pg_stats.c.tablename == pg_class.c.relname,
                pg_stats.c.attname.in_(HISTORY_STATISTICS),
            )
            .scalar_subquery()
        )

        def read() -> int:
            with self.backend.engine.connect() as conn:
                name = conn.dialect.identifier_preparer.format_table(tbl)
                rows = conn.execute(
                    select(pg_class.c.reltuples)
                    .select_from(
                        pg_class.join(pg_namespace, pg_namespace.c.oid == pg_class.c.relnamespace)
                    )
                    .where(
                        pg_class.c.oid == func.to_regclass(name),
                        analyzed == len(HISTORY_STATISTICS),
                    )
                ).scalar()
            return max(0, int(rows or 0))

        return int(self._run(read))

    def _analyze(self, table: Any, columns: Iterable[str]) -> None:
        """Postgres `ANALYZE table (columns)`; nothing on SQLite.

        A table a run has just filled (the frozen set; the send history) is not what the
        planner's statistics describe until autovacuum gets to it, which may be during the
        run, after it, or never: a run's plans then depend on when that happened. The
        frozen set's read by seq, planned on a table it takes for empty, read every target
        after the batch's first and sorted them, per batch (about a tenth of the server's
        CPU of a 100k-target run) whenever autovacuum had not analyzed it first."""
        if self.backend.name != "postgresql":
            return

        def analyze() -> None:
            with self.backend.engine.connect() as conn:
                quote = conn.dialect.identifier_preparer
                names = ", ".join(quote.format_column(table.c[c]) for c in columns)
                conn.exec_driver_sql(f"ANALYZE {quote.format_table(table)} ({names})")
                conn.commit()

        self._run(analyze)

    # -- truth, derived from rows ----------------------------------------------------------
    def counts(self, run_id: Any) -> dict[str, Any]:
        """targets (frozen), records, exclusions by reason, pending: from the rows themselves."""
        rid = as_uuid(run_id)
        s = T["run_skips"]

        def read() -> dict[str, Any]:
            with self.backend.engine.connect() as conn:
                by_reason = {
                    reason: int(n)
                    for reason, n in conn.execute(
                        select(s.c.reason, func.count())
                        .where(s.c.run_id == rid)
                        .group_by(s.c.reason)
                    )
                }
            return by_reason

        by_reason = self._run(read)
        targets = self.backend.count("run_targets", {"run_id": rid})
        records = self.backend.count("send_records", {"run_id": rid})
        skipped = sum(by_reason.values())
        return {
            "targets": targets,
            "records": records,
            "skipped": skipped,
            "skipped_by_reason": by_reason,
            "pending": max(0, targets - records - skipped),
        }

    # -- the store's own history, for send policies ----------------------------------------
    @contextmanager
    def recipient_lock(self, space: str) -> Iterator[Any]:
        """Exclusive across processes while held: the history check and the insert of a
        batch under a global frequency cap happen as one step, so two workflows running at
        once never both count a recipient under the cap. Postgres: a transaction-scoped
        advisory lock (`pg_advisory_xact_lock`) on a connection of its own, released when
        that transaction ends; SQLite: an exclusive `flock` on a file beside the database
        (an in-memory database has one process by nature)."""
        if self.backend.name == "postgresql":
            # the lock's connection is yielded: the batch is written in its transaction
            # (`write_batch(within=...)`), so the lock cannot end before the batch commits
            with self.backend.errors(), self.backend.engine.connect() as conn, conn.begin():
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(space))))
                yield conn
            return
        database = self.backend.engine.url.database
        if not database or database == ":memory:" or database.startswith("file::memory:"):
            yield
            return
        with open(f"{database}.recipients.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def legacy_statement(self) -> Any:
        """The read of `legacy_recipients`: the first legacy recipient in recipient order.

        The order is what the partial index gives, so no plan reads the history without
        it: with `LIMIT 1` alone, a planner without statistics of the recipients (a
        history empty when last analyzed, then filled by the run) guesses that a
        regular expression matches one row in 200 and reads the table in order to stop
        at the first match, which never comes: the whole history, once per batch."""
        r = T["send_records"]
        predicate = text(schema.LEGACY_RECIPIENT[self.backend.name])
        return select(literal(1)).select_from(r).where(predicate).order_by(r.c.recipient).limit(1)

    def legacy_recipients(self, *, within: Any = None) -> bool:
        """Whether the send history holds a recipient in a pre-E.164 spelling (digits
        only; see `schema.LEGACY_RECIPIENT`): one read of a partial index that migration
        0006 leaves empty unless a row could not be rewritten or was written since.
        `within`: the cap lock's connection (`recipient_lock`), read on it as `seen`."""
        stmt = self.legacy_statement()

        def read(conn: Any) -> bool:
            return conn.execute(stmt).first() is not None

        return bool(self._read(read, within))

    def _read(self, fn: Any, within: Any) -> Any:
        """`fn(conn)` on `within`, the cap lock's connection, in its transaction (no
        retry: a fault there ends the lock and the batch with it, and the run stops as
        when the batch's write fails there); else on a connection of its own, retried."""
        if within is not None:
            with self.backend.errors():
                return fn(within)

        def read() -> Any:
            with self.backend.engine.connect() as conn:
                return fn(conn)

        return self._run(read)

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
        """Per recipient with history: (recipient, records of this run, of earlier runs of
        this workflow, of those since `cool_since`, of any workflow since `cap_since`).

        The history adds up in the store (one summed index read per recipient), so a
        recipient messaged a thousand times costs one row here, not a thousand. `within`:
        the cap lock's connection (`recipient_lock`): the check is read in the lock's own
        transaction, which then writes the batch (no connection of its own to check out,
        ping, begin and roll back per batch)."""
        out: list[tuple[str, int, int, int, int]] = []
        recipients = list(dict.fromkeys(recipients))  # each once: one row per recipient
        postgres = self.backend.name == "postgresql"
        for start in range(0, len(recipients), CHUNK):
            stmt = self.seen_statement(
                recipients[start : start + CHUNK], workflow_id, run_id, cool_since, cap_since
            )

            def read(conn: Any, stmt: Any = stmt) -> list[tuple[str, int, int, int, int]]:
                if not postgres:
                    return conn.execute(stmt).all()
                conn.execute(NO_JIT)  # in this read's transaction only (see `NO_JIT`)
                # (text, bigint x 4): psycopg's tuples as they come, without a Row object
                # each (half the read's CPU, in the step every batch waits for); the
                # columns have no result processing to skip
                result = conn.execute(stmt)
                try:
                    return result.cursor.fetchall()
                finally:
                    result.close()

            out.extend(self._read(read, within))
        return out

    def seen_statement(
        self,
        recipients: list[str],
        workflow_id: Any,
        run_id: Any,
        cool_since: datetime | None,
        cap_since: datetime | None,
    ) -> Any:
        """The read of `seen` for one chunk of distinct recipients.

        Postgres: per recipient of the array (unnested in the order given, sorted by the
        run), its rows summed by a LATERAL subquery, one index range read each, in index
        order; recipients with no row in scope are left out. The semi-join with a GROUP BY
        it replaces made the server hash the batch's recipients, then sort the rows found
        to group them: about half of the query's time. The array is one text parameter,
        its literal (`text_array`), cast to `text[]` by the server: psycopg dumps a list
        element by element in Python, some 2 us per recipient of the run's own thread.
        SQLite: IN list and GROUP BY."""
        r = T["send_records"]
        wf, rid = as_uuid(workflow_id), as_uuid(run_id)
        starts = [as_utc(at) for at in (cool_since, cap_since) if at is not None]
        scope = r.c.workflow_id == wf
        if starts:  # stored UTC (naive on SQLite): compare in UTC
            scope = or_(scope, r.c.created_at >= min(starts))

        def total(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        earlier = and_(r.c.workflow_id == wf, r.c.run_id != rid)
        sums = [
            total(r.c.run_id == rid),
            total(earlier),
            total(and_(earlier, r.c.created_at >= as_utc(cool_since)))
            if cool_since is not None
            else literal(0),
            total(r.c.created_at >= as_utc(cap_since)) if cap_since is not None else literal(0),
        ]
        if self.backend.name != "postgresql":
            return (
                select(r.c.recipient, *sums)
                .where(and_(r.c.recipient.in_(recipients), scope))
                .group_by(r.c.recipient)
            )
        array = cast(bindparam("values", text_array(recipients), type_=Text), ARRAY(Text))
        probe = func.unnest(array).table_valued("recipient").render_derived(name="probe")
        names = ("in_run", "earlier", "cooling", "in_window")
        found = (
            select(func.count().label("n"), *(s.label(n) for s, n in zip(sums, names, strict=True)))
            .where(r.c.recipient == probe.c.recipient, scope)
            .lateral("found")
        )
        return (
            select(probe.c.recipient, *(found.c[n] for n in names))
            .select_from(probe.join(found, true()))
            .where(found.c.n > 0)
        )


def _encoding(conn: Any) -> str:
    """The Python codec of a Postgres connection's client encoding (psycopg's)."""
    return str(conn.connection.dbapi_connection.info.encoding)


def in_recipient_order(
    records: list[tuple[str, str | None, str]],
) -> list[tuple[str, str | None, str]]:
    """A batch's send records as its COPY writes them: by recipient (the batch's ids, made
    after, then ascend in that order too). The history's recipient index
    (`ix_send_records_recipient`), which a batch in key order meets at random places, then
    gets each insert next to the one before it: about a tenth of the COPY's server CPU per
    record less while the history's index is some pages per batch (issue #17,
    `bench_record_indexes.py`); with a history of millions, little. The rows, their keys and their values are the same; only the order of the
    batch's own rows on disk changes (the history is read by recipient and time, a run's
    records by time, which a batch shares). A recipient None (a caller of `write_batch`
    other than a run, which writes none) leaves the batch in its order."""
    try:
        return sorted(records, key=_RECIPIENT)
    except TypeError:  # None among texts: not ordered, written as given
        return records


_RECIPIENT = operator.itemgetter(1)


def text_array(values: Iterable[str]) -> str:
    """The Postgres array literal of `values` (for a `text[]` parameter sent as text):
    every element double-quoted, with its backslashes and double quotes escaped, so
    commas, braces, spaces, quotes and the word NULL are read back as the very text."""
    values = list(values)
    if not values:
        return "{}"
    body = '","'.join(values)
    # the separators' quotes only, and no backslash: nothing to escape (nearly always)
    if "\\" in body or body.count('"') != 2 * (len(values) - 1):
        body = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + body + '"}'


def window_start(at: datetime, days: float | None) -> datetime | None:
    return None if not days else as_utc(at) - timedelta(days=days)


def new_run_id() -> uuid.UUID:
    return uuid.uuid4()


__all__ = [
    "Campaigns",
    "CapCheck",
    "as_utc",
    "call_owner",
    "is_stale",
    "owner_alive",
    "this_owner",
]
