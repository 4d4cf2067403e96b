"""Server errors -> one-line messages that say what to do.

Pure: `translate(exc, context)` maps a driver error (pymysql / sqlite3, as wrapped by
SQLAlchemy) to a `HybridwbError` subclass. Messages never contain passwords.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hybridwb.errors import (
    ConnectionFailed,
    HybridwbError,
    QueryError,
    QueryTimeout,
    ReadOnlyViolation,
)


@dataclass(frozen=True)
class Context:
    host: str = ""
    database: str = ""
    user: str = ""
    timeout: float | None = None


#: MySQL/MariaDB error code -> (class, template). Templates may use {host} {database}
#: {user} {timeout} {detail}.
CATALOGUE: dict[int, tuple[type[HybridwbError], str]] = {
    1044: (ConnectionFailed, "User {user} may not use database {database}; ask for SELECT on it."),
    1045: (
        ConnectionFailed,
        "MySQL refused the login for {user}; check MYSQL_READ_USER and MYSQL_READ_PASSWORD.",
    ),
    1049: (ConnectionFailed, "Database {database} does not exist; check MYSQL_DATABASE."),
    1054: (QueryError, "{detail}; check the column name (DESCRIBE the table)."),
    1064: (QueryError, "Syntax error: {detail}; fix the SQL."),
    1142: (ReadOnlyViolation, "{detail}; the account is read-only, as it should be."),
    1143: (ReadOnlyViolation, "{detail}; the account is read-only, as it should be."),
    1146: (QueryError, "{detail}; list the tables with SHOW TABLES."),
    1227: (ReadOnlyViolation, "{detail}; the account lacks that privilege."),
    1317: (QueryTimeout, "The query was interrupted on the server; run it again."),
    1290: (ReadOnlyViolation, "The server runs read-only: {detail}."),
    1792: (
        ReadOnlyViolation,
        "The session is READ ONLY, so the server refused to write; hybridwb only reads.",
    ),
    1969: (
        QueryTimeout,
        "The query ran past its {timeout}s limit and was stopped on the server; "
        "add a WHERE on an indexed column or pass a larger timeout.",
    ),
    3024: (
        QueryTimeout,
        "The query ran past its {timeout}s limit and was stopped on the server; "
        "add a WHERE on an indexed column or pass a larger timeout.",
    ),
    2003: (
        ConnectionFailed,
        "Cannot reach MySQL at {host}; is the server running? Check MYSQL_HOST and MYSQL_PORT.",
    ),
    2005: (ConnectionFailed, "Unknown MySQL host {host}; check MYSQL_HOST."),
    2006: (ConnectionFailed, "The MySQL server went away; run the query again."),
    2013: (ConnectionFailed, "Lost the connection to MySQL during the query; run it again."),
}
RETRYABLE_CODES = frozenset({2006, 2013, 2014, 2045, 2055, 4031})

_SQLITE_PATTERNS: list[tuple[re.Pattern[str], type[HybridwbError], str]] = [
    (
        re.compile(r"no such table: (\S+)"),
        QueryError,
        "Table {0} does not exist; list tables with SHOW TABLES.",
    ),
    (
        re.compile(r"no such column: (\S+)"),
        QueryError,
        "Unknown column {0}; check the column name.",
    ),
    (
        re.compile(r"interrupted"),
        QueryTimeout,
        "The query ran past its {timeout}s limit and was stopped.",
    ),
    (
        re.compile(r"readonly|read-only|attempt to write"),
        ReadOnlyViolation,
        "The sample source is read-only; hybridwb only reads.",
    ),
    (
        re.compile(r"syntax error|near \"(.*)\""),
        QueryError,
        "Syntax error ({detail}); fix the SQL.",
    ),
]


def error_code(exc: BaseException) -> int | None:
    """The numeric server error code inside a driver or SQLAlchemy error."""
    orig = getattr(exc, "orig", exc)
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_retryable(exc: BaseException) -> bool:
    return bool(getattr(exc, "connection_invalidated", False)) or error_code(exc) in RETRYABLE_CODES


#: quoted fragments a server message may echo that are never customer data
_CLAUSES = frozenset(
    {
        "field list",
        "where clause",
        "order clause",
        "group statement",
        "having clause",
        "on clause",
        "IN/ALL/ANY subquery",
        "from clause",
    }
)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.|'')*)'|\"((?:[^\"\\]|\\.)*)\"")
_NEAR = re.compile(r"near '(.*)' at line (\d+)", re.DOTALL)
_PLAIN_NAME = re.compile(r"[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)*")


def redact(detail: str, values: Iterable[object] = ()) -> str:
    """A server message without the literals and values it echoes.

    MySQL quotes what it complains about: a column name (kept when it is a plain name that
    is not one of the values), a clause name (kept), or a piece of the statement after
    `near` (kept with every literal replaced by `?`); any other quoted text becomes `'?'`,
    and any bound value still found in the text is cut out too."""
    from hybridwb.source.guard import normalize

    hidden = {str(v) for v in values if v is not None and len(str(v)) >= 2}
    near = _NEAR.search(detail)
    tail = ""
    if near:
        fragment = normalize(near.group(1))
        if fragment == "<unparseable statement>" or "'" in fragment:
            fragment = "?"
        tail = f"near '{fragment}' at line {near.group(2)}"
        detail = detail[: near.start()]

    def keep_or_hide(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        if inner in _CLAUSES or (_PLAIN_NAME.fullmatch(inner) and inner not in hidden):
            return match.group(0)
        return "'?'"

    detail = _QUOTED.sub(keep_or_hide, detail) + tail
    for value in sorted(hidden, key=len, reverse=True):
        detail = detail.replace(value, "?")
    return " ".join(detail.split())


def translate(exc: BaseException, ctx: Context, values: Iterable[object] = ()) -> HybridwbError:
    """One clear error for a driver error, literals and `values` removed from what the
    server echoed; the type name and code of the cause are kept as fields."""
    orig = getattr(exc, "orig", None) or exc
    code = error_code(exc)
    args: tuple[Any, ...] = getattr(orig, "args", ())
    detail = redact(str(args[1]) if len(args) > 1 else str(orig), values)
    cause = type(orig).__name__
    fill = {
        "host": ctx.host,
        "database": ctx.database,
        "user": ctx.user,
        "timeout": f"{ctx.timeout:g}" if ctx.timeout else "?",
        "detail": detail.rstrip("."),
    }
    if code in CATALOGUE:
        cls, template = CATALOGUE[code]
        return cls(template.format(**fill), code=code, cause=cause)
    for pattern, cls, template in _SQLITE_PATTERNS:
        match = pattern.search(detail)
        if match:
            return cls(template.format(*match.groups(), **fill), code=code, cause=cause)
    if code is not None and code >= 2000:
        return ConnectionFailed(
            f"MySQL client error {code}: {fill['detail']}.", code=code, cause=cause
        )
    return QueryError(f"The server rejected the query: {fill['detail']}.", code=code, cause=cause)
