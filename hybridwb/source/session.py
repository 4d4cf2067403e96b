"""The source session: what it must be (`SessionPolicy`), set on every connect and checkout
and read back after every statement.

**The session is re-asserted, not assumed.** Every connect and every checkout from the
pool sets `READ ONLY`, the statement time limit, `sql_select_limit` (the row cap) and a
fixed `sql_mode` (the one the guard tokenizes with), and releases named locks, in one
statement; after each statement the session is read back, and a session that server
code (a stored function) changed is restored, or dropped when it cannot be, and the
statement is refused. The checkout's SET is sent when the connection is checked *in*,
without waiting (the server runs it at once, while the client builds its DataFrame),
after a COM_RESET_CONNECTION that drops whatever server code left that no SET names
(temporary tables, user variables, other session variables); the checkout reads both
replies before anything else runs, and resets and sets the session itself, waiting, when
they failed, were not sent, or the checkout wants another policy. So every use still
starts on a session just reset and set, at no round trip of its own (PyMySQL; mysqlclient
waits for the reset at checkin). On a pinned
connection after a read of a table (which may be a view by now), the next statement sets
the session first, or on MariaDB a SELECT carries READ ONLY, the time limit and the cap
itself (`statement_prefix`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

from hybridwb.errors import BindError, ConnectionFailed, ReadOnlyViolation
from hybridwb.source import catalogue, drivers, rawguard
from hybridwb.source.driver_errors import Secrets, driver_error, is_gone
from hybridwb.validation import short


@dataclass
class SessionFacts:
    """What the first connection told us about the server (filled on connect)."""

    flavour: str = "unknown"  # MariaDB | MySQL | SQLite
    version: str = ""
    timeout_variable: str = ""
    read_only_variable: str = ""
    #: the session's time zone at the first login (the server's, or the URL's init_command):
    #: every session SET puts it back (`pinned_time_zone`)
    time_zone: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionPolicy:
    """What every source session must be: read-only, time-limited, row-capped."""

    read_only: bool = True
    timeout: float = 30.0  # seconds; the ceiling a caller may lower but never raise
    select_limit: int = 100_001  # row cap + 1, enforced by the server
    allowed_functions: tuple[str, ...] = ()

    def with_query(self, timeout: float | None, select_limit: int | None) -> SessionPolicy:
        if timeout in (None, self.timeout) and select_limit in (None, self.select_limit):
            return self  # the common case: no new object per query
        return replace(
            self,
            timeout=self.timeout if timeout is None else timeout,
            select_limit=self.select_limit if select_limit is None else select_limit,
        )


def statement_timeout_sql(flavour: str, seconds: float) -> str:
    """The SET statement that limits statement time on this server flavour."""
    return f"SET SESSION {_timeout_assignment(flavour, seconds)}"


def _timeout_assignment(flavour: str, seconds: float) -> str:
    if flavour == "MariaDB":
        text = f"{float(seconds):.3f}"
        assignment = f"max_statement_time = {text}"
    else:
        text = str(int(seconds * 1000))
        assignment = f"max_execution_time = {text}"
    # 0 means *no* limit on both servers: never send it, whatever let a tiny value through
    if not float(text) > 0:
        raise BindError(
            f"A time limit of {short(seconds)} seconds rounds to 0 (= no limit) on the server; "
            "ask for at least 0.01 seconds."
        )
    return assignment


def statement_prefix(facts: SessionFacts, policy: SessionPolicy, first_word: str) -> str:
    """On MariaDB, for a statement that starts with SELECT, the `SET STATEMENT ... FOR `
    that makes it run READ ONLY, under the policy's time limit and row cap whatever the
    session says, in the statement's own round trip: what a pinned connection owes after a
    read of a table (`SessionOwed`) instead of the session SET it would wait for. Else "".

    It holds for what server code can leave behind: a function's `SET SESSION
    tx_read_only = 0`, `SET TRANSACTION READ WRITE`, `sql_select_limit` and
    `max_statement_time` last past it, and the statement's own values override them; its
    `sql_mode` and the client and connection character sets do not (MariaDB restores them
    when a stored routine returns), and a NO_BACKSLASH_ESCAPES flag left on the connection
    is caught before the values are pasted in (`escape_as_read`). The character set of
    results is not restored (a function's `SET NAMES gbk` leaves it): the statement sets
    it too, or the driver would decode latin1 or GBK rows as utf8mb4. Named locks it took
    are released as the statement starts (`RELEASE_ALL_LOCKS()` in the cap's value), as
    the session SET would have. MySQL's `SET_VAR` hint cannot set the access mode: there
    the session is set first, as before."""
    if facts.flavour != "MariaDB" or not policy.read_only or first_word.upper() != "SELECT":
        return ""
    return _statement_prefix(facts.read_only_variable, facts.time_zone, policy)


@functools.lru_cache(maxsize=64)
def _statement_prefix(read_only_variable: str, time_zone: str, policy: SessionPolicy) -> str:
    zone = pinned_time_zone(time_zone)
    return (
        f"SET STATEMENT {read_only_variable} = 1, "
        + (f"{zone}, " if zone else "")
        + f"{_timeout_assignment('MariaDB', policy.timeout)}, "
        # RELEASE_ALL_LOCKS() (a count, times 0) runs as the value is read, before the
        # statement: the named locks a function took are not held past the read before
        f"sql_select_limit = {int(policy.select_limit)} + 0 * RELEASE_ALL_LOCKS(), "
        f"character_set_results = {NAMES} FOR "
    )


#: the sql_mode every source session runs with, set on connect and on every checkout and
#: read back: the guard tokenizes with MySQL's default reading of literals, so no mode that
#: changes it (NO_BACKSLASH_ESCAPES, ANSI_QUOTES, ANSI, ORACLE, PIPES_AS_CONCAT,
#: IGNORE_SPACE...) may be in effect, whatever a URL's init_command or the server's global
#: sql_mode says. Valid on MariaDB and MySQL 8.
SQL_MODE = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"


#: what the guard and the in-place check read literals with: another client charset (GBK,
#: Big5, SJIS) would let a multibyte character end in a backslash the server reads
#: differently
NAMES = "utf8mb4"


#: a time zone as the server names one: SYSTEM, an offset, a named zone
_TIME_ZONE = re.compile(r"[A-Za-z0-9_/+:-]{1,64}")


def pinned_time_zone(time_zone: str) -> str:
    """`time_zone = '<the first login's>'` for a session SET, or "" when it is not a plain
    zone name. A function a view calls can leave `SET SESSION time_zone = '+11:00'` on
    the connection, and every later TIMESTAMP read on it came back shifted (round 47)."""
    return f"time_zone = '{time_zone}'" if _TIME_ZONE.fullmatch(time_zone) else ""


def session_sql(
    facts: SessionFacts, policy: SessionPolicy, *, keep_transaction: bool = False
) -> str:
    """See `_session_sql`; every read sends one, so the text is built once per policy."""
    return _session_sql(
        facts.flavour, facts.read_only_variable, facts.time_zone, policy, keep_transaction
    )


@functools.lru_cache(maxsize=64)
def _session_sql(
    flavour: str,
    read_only_variable: str,
    time_zone: str,
    policy: SessionPolicy,
    keep_transaction: bool = False,
) -> str:
    """One SET that puts a session in the state the policy asks for (one round trip).

    It also pins the character set, `autocommit` and `sql_mode` and releases every named
    lock the connection holds (a view's body may have taken one with GET_LOCK), so nothing a
    previous statement or a connection reset left behind survives into the next checkout.
    `autocommit`: a driver call (`autocommit(False)`, a refused isolation level) would
    otherwise leave every later read holding a transaction open (metadata locks that block
    the production's DDL, a read view that stops purge); the character set: the guard reads
    literals as utf8mb4, and a GBK or SJIS client could end a character in a backslash.
    `autocommit = 0` first: setting it to 1 only ends a transaction when it was 0, and a
    driver's `begin()` (PyMySQL sends BEGIN past the raw guard) opens one with it at 1; the
    switch ends it, so no read inherits its snapshot or metadata locks. `keep_transaction`:
    inside `Source.consistent`'s snapshot (`snapshot.py`) the switch would commit the
    snapshot, so only `autocommit = 1` is set (a function that set it to 0 still ends it)."""
    parts = [
        _timeout_assignment(flavour, policy.timeout),
        f"sql_select_limit = {int(policy.select_limit)}",
        f"sql_mode = '{SQL_MODE}'",
        "@hybridwb_released = RELEASE_ALL_LOCKS()",
        # server code's `completion_type = CHAIN` made the client's next COMMIT (SQLAlchemy's
        # `conn.commit()`, jupysql's after every cell) open a transaction that held the
        # metadata locks of every later read, blocking the production's DDL
        "completion_type = 0",
        # a function's `SET net_write_timeout = 1` is applied to the server's socket when
        # set; COM_RESET_CONNECTION puts the variable back, not the socket's timeout, and a
        # later large read that paused a second lost its connection. Setting it (to the
        # global value) applies it to the socket again
        "net_write_timeout = DEFAULT",
    ]
    if zone := pinned_time_zone(time_zone):
        parts.append(zone)
    if policy.read_only:
        parts.insert(0, f"{read_only_variable} = 1")
    switch = "" if keep_transaction else "SESSION autocommit = 0, "
    return f"SET NAMES {NAMES}, {switch}SESSION autocommit = 1, " + ", ".join(parts)


#: what a session is, as the server sees it: one fixed statement per flavour
FACTS_SQL = {
    "MariaDB": "SELECT @@session.tx_read_only, @@session.max_statement_time",
    "MySQL": "SELECT @@session.transaction_read_only, @@session.max_execution_time",
}
#: the read-back after server code may have run; the same round trip releases named locks
READ_BACK_SQL = {
    flavour: sql
    + ", @@session.sql_select_limit, @@session.sql_mode, @@session.character_set_client,"
    " @@session.character_set_connection, @@session.completion_type, RELEASE_ALL_LOCKS()"
    for flavour, sql in FACTS_SQL.items()
}
#: the values `READ_BACK_SQL` selects
READ_BACK_COLUMNS = 8


def read_session(dbapi_conn: Any, facts: SessionFacts) -> tuple[int, float, int, str, str, str]:
    """(read only, time limit in seconds, select limit, sql_mode, "client,connection"
    character sets, completion_type) as the server sees them now. The same round trip
    releases the named locks the connection holds (server code run by the statement, e.g.
    in a view, may have taken one). A reply out of step (an OK, or another statement's row,
    read as this one's: a reply owed from before) closes the connection and raises
    `ConnectionFailed`: every later reply on it would be one late."""
    with rawguard.internal(dbapi_conn):
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(READ_BACK_SQL[facts.flavour])
            row = cursor.fetchone()
        finally:
            cursor.close()
    if row is None or len(row) != READ_BACK_COLUMNS:
        drivers.owed_reply(dbapi_conn)
        raise ConnectionFailed(
            "The source's reply to the session check was out of step; the connection was "
            "dropped. Run the query again."
        )
    ro, limit, rows, mode, client, connection, completion, _released = row
    seconds = float(limit) if facts.flavour == "MariaDB" else float(limit) / 1000
    return (
        int(ro),
        seconds,
        int(rows),
        str(mode or ""),
        f"{client},{connection}".lower(),
        str(completion or "").upper(),
    )


def session_matches(
    facts: SessionFacts, policy: SessionPolicy, seen: tuple[int, float, int, str, str, str]
) -> bool:
    read_only, seconds, rows, mode, names, completion = seen
    return (
        (read_only == 1 or not policy.read_only)
        and seconds > 0
        and math.isclose(seconds, policy.timeout, rel_tol=1e-3, abs_tol=1e-3)
        and rows == policy.select_limit
        and set(mode.upper().split(",")) == set(SQL_MODE.split(","))
        and names == f"{NAMES},{NAMES}"
        and completion == "NO_CHAIN"
    )


def apply_session(
    dbapi_conn: Any, facts: SessionFacts, policy: SessionPolicy, *, keep_transaction: bool = False
) -> None:
    """Set the session to `policy` and wait for the server's OK (a driver error raises).
    The SET is written as one packet and its OK read with no cursor (`drivers.run_own`);
    a connection in no state for that (a streamed result still open) takes the cursor.
    `keep_transaction`: inside a snapshot (`_session_sql`)."""
    run_internal(dbapi_conn, session_sql(facts, policy, keep_transaction=keep_transaction))


def run_internal(dbapi_conn: Any, sql: str) -> None:
    """One of hybridwb's own statements that answers OK (a SET), waited for: written as one
    packet with its OK read with no cursor (`drivers.run_own`), or on a cursor when the
    connection is in no state for that (a streamed result still open)."""
    with rawguard.internal(dbapi_conn):
        if drivers.run_own(dbapi_conn, sql):
            return
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()


def verify_session(dbapi_conn: Any, facts: SessionFacts, policy: SessionPolicy) -> None:
    """Read the session back; when server code changed it, restore it and refuse.

    Raises `ReadOnlyViolation` after restoring; a session that cannot be restored raises
    the driver error, and the caller drops the connection."""
    seen = read_session(dbapi_conn, facts)
    if session_matches(facts, policy, seen):
        return
    apply_session(dbapi_conn, facts, policy)
    if not session_matches(facts, policy, read_session(dbapi_conn, facts)):
        raise ReadOnlyViolation(
            "The session could not be put back to READ ONLY; the connection was dropped.",
            restored=False,
        )
    raise ReadOnlyViolation(
        "Server code changed the read-only session (READ ONLY, the time limit, sql_mode or "
        "the character set); "
        "the session was restored and the result discarded. Ask a DBA to review the "
        "function, or remove it from allowed_functions.",
        restored=True,
    )


#: the policy the next checkout on this thread (or task) sets instead of the engine's: a
#: query's lower time limit or its cap, so one SET on checkout serves both (see `checkout_as`)
_CHECKOUT_POLICY: ContextVar[SessionPolicy | None] = ContextVar("hybridwb_checkout", default=None)
#: where a pooled connection's record keeps the policy its session was last set to
SESSION_KEY = "hybridwb_session"


class SessionOwed(NamedTuple):
    """SESSION_KEY's value on a pinned connection after a read of a table: the name may be
    a view by now (the list of views is seconds old), whose code may have changed the
    session; the next statement on it sets the session first, or carries what it must hold
    itself (`statement_prefix`) when it wants the policy the session was set to (`policy`)
    and nothing reads the session back after it."""

    policy: Any


def owe_session(info: dict[str, Any]) -> None:
    """Mark a pinned connection's record `SessionOwed`, keeping the policy it was set to."""
    set_to = info.get(SESSION_KEY)
    if not isinstance(set_to, SessionOwed):
        info[SESSION_KEY] = SessionOwed(set_to)


#: the policy of the session SET sent at checkin whose reply the next checkout reads
PENDING_KEY = "hybridwb_pending_set"
#: set on a connection checked in without the reset being sent (`send_next_session`)
UNRESET_KEY = "hybridwb_unreset"


def reset_session(dbapi_conn: Any, facts: SessionFacts, policy: SessionPolicy) -> None:
    """COM_RESET_CONNECTION, then the session SET, waiting for both: one round trip on
    PyMySQL (both in one write), the reset and then the SET on mysqlclient. After a
    statement that may have run server code on a connection that stays checked out
    (`Source`'s pinned reads after a view, `wb.source.engine` in jupysql). A connection
    that cannot be reset raises `DisconnectionError`; a failed SET raises the driver's
    error (the caller drops the connection either way)."""
    try:
        with rawguard.internal(dbapi_conn):
            if drivers.send_only(dbapi_conn, session_sql(facts, policy), reset=True):
                drivers.read_reply(dbapi_conn, reset=True)
                rawguard.session_set(dbapi_conn)
                return
    except drivers.ResetFailed as exc:
        raise DisconnectionError("the source connection could not be reset") from exc
    except Exception:
        raise
    except BaseException:  # interrupted between the write and the read: replies owed
        drivers.owed_reply(dbapi_conn)
        raise
    reset_now(dbapi_conn)  # nothing was sent (a result still open): one by one
    apply_session(dbapi_conn, facts, policy)
    rawguard.session_set(dbapi_conn)


def reset_now(dbapi_conn: Any) -> None:
    """COM_RESET_CONNECTION, waiting for the OK; a connection that cannot be reset (a
    streamed result still open, a server that refuses it) raises `DisconnectionError`, and
    the pool replaces it. The caller sets the session after it (the reset put every
    session variable back to the server's defaults)."""
    try:
        with rawguard.internal(dbapi_conn):
            if isinstance(dbapi_conn, drivers.pymysql.connections.Connection):
                dbapi_conn._execute_command(drivers.COM_RESET_CONNECTION, b"")
                dbapi_conn._read_ok_packet()
                drivers.restore_role(dbapi_conn)
            else:
                drivers.reset_native(dbapi_conn)
    except Exception as exc:
        raise DisconnectionError("the source connection could not be reset") from exc
    except BaseException:  # interrupted between the write and the read: a reply owed
        drivers.owed_reply(dbapi_conn)
        raise


@contextmanager
def checkout_as(policy: SessionPolicy) -> Iterator[None]:
    """Checkouts inside the block set the session to `policy` (never looser than the
    engine's: see `stricter_or_default`) in the same SET that every checkout sends."""
    token = _CHECKOUT_POLICY.set(policy)
    try:
        yield
    finally:
        _CHECKOUT_POLICY.reset(token)


def checkout_policy(default: SessionPolicy) -> SessionPolicy:
    """The policy a checkout sets: the one `checkout_as` asked for on this thread (or task),
    when `stricter_or_default` allows it; else the engine's."""
    return stricter_or_default(default, _CHECKOUT_POLICY.get())


def stricter_or_default(default: SessionPolicy, wanted: SessionPolicy | None) -> SessionPolicy:
    """`wanted` when it keeps READ ONLY and the time limit at most the engine's; else the
    engine's own policy."""
    if wanted is None or wanted.read_only != default.read_only:
        return default
    if not 0 < wanted.timeout <= default.timeout:
        return default
    if wanted.allowed_functions != default.allowed_functions:
        return default
    return wanted


def _read_pending(dbapi_conn: Any) -> bool:
    """Read the replies to the reset and the session SET sent when the connection was
    checked in: True when both succeeded. A connection that is gone, or one the server
    would not reset, raises (the pool replaces it)."""
    failed: BaseException | None = None
    try:
        drivers.read_reply(dbapi_conn, reset=True)
    except drivers.ResetFailed as exc:
        raise DisconnectionError("the source connection could not be reset") from exc
    except drivers.errors() as exc:
        failed = exc
    if failed is None:
        return True
    if is_gone(failed):
        raise failed
    return False


def send_next_session(
    dbapi_conn: Any, info: dict[str, Any], facts: SessionFacts, policy: SessionPolicy
) -> None:
    """At checkin: COM_RESET_CONNECTION and the session SET for the next checkout leave
    now, without waiting for the replies: the server clears the session (temporary tables,
    user variables, every session variable, named locks) and sets it again as soon as the
    connection is back, and the next checkout only reads the OKs already there.

    The reset is what no SET can do: a view's function (the view may be a table the list
    of views, seconds old, does not know yet) can create a temporary table that shadows a
    base table of the same name for every later read on the connection, or leave session
    state no SET names. A connection not reset here is reset by its next checkout, waiting,
    or replaced (`UNRESET_KEY`)."""
    info.pop(PENDING_KEY, None)
    info.pop(SESSION_KEY, None)
    if dbapi_conn is None:
        return  # invalidated: the pool opens a new connection (the connect event sets it)
    info[UNRESET_KEY] = True
    try:
        with rawguard.internal(dbapi_conn):
            sent = drivers.send_only(dbapi_conn, session_sql(facts, policy), reset=True)
        if sent:
            info[PENDING_KEY] = policy
            del info[UNRESET_KEY]
    except Exception:  # the checkout then resets and sets the session itself, waiting
        return


def reassert_session(
    dbapi_conn: Any,
    info: dict[str, Any],
    facts: SessionFacts,
    wanted: SessionPolicy,
    ctx: catalogue.Context,
    secrets: Secrets = tuple,
) -> None:
    """At checkout: read the reply of the SET `send_next_session` sent, or set the session
    now (waiting) when that SET failed, was not sent, or `wanted` is another policy.
    A connection that is gone raises `DisconnectionError` (the pool replaces it)."""
    pending = info.pop(PENDING_KEY, None)
    failed: BaseException | None = None
    try:
        if info.pop(UNRESET_KEY, False):
            reset_now(dbapi_conn)  # the checkin sent no reset: done now, or replaced
        if pending is not None and not _read_pending(dbapi_conn):
            pending = None  # the SET sent at checkin failed: set the session now
        if pending is not None and not drivers.quiet(dbapi_conn):
            # closed (or spoken to) while idle in the pool: a killed or timed-out
            # connection; the pool replaces it
            raise DisconnectionError("source connection was closed")
        if pending is not wanted and pending != wanted:  # (usually the one policy object)
            apply_session(dbapi_conn, facts, wanted)
        info[SESSION_KEY] = wanted
        rawguard.session_set(dbapi_conn)  # READ ONLY just set: nothing owed
    except drivers.errors() as exc:
        failed = exc
    if failed is None:
        return
    if is_gone(failed):
        # the pool replaces a dead connection when it sees this
        raise DisconnectionError("source connection was closed")
    raise driver_error(failed, ctx, secrets)


def escape_as_read(record: Any, facts: SessionFacts, policy: SessionPolicy) -> None:
    """Before the driver escapes values: when it would escape them for NO_BACKSLASH_ESCAPES
    (a status flag server code left on the server, `drivers.escapes_as_read`), the session
    is set again; its `SET sql_mode` clears the flag. Otherwise nothing (no round trip)."""
    raw = record.dbapi_connection
    if drivers.escapes_as_read(raw):
        return
    failed = False
    try:
        apply_session(raw, facts, policy)
    except drivers.errors():
        failed = True
    if failed or not drivers.escapes_as_read(raw):
        record.invalidate()
        raise ReadOnlyViolation(
            "Refused: the driver would escape values in a way the server reads differently "
            "(server code left NO_BACKSLASH_ESCAPES on the connection, which was dropped); "
            "run the query again."
        )
    record.info[SESSION_KEY] = policy


def install_session_check(engine: Engine, facts: SessionFacts, policy: SessionPolicy) -> None:
    """After every statement on the engine, the session must still be what the policy says.

    `Source` runs its own (unbuffered) statements on the driver's cursor, outside these
    events, and checks them itself once the rows are read. An unbuffered cursor on the
    engine (`stream_results=True`) is refused before it runs: its session could not be
    read back until the caller had read every row."""

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_streaming(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if drivers.is_unbuffered(cursor):
            raise ReadOnlyViolation(
                "stream_results is not offered on wb.engine (its session could not be read "
                "back after the statement); use wb.sql, which streams and caps on the server."
            )

    @event.listens_for(engine, "after_cursor_execute")
    def _check_session(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        dbapi_conn = conn.connection.dbapi_connection
        # a view's code may have run SET TRANSACTION READ WRITE, which no read-back sees
        rawguard.mark_reassert(dbapi_conn)
        refused: ReadOnlyViolation | None = None
        try:
            verify_session(dbapi_conn, facts, policy)
        except ReadOnlyViolation as exc:
            refused = exc
        except drivers.errors(ConnectionFailed):  # (a reply out of step: closed)
            refused = ReadOnlyViolation(
                "The session could not be checked after the statement; the connection "
                "was dropped. Run the query again."
            )
        if refused is None or refused.fields.get("restored"):
            # what a view's code left that no read-back sees (a temporary table named like
            # a base table, other session state) is cleared before the next statement on a
            # connection that stays checked out (jupysql keeps one for the whole notebook)
            try:
                reset_session(dbapi_conn, facts, policy)
            except drivers.errors(DisconnectionError):
                refused = ReadOnlyViolation(
                    "The connection could not be reset after the statement; it was dropped. "
                    "Run the query again."
                )
        if refused is None:
            return
        if not refused.fields.get("restored"):
            conn.invalidate()
        raise refused.detached()
