"""Engines for the source: one place that opens connections to MySQL or the SQLite sample.

Layer two of the read-only guarantee lives here: every new session is put in
`READ ONLY` mode with a server-side statement time limit before anyone can use it.
"""

from __future__ import annotations

import re
import sqlite3
import ssl as ssl_module
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from hybridwb.source import guard

_PYFORMAT = re.compile(r"%\(\w+\)s|%s")
#: schema pragmas SQLAlchemy's inspector sends to the (query_only) SQLite sample
_SQLITE_SCHEMA_PRAGMA = re.compile(
    r"^\s*PRAGMA\s+(\"?(main|temp)\"?\.)?(table_x?info|index_list|index_x?info|foreign_key_list)\s*\(",
    re.IGNORECASE,
)


@dataclass
class SessionFacts:
    """What the first connection told us about the server (filled on connect)."""

    flavour: str = "unknown"  # MariaDB | MySQL | SQLite
    version: str = ""
    timeout_variable: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def statement_timeout_sql(flavour: str, seconds: float) -> str:
    """The SET statement that limits statement time on this server flavour."""
    if flavour == "MariaDB":
        return f"SET SESSION max_statement_time = {float(seconds):.3f}"
    return f"SET SESSION max_execution_time = {int(seconds * 1000)}"


def mysql_engine(
    url: URL,
    facts: SessionFacts,
    *,
    statement_timeout: float,
    connect_timeout: int,
    read_timeout: int,
    ssl_ca: str | None = None,
    ssl_mode: str | None = None,
    use_guard: bool = True,
    pool_size: int = 5,
    max_overflow: int = 20,
) -> Engine:
    connect_args: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "write_timeout": read_timeout,
        "charset": "utf8mb4",
    }
    mode = (ssl_mode or "").upper()
    if ssl_ca or mode in ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"):
        context = ssl_module.create_default_context(cafile=ssl_ca or None)
        if mode in ("REQUIRED", ""):
            context.check_hostname = False
            if not ssl_ca:
                context.verify_mode = ssl_module.CERT_NONE
        elif mode == "VERIFY_CA":
            context.check_hostname = False
        connect_args["ssl"] = context
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=30,
        connect_args=connect_args,
    )

    @event.listens_for(engine, "connect")
    def _read_only_session(dbapi_conn: Any, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("SELECT VERSION()")
            version = str(cursor.fetchone()[0])
            facts.version = version
            facts.flavour = "MariaDB" if "mariadb" in version.lower() else "MySQL"
            facts.timeout_variable = (
                "max_statement_time" if facts.flavour == "MariaDB" else "max_execution_time"
            )
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.execute(statement_timeout_sql(facts.flavour, statement_timeout))
        finally:
            cursor.close()
        dbapi_conn.commit()

    if use_guard:
        _install_guard(engine)
    return engine


def sqlite_engine(path: Path, facts: SessionFacts, *, use_guard: bool = True) -> Engine:
    """The embedded sample, opened read-only by the file system and by SQLite itself."""

    def creator() -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        return conn

    facts.flavour = "SQLite"
    facts.version = sqlite3.sqlite_version
    engine = create_engine("sqlite://", creator=creator, poolclass=NullPool)
    if use_guard:
        _install_guard(engine)
    return engine


def _install_guard(engine: Engine) -> None:
    """Guard statements that reach the engine without going through `Source.sql`."""

    @event.listens_for(engine, "before_cursor_execute")
    def _guard(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        options = context.execution_options if context is not None else {}
        if options.get("hybridwb_checked") or _SQLITE_SCHEMA_PRAGMA.match(statement):
            return
        guard.check(_PYFORMAT.sub("?", statement))
