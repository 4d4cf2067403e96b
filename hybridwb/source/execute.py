"""Running one approved statement on MySQL/MariaDB: exact text, server-side cap, checked session.

`run_mysql` is the only place `Source` sends a user statement to MySQL. The text handed to
SQLAlchemy is the approved text with binds as `%(name)s`; the engine's final-text guard
(finaltext.py) pastes the values in with the driver's own escaping, checks that text, and sends
exactly it. Nothing here regenerates SQL.

The row cap holds on the server: the session's `sql_select_limit` is the cap + 1 (it caps every
SELECT without a LIMIT), and the rows are read from an unbuffered cursor that stops at cap + 1.
When an explicit LIMIT lets the server send more, the statement is ended with `KILL QUERY`
from a side connection and what was already in flight is discarded row by row, so neither the
server nor the client ever produces or holds the whole result.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import pymysql
from sqlalchemy import Connection, Engine
from sqlglot.tokens import TokenType

from hybridwb.errors import ConnectionFailed, QueryError, ReadOnlyViolation
from hybridwb.source import arrow, drivers, plainviews, rawguard
from hybridwb.source.finaltext import guard_final_text
from hybridwb.source.session import (
    SESSION_KEY,
    SessionFacts,
    SessionOwed,
    SessionPolicy,
    apply_session,
    checkout_as,
    escape_as_read,
    reset_session,
    run_internal,
    statement_prefix,
    verify_session,
)
from hybridwb.source.snapshot import (
    VIEW_FIX,
    SnapshotLost,
    SnapshotRefused,
    in_snapshot,
    refused_message,
)
from hybridwb.validation import short

#: rows discarded after KILL QUERY before the connection is dropped instead
MAX_DRAIN_ROWS = 1_000_000
_INTERRUPTED = frozenset({1317, 1969, 3024})
_GONE = frozenset({2006, 2013, 2014, 2045, 2055, 4031})


class Outcome(NamedTuple):
    """What one statement brought back (a tuple: made once per statement, cheaply)."""

    keys: list[str]
    rows: list[Any]
    truncated: bool
    ended_early: bool  # the server was told to stop sending
    #: the cursor description, when the values were left as the server's text
    described: tuple[Any, ...] | None = None
    #: the cursor's description as the driver made it (each column's PEP 249 `type_code`
    #: is read from it only when asked: `Source.column_types`)
    columns: Any = ()


def run_mysql(
    engine: Engine,
    side: Engine,
    facts: SessionFacts,
    default: SessionPolicy,
    policy: SessionPolicy,
    prepared: Any,
    params: dict[str, Any],
    cap: int,
    *,
    use_guard: bool,
    reads_view: bool = False,
    pinned: Connection | None = None,
    raw_values: bool = False,
    batches: bool = False,
    as_of: float | None = None,
) -> Outcome:
    """Execute on one pooled connection; the caller translates driver errors.

    `reads_view`: the statement names a view, whose body may run server code. `pinned`: a
    connection already checked out (and its session set) for several statements in a row
    (`Source.one_connection`); the connection's record says which policy its session was
    last set to, so a statement's own lower limit or cap is set before it and the default
    is set again before the next statement that wants it. `raw_values`: on mysqlclient,
    leave numbers and dates as the server's text (for Arrow); only this statement's result
    is read so, and the connection's converters are put back before anything else runs.
    `batches`: such a result is turned into Arrow arrays chunk by chunk as it is read
    (`arrow.fetch_batches`); the Outcome's rows are then one `arrow.Batches`. `as_of`:
    the server's clock the statement sees (epoch seconds; `clock_sql`)."""
    job = Job(
        facts,
        default,
        policy,
        prepared,
        params,
        cap,
        use_guard,
        reads_view,
        raw_values,
        batches,
        clock_sql(facts, as_of),
    )
    if pinned is not None and not pinned.invalidated:
        return _run_checked_out(side, pinned, job)
    with checkout_as(policy), engine.connect() as conn:
        return _run_checked_out(side, conn, job)


