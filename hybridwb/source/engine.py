"""Engines for the source: one place that opens connections to MySQL or the SQLite sample.

Two layers of the read-only guarantee are enforced here, for every caller of the engine
(`Source`, pandas, jupysql, the inspector):

* **The final text is guarded where it is sent.** A `before_cursor_execute` hook asks the
  driver for the exact text it would send (`cursor.mogrify(statement, params)`: the values
  pasted in as escaped literals), runs the guard on that text, and hands the driver that
  text with *no* parameters, so nothing is interpolated after the check.
* **The driver's own connection is guarded too** (rawguard.py): the pooled connections are
  a subclass of the driver's class whose `query()` lets through the text the hook above
  approved and guards any other (a raw DB-API connection never fires SQLAlchemy's events).
* **The session is re-asserted, not assumed.** Every connect and every checkout from the
  pool sets `READ ONLY`, the statement time limit, `sql_select_limit` (the row cap) and a
  fixed `sql_mode` (the one the guard tokenizes with), and releases named locks, in one
  statement; after each statement the session is read back, and a session that server
  code (a stored function) changed is restored, or dropped when it cannot be, and the
  statement is refused. The checkout's SET is sent when the connection is checked *in*,
  without waiting (the server runs it at once, while the client builds its DataFrame);
  the checkout reads its reply before anything else runs, and sets the session itself,
  waiting, when that SET failed, was not sent, or the checkout wants another policy. So
  every use still starts on a session just set, at no round trip of its own.

Errors on the engine (pandas, jupysql, the inspector) are hybridwb errors with a one-line,
scrubbed message and nothing chained: the driver is called from SQLAlchemy's `do_connect` /
`do_execute` hooks here, and a driver error is translated where it happens and raised
outside the `except`, so neither SQLAlchemy (which would chain it `from` the driver error)
nor a traceback printer with locals ever reaches the driver's frames (the password, the
text with the values pasted in). The password is not in the engine's URL at all: it is
handed to the driver by `do_connect` from a `SecretStr`.
"""

from __future__ import annotations

import functools
import math
import re
import sqlite3
import ssl as ssl_module
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool
from sqlglot import exp

from hybridwb.config import scrub
from hybridwb.errors import BindError, ConfigError, HybridwbError, ReadOnlyViolation
from hybridwb.masking import engine_logging_name
from hybridwb.source import catalogue, drivers, guard, rawguard
from hybridwb.source.binds import bind_layout, only_values_differ, values_fit
from hybridwb.source.transpile import sqlite_driver_params
from hybridwb.source.values import core_params, driver_params, driver_sql_params, held_params
from hybridwb.source.verdicts import VERDICTS
from hybridwb.validation import short

_PYFORMAT = re.compile(r"%\(\w+\)s|%s")
#: schema pragmas SQLAlchemy's inspector sends to the (query_only) SQLite sample
_SQLITE_SCHEMA_PRAGMA = re.compile(
    r"^\s*PRAGMA\s+(\"?(main|temp)\"?\.)?(table_x?info|index_list|index_x?info|foreign_key_list)\s*\(",
    re.IGNORECASE,
)
#: client errors that mean the connection is gone (the pool then opens a new one)
_GONE = frozenset({2006, 2013, 2014, 2045, 2055, 4031})


@dataclass
class SessionFacts:
    """What the first connection told us about the server (filled on connect)."""

    flavour: str = "unknown"  # MariaDB | MySQL | SQLite
    version: str = ""
    timeout_variable: str = ""
    read_only_variable: str = ""
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


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


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


def session_sql(facts: SessionFacts, policy: SessionPolicy) -> str:
    """See `_session_sql`; every read sends one, so the text is built once per policy."""
    return _session_sql(facts.flavour, facts.read_only_variable, policy)


