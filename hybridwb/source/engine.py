"""Engines for the source: one place that opens connections to MySQL or the SQLite sample.

Two layers of the read-only guarantee are enforced on them, for every caller of the engine
(`Source`, pandas, jupysql, the inspector), each in its own module:

* **The final text is guarded where it is sent** (finaltext.py), and the driver's own
  connection is guarded too (rawguard.py).
* **The session is re-asserted, not assumed** (session.py): set on every connect and
  checkout, read back after every statement.

Driver errors become one-line hybridwb errors where they happen (driver_errors.py); the
password is handed to the driver at login from a `SecretStr` (connect.py). A caller's
params object is checked by its shape before SQLAlchemy reads it (`CheckedConnection`).
The names other modules import from here are re-exported below.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

from hybridwb.errors import ConnectionFailed, HybridwbError, ReadOnlyViolation
from hybridwb.masking import engine_logging_name
from hybridwb.source import catalogue, drivers, rawguard
from hybridwb.source.connect import (
    REFUSED_CLIENT_FLAGS,
    REFUSED_OPTIONS,
    install_connect,
    mysql_connect_args,
)
from hybridwb.source.driver_errors import (
    Secrets,
    driver_error,
    install_driver_errors,
    install_error_translation,
    is_gone,
)
from hybridwb.source.finaltext import (
    final_text,
    guard_final_text,
    install_final_text_guard,
    refuse_large_limit,
)
from hybridwb.source.session import (
    FACTS_SQL,
    NAMES,
    PENDING_KEY,
    READ_BACK_SQL,
    SESSION_KEY,
    SQL_MODE,
    SessionFacts,
    SessionPolicy,
    apply_session,
    checkout_as,
    checkout_policy,
    escape_as_read,
    install_session_check,
    read_session,
    reassert_session,
    reset_session,
    send_next_session,
    session_matches,
    session_sql,
    statement_timeout_sql,
    stricter_or_default,
    verify_session,
)
from hybridwb.source.transpile import sqlite_driver_params
from hybridwb.source.values import core_params, driver_sql_params
from hybridwb.source.verdicts import VERDICTS

#: the engine module's names as before the split (session.py, finaltext.py, connect.py and
#: driver_errors.py own them now); other modules import them from their owners
__all__ = [
    "FACTS_SQL",
    "NAMES",
    "PENDING_KEY",
    "READ_BACK_SQL",
    "REFUSED_CLIENT_FLAGS",
    "REFUSED_OPTIONS",
    "SESSION_KEY",
    "SQL_MODE",
    "CheckedConnection",
    "Secrets",
    "SessionFacts",
    "SessionPolicy",
    "apply_session",
    "checkout_as",
    "driver_error",
    "escape_as_read",
    "final_text",
    "guard_final_text",
    "is_sqlite",
    "mysql_connect_args",
    "mysql_engine",
    "read_session",
    "reassert_session",
    "refuse_large_limit",
    "send_next_session",
    "session_matches",
    "session_sql",
    "side_engine",
    "sqlite_engine",
    "statement_timeout_sql",
    "stricter_or_default",
    "verify_session",
]

_PYFORMAT = re.compile(r"%\(\w+\)s|%s")
#: schema pragmas SQLAlchemy's inspector sends to the (query_only) SQLite sample
_SQLITE_SCHEMA_PRAGMA = re.compile(
    r"^\s*PRAGMA\s+(\"?(main|temp)\"?\.)?(table_x?info|index_list|index_x?info|foreign_key_list)\s*\(",
    re.IGNORECASE,
)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


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
    install_connect(engine, password, error_context or catalogue.Context(), secrets)
    return engine


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

    def _restore(dbapi_conn: Any, full: bool) -> None:
        if full:
            # after a statement on the driver's own cursor (`raw_connection()`, jupysql or
            # pandas given the DB-API connection): a view it read may have run a function
            # that left a temporary table shadowing a base table, or a role (round 52), so
            # the connection is reset, not only set, before the next statement on it
            try:
                reset_session(dbapi_conn, facts, policy)
            except DisconnectionError as exc:
                if isinstance(exc.__cause__, drivers.errors()):
                    raise exc.__cause__ from None  # the driver's own (a connection gone)
                raise ReadOnlyViolation(
                    "The source connection could not be reset after the last statement; "
                    "nothing was sent. Take a new connection and run the query again."
                ) from None
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
                cursor.execute(LOGIN_SQL)
                version, time_zone, *role = cursor.fetchone()
            finally:
                cursor.close()
        if role:  # MariaDB: the login's role (NULL: none)
            drivers.remember_role(dbapi_conn, role[0])
        facts.version, facts.time_zone = str(version), str(time_zone)
        facts.flavour = "MariaDB" if "mariadb" in facts.version.lower() else "MySQL"
        facts.timeout_variable = (
            "max_statement_time" if facts.flavour == "MariaDB" else "max_execution_time"
        )
        facts.read_only_variable = (
            "tx_read_only" if facts.flavour == "MariaDB" else "transaction_read_only"
        )
        apply_session(dbapi_conn, facts, policy)

    def _login(dbapi_conn: Any) -> None:
        failed: BaseException | None = None
        try:
            _first_statements(dbapi_conn)
        except drivers.errors() as exc:
            failed = exc
        if failed is not None:
            raise driver_error(failed, ctx, secrets)
        rawguard.arm(dbapi_conn, _restore, policy.allowed_functions, guard=use_guard)

    # the session is set and the guard armed at the login itself, before SQLAlchemy's dialect
    # initialize or any pool listener (a caller's `connect` listener inserted first, or a
    # `first_connect` one) runs a statement on the connection
    install_connect(engine, password, ctx, secrets, guarded=True, on_login=_login)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # what ran since the login (SQLAlchemy's dialect initialize, a listener inserted
        # before this one) was guarded; the session is set again after it
        rawguard.settle(dbapi_conn)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: Any, record: Any) -> None:
        try:
            send_next_session(dbapi_conn, record.info, facts, policy)
        except BaseException:  # Ctrl-C in the send (no Exception leaves it)
            give_back_interrupted(record)
            raise

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        wanted = checkout_policy(policy)
        reassert_session(dbapi_conn, record.info, facts, wanted, ctx, secrets)

    def _read_back_after_error(context: Any) -> None:
        conn = context.root_connection
        dbapi_conn = conn.connection.dbapi_connection
        rawguard.mark_reassert(dbapi_conn)
        refused: ReadOnlyViolation | None = None
        try:
            verify_session(dbapi_conn, facts, policy)
        except ReadOnlyViolation as exc:
            refused = exc
        except drivers.errors(ConnectionFailed):  # (a reply out of step: closed)
            conn.invalidate()
            raise ReadOnlyViolation(
                "The session could not be checked after the statement failed; the "
                "connection was dropped. Run the query again."
            ) from None
        if refused is not None and not refused.fields.get("restored"):
            conn.invalidate()
            raise refused
        # a function that raised after it made a temporary table or set a role left them on
        # a connection the caller keeps (jupysql's, a `with engine.connect()` block): reset
        # as after a statement that succeeded (`install_session_check`; round 52)
        try:
            reset_session(dbapi_conn, facts, policy)
        except drivers.errors(DisconnectionError):
            conn.invalidate()
            raise ReadOnlyViolation(
                "The connection could not be reset after the statement failed; it was "
                "dropped. Run the query again."
            ) from None
        if refused is not None:
            raise refused

    install_driver_errors(
        engine,
        ctx,
        secrets,
        drivers.errors(),
        is_gone,
        after_error=_read_back_after_error if policy.read_only else None,
        before_send=_sending,
    )
    if use_guard:
        install_final_text_guard(engine, facts, policy)
    if policy.read_only:
        install_session_check(engine, facts, policy)
    install_error_translation(engine, ctx)
    _install_checked_params(engine)
    return engine


def give_back_interrupted(record: Any) -> None:
    """A KeyboardInterrupt in the checkin's send: the record still goes back to the pool.

    SQLAlchemy returns the record after the checkin event, so an interrupt that escapes
    the event (on mysqlclient the reset can be a blocking round trip) lost the pool slot
    for good; once pool_size + max_overflow were lost, every read waited pool_timeout and
    failed (round 48). Here, as SQLAlchemy 2.1 does for an interrupted reset (#13699): the
    record is invalidated (its connection closed, whatever reply it owed with it; the next
    checkout opens a new connection) and returned; then the interrupt goes on. The
    interrupted proxy cannot give the record back again: its own count of closes is spent,
    and the collector's clean-up skips a record another checkout holds."""
    record.invalidate()  # closes the connection: whatever reply it owed goes with it
    record._ConnectionRecord__pool._return_conn(record)


#: what every login reads first; on MariaDB (the `/*M!` comment runs there only) also the
#: login's role (`drivers.remember_role`)
LOGIN_SQL = "SELECT VERSION(), @@session.time_zone /*M!100005 , CURRENT_ROLE() */"


class CheckedConnection(Connection):
    """A connection whose `exec_driver_sql` and `execute` check the shape of the parameters
    a caller gives before SQLAlchemy reads them (`values.driver_sql_params`, `core_params`):
    SQLAlchemy refuses a `pd.Series` or a list of values with a raw `ArgumentError`, before
    any event of the engine sees the parameters."""

    def exec_driver_sql(self, statement: Any, parameters: Any = None, *a: Any, **kw: Any) -> Any:
        return super().exec_driver_sql(statement, driver_sql_params(parameters), *a, **kw)

    def execute(self, statement: Any, parameters: Any = None, *a: Any, **kw: Any) -> Any:
        return super().execute(statement, core_params(parameters), *a, **kw)


def _sending(cursor: Any, statement: str) -> None:
    """The engine hands `statement` to the driver: the text the final-text hook approved
    passes the driver's `query()` now, and only now (`rawguard.expect`)."""
    rawguard.sending(cursor.connection, statement)


def _install_checked_params(engine: Engine) -> None:
    """Every connection of the engine (and of its `execution_options` copies, which share
    its events) is a `CheckedConnection`."""

    @event.listens_for(engine, "engine_connect")
    def _checked(conn: Connection) -> None:
        if type(conn) is Connection:
            conn.__class__ = CheckedConnection


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
    install_driver_errors(
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