class Job(NamedTuple):
    """One statement to run and how (the arguments of `run_mysql` but the connections);
    a tuple, made once per statement without a frozen dataclass's per-field setattr."""

    facts: SessionFacts
    default: SessionPolicy
    policy: SessionPolicy
    prepared: Any
    params: dict[str, Any]
    cap: int
    use_guard: bool
    reads_view: bool
    raw_values: bool
    batches: bool
    #: `timestamp = <epoch>`, what the statement's SET STATEMENT adds ("": the server's clock)
    clock: str = ""

    def session_clock(self) -> bool:
        """Whether the clock is the session's, set before and put back after (MySQL: no
        SET STATEMENT), not the statement's own (`with_clock`)."""
        return bool(self.clock) and self.facts.flavour not in STATEMENT_CLOCK

    def server_code(self) -> bool:
        """Whether the statement may have run server code (`may_run_server_code`)."""
        return self.reads_view or may_run_server_code(self.prepared, self.policy, self.use_guard)


def _run_checked_out(side: Engine, conn: Connection, job: Job) -> Outcome:
    raw = conn.connection.dbapi_connection
    try:
        if not job.session_clock():
            return _run_on(side, conn, raw, job)
        _set_clock(raw, job.clock)
        try:
            return _run_on(side, conn, raw, job)
        finally:
            _clock_back(conn, raw)
    except drivers.errors() as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if isinstance(exc, drivers.interface_errors()) or code in _GONE:
            conn.invalidate()
        elif not conn.invalidated and in_snapshot(conn.connection.info):
            # judged as a finished statement is (the list behind `server_code` may be
            # older than a view): a plain read keeps the snapshot, code fails the block
            if refused := _refusal_after_error(conn, raw, job):
                conn.invalidate()  # the code ran before the error: its session goes too
                raise SnapshotRefused(refused_message(*_fixed(refused))) from None
            if _transaction_ended(conn, raw):
                # the server rolled the snapshot back (a metadata-lock deadlock with DDL):
                # the block's later reads would be autocommit reads of a later moment
                conn.invalidate()
                raise SnapshotLost(
                    "The server ended the snapshot's transaction after an error; the block "
                    "is read again in a new one."
                ) from None
        elif job.server_code():
            # server code may have changed the session before the statement failed; the
            # connection is dropped rather than trusted (a pinned one is replaced)
            conn.invalidate()
        raise


def _run_on(side: Engine, conn: Connection, raw: Any, job: Job) -> Outcome:
    policy, prepared, cap = job.policy, job.prepared, job.cap
    set_to = conn.connection.info.get(SESSION_KEY)
    prefix = ""
    if set_to is not policy and set_to != policy:  # (usually the one policy object)
        if (
            isinstance(set_to, SessionOwed)
            and set_to.policy == policy  # a read-back after it compares against `policy`
            and job.use_guard
            and prepared.checked.tokens
            and not job.server_code()  # read back after it: the session set first
        ):
            # a pinned connection after a read of a table: the statement carries READ ONLY,
            # the time limit and the cap itself, no SET waited for (MariaDB, a SELECT)
            prefix = statement_prefix(job.facts, policy, prepared.checked.tokens[0].text)
        if not prefix:  # the checkout could not set this policy (in a snapshot: kept open)
            keep = in_snapshot(conn.connection.info)
            apply_session(raw, job.facts, policy, keep_transaction=keep)
            conn.connection.info[SESSION_KEY] = policy
    if job.clock and not job.session_clock():  # hybridwb's own text, as the prefix is
        prefix = with_clock(prefix, job.clock)
    escape_as_read(conn.connection, job.facts, policy)  # (a flag's test: no round trip)
    cursor = drivers.unbuffered_cursor(raw)
    final = ""
    if job.use_guard:
        # the exact text the driver would send, guarded here, then sent with no parameters
        final = cursor.mogrify(prepared.driver_text, job.params)
        approved = prepared if prepared.checked.tokens else None
        guard_final_text(final, policy, approved=approved, params=job.params, whole_result=False)
    if job.raw_values:
        with drivers.raw_text_values(raw, True) as described_here:
            keys, rows, fetched = _send(raw, cursor, job, prefix + final, described_here)
    else:  # the common case: no converters to swap, so no context manager around it
        described_here = False
        keys, rows, fetched = _send(raw, cursor, job, prefix + final, False)
    described = tuple(cursor.description) if described_here and keys else None
    columns = cursor.description or ()
    ended = False
    if fetched > cap and _still_streaming(cursor) and cursor.fetchone() is not None:
        # more than cap + 1 rows are coming (an explicit LIMIT overrides sql_select_limit)
        ended = _end_statement(side, conn, raw, cursor)
    if conn.invalidated:
        return Outcome(keys, rows, fetched > cap, ended, described, columns)
    if ended:
        _close_ended(conn, cursor)
    else:
        cursor.close()
    server_code = job.server_code()
    refused = ""
    if in_snapshot(conn.connection.info):
        # the reset would end the snapshot: not needed when nothing but tables and plain
        # views ran; anything else is reset as always, and the block fails (`plainviews`)
        refused = _snapshot_refusal(conn, raw, job)
        server_code = bool(refused)
    if policy.read_only and (ended or server_code):
        try:
            _verify(conn, raw, job.facts, policy)  # also releases named locks
        finally:
            if server_code and not conn.invalidated:
                _reset(conn, raw, job.facts, policy)
    if refused:
        raise SnapshotRefused(refused_message(*_fixed(refused)))
    return Outcome(keys, rows, fetched > cap, ended, described, columns)