@functools.lru_cache(maxsize=64)
def _session_sql(flavour: str, read_only_variable: str, policy: SessionPolicy) -> str:
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
    switch ends it, so no read inherits its snapshot or metadata locks."""
    parts = [
        _timeout_assignment(flavour, policy.timeout),
        f"sql_select_limit = {int(policy.select_limit)}",
        f"sql_mode = '{SQL_MODE}'",
        "@hybridwb_released = RELEASE_ALL_LOCKS()",
    ]
    if policy.read_only:
        parts.insert(0, f"{read_only_variable} = 1")
    return f"SET NAMES {NAMES}, SESSION autocommit = 0, SESSION autocommit = 1, " + ", ".join(parts)


#: what a session is, as the server sees it: one fixed statement per flavour
FACTS_SQL = {
    "MariaDB": "SELECT @@session.tx_read_only, @@session.max_statement_time",
    "MySQL": "SELECT @@session.transaction_read_only, @@session.max_execution_time",
}
#: the read-back after server code may have run; the same round trip releases named locks
READ_BACK_SQL = {
    flavour: sql
    + ", @@session.sql_select_limit, @@session.sql_mode, @@session.character_set_client,"
    " @@session.character_set_connection, RELEASE_ALL_LOCKS()"
    for flavour, sql in FACTS_SQL.items()
}


def read_session(dbapi_conn: Any, facts: SessionFacts) -> tuple[int, float, int, str, str]:
    """(read only, time limit in seconds, select limit, sql_mode, "client,connection"
    character sets) as the server sees them now. The same round trip releases the named
    locks the connection holds (server code run by the statement, e.g. in a view, may have
    taken one)."""
    with rawguard.internal(dbapi_conn):
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(READ_BACK_SQL[facts.flavour])
            ro, limit, rows, mode, client, connection, _released = cursor.fetchone()
        finally:
            cursor.close()
    seconds = float(limit) if facts.flavour == "MariaDB" else float(limit) / 1000
    return int(ro), seconds, int(rows), str(mode or ""), f"{client},{connection}".lower()


def session_matches(
    facts: SessionFacts, policy: SessionPolicy, seen: tuple[int, float, int, str, str]
) -> bool:
    read_only, seconds, rows, mode, names = seen
    return (
        (read_only == 1 or not policy.read_only)
        and seconds > 0
        and math.isclose(seconds, policy.timeout, rel_tol=1e-3, abs_tol=1e-3)
        and rows == policy.select_limit
        and set(mode.upper().split(",")) == set(SQL_MODE.split(","))
        and names == f"{NAMES},{NAMES}"
    )


def apply_session(dbapi_conn: Any, facts: SessionFacts, policy: SessionPolicy) -> None:
    with rawguard.internal(dbapi_conn):
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(session_sql(facts, policy))
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
#: the policy of the session SET sent at checkin whose reply the next checkout reads
PENDING_KEY = "hybridwb_pending_set"


@contextmanager
def checkout_as(policy: SessionPolicy) -> Iterator[None]:
    """Checkouts inside the block set the session to `policy` (never looser than the
    engine's: see `stricter_or_default`) in the same SET that every checkout sends."""
    token = _CHECKOUT_POLICY.set(policy)
    try:
        yield
    finally:
        _CHECKOUT_POLICY.reset(token)


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


def mysql_connect_args(
    connect_timeout: int,
    read_timeout: int,
    ssl_ca: str | None,
    ssl_mode: str | None,
    driver: str = "pymysql",
) -> dict[str, Any]:
    """Connect arguments for `driver` (`pymysql` or `mysqldb`, the URL's driver name)."""
    connect_args: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "write_timeout": read_timeout,
        "charset": "utf8mb4",
        # each statement is its own (read-only) transaction: no snapshot outlives a query
        # and returning a connection to the pool costs no ROLLBACK round trip
        "autocommit": True,
        "local_infile": False,
    }
    mode = (ssl_mode or "").upper()
    if driver == "mysqldb":  # mysqlclient: TLS by mode name and a CA path, no SSLContext
        # mysqlclient asks for multi-statements unless told not to (PyMySQL never does): with
        # it, `SET SESSION tx_read_only = 0; INSERT ...` is two statements to the server, the
        # second run on a session the first made writable, before any read-back
        connect_args["multi_statements"] = False
        if mode:
            connect_args["ssl_mode"] = mode
        if ssl_ca:
            connect_args["ssl"] = {"ca": ssl_ca}
        return connect_args
    if ssl_ca or mode in ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"):
        context = ssl_module.create_default_context(cafile=ssl_ca or None)
        if mode in ("REQUIRED", ""):
            context.check_hostname = False
            if not ssl_ca:
                context.verify_mode = ssl_module.CERT_NONE
        elif mode == "VERIFY_CA":
            context.check_hostname = False
        connect_args["ssl"] = context
    return connect_args


