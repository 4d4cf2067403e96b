"""Layer one on the DB-API connection itself, for callers that never pass through SQLAlchemy.

The engine's guard is a SQLAlchemy statement event; `wb.engine.raw_connection()` (and
`conn.connection.dbapi_connection`, jupysql given a DB-API connection, `pd.read_sql(sql,
raw)`) hand out the driver's connection, whose cursors send text with no event at all. So
the pooled connections of the source engine are instances of a subclass of the driver's
own class (PyMySQL or mysqlclient; `do_connect` makes them, connect.py), whose low-level
`query()` is the last place any statement text passes:

* **Approved texts pass at the cost of one comparison.** The statement-level guard (the
  engine's event, `Source`'s execute path) marks the exact text it approved on the
  connection (`approve`) right before the driver sends it; `query()` compares and lets it go.
* **hybridwb's own statements** (the session SET, its read-back) run inside `internal(raw)`.
* **Everything else is guarded here** (`VERDICTS.check`: the full guard, its admissions
  cached by text), and the connection is marked: before the next statement of any kind the
  session is reset and set again (COM_RESET_CONNECTION, the login's role, then READ ONLY,
  time limit, cap, sql_mode, named locks released), since no read-back ran after the
  unvetted statement (a view it read may have changed the session, or left a temporary
  table or a role that no SET clears: round 52).
* **`SET TRANSACTION READ WRITE` left by server code** (a function a view calls) makes every
  later transaction on the connection writable while `@@tx_read_only` still reads 1: no
  read-back can see it. After a statement that may have run server code (`mark_reassert`),
  the next statement on the same connection is preceded by `SET SESSION tx_read_only = 1`,
  which clears it; a checkout clears the marks (its SET does the same).

Calls that change the connection behind the guard's back are refused: another character set
(the guard reads text as utf8mb4), a collation that is not a bare name (PyMySQL pastes it into
`SET NAMES ... COLLATE` past `query()`), another default database, `kill`, `shutdown`,
`change_user`, `set_server_option`, `dump_debug_info`.
A statement PyMySQL sends goes out as UTF-8 whatever its public `encoding` attribute was
set to by hand (utf-7 or GBK bytes end a literal the guard read elsewhere on the server).
A PyMySQL reconnect (`ping(True)`) opens a fresh, writable session: it is marked, so the
next statement sets it first; it must log in as the first login did (host, port, user,
database, client capabilities), not as attributes set by hand.
mysqlclient's `ping(True)` is refused: it makes every later statement on a dropped connection
reconnect inside the C library, on a fresh session no Python code sees.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

import pymysql

from hybridwb.errors import HybridwbError, ReadOnlyViolation
from hybridwb.source import drivers
from hybridwb.source.described import DescribedResult, FastPackets
from hybridwb.source.verdicts import VERDICTS

#: character sets the guard's reading of literals is right for
_CHARSETS = frozenset({"utf8mb4", "utf8", "utf8mb3"})
#: SQLAlchemy's MySQL dialects send `SET NAMES <the driver's charset>` on every new
#: connection (after hybridwb's login): the same character set the session SET pins, so it
#: changes nothing (another charset, never sent here, is refused by the guard)
_SAME_NAMES = re.compile(r"SET NAMES utf8mb4")
#: a collation's name: the drivers paste it unescaped after `SET NAMES charset COLLATE`
#: (PyMySQL past `query()`), so anything else in it is a statement of its own
_COLLATION = re.compile(r"[A-Za-z0-9_]+")


#: `restore(raw, full)`: full=True resets and sets the whole session, False only READ ONLY
#: again
Restore = Callable[[Any, bool], None]


class _State:
    """Per-connection marks (kept off the driver's own attributes)."""

    __slots__ = (
        "allowed",
        "approved",
        "connecting",
        "dirty",
        "expected",
        "guard",
        "internal",
        "login",
        "reassert",
        "restore",
    )

    def __init__(self) -> None:
        self.guard = True
        self.internal = 0
        # PyMySQL's login and its sending of a command write their own packets
        # (`write_packet`): a packet written outside them passes the guard
        self.connecting = False
        self.approved: str | None = None
        self.expected: str | None = None  # approved by the engine's hook, not yet handed over
        self.dirty = False  # an unvetted statement (or a reconnect) since the session was set
        self.reassert = False  # server code may have left SET TRANSACTION READ WRITE
        self.allowed: tuple[str, ...] = ()
        self.restore: Restore | None = None  # None while connecting: hybridwb's own login
        self.login: tuple[Any, ...] | None = None  # host, port, user, db of the first login


def _state(raw: Any) -> _State | None:
    return getattr(raw, "_hybridwb", None)


def _refuse(what: str) -> ReadOnlyViolation:
    return ReadOnlyViolation(f"Refused: {what} on a source connection; hybridwb only reads.")


def _check_character_set(charset: object, collation: object) -> None:
    """Refuse another character set, or a collation that is not a bare name."""
    if str(charset).lower() not in _CHARSETS:
        raise _refuse(f"the character set {charset!r} (the guard reads utf8mb4)")
    if collation and not (isinstance(collation, str) and _COLLATION.fullmatch(collation)):
        raise _refuse("a collation that is not a bare name (the driver pastes it into SQL)")


def _admit(raw: Any, state: _State, sql: Any) -> None:
    """Let `sql` go to the server, or raise (detached, one line)."""
    if state.internal or state.restore is None:
        return
    if isinstance(sql, bytes | bytearray | memoryview):
        try:
            text = bytes(sql).decode("utf-8")
        except UnicodeDecodeError:
            raise _refuse("a statement that is not UTF-8 text").detached() from None
    else:
        text = sql
    approved, state.approved = state.approved, None
    state.expected = None
    if _SAME_NAMES.fullmatch(text):
        return  # SQLAlchemy's on_connect: the character set the session SET pins already
    vetted = approved is not None and text == approved
    # a caller's own values were pasted in as the driver's status flags said: escaped for
    # NO_BACKSLASH_ESCAPES (server code left the flag), a `\'` in one ended its literal
    stale = not vetted and state.guard and not drivers.escapes_as_read(raw)
    if stale:
        state.dirty = True  # the full SET: its `SET sql_mode` clears the flag
    if state.dirty or state.reassert:
        _restore(raw, state)
    if stale:
        raise _refuse(
            "a statement whose values the driver escaped for NO_BACKSLASH_ESCAPES (server "
            "code left it on the connection; the session was set again: run it again)"
        ).detached()
    if vetted:
        return
    if not state.guard:  # layer one switched off (Source(use_guard=False), tests only)
        state.dirty = True
        return
    refused: HybridwbError | None = None
    try:
        VERDICTS.check(text, state.allowed)
    except HybridwbError as exc:
        refused = exc
    except RecursionError:
        refused = _refuse("a statement nested too deeply to check")
    if refused is not None:
        raise refused.detached()
    state.dirty = True  # nothing reads the session back after it: set it before the next


def _restore(raw: Any, state: _State) -> None:
    full = state.dirty
    restore = state.restore
    assert restore is not None
    with internal(raw):
        restore(raw, full)
    state.dirty = state.reassert = False


class _Internal:
    """The block of `internal` (a class: it runs at every checkin and checkout, and a
    generator-based context manager costs several calls more)."""

    __slots__ = ("state",)

    def __init__(self, state: _State | None) -> None:
        self.state = state

    def __enter__(self) -> None:
        if self.state is not None:
            self.state.internal += 1

    def __exit__(self, *exc: object) -> None:
        if self.state is not None:
            self.state.internal -= 1


def internal(raw: Any) -> _Internal:
    """hybridwb's own statements on `raw` (session SET, read-back) pass unguarded, inside
    `with internal(raw):`."""
    return _Internal(_state(raw))


def approve(raw: Any, text: str) -> None:
    """The statement-level guard approved `text`; the next statement sent may be exactly it."""
    state = _state(raw)
    if state is not None:
        state.approved = text


def expect(raw: Any, text: str) -> None:
    """The engine's final-text hook approved `text`; it passes only once the engine hands it
    to the driver (`sending`). A statement refused after the hook (a later listener,
    stream_results) is never sent, and its approval must not let the same text typed on the
    driver's cursor pass unmarked."""
    state = _state(raw)
    if state is not None:
        state.expected = text


def sending(raw: Any, text: str) -> None:
    """The engine calls the driver with `text` now: approved when it is what the hook
    approved (`expect`) for this statement."""
    state = _state(raw)
    if state is not None:
        expected, state.expected = state.expected, None
        state.approved = text if expected is not None and expected == text else None


def arm(raw: Any, restore: Restore, allowed: tuple[str, ...], *, guard: bool = True) -> None:
    """The login is done and the session set: from now on every statement not approved is
    guarded (`guard=False`: only the session is set again after it)."""
    state = _state(raw)
    if state is not None:
        state.allowed = allowed
        state.guard = guard
        state.dirty = state.reassert = False
        state.restore = restore


def settle(raw: Any) -> None:
    """Set the session again now when a statement since it was set may have changed it
    (nothing when none ran)."""
    state = _state(raw)
    if state is not None and state.restore is not None and (state.dirty or state.reassert):
        _restore(raw, state)


def session_set(raw: Any) -> None:
    """The session was just set in full (a checkout): nothing is owed."""
    state = _state(raw)
    if state is not None:
        state.dirty = state.reassert = False


def mark_reassert(raw: Any) -> None:
    """A statement that may have run server code ended: READ ONLY is set again before the
    next statement on this connection (a `SET TRANSACTION READ WRITE` is invisible)."""
    state = _state(raw)
    if state is not None:
        state.reassert = True


#: PyMySQL's PREFERRED-mode TLS context, made once (`SharedTLS._create_ssl_ctx`)
_PREFERRED_TLS: list[Any] = []


class SharedTLS(pymysql.connections.Connection):
    """PyMySQL's connection with one PREFERRED-mode TLS context for all (the side
    connections that end a statement past the row cap use it as it is)."""

    def _create_ssl_ctx(self, sslp: Any) -> Any:
        """PyMySQL's TLS context. With no TLS option given (its PREFERRED mode: TLS if the
        server offers it, unverified) PyMySQL builds a new default context for every
        connection, reading the system's CA bundle: 23 ms of CPU a connection, more than
        the login itself. That context's settings never vary, so the first one is kept and
        shared (a context is safe to share between connections, threads and forks); a
        context or options given (`ssl_ca`, `ssl_mode`) are PyMySQL's as before."""
        if isinstance(sslp, dict) and not sslp:
            if not _PREFERRED_TLS:
                _PREFERRED_TLS.append(super()._create_ssl_ctx(sslp))
            return _PREFERRED_TLS[0]
        return super()._create_ssl_ctx(sslp)


class GuardedPyMySQL(FastPackets, SharedTLS):
    """PyMySQL's connection with the guard in `query()` (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._hybridwb = _State()
        super().__init__(*args, **kwargs)

    def query(self, sql: Any, unbuffered: bool = False) -> int:
        state = self._hybridwb
        _admit(self, state, sql)
        if isinstance(sql, str) and not state.internal:
            # sent as UTF-8, the text the guard read (and the session's NAMES), never in the
            # public `encoding` attribute PyMySQL would use: set by hand to utf-7 it sends
            # `\` as `+AFw-`, to GBK `縗` as a byte and a backslash, and a literal the guard
            # read then ends earlier on the server (`'a\' , GET_LOCK(...) -- '`). hybridwb's
            # own statements (`internal`) are sent as the driver's character set says.
            sql = sql.encode("utf-8")
        return int(super().query(sql, unbuffered))

    def _execute_command(self, command: int, sql: Any) -> None:
        """PyMySQL's own sending of a command: a statement over 16 MB goes out as one packet
        and the rest through `write_packet`, which is refused outside it and the login (not
        while a result is read: a decoder of the caller's own runs then)."""
        state = self._hybridwb
        prior, state.connecting = state.connecting, True
        try:
            super()._execute_command(command, sql)
        finally:
            state.connecting = prior

    def _read_query_result(self, unbuffered: bool = False) -> int:
        """PyMySQL's own, with a result that parses each distinct set of column
        descriptions once (described.py)."""
        self._result = None
        result = DescribedResult(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return result.affected_rows

    def connect(self, sock: Any = None) -> None:
        # a reconnect (ping(True)) logs in with the attributes as they are now: one set by
        # hand would move the pooled connection to another database or user (select_db
        # and change_user are refused for that)
        if self._hybridwb.login is not None and self._login() != self._hybridwb.login:
            raise _refuse("reconnecting to another database or as another user")
        prior, self._hybridwb.connecting = self._hybridwb.connecting, True
        try:
            super().connect(sock)
        finally:
            self._hybridwb.connecting = prior
        self._hybridwb.login = self._login()
        self._hybridwb.dirty = True  # a reconnect (ping) is a fresh, writable session

    def write_packet(self, payload: Any) -> None:
        """PyMySQL's public packet writer: a COM_QUERY written with it passes `query()`, so
        only the login's own packets and a command PyMySQL sends (`_execute_command`: the
        rest of a statement over 16 MB) may use it."""
        state = self._hybridwb
        if state.restore is not None and not state.connecting and not state.internal:
            raise _refuse("writing a raw packet (it passes the guard)").detached()
        super().write_packet(payload)

    def _login(self) -> tuple[Any, ...]:
        """Where and as whom this connection logs in (PyMySQL encodes user and db to
        bytes at its first login)."""

        def encoded(value: Any) -> Any:
            return value.encode(self.encoding) if isinstance(value, str) else value

        return (
            self.host,
            self.port,
            self.unix_socket,
            encoded(self.user),
            encoded(self.db),
            self.client_flag,  # capabilities: MULTI_STATEMENTS, LOCAL_FILES
        )

    def set_character_set(self, charset: str, collation: str | None = None) -> None:
        _check_character_set(charset, collation)
        super().set_character_set(charset, collation)

    def select_db(self, db: Any) -> None:
        raise _refuse("changing the default database")


def _mysqldb_class(module: Any) -> type:
    base = importlib.import_module(f"{module.__name__}.connections").Connection

    class GuardedMySQLdb(base):  # type: ignore[misc, valid-type]
        """mysqlclient's connection with the guard in `query()` and `send_query()`."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._hybridwb = _State()
            super().__init__(*args, **kwargs)

        def query(self, query: Any) -> None:
            _admit(self, self._hybridwb, query)
            super().query(query)

        def send_query(self, query: Any) -> None:
            _admit(self, self._hybridwb, query)
            super().send_query(query)

        def set_character_set(self, charset: str, collation: str | None = None) -> None:
            _check_character_set(charset, collation)
            super().set_character_set(charset, collation)

        def select_db(self, db: Any) -> None:
            raise _refuse("changing the default database")

        def ping(self, *args: Any, **kwargs: Any) -> Any:
            # `ping(True)` turns on MYSQL_OPT_RECONNECT for good: a statement sent after the
            # server dropped the connection then reconnects inside the C library and runs
            # on a fresh session (writable, no time limit, the server's sql_mode), which
            # nothing here can see. A plain ping also turns it off again.
            if any(args) or any(kwargs.values()):
                raise _refuse(
                    "ping(reconnect=True) (its silent reconnect opens a session hybridwb "
                    "never set); use ping()"
                )
            return super().ping()

        def kill(self, *args: Any) -> None:
            raise _refuse("KILL")

        def shutdown(self, *args: Any) -> None:
            raise _refuse("SHUTDOWN")

        def change_user(self, *args: Any, **kwargs: Any) -> None:
            raise _refuse("changing the user")

        def set_server_option(self, *args: Any) -> None:
            raise _refuse("changing a server option")

        def dump_debug_info(self, *args: Any) -> None:
            raise _refuse("dump_debug_info (it writes the server's log)")

    return GuardedMySQLdb


_CLASSES: dict[str, type] = {}
_LOCK = threading.Lock()


def _renew_lock() -> None:
    """In a forked child: a lock another thread of the parent held at the fork (making a
    connection) would stay held forever, and the child's first connection wait for it."""
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_renew_lock)


def plain_class(dbapi: Any) -> Any:
    """The unguarded connection class (or factory) for a loaded DB-API module: PyMySQL's
    with the shared TLS context (`SharedTLS`), mysqlclient's own `connect`."""
    return SharedTLS if getattr(dbapi, "__name__", "") == "pymysql" else dbapi.connect


def connection_class(dbapi: Any) -> Any:
    """The guarded connection class for a loaded DB-API module (pymysql or MySQLdb)."""
    name = getattr(dbapi, "__name__", "")
    if name == "pymysql":
        return GuardedPyMySQL
    if name == "MySQLdb":
        with _LOCK:
            if name not in _CLASSES:
                _CLASSES[name] = _mysqldb_class(sys.modules["MySQLdb"])
            return _CLASSES[name]
    raise HybridwbError(f"The source driver {name or '?'} is not supported; use PyMySQL.")
