"""Which store errors are worth another try, and the tenacity policy that tries again.

Only faults that say nothing about the statement itself are retried: the server could not
be reached or dropped the connection, it is shutting down or starting up, or Postgres
aborted a transaction for a serialization conflict. Syntax errors, constraint violations,
"no such table", timeouts and permission errors fail at once — another try cannot help and
would only hide the real message behind "is it running?".

Retrying a write is only honest because every write is idempotent (client-generated ids,
`ON CONFLICT DO NOTHING` and a re-check; see backend.py): a retry after a lost commit
acknowledgement finds its own row and reports success.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from sqlalchemy.exc import DBAPIError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

#: SQLSTATEs of connection faults (class 08) and of a server going away or not ready yet
CONNECTION_SQLSTATES = frozenset(
    {"08000", "08001", "08003", "08004", "08006", "08007", "57P01", "57P02", "57P03", "53300"}
)
#: the transaction lost a race with another one; running it again is the documented fix
CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
#: what a server says when it answers a connect with no (libpq gives such an error no
#: SQLSTATE): another try meets the same answer, so it fails at once; a server starting
#: up, shutting down or out of connection slots says otherwise and is tried again
REFUSED_AT_CONNECT = re.compile(
    r"FATAL:\s+(password authentication failed|role \".*\" does not exist|database \".*\" "
    r"does not exist|no pg_hba\.conf entry|pg_hba\.conf rejects connection|role \".*\" is "
    r"not permitted to log in|permission denied for database|Tenant or user not found)"
)


def _orig(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc


def is_connectivity(exc: BaseException) -> bool:
    """The server could not be reached, or dropped us: the only case for "is it running?"."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = _orig(exc)
    if isinstance(orig, sqlite3.Error):
        return False
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the postgres driver is a dependency
        return False
    if isinstance(orig, psycopg.OperationalError):
        sqlstate = getattr(orig, "sqlstate", None)
        # a failed connect carries no SQLSTATE; every error from a live server has one
        if sqlstate is None:
            return not REFUSED_AT_CONNECT.search(str(orig))
        return sqlstate in CONNECTION_SQLSTATES
    return False


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: connectivity, a serialization conflict, or SQLite's busy lock."""
    if is_connectivity(exc):
        return True
    orig = _orig(exc)
    if isinstance(orig, sqlite3.OperationalError):
        return str(orig).lower().startswith(SQLITE_BUSY)
    return getattr(orig, "sqlstate", None) in CONFLICT_SQLSTATES


def sql_retrying(attempts: int = 3, base_delay: float = 0.2) -> Retrying:
    """The retry policy of the SQL store backends (transient errors only, then re-raise)."""
    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=base_delay, max=5),
        reraise=True,
    )


def attempt_number(attempt: Any) -> int:
    return int(attempt.retry_state.attempt_number)


__all__ = ["attempt_number", "is_connectivity", "is_transient", "sql_retrying"]