Secrets = Callable[[], Iterable[str]]


def side_engine(
    url: URL,
    connect_args: dict[str, Any],
    *,
    password: SecretStr | None = None,
    error_context: catalogue.Context | None = None,
    secrets: Secrets = tuple,
) -> Engine:
    """Unpooled connections for `KILL QUERY` (ending a statement past the row cap): they
    never wait for, or take the place of, a pooled connection."""
    engine = create_engine(
        url.set(password=None),
        poolclass=NullPool,
        hide_parameters=True,
        logging_name=engine_logging_name(),
        connect_args=connect_args,
    )
    _install_connect(engine, password, error_context or catalogue.Context(), secrets)
    return engine


def driver_error(
    exc: BaseException, ctx: catalogue.Context, secrets: Secrets = tuple
) -> HybridwbError:
    """A driver error as a hybridwb error: one scrubbed line, the cause's type and code as
    fields, no frames of the cause (raise it outside the `except` that caught `exc`)."""
    err = catalogue.translate(exc, ctx)
    return type(err).from_cause(exc, scrub(err.message, secrets()), **err.fields)


def _is_gone(exc: BaseException) -> bool:
    """The connection is dead (the pool must not hand it out again)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return isinstance(exc, drivers.interface_errors()) or code in _GONE


#: driver options that run SQL at login or read it from an option file (init_command,
#: my.cnf's init-command), or that the driver pastes unescaped into a statement it sends at
#: login (`collation`: `SET NAMES utf8mb4 COLLATE <value>` on both drivers; `sql_mode`:
#: `SET SESSION sql_mode='<value>'` on mysqlclient): a URL naming one is refused, since the
#: server would run it before any guard or session SET. The session SET pins both anyway.
REFUSED_OPTIONS = frozenset(
    {"init_command", "read_default_file", "read_default_group", "collation", "sql_mode"}
)
#: client capabilities a URL's client_flag may not add: LOCAL_FILES, MULTI_STATEMENTS
REFUSED_CLIENT_FLAGS = 128 | (1 << 16)


def _open_mysql(
    dialect: Any,
    cargs: Any,
    cparams: dict[str, Any],
    password: SecretStr | None,
    guarded: bool = False,
) -> tuple[Any, BaseException | None]:
    """Connect with the URL's driver, or return the driver's error (so this frame, which
    held the password, is gone before anything is raised). `guarded`: the connection is the
    driver's class with the guard in its `query()` (rawguard.py)."""
    refused = sorted(k for k in cparams if str(k).lower() in REFUSED_OPTIONS)
    flags = cparams.get("client_flag")
    if isinstance(flags, int) and flags & REFUSED_CLIENT_FLAGS:
        refused.append("client_flag")
    if refused:
        return None, ConfigError(
            f"The source URL option ?{refused[0]}=… would run or change SQL at login; "
            "remove it (hybridwb sets the session itself)."
        )
    try:
        extra = {"password": password.get_secret_value()} if password is not None else {}
        connect = (
            rawguard.connection_class(dialect.loaded_dbapi)
            if guarded
            else rawguard.plain_class(dialect.loaded_dbapi)
        )
        return connect(*cargs, **cparams, **extra), None
    except drivers.errors() as exc:
        exc.__traceback__ = None  # its frames hold the password in their locals
        return None, exc
    except Exception as exc:
        # not a database error (a password the driver cannot encode, a TLS file that is
        # missing): said in one line without the exception, which may hold the password
        # (UnicodeEncodeError.object) and whose frames do
        kind = type(exc).__name__
    from hybridwb.errors import ConnectionFailed

    return None, ConnectionFailed(
        f"Cannot connect to MySQL ({kind}): check the user name and password (PyMySQL sends "
        "them as latin-1) and the TLS files named in the URL or MYSQL_SSL_CA.",
        cause_type=kind,
    )


def _install_connect(
    engine: Engine,
    password: SecretStr | None,
    ctx: catalogue.Context,
    secrets: Secrets,
    *,
    guarded: bool = False,
) -> None:
    """Log in with the password from its holder; a refused login is a hybridwb error."""

    @event.listens_for(engine, "do_connect")
    def _do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        conn, failed = _open_mysql(dialect, cargs, cparams, password, guarded)
        if failed is None:
            return conn
        error = failed if isinstance(failed, HybridwbError) else driver_error(failed, ctx, secrets)
        del failed  # a traceback with locals must not show the driver's exception
        raise error


