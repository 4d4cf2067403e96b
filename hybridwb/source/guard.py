"""Layer one of the read-only guarantee: a parser-based guard (sqlglot).

`check(sql)` admits exactly one read statement and refuses everything else with a
`ReadOnlyViolation` that says why and what to do instead. It works on sqlglot's tokens as
well as its AST, because some of what the server runs never reaches an AST: MySQL
*executable comments* (`/*! ... */`, `/*M! ... */`) look like comments to a parser but are
executed by the server, so they are refused outright.

The guard is a pure function over text; it is applied by `Source` before every statement
and, as a safety net, by an engine event for statements that reach the engine another way
(pandas, jupysql).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from hybridwb.errors import QueryError, ReadOnlyViolation

MAX_QUERY_BYTES = 256 * 1024

#: Functions that sleep, take locks, read files, wait on replication or touch sequences.
DANGEROUS_FUNCTIONS = frozenset(
    {
        "SLEEP",
        "BENCHMARK",
        "GET_LOCK",
        "RELEASE_LOCK",
        "RELEASE_ALL_LOCKS",
        "IS_FREE_LOCK",
        "IS_USED_LOCK",
        "LOAD_FILE",
        "MASTER_POS_WAIT",
        "MASTER_GTID_WAIT",
        "SOURCE_POS_WAIT",
        "WAIT_FOR_EXECUTED_GTID_SET",
        "WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS",
        "SYS_EXEC",
        "SYS_EVAL",
        "NEXTVAL",
        "SETVAL",
        "LASTVAL",
        "LAST_INSERT_ID",
        "SET_VAR",
        "UPDATEXML",
        "EXTRACTVALUE",
    }
)

_WRITE_NODES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Command,
    exp.Set,
    exp.Use,
    exp.Grant,
)
_READ_ROOTS = (exp.Select, exp.SetOperation, exp.Subquery, exp.Show, exp.Describe)
_LITERAL_TOKENS = frozenset(
    {
        TokenType.STRING,
        TokenType.NUMBER,
        TokenType.NATIONAL_STRING,
        TokenType.HEX_STRING,
        TokenType.BIT_STRING,
        TokenType.BYTE_STRING,
        TokenType.RAW_STRING,
    }
)
_QUOTED_TOKENS = _LITERAL_TOKENS | {TokenType.IDENTIFIER}
_DIALECT = sqlglot.Dialect.get_or_raise("mysql")


@dataclass(frozen=True)
class Checked:
    """A statement the guard admitted: its parsed form and its kind."""

    sql: str
    expression: exp.Expression
    kind: str  # select | show | describe
    tokens: tuple[Token, ...]

    @property
    def has_limit(self) -> bool:
        return self.kind == "select" and self.expression.args.get("limit") is not None

    def normalized(self) -> str:
        """The statement with every literal replaced by `?` (safe for logs)."""
        return normalize_tokens(self.tokens)


def _refuse(what: str, todo: str) -> ReadOnlyViolation:
    return ReadOnlyViolation(f"Refused: {what}; hybridwb only reads. {todo}", reason=what)


def check_text(sql: object) -> str:
    """Refuse input that is not a usable query text (type, encoding, size, empty)."""
    if isinstance(sql, bytes | bytearray):
        try:
            sql = bytes(sql).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise QueryError(
                "The query is not valid UTF-8; save the text as UTF-8 and try again."
            ) from exc
    if not isinstance(sql, str):
        raise QueryError(f"The query must be text, not {type(sql).__name__}.")
    try:
        size = len(sql.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise QueryError(
            "The query is not valid UTF-8 (it holds a lone surrogate); retype the odd character."
        ) from exc
    if size > MAX_QUERY_BYTES:
        raise QueryError(
            f"The query is {size:,} bytes; the limit is {MAX_QUERY_BYTES:,}. "
            "Put long value lists in a bound parameter (:ids) instead of the text."
        )
    if "\x00" in sql:
        raise QueryError("The query contains a NUL character; remove it.")
    if not sql.strip().strip(";").strip():
        raise QueryError("The query is empty; write one SELECT statement.")
    return sql


def _check_tokens(tokens: list[Token]) -> None:
    for i, tok in enumerate(tokens):
        for comment in tok.comments or ():
            if comment.lstrip().startswith(("!", "M!")):
                raise _refuse(
                    "an executable comment (/*! ... */) runs on the server",
                    "Remove the /*! ... */ part.",
                )
        # quoted names and literals may spell any keyword; only bare words count
        upper = "" if tok.token_type in _QUOTED_TOKENS else tok.text.upper()
        if tok.token_type == TokenType.HINT and "SET_VAR" in upper:
            raise _refuse("a SET_VAR hint changes session settings", "Remove the hint.")
        if tok.token_type == TokenType.COLON_EQ:
            raise _refuse("':=' assigns a variable", "Compute the value in a column or in Python.")
        if tok.token_type in (TokenType.INTO,) or upper in ("OUTFILE", "DUMPFILE"):
            raise _refuse(
                "INTO writes a file, a variable or a table",
                "Drop the INTO clause; the rows come back to the notebook.",
            )
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if (
            nxt is not None
            and nxt.token_type == TokenType.L_PAREN
            and tok.text.upper() in DANGEROUS_FUNCTIONS
        ):
            raise _refuse(
                f"{tok.text.upper()}() can sleep, lock, read server files or change state",
                "Remove the call.",
            )
        if upper == "PROCEDURE":
            raise _refuse("PROCEDURE runs server code", "Remove the PROCEDURE clause.")
        if upper == "NEXT" and nxt is not None and nxt.text.upper() == "VALUE":
            raise _refuse("NEXT VALUE FOR advances a sequence", "Remove it.")
        if tok.token_type == TokenType.LOCK and i > 0:
            raise _refuse("LOCK IN SHARE MODE takes row locks", "Remove it; a plain SELECT reads.")
        if (
            tok.token_type == TokenType.FOR
            and nxt is not None
            and nxt.text.upper()
            in (
                "UPDATE",
                "SHARE",
            )
        ):
            raise _refuse(
                f"FOR {nxt.text.upper()} takes row locks", "Remove it; a plain SELECT reads."
            )


def _check_tree(expression: exp.Expression) -> None:
    for node in expression.walk():
        if isinstance(node, _WRITE_NODES):
            raise _refuse(
                f"{type(node).__name__.upper()} is not a read statement",
                "Use SELECT, SHOW, DESCRIBE or EXPLAIN.",
            )
        if isinstance(node, exp.Lock):
            raise _refuse("a locking read takes row locks", "Remove FOR UPDATE / FOR SHARE.")
        if isinstance(node, exp.Into):
            raise _refuse("INTO writes somewhere", "Drop the INTO clause.")
        if isinstance(node, exp.PropertyEQ):
            raise _refuse("':=' assigns a variable", "Compute the value in a column.")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).upper()
            if name in DANGEROUS_FUNCTIONS:
                raise _refuse(f"{name}() is not allowed", "Remove the call.")


def check(sql: object, *, allowed_functions: Iterable[str] = ()) -> Checked:
    """Admit one read statement or raise `ReadOnlyViolation` / `QueryError`.

    `allowed_functions`: stored functions a DBA vetted (stub until stored-function
    detection lands here)."""
    text = check_text(sql)
    try:
        tokens = _DIALECT.tokenize(text)
    except TokenError as exc:
        raise QueryError(f"The query does not tokenize: {exc}. Check quotes.") from exc
    if not tokens:
        raise QueryError("The query holds only comments; write one SELECT statement.")
    _check_tokens(tokens)
    first = tokens[0].text.upper()
    if first in ("ANALYZE", "HANDLER", "CALL", "DO", "LOAD", "REPLACE", "LOCK", "UNLOCK"):
        raise _refuse(f"{first} is not a read statement", "Use SELECT or EXPLAIN.")
    try:
        statements = [e for e in _DIALECT.parser().parse(tokens, text) if e is not None]
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        where = f" at line {err.get('line')}, column {err.get('col')}" if err else ""
        desc = err.get("description", "invalid syntax") if err else str(exc)
        raise QueryError(
            f"Syntax error{where}: {desc}. Fix the SQL (MySQL dialect).",
            line=err.get("line"),
            column=err.get("col"),
        ) from exc
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements in one query", "Run one statement at a time.")
    expression = statements[0]
    if not isinstance(expression, _READ_ROOTS):
        raise _refuse(
            f"{type(expression).__name__.upper()} is not a read statement",
            "Use SELECT, SHOW, DESCRIBE or EXPLAIN.",
        )
    _check_tree(expression)
    kind = (
        "show"
        if isinstance(expression, exp.Show)
        else "describe"
        if isinstance(expression, exp.Describe)
        else "select"
    )
    return Checked(text, expression, kind, tuple(tokens))


def normalize_tokens(tokens: tuple[Token, ...] | list[Token]) -> str:
    return " ".join("?" if t.token_type in _LITERAL_TOKENS else t.text for t in tokens)


def normalize(sql: str) -> str:
    """Replace literals with `?` so no customer data lands in a log; never raises."""
    try:
        return normalize_tokens(_DIALECT.tokenize(sql))
    except Exception:  # a log line must never fail the query it describes
        return "<unparseable statement>"
