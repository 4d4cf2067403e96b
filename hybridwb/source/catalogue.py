"""Server errors -> one-line messages that say what to do.

Pure: `translate(exc, context)` maps a driver error (pymysql / sqlite3, as wrapped by
SQLAlchemy) to a `HybridwbError` subclass. Messages never contain passwords.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable
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
    1064: (QueryError, "Syntax error: {detail}; fix the SQL."),
    # a SELECT denied is a read the account lacks (`read_denied_message`), not a write
    1142: (ReadOnlyViolation, "{detail}; the account is read-only, as it should be."),
    1143: (ReadOnlyViolation, "{detail}; the account is read-only, as it should be."),
    1146: (QueryError, "{table} doesn't exist; list the tables with SHOW TABLES."),
    # text of two collations compared (a relation or a condition across tables whose
    # columns differ): the server will not choose one
    **dict.fromkeys(
        (1267, 1270, 1271),
        (
            QueryError,
            "{detail}: the query compares text of collations the server will not compare; "
            "relate or compare columns of one collation (in a saved query, add COLLATE to "
            "one side), or ask the DBA to give both columns one collation.",
        ),
    ),
    1153: (
        QueryError,
        "The statement with its values is larger than the server's max_allowed_packet; "
        "bind fewer or shorter values, or set max_statement_mb below that size.",
    ),
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
    # 2002: libmariadb's (mysqlclient's) "Can't connect to server on '…'", whose quotes
    # the value scrub read as a literal ("Can'?'"); 2003: PyMySQL's
    2002: (
        ConnectionFailed,
        "Cannot reach MySQL at {host}; is the server running? Check MYSQL_HOST and MYSQL_PORT.",
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
        re.compile(r"no such table"),
        QueryError,
        "{table} does not exist; list the tables with SHOW TABLES.",
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
        re.compile(r"syntax error|incomplete input|unrecognized token"),
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
    """A hybridwb message without the literals and values it may quote (a guard refusal
    quotes a piece of the statement, `repr`-escaped). Server text goes through
    `server_text` instead, which trusts no quoting.

    MySQL quotes what it complains about: a column name (kept when it is a plain name that
    is not one of the values), a clause name (kept), or a piece of the statement after
    `near` (kept with every literal replaced by `?`); any other quoted text becomes `'?'`,
    and any bound value still found in the text is cut out too."""
    from hybridwb.source.guard import normalize

    hidden = _hidden(values)
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


#: what starts a quotation in a server message: ASCII quotes, the backtick and the backslash
#: that escapes one, typographic and CJK quotes. The server does not escape a quote inside
#: a value it echoes, so no quote pairing is trusted.
QUOTES = "'\"`\\\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2039\u203a\u00ab\u00bb"
QUOTES += "\u300c\u300d\u300e\u300f\u3008\u3009\u300a\u300b\u301d\u301e\u301f\uff02\uff07"
_QUOTE = re.compile("[" + re.escape(QUOTES) + "]")
#: a line break, NUL or other control character: what follows may be a value running on
_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: SQLite messages that echo a name of the statement without quotes (`no such column: 백지훈`)
_SQLITE_ECHO = re.compile(
    r"(no such (?:column|table|function|index|view|module|collation sequence)"
    r"|ambiguous column name|unrecognized token): "
)
#: a table name shown in "does not exist": plain ASCII, starting with a letter (a value
#: typed in FROM by mistake is rare; one with `@`, `-`, a space or Hangul is never shown)
_ASCII_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?")
_MYSQL_NO_TABLE = re.compile(r"\ATable '([^']*)' doesn't exist\Z")
#: the server's words after its closing quote: a space, then letters and light punctuation
#: (` does not exist`, ` for key`); no digit or `@`, so never a phone or an email
_SERVER_WORDS = re.compile(r" [A-Za-z ,.()_/-]{0,80}")
#: MySQL cuts its messages at 512 bytes: a message this long may have lost the closing
#: quote, so the text after the last quote could be the rest of a value
_CUT_AT = 400


def server_text(text: str, values: Iterable[object] = ()) -> str:
    """A server or driver message as hybridwb shows or stores it: the one rule for every
    error text that came from a database.

    Everything from the first quote to the last one becomes `'?'` (a value the server
    echoed, with any quote inside it); the server's words after the last quote are kept
    when they are a few plain words (no digit, no `@`) and the message is too short to
    have been cut by the server (else that quote may be inside the value). The text ends at a line break or control character
    (Postgres adds the statement on later lines; a value may hold a newline or a NUL), a
    name SQLite echoes unquoted becomes `?`, and any bound value still found goes too."""
    first = _QUOTE.search(text)
    if first is not None:
        last = max(m.start() for m in _QUOTE.finditer(text))
        tail = text[last + 1 :] if last > first.start() else ""
        if len(text.encode("utf-8", "replace")) >= _CUT_AT or not _SERVER_WORDS.fullmatch(tail):
            tail = ""
        text = text[: first.start()] + "'?'" + tail
    line_end = _BREAK.search(text)
    if line_end is not None:
        text = text[: line_end.start()]
    echo = _SQLITE_ECHO.search(text)
    if echo is not None:
        name = text[echo.end() :]
        table = echo.group(1) == "no such table" and _ASCII_NAME.fullmatch(name)
        text = text[: echo.end()] + (name if table else "?")
    for value in sorted(_hidden(values), key=len, reverse=True):
        text = text.replace(value, "?")
    return " ".join(text.split())


def _hidden(values: Iterable[object]) -> set[str]:
    return {str(v) for v in values if v is not None and len(str(v)) >= 2}


#: the part of a statement MySQL names after an unknown column (`in 'where clause'`,
#: MariaDB 11: `in 'WHERE'`), at the very end of its message
_WHERE = re.compile(r" in '([A-Za-z/ ]{2,30})'\Z")
_CLAUSE_NAMES = {
    "FIELD LIST": "SELECT",
    "WHERE CLAUSE": "WHERE",
    "ORDER CLAUSE": "ORDER BY",
    "GROUP STATEMENT": "GROUP BY",
    "HAVING CLAUSE": "HAVING",
    "ON CLAUSE": "ON",
    "FROM CLAUSE": "FROM",
    "IN/ALL/ANY SUBQUERY": "subquery",
    **{w: w for w in ("SELECT", "WHERE", "ORDER BY", "GROUP BY", "HAVING", "ON", "FROM")},
    **{w: w for w in ("SET", "VALUES", "RETURNING", "PARTITION BY", "USING")},
}
_UNKNOWN_COLUMN = re.compile(r"\AUnknown column '(.*)' in '|\Ano such column: (.*)\Z", re.DOTALL)
_NEAR_AT_END = re.compile(r" near '(.*)' at line (\d+)\Z", re.DOTALL)


def unknown_column_message(raw: str, names: Collection[str] = ()) -> str | None:
    """The message for "unknown column" (MySQL 1054, SQLite "no such column"), or None.

    The name is not shown: an unknown column is often a value typed without quotes
    (`WHERE name = 백지훈`). What helps instead: the part of the statement (when the
    server says), a column of the schema that the name is close to, and the usual fix."""
    match = _UNKNOWN_COLUMN.search(raw)
    if match is None:
        return None
    typed = (match.group(1) if match.group(1) is not None else match.group(2)) or ""
    where = _WHERE.search(raw)
    part = _CLAUSE_NAMES.get(where.group(1).upper()) if where else None
    text = "Unknown column" + (f" in the {part} part" if part else "")
    close = difflib.get_close_matches(typed.split(".")[-1].lower(), sorted(names), 1, 0.75)
    if close:
        text += f" (did you mean {close[0]}?)"
    return f"{text}; check the column names (DESCRIBE the table) and put text values in quotes."


_READ_DENIED = re.compile(r"\ASELECT command denied to user ")
_COLUMN_DENIED = re.compile(r" for column '(.*)' in table '(.*)'\Z", re.DOTALL)
_TABLE_DENIED = re.compile(r" for table [`'](.*)[`']\Z", re.DOTALL)


def read_denied_message(raw: str, names: Collection[str] = ()) -> str:
    """The message for a SELECT the account may not run (MySQL 1142 a table, 1143 a column),
    which is not a write refused: the account lacks a read it needs.

    The column is named only when it resolves against the schema (`names`): for a column
    it may not read, the server names whatever the statement used there, which may be a
    value typed without quotes (`WHERE name = 백지훈`). A table is named when it is a plain
    ASCII name, as for a missing table."""
    column = _COLUMN_DENIED.search(raw)
    if column is not None:
        table = _plain(column.group(2))
        name = column.group(1)
        where = f" of {table}" if table else ""
        if name.lower() in names:
            return (
                f"The account may not read the column {name}{where} (it may SELECT only "
                f"some columns); map or select another column, or ask the DBA for SELECT "
                f"on {name}."
            )
        return (
            f"The account may not read a column this query names{where} (it may SELECT "
            "only some columns); use only the columns it may read (DESCRIBE lists them), "
            "or ask the DBA for SELECT on that column."
        )
    found = _TABLE_DENIED.search(raw)
    table = _plain(found.group(1).replace("`.`", ".")) if found else ""
    what = f"the table {table}" if table else "a table of the query"
    return (
        f"The account may not read {what} (or not every column of it, as SELECT * needs); "
        "name only the columns it may read, or ask the DBA for SELECT on it."
    )


def _plain(name: str) -> str:
    """`name` when it is a plain ASCII (schema.)table name, else ''."""
    return name if _ASCII_NAME.fullmatch(name) else ""


def syntax_detail(raw: str, values: Iterable[object], names: Collection[str] | None) -> str:
    """MySQL's syntax error with the statement piece after `near` as the query log shows
    it (literals and unknown names as `?`), instead of the server's raw copy."""
    from hybridwb.source.querylog import log_text_of

    near = _NEAR_AT_END.search(raw)
    if near is None:
        return server_text(raw, values)
    fragment = log_text_of(near.group(1), frozenset() if names is None else names)
    if fragment == "<unparseable statement>" or "'" in fragment:
        fragment = "?"
    words = fragment.split()
    fragment = " ".join(words[:12]) + (" …" if len(words) > 12 else "")
    head = server_text(raw[: near.start()], values)
    return f"{head} near '{fragment}' at line {near.group(2)}"


