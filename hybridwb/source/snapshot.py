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

Limits (no snapshot, each statement its own moment as before): tables of an engine without
transactions (MyISAM, MEMORY, ARIA) give no consistent read; a statement that names a view
is followed by a connection reset (`execute._reset`: the view's code may have changed the
session), which ends the transaction, so the reads after it are autocommit reads.
"""

from __future__ import annotations

from typing import Any

from hybridwb.errors import ConnectionFailed

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


def in_snapshot(info: Any) -> bool:
    return bool(info.get(SNAPSHOT_KEY))