def _fixed(why: str) -> tuple[str, str] | tuple[str, str, str]:
    """(why, what to do[, why the reads stopped]) for `refused_message`."""
    if plainviews.SEQUENCE_WHY in why:
        return why, "read the sequence outside the block", "the reads stopped"
    if why == _GUARD_OFF:
        return why, "read with the guard on (use_guard=True)"
    if why == _SHOW:
        return why, "run it outside the block"
    if why == _ALLOWED_FUNCTION:
        return why, "read the function's values outside the run, or map a table holding them"
    if plainviews.NO_SHOW_VIEW in why:
        return why, "grant the account SHOW VIEW on the schema, or map the view's base tables"
    return why, VIEW_FIX


_GUARD_OFF = "with the guard off (use_guard=False) any statement may run server code"
_SHOW = "a SHOW statement may read a view"
_ALLOWED_FUNCTION = "the statement calls an allowlisted stored function"


def _snapshot_refusal(conn: Connection, raw: Any, job: Job, failed: bool = False) -> str:
    """Inside a snapshot: why the statement may have run code that changes the session
    ("" when it ran none, or only plain views: `plainviews.refusal`; `failed`: the
    statement failed). A lookup that fails drops the connection (its session is then gone
    with the code's changes)."""
    if not job.use_guard:
        return _GUARD_OFF
    if job.prepared.checked.kind == "show":
        return _SHOW
    if may_run_server_code(job.prepared, job.policy, job.use_guard):
        return _ALLOWED_FUNCTION
    names = plainviews.names_read(job.prepared)
    if not names:
        return ""
    try:
        return plainviews.refusal(conn, raw, names, failed=failed)
    except BaseException:
        conn.invalidate()
        raise


def _refusal_after_error(conn: Connection, raw: Any, job: Job) -> str:
    """Inside a snapshot, a statement that failed is read as one that ran
    (`_snapshot_refusal`): its views' code may have run before the error (round 62: a
    table replaced by a view since the list was read left its GET_LOCK held for the block's
    later reads). A lookup that fails counts as code that ran."""
    try:
        return _snapshot_refusal(conn, raw, job, failed=True)
    except Exception:
        return "what the statement read could not be looked up after its error"


