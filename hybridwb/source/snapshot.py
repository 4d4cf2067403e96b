"""One moment for several reads: a read-only transaction with a consistent snapshot.

A run reads a batch's rows and then, by statements of their own, the template's related
values (`Resolver.fetch`); between them another client may commit (round 58's BREAK 6: a
newer address named in a message sent to the older one's phone). `Source.consistent` runs
such reads on one pinned connection (`Source.one_connection`) inside

    SET TRANSACTION ISOLATION LEVEL REPEATABLE READ
    START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT
    ... the reads, each guarded, capped, time-limited and read back as always ...
    COMMIT

(MariaDB and MySQL: InnoDB makes its read view at the START, and every consistent read of
the transaction sees it; the isolation level is the next transaction's only, since READ
COMMITTED would make a view per statement). The transaction is READ ONLY on a READ ONLY
session, and it always ends: COMMIT after the reads, or after an error or an interrupt;
a COMMIT that fails or is interrupted drops the connection (its transaction ends with it),
and a connection still marked in a snapshot is never parked or pooled (`Parking._park`).

Inside it the session is set without `autocommit = 0, autocommit = 1` (`_session_sql`),
whose switch would commit the snapshot. A lost connection is not read again on another
(that read would be of another moment): the whole block is run again on a new connection
and a new snapshot (`SnapshotLost`, `Source.consistent`). On SQLite: one deferred read
transaction (`BEGIN` ... `COMMIT`) on one connection.

A statement that names a view (or calls an allowlisted stored function) is followed by a
connection reset (`execute._reset`: the code it ran may have changed the session), and the
reset ends the transaction. Inside a snapshot the views a statement read are read after it,
on its connection, under the metadata locks its transaction holds (`plainviews.refusal`):
views that provably run nothing that changes the session (no stored function, only
builtins of an allowlist, no locking read) need no reset, and the snapshot goes on. Any
other server code is reset after as always, and the block fails in one line
(`SnapshotRefused`, raised again by every later read of the block and at its end, even
when the block caught it): never a later moment read without a word. A statement that
fails is judged the same way (its views' code may have run before the error): when what it
read is not plain, its connection is dropped and the block fails so. And after a failure the
transaction is checked: one the server ended (a deadlock on a metadata lock with another
client's DDL rolls it back) drops the connection and is `SnapshotLost` (the block is read
again whole), never reads on in autocommit.

Limits (no snapshot, each statement its own moment as before): tables of an engine without
transactions (MyISAM, MEMORY, ARIA) give no consistent read. Refused inside a snapshot
(the block fails, nothing is read of two moments): a view calling a stored function or a
builtin outside the allowlist, one whose definition the account cannot read (no SHOW
VIEW), an allowlisted stored function called by the statement itself, a SHOW statement,
any statement with the guard off (`use_guard=False`), and a sequence (CREATE SEQUENCE's),
read directly or through a view: its row is read as it is at each statement, not at the
snapshot's moment.
"""

from __future__ import annotations

from typing import Any

from hybridwb.errors import ConnectionFailed, QueryError

#: the next transaction's isolation: a consistent snapshot needs REPEATABLE READ
ISOLATION_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
START_SQL = "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT"
END_SQL = "COMMIT"
#: set in a connection record's `info` while its snapshot is open: the session SET leaves
#: autocommit alone, and `Parking` never keeps such a connection
SNAPSHOT_KEY = "hybridwb_snapshot"


class SnapshotLost(ConnectionFailed):
    """A read inside `Source.consistent` lost its connection: the block is run again on a
    new connection and snapshot (never one statement on another connection)."""


class SnapshotRefused(QueryError):
    """A statement inside `Source.consistent` ran server code that may have changed the
    session (`plainviews`): the reset after it ended the snapshot, so the block fails
    rather than read on at a later moment."""


#: what to do about a view (or function) whose code may change the session
VIEW_FIX = (
    "map the view's base tables instead, or use a view without stored functions or "
    "builtins that change the session"
)


#: why a refused statement ends the reads (`refused_message`'s default)
RESET_AFTER = (
    "code that may change the session is reset after, which ends the snapshot, so the reads stopped"
)


def refused_message(why: str, fix: str = VIEW_FIX, after: str = RESET_AFTER) -> str:
    """The one line of a `SnapshotRefused`: what ran (`why`), why the reads stopped
    (`after`), and what to do (`fix`)."""
    return f"Not read in one moment of the source: {why}; {after}. To fix: {fix}."


def in_snapshot(info: Any) -> bool:
    return bool(info.get(SNAPSHOT_KEY))