def _install_driver_errors(
    engine: Engine,
    ctx: catalogue.Context,
    secrets: Secrets,
    driver: type[BaseException] | tuple[type[BaseException], ...],
    gone: Callable[[BaseException], bool],
    after_error: Callable[[Any], None] | None = None,
) -> None:
    """Statements on the engine call the driver here, so its errors become hybridwb errors
    before SQLAlchemy sees them (it would chain them `from` the driver error)."""

    def call(context: Any, method: Callable[..., Any], *args: Any) -> None:
        if context is not None and context.execution_options.get("skip_user_error_events"):
            # SQLAlchemy's own probes (has_table: DESCRIBE -> 1146 means "no") read the
            # driver error themselves; their statements hold no values
            method(*args)
            return
        failed: BaseException | None = None
        try:
            method(*args)
        except driver as exc:
            failed = exc
        if failed is None:
            return
        dead = gone(failed)
        error: HybridwbError = driver_error(failed, ctx, secrets)
        del failed
        if dead and context is not None and not context.root_connection.invalidated:
            context.root_connection.invalidate()  # never handed out again
        elif after_error is not None and context is not None:
            # a statement that failed may have run server code first (a view or function
            # that changed the session, then raised): read the session back before the
            # connection is used again; a changed session is restored and said instead
            try:
                after_error(context)
            except ReadOnlyViolation as violation:
                error = violation.detached()
        raise error

    @event.listens_for(engine, "do_execute")
    def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        call(context, cursor.execute, statement, parameters)
        return True

    @event.listens_for(engine, "do_execute_no_params")
    def _do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        call(context, cursor.execute, statement)
        return True


def _read_pending(dbapi_conn: Any) -> bool:
    """Read the reply to the session SET sent when the connection was checked in: True when
    it succeeded. A connection that is gone raises (the pool replaces it)."""
    failed: BaseException | None = None
    try:
        drivers.read_reply(dbapi_conn)
    except drivers.errors() as exc:
        failed = exc
    if failed is None:
        return True
    if _is_gone(failed):
        raise failed
    return False


def send_next_session(
    dbapi_conn: Any, info: dict[str, Any], facts: SessionFacts, policy: SessionPolicy
) -> None:
    """At checkin: the session SET for the next checkout leaves now, without waiting for the
    reply: the server restores the session (and releases named locks) as soon as the
    connection is back, and the next checkout only reads the OK that is already there."""
    info.pop(PENDING_KEY, None)
    info.pop(SESSION_KEY, None)
    if dbapi_conn is None:
        return  # invalidated: the pool opens a new connection (the connect event sets it)
    try:
        with rawguard.internal(dbapi_conn):
            sent = drivers.send_only(dbapi_conn, session_sql(facts, policy))
        if sent:
            info[PENDING_KEY] = policy
    except Exception:  # the checkout then sets the session itself and waits
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
    if _is_gone(failed):
        # the pool replaces a dead connection when it sees this
        raise DisconnectionError("source connection was closed")
    raise driver_error(failed, ctx, secrets)


