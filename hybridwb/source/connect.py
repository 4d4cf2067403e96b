"""Logging in to MySQL: the driver's connect arguments, the URL options refused, and the
password handed to the driver by `do_connect` from a `SecretStr` (it is not in the
engine's URL at all).
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, event

from hybridwb.errors import ConfigError, HybridwbError
from hybridwb.source import catalogue, drivers, rawguard
from hybridwb.source.driver_errors import Secrets, driver_error


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


def install_connect(
    engine: Engine,
    password: SecretStr | None,
    ctx: catalogue.Context,
    secrets: Secrets,
    *,
    guarded: bool = False,
    on_login: Callable[[Any], None] | None = None,
) -> None:
    """Log in with the password from its holder; a refused login is a hybridwb error.

    `on_login(conn)` runs on the new connection before SQLAlchemy or any pool listener sees
    it (hybridwb's session SET and the driver-level guard's arming): a caller's own
    `connect` listener inserted first, or a `first_connect` one, gets a connection that is
    already READ ONLY and guarded, never the fresh writable session."""

    @event.listens_for(engine, "do_connect")
    def _do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        conn, failed = _open_mysql(dialect, cargs, cparams, password, guarded)
        if failed is None:
            if on_login is not None:
                try:
                    on_login(conn)
                except BaseException:
                    conn.close()
                    raise
            return conn
        error = failed if isinstance(failed, HybridwbError) else driver_error(failed, ctx, secrets)
        del failed  # a traceback with locals must not show the driver's exception
        raise error