def _transaction_ended(conn: Connection, raw: Any) -> bool:
    """Inside a snapshot, after a failed statement: whether the server ended the block's
    transaction (round 62: a deadlock on a metadata lock, root's RENAME waiting for the
    block's lock while holding the one its next read needed, rolled it back, and the block
    read on in autocommit). A check that fails counts as ended."""
    try:
        with rawguard.internal(raw):
            cursor = raw.cursor()
            try:
                cursor.execute("SELECT @@in_transaction")
                row = cursor.fetchone()
            finally:
                cursor.close()
    except Exception:
        return True
    return not row or not int(row[0])


def _send(
    raw: Any, cursor: Any, job: Job, final: str, described_here: bool
) -> tuple[list[str], Any, int]:
    """Send the statement (`final`, the guarded text, when the guard is on; else the
    prepared text after `final`, the clock's prefix or "") and read at most
    cap + 1 rows: (column names, at most cap rows, how many rows were read)."""
    cap = job.cap
    if job.use_guard:
        rawguard.approve(raw, final)  # the driver's query() lets exactly this text pass
        cursor.execute(final)
    else:
        # nothing guarded, so no prefix: `final` is the clock's SET STATEMENT or ""
        cursor.execute(final + job.prepared.driver_text, job.params)
    description = cursor.description
    keys = [str(d[0]) for d in description] if description else []
    rows: Any
    if keys and described_here and job.batches:
        rows, fetched = arrow.fetch_batches(cursor, cap + 1, cap)
    else:
        rows = list(cursor.fetchmany(cap + 1)) if keys else []
        fetched = len(rows)
        if fetched > cap:
            rows = rows[:cap]
    return keys, rows, fetched


#: the servers whose statement carries its own clock (`SET STATEMENT timestamp = ... FOR`);
#: on the others (MySQL) the session's is set before the statement and put back after
STATEMENT_CLOCK = frozenset({"MariaDB"})


def clock_sql(facts: SessionFacts, as_of: float | None) -> str:
    """The assignment that makes a statement see the server's clock as of `as_of` (epoch
    seconds): `timestamp` fixes NOW(), CURDATE(), CURRENT_TIMESTAMP, UNIX_TIMESTAMP() ...
    for the statement, in a view's body and a stored function too (not SYSDATE(), which a
    run's saved query may not call: `targets.determinism`). "" for None."""
    if as_of is None:
        return ""
    check_as_of(as_of)
    return f"timestamp = {float(as_of):.6f}"


def check_as_of(as_of: Any) -> None:
    """Refuses an `as_of` that is not epoch seconds the server's `timestamp` takes, on every
    source (round 51: SQLite took "now" or NaN without a word), and one under a second,
    which prints as `timestamp = 0.000000`: MariaDB's "the clock again", not a pin."""
    if as_of is None:
        return
    if isinstance(as_of, bool) or not isinstance(as_of, int | float) or not 1 <= as_of < 2**31:
        raise QueryError(f"as_of must be epoch seconds of the server's clock, not {short(as_of)}.")


def _set_clock(raw: Any, assignment: str) -> None:
    """`SET SESSION <assignment>` on the connection, waited for (MySQL's as-of read)."""
    run_internal(raw, f"SET SESSION {assignment}")


def _clock_back(conn: Connection, raw: Any) -> None:
    """The session's clock back to the server's after an as-of read; a connection where
    that fails is dropped (its next statement would read a clock that stands still)."""
    if conn.invalidated:
        return
    try:
        _set_clock(raw, "timestamp = DEFAULT")
    except Exception:
        conn.invalidate()


def with_clock(prefix: str, clock: str) -> str:
    """`prefix` (a `statement_prefix`, or "") with the clock's assignment in its SET STATEMENT."""
    head = "SET STATEMENT "
    if prefix.startswith(head):
        return f"{head}{clock}, {prefix[len(head) :]}"
    return f"{head}{clock} FOR {prefix}"