def translate(
    exc: BaseException,
    ctx: Context,
    values: Iterable[object] = (),
    names: Callable[[], Collection[str]] | None = None,
) -> HybridwbError:
    """One clear error for a driver error, the server's text passed through `server_text`
    (no echoed value, no unknown name); the type name and code of the cause are kept as
    fields. `names` gives the live schema's names in lower case (for hints and for the
    statement piece of a syntax error); without it every name there is shown as `?`."""
    orig = getattr(exc, "orig", None) or exc
    code = error_code(exc)
    args: tuple[Any, ...] = getattr(orig, "args", ())
    raw = str(args[1]) if len(args) > 1 else str(orig)
    cause = type(orig).__name__
    if code in (1054, None) and _UNKNOWN_COLUMN.search(raw):
        message = unknown_column_message(raw, _names(names))
        return QueryError(message or "Unknown column.", code=code, cause=cause)
    if code in (1142, 1143) and _READ_DENIED.match(raw):
        return QueryError(read_denied_message(raw, _names(names)), code=code, cause=cause)
    if code == 1064:
        detail = syntax_detail(raw, values, _names(names) if names is not None else None)
    else:
        detail = server_text(raw, values)
    fill = {
        "host": ctx.host,
        "database": ctx.database,
        "user": ctx.user,
        "timeout": f"{ctx.timeout:g}" if ctx.timeout else "?",
        "detail": detail.rstrip("."),
        "table": _table_named(raw),
    }
    if code in CATALOGUE:
        cls, template = CATALOGUE[code]
        return cls(template.format(**fill), code=code, cause=cause)
    for pattern, cls, template in _SQLITE_PATTERNS:
        if pattern.search(detail):
            return cls(template.format(**fill), code=code, cause=cause)
    if code is not None and (2000 <= code < 3000 or code in RETRYABLE_CODES):
        # (the client's own codes, and a lost session; 3000 and up are the server's:
        # MariaDB's 4078 "Illegal parameter data types" is a refused statement)
        return ConnectionFailed(
            f"MySQL client error {code}: {fill['detail']}.", code=code, cause=cause
        )
    return QueryError(f"The server rejected the query: {fill['detail']}.", code=code, cause=cause)


def _table_named(raw: str) -> str:
    """`Table 'db.t'` / `Table t` for a missing table whose name is plain ASCII, else a
    phrase without it."""
    mysql = _MYSQL_NO_TABLE.match(raw)
    name = mysql.group(1) if mysql else raw.partition("no such table: ")[2]
    if name and _ASCII_NAME.fullmatch(name):
        return f"Table '{name}'" if mysql else f"Table {name}"
    return "A table of the query"


def _names(names: Callable[[], Collection[str]] | None) -> Collection[str]:
    """The schema's names, or none when they cannot be read (a hint is never worth an error)."""
    if names is None:
        return frozenset()
    try:
        return names()
    except Exception:
        return frozenset()
