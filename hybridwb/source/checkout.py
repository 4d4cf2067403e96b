"""The read path's checkout: one pooled connection a `Source` keeps for its next read.

A read through SQLAlchemy's pool costs a `Connection`, a pool checkout and a checkin, with
their events, around a statement that is often a millisecond on the server: on a search,
about a tenth of the client's CPU. So `Source` keeps the connection of its last read aside
(*parked*, at most `PARKED` of them) and takes it back for the next read without the pool,
doing exactly what the pool's events do (session.py):

* when a read ends, the session SET for the next use is sent without waiting
  (`send_next_session`), as at a pool checkin;
* when the next read takes it, that SET's reply is read, a connection that was closed or
  spoken to while parked is dropped, and the session is set again when the SET failed or
  the read wants another policy (`reassert_session`), as at a pool checkout.

So every use still starts on a session just set (READ ONLY, the time limit, the row cap,
sql_mode, named locks released). A connection is not parked after an error, when it was
invalidated, or once it is older than the pool's recycle age; anything that goes wrong
taking a parked connection drops it and the read takes one from the pool instead. A parked
connection counts against the pool's size, so nothing is parked when the pool keeps only one
connection (`pool_size=1`): the engine's own users (pandas, jupysql) find that one in the
pool, as before.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from hybridwb.source import catalogue
from hybridwb.source.session import (
    SessionFacts,
    SessionPolicy,
    checkout_as,
    reassert_session,
    send_next_session,
    stricter_or_default,
)
from hybridwb.source.snapshot import in_snapshot

#: connections kept aside for the next reads (one serves a notebook's thread)
PARKED = 1
#: seconds after which a connection goes back to the pool, which recycles it (pool_recycle)
MAX_AGE = 1800.0
_BORN = "hybridwb_parked_born"
#: in a forked child, the parent's parked connections, never released: dropping the last
#: reference would check one in, and the checkin sends a SET on the parent's socket (the
#: parent would then read that reply as its next statement's, one reply late from then on)
_FORKED: list[Connection] = []
#: the process this module runs in: the pid, read again in a forked child only (every read
#: compares it; `os.getpid()` is a system call each time)
_PROCESS = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PROCESS.__setitem__(0, os.getpid()))


def this_process() -> int:
    """This process's pid, as `_PROCESS` keeps it (no system call)."""
    return _PROCESS[0]


def abandon(conn: Connection) -> None:
    """In a forked child, a parent's connection kept and never released (`_FORKED`)."""
    _FORKED.append(conn)


class Parking:
    """The connections a `Source` keeps for its next reads (thread-safe; a forked child
    forgets its parent's without touching their sockets)."""

    def __init__(
        self,
        facts: SessionFacts,
        policy: SessionPolicy,
        ctx: catalogue.Context,
        secrets: Callable[[], Any],
        *,
        enabled: bool = True,
    ) -> None:
        self.facts = facts
        self.policy = policy
        self.ctx = ctx
        self.secrets = secrets
        self.enabled = enabled
        self._lock = threading.Lock()
        self._parked: list[Connection] = []
        self._pid = _PROCESS[0]
        self._epoch = 0  # counts `clear()`: a read that began before one parks nothing

    def __repr__(self) -> str:
        return f"<Parking: {len(self._parked)} of {PARKED}>"

    @contextmanager
    def reader(self, engine: Engine, wanted: SessionPolicy | None = None) -> Iterator[Connection]:
        """A connection whose session was just set to `wanted` (never looser than the
        source's policy), parked again after a read that raised nothing."""
        conn, epoch = self.take(engine, wanted)
        try:
            yield conn
        except BaseException:
            conn.close()  # as before: the pool's checkin decides what happens to it
            raise
        self.park(conn, epoch)

    def take(self, engine: Engine, wanted: SessionPolicy | None = None) -> tuple[Connection, int]:
        """`reader` without the block, for the read path's own use (a generator-based
        context manager costs several calls per read): the connection, and what to hand
        `park` after a read that raised nothing. After one that raised, close it instead."""
        policy = stricter_or_default(self.policy, wanted)
        epoch = self._epoch
        conn = self._take(policy)
        if conn is None:
            with checkout_as(policy):
                conn = engine.connect()  # the pool's checkout sets the session
        return conn, epoch

    def after_fork(self) -> None:
        """In a forked child: a lock of its own (another thread of the parent may have held
        this one at the fork) and none of the parent's connections (see `_take`)."""
        self._lock = threading.Lock()
        _FORKED.extend(self._parked)
        self._parked, self._pid = [], os.getpid()

    def park(self, conn: Connection, epoch: int) -> None:
        """Keep `conn` for the next read (see `_park`)."""
        self._park(conn, epoch)

    def _take(self, policy: SessionPolicy) -> Connection | None:
        with self._lock:
            if self._pid != _PROCESS[0]:  # a forked child: the sockets are the parent's
                _FORKED.extend(self._parked)
                self._parked, self._pid = [], _PROCESS[0]
            conn = self._parked.pop() if self._parked else None
        if conn is None:
            return None
        try:
            record = conn.connection
            reassert_session(
                record.dbapi_connection, record.info, self.facts, policy, self.ctx, self.secrets
            )
        except Exception:  # killed while parked, or its SET failed: the pool gives another
            _drop(conn)
            return None
        except BaseException:  # Ctrl-C while its replies were read: some may still be owed
            _drop(conn)
            raise
        return conn

    def _park(self, conn: Connection, epoch: int) -> None:
        if not conn.invalidated and not conn.closed and in_snapshot(conn.connection.info):
            _drop(conn)  # a snapshot left open (never expected: `Source.consistent` ends it)
            return
        keep = (
            self.enabled
            and not conn.invalidated
            and not conn.closed
            and not conn.in_transaction()
            and self._pid == _PROCESS[0]
        )
        if keep:
            info = conn.connection.info
            keep = time.monotonic() - info.setdefault(_BORN, time.monotonic()) < MAX_AGE
        closed = False
        if keep:
            with self._lock:
                closed = epoch != self._epoch
                keep = not closed and len(self._parked) < PARKED
                if keep:
                    record = conn.connection
                    try:
                        send_next_session(
                            record.dbapi_connection, record.info, self.facts, self.policy
                        )
                    except BaseException:
                        # Ctrl-C in the send (no Exception leaves it): the reset may be on
                        # the wire with its reply owed and not yet noted, and the next read
                        # would take that OK for its own empty result (round 48's flake)
                        _drop(conn)
                        raise
                    self._parked.append(conn)
        if closed:  # `clear()` (the source's close) ran during the read: its pool is disposed
            _drop(conn)
        elif not keep:
            conn.close()  # back to the pool (its checkin sends the next SET)

    def clear(self) -> None:
        """Drop the parked connections (their SET's reply is unread: none goes back to the
        pool, whose next checkout would read the wrong reply)."""
        with self._lock:
            parked, self._parked = self._parked, []
            self._epoch += 1
            mine = self._pid == _PROCESS[0]
        for conn in parked if mine else ():
            _drop(conn)


def _drop(conn: Connection) -> None:
    try:
        conn.invalidate()
        conn.close()
    except Exception:  # closing a socket that is gone: nothing left to release
        return