def mysql_engine(
    url: URL,
    facts: SessionFacts,
    *,
    policy: SessionPolicy,
    connect_args: dict[str, Any],
    use_guard: bool = True,
    pool_size: int = 5,
    max_overflow: int = 10,
    error_context: catalogue.Context | None = None,
    password: SecretStr | None = None,
    secrets: Secrets = tuple,
) -> Engine:
    ctx = error_context or catalogue.Context()
    if password is None and url.password:
        password = SecretStr(str(url.password))
    engine = create_engine(
        url.set(password=None),  # the password is handed over by do_connect, never kept here
        # no pre-ping: the session SET is the ping (a dead connection is replaced). A ping
        # must never be added: it would read the reply of the SET sent at checkin
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=30,
        pool_reset_on_return=None,
        isolation_level="AUTOCOMMIT",
        # every statement commits on its own: closing a Connection (pandas, jupysql) sends
        # no ROLLBACK round trip (SQLAlchemy >= 2.0.43)
        skip_autocommit_rollback=True,
        hide_parameters=True,
        logging_name=engine_logging_name(),
        connect_args=connect_args,
    )

    _install_connect(engine, password, ctx, secrets, guarded=True)

    def _restore(dbapi_conn: Any, full: bool) -> None:
        if full:
            apply_session(dbapi_conn, facts, policy)
        elif policy.read_only:
            with rawguard.internal(dbapi_conn):
                cursor = dbapi_conn.cursor()
                try:
                    # sql_mode too: a SET of it clears the NO_BACKSLASH_ESCAPES status flag
                    # server code may have left (drivers.escapes_as_read), in the same SET
                    cursor.execute(
                        f"SET SESSION {facts.read_only_variable} = 1, sql_mode = '{SQL_MODE}'"
                    )
                finally:
                    cursor.close()

    def _first_statements(dbapi_conn: Any) -> None:
        with rawguard.internal(dbapi_conn):
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT VERSION()")
                version = str(cursor.fetchone()[0])
            finally:
                cursor.close()
        facts.version = version
        facts.flavour = "MariaDB" if "mariadb" in version.lower() else "MySQL"
        facts.timeout_variable = (
            "max_statement_time" if facts.flavour == "MariaDB" else "max_execution_time"
        )
        facts.read_only_variable = (
            "tx_read_only" if facts.flavour == "MariaDB" else "transaction_read_only"
        )
        apply_session(dbapi_conn, facts, policy)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        failed: BaseException | None = None
        try:
            _first_statements(dbapi_conn)
        except drivers.errors() as exc:
            failed = exc
        if failed is not None:
            raise driver_error(failed, ctx, secrets)
        rawguard.arm(dbapi_conn, _restore, policy.allowed_functions, guard=use_guard)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: Any, record: Any) -> None:
        send_next_session(dbapi_conn, record.info, facts, policy)

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        wanted = stricter_or_default(policy, _CHECKOUT_POLICY.get())
        reassert_session(dbapi_conn, record.info, facts, wanted, ctx, secrets)

    def _read_back_after_error(context: Any) -> None:
        conn = context.root_connection
        rawguard.mark_reassert(conn.connection.dbapi_connection)
        try:
            verify_session(conn.connection.dbapi_connection, facts, policy)
        except ReadOnlyViolation as exc:
            if not exc.fields.get("restored"):
                conn.invalidate()
            raise
        except drivers.errors():
            conn.invalidate()
            raise ReadOnlyViolation(
                "The session could not be checked after the statement failed; the "
                "connection was dropped. Run the query again."
            ) from None

    _install_driver_errors(
        engine,
        ctx,
        secrets,
        drivers.errors(),
        _is_gone,
        after_error=_read_back_after_error if policy.read_only else None,
    )
    if use_guard:
        _install_final_text_guard(engine, facts, policy)
    if policy.read_only:
        _install_session_check(engine, facts, policy)
    _install_error_translation(engine, ctx)
    _install_checked_params(engine)
    return engine


class CheckedConnection(Connection):
    """A connection whose `exec_driver_sql` and `execute` check the shape of the parameters
    a caller gives before SQLAlchemy reads them (`values.driver_sql_params`, `core_params`):
    SQLAlchemy refuses a `pd.Series` or a list of values with a raw `ArgumentError`, before
    any event of the engine sees the parameters."""

    def exec_driver_sql(self, statement: Any, parameters: Any = None, *a: Any, **kw: Any) -> Any:
        return super().exec_driver_sql(statement, driver_sql_params(parameters), *a, **kw)

    def execute(self, statement: Any, parameters: Any = None, *a: Any, **kw: Any) -> Any:
        return super().execute(statement, core_params(parameters), *a, **kw)


def _install_checked_params(engine: Engine) -> None:
    """Every connection of the engine (and of its `execution_options` copies, which share
    its events) is a `CheckedConnection`."""

    @event.listens_for(engine, "engine_connect")
    def _checked(conn: Connection) -> None:
        if type(conn) is Connection:
            conn.__class__ = CheckedConnection