def may_run_server_code(prepared: Any, policy: SessionPolicy, use_guard: bool) -> bool:
    """Whether the statement can call code that changes the session: an allowlisted stored
    function, or anything at all when the guard is off (nothing vetted the text).

    Statements that name a view are read back too (`reads_view`, decided by `Source`).
    Other statements are not read back: the connection goes straight back to the pool and
    the next checkout sets the session again (and releases named locks) before anything
    runs on it."""
    if not use_guard:
        return True
    if not policy.allowed_functions:
        return False
    # compared by the function's own name, as the guard admits it (`db.fn`, ` fn`, `fn`):
    # reading back after a namesake in another schema costs one round trip, missing one
    # would leave a session server code changed
    allowed = {_function_name(name) for name in policy.allowed_functions}
    tokens = prepared.checked.tokens
    return any(
        _function_name(tok.text) in allowed and nxt.token_type == TokenType.L_PAREN
        for tok, nxt in itertools.pairwise(tokens)
    )


def _function_name(name: str) -> str:
    """The last part of a (possibly qualified, quoted or padded) function name, upper-case."""
    return name.strip().rsplit(".", 1)[-1].strip().strip("`").strip().upper()


def _reset(conn: Connection, raw: Any, facts: SessionFacts, policy: SessionPolicy) -> None:
    """Clear what server code may have left on the session that no SET can name (user
    variables, temporary tables): COM_RESET_CONNECTION (`reset_session`: PyMySQL's
    command, in one write with the SET, or the C library's call on mysqlclient), then the
    session SET again (with the character
    set and autocommit, which the reset puts back to the server's defaults). When the
    reset or the SET fails, the connection is dropped instead, which clears the same
    state."""
    try:
        reset_session(raw, facts, policy)
    except Exception:
        conn.invalidate()


def _still_streaming(cursor: Any) -> bool:
    """Whether an unbuffered result may still have rows (PyMySQL knows; mysqlclient's
    cursor does not say, so the caller reads one more row to find out)."""
    if not isinstance(cursor, pymysql.cursors.SSCursor):
        return True
    result = getattr(cursor, "_result", None)
    return bool(result is not None and result.unbuffered_active)


def _end_statement(side_engine: Engine, conn: Connection, raw: Any, cursor: Any) -> bool:
    """Stop the server sending more rows; drop the connection when that cannot be done."""
    try:
        thread_id = raw.thread_id()
        side = side_engine.raw_connection()
        try:
            side_cursor = side.cursor()
            side_cursor.execute("KILL QUERY %s", (thread_id,))
            side_cursor.close()
        finally:
            side.close()
        drained = 0
        while cursor.fetchone() is not None:  # rows already in flight, discarded one by one
            drained += 1
            if drained > MAX_DRAIN_ROWS:
                conn.invalidate()
                return True
    except drivers.operational_errors() as exc:
        if not (exc.args and exc.args[0] in _INTERRUPTED):
            conn.invalidate()
    except Exception:  # whatever went wrong, this connection must not be reused mid-stream
        conn.invalidate()
    return True


def _close_ended(conn: Connection, cursor: Any) -> None:
    """Close the cursor of a statement ended by KILL QUERY. mysqlclient raises the
    interruption again on close (PyMySQL does not); any other error drops the connection."""
    try:
        cursor.close()
    except drivers.operational_errors() as exc:
        if not (exc.args and exc.args[0] in _INTERRUPTED):
            conn.invalidate()


def _verify(conn: Connection, raw: Any, facts: SessionFacts, policy: SessionPolicy) -> None:
    """The session after the statement must be what it was set to; else restore or drop."""
    for attempt in (1, 2):
        try:
            verify_session(raw, facts, policy)
            return
        except ReadOnlyViolation as exc:
            if not exc.fields.get("restored"):
                conn.invalidate()
            raise
        except ConnectionFailed:  # a reply out of step: `read_session` closed it
            conn.invalidate()
            raise
        except drivers.operational_errors() as exc:
            # a KILL QUERY that arrived after the statement ended may hit this read
            if attempt == 1 and exc.args and exc.args[0] in _INTERRUPTED:
                continue
            conn.invalidate()
            raise ReadOnlyViolation(
                "The session could not be checked after the statement; the connection was "
                "dropped. Run the query again."
            ) from None