def _install_error_translation(engine: Engine, error_context: Any) -> None:
    """A fallback for driver errors that reach SQLAlchemy some other way (the hooks above
    translate the usual ones): one-line hybridwb errors, although SQLAlchemy chains them.

    The text sent holds the values (the driver pasted them in), and SQLAlchemy's own error
    would print it; the translated error carries the server's message with literals removed
    and no statement."""

    @event.listens_for(engine, "handle_error")
    def _translate(context: Any) -> None:
        exc = context.original_exception
        if isinstance(exc, drivers.errors()):
            raise catalogue.translate(exc, error_context) from None


def _install_final_text_guard(engine: Engine, facts: SessionFacts, policy: SessionPolicy) -> None:
    """Guard the exact text the driver will send, and send exactly that text."""

    @event.listens_for(engine, "before_execute", retval=True)
    def _held_items(
        conn: Any, element: Any, multiparams: Any, params: Any, execution_options: Any
    ) -> tuple[Any, Any, Any]:
        # SQLAlchemy expands an IN list (`bindparam(..., expanding=True)`, `column.in_`)
        # by iterating the value before the cursor hook sees it: a subclass's `__iter__`
        # chose the items
        return element, [held_params(p) for p in multiparams], held_params(params)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _guard_final_text(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> tuple[str, None]:
        if many:
            raise ReadOnlyViolation("Refused: executemany is for writes; hybridwb only reads.")
        refused: HybridwbError | None = None
        try:
            escape_as_read(conn.connection, facts, policy)
            parameters = driver_params(parameters)  # each the plain value it means
            final = final_text(cursor, statement, parameters, context)
            _check_bound_size(statement, final, parameters)
            guard_final_text(final, policy, whole_result=True)
        except HybridwbError as exc:
            refused = exc  # the parser's error holds the statement: nothing may be chained
        if refused is not None:
            raise refused.detached()
        rawguard.approve(conn.connection.dbapi_connection, final)  # query() lets it pass
        return final, None


def _check_bound_size(statement: str, final: str, parameters: Any) -> None:
    """Refuse, naming the parameter, a statement whose bound values make the text the
    driver sends longer than the guard reads: the guard's own refusal told a caller who
    had bound an IN list of 300,000 ids to "put long value lists in a bound parameter"."""
    limit = guard.MAX_QUERY_BYTES
    if len(final) * 4 <= limit:  # (4 bytes a character at most)
        return
    size = len(final.encode("utf-8", "replace"))
    if size <= limit or len(statement.encode("utf-8", "replace")) > limit:
        return
    named = parameters.items() if isinstance(parameters, dict) else enumerate(parameters or (), 1)
    sizes = {
        (str(k) if isinstance(parameters, dict) else f"#{k}"): len(v)
        if isinstance(v, tuple | str | bytes)
        else 1
        for k, v in named
    }
    if not sizes:
        return
    name = max(sizes, key=sizes.__getitem__)
    raise BindError(
        f"Parameter {name!r} makes the statement {size:,} bytes; the limit is {limit:,}. "
        "Bind fewer or shorter values (split the list), or join on a table instead.",
        name=name,
    )


def guard_final_text(
    final: str,
    policy: SessionPolicy,
    *,
    approved: Any = None,
    params: Mapping[str, Any] | None = None,
    whole_result: bool,
) -> None:
    """The guard on the text the driver sends.

    `approved` is what `Source` already admitted (its text, tokens and binds): when the final
    text is that text, or tokenizes as it with only the binds replaced by literals, the
    decision is the same and the parse is skipped; anything else is checked in full. With
    the `params` it was made from, a final text that is the approved text with a str or int
    literal in place of each bind, in a place nothing can join it to another token, is seen
    to be one without tokenizing (`binds.values_in_place`). Both
    decisions are remembered by the exact final text (verdicts.py): a text sent again is
    not tokenized again. `whole_result` callers (pandas, jupysql) read every row at once, so a LIMIT above the cap
    is refused for them."""
    if approved is not None:
        if final == approved.sql:
            return
        if params is not None:
            # the layout of its binds, made once per statement when it keeps one (`Prepared`)
            layout: Any = getattr(approved, "layout", _UNKNOWN)
            if layout is _UNKNOWN:
                layout = bind_layout(approved.sql, approved.binds)
            if values_fit(layout, params, final):
                return  # the approved text with a literal in place of each bind: nothing new
        key = ("values of", approved.sql, policy.allowed_functions, final)
        if VERDICTS.admits(key, lambda: _values_only(final, approved)):
            return
    checked = VERDICTS.check(final, policy.allowed_functions)
    if whole_result:
        refuse_large_limit(checked, policy.select_limit - 1)


#: an approved statement that keeps no `layout` of its binds
_UNKNOWN = object()


def _values_only(final: str, approved: Any) -> bool:
    """`final` tokenizes as the approved statement with a value in place of each bind."""
    try:
        tokens = guard._DIALECT.tokenize(final)
    except Exception:  # the full check says what is wrong
        return False
    return bool(tokens) and only_values_differ(
        list(approved.checked.tokens), list(approved.binds), tokens
    )


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


def final_text(cursor: Any, statement: str, parameters: Any, context: Any) -> str:
    """The text the driver (PyMySQL or mysqlclient) would send for
    `execute(statement, parameters)`: both escape the values with the connection's own
    rules and return the whole statement."""
    if parameters is None or (not parameters and context is not None and context.no_parameters):
        return statement
    try:
        return str(cursor.mogrify(statement, parameters))
    except drivers.errors(TypeError, ValueError, KeyError):
        raise BindError(
            "The statement's parameters do not fit its placeholders "
            "(a literal % must be written %% when parameters are given)."
        ) from None


def refuse_large_limit(checked: guard.Checked, cap: int) -> None:
    """For callers that read a whole result at once (pandas, jupysql): the server's
    `sql_select_limit` caps a SELECT without LIMIT, but an explicit LIMIT overrides it."""
    if checked.kind != "select":
        return
    node = checked.expression
    limit = node.args.get("limit")
    # `(SELECT ... LIMIT n)`: the server applies the LIMIT inside the parentheses and no
    # sql_select_limit, when none stands outside them
    while limit is None and isinstance(node, exp.Subquery):
        node = node.this
        limit = node.args.get("limit")
    if limit is None:
        return
    value = limit.expression if isinstance(limit, exp.Limit) else limit
    if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= cap + 1:
        return
    raise ReadOnlyViolation(
        f"Refused: a LIMIT above the row cap ({cap:,}) on the engine would read the whole "
        "result into memory; use wb.sql(...), which stops at the cap, or a smaller LIMIT.",
        reason="limit above the row cap",
    )


def _install_session_check(engine: Engine, facts: SessionFacts, policy: SessionPolicy) -> None:
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
        except drivers.errors():
            refused = ReadOnlyViolation(
                "The session could not be checked after the statement; the connection "
                "was dropped. Run the query again."
            )
        if refused is None:
            return
        if not refused.fields.get("restored"):
            conn.invalidate()
        raise refused.detached()


def sqlite_engine(path: Path, facts: SessionFacts, *, use_guard: bool = True) -> Engine:
    """The embedded sample, opened read-only by the file system and by SQLite itself."""

    def creator() -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        return conn

    facts.flavour = "SQLite"
    facts.version = sqlite3.sqlite_version
    engine = create_engine(
        "sqlite://",
        creator=creator,
        poolclass=NullPool,
        hide_parameters=True,
        logging_name=engine_logging_name(),
    )
    _install_driver_errors(
        engine, catalogue.Context(database=str(path)), tuple, sqlite3.Error, lambda exc: False
    )

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _dates(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> tuple[str, Any]:
        # dates as the sample's text, not sqlite3's process-wide adapters' (a caller's
        # `pd.read_sql(sql, wb.source.engine, params=...)`; `wb.sql` binds its own text)
        return statement, sqlite_driver_params(params, many)

    if use_guard:

        @event.listens_for(engine, "before_cursor_execute")
        def _guard(
            conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
        ) -> None:
            # SQLite binds values itself (nothing is pasted into the text); the sample is
            # read-only on disk, so the sample's own transpiled text is marked checked
            options = context.execution_options if context is not None else {}
            if options.get("hybridwb_checked") or _SQLITE_SCHEMA_PRAGMA.match(statement):
                return
            refused: HybridwbError | None = None
            try:
                VERDICTS.check(_PYFORMAT.sub("?", statement))
            except HybridwbError as exc:
                refused = exc
            if refused is not None:
                raise refused.detached()

    _install_checked_params(engine)
    return engine
