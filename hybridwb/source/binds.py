"""Bound parameters (pure): found by the MySQL tokenizer, checked, turned into driver text.

A bind is a bare `:name` token: a colon immediately followed by a name, outside string
literals, quoted identifiers and comments (the tokenizer never yields those as `:` tokens).
`':c'`, `'{"a" :1}'`, `` `:c` `` and `-- :c` are text, not binds. Finding binds with a regular
expression would also find them inside quotes, and the driver would then paste a quoted value
into the middle of a string literal after the guard approved it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from hybridwb.errors import BindError, QueryError
from hybridwb.source.guard import check_size
from hybridwb.source.values import exact_value, items_of
from hybridwb.validation import INT64, short

MAX_LIST = 10_000
_NAME = re.compile(r"[A-Za-z_]\w*\Z")
_DIALECT = sqlglot.Dialect.get_or_raise("mysql")
_QUOTED = frozenset(
    {
        TokenType.STRING,
        TokenType.NATIONAL_STRING,
        TokenType.HEX_STRING,
        TokenType.BIT_STRING,
        TokenType.BYTE_STRING,
        TokenType.RAW_STRING,
        TokenType.IDENTIFIER,
    }
)


@dataclass(frozen=True)
class Bind:
    """One `:name` in the text: its name and where it starts and ends (end exclusive)."""

    name: str
    start: int
    end: int


def tokenize(sql: str) -> list[Token]:
    check_size(sql)  # a cell of megabytes is refused unread, as the guard refuses it
    try:
        return _DIALECT.tokenize(sql)
    except TokenError:
        raise QueryError("The query does not tokenize; check the quotes.") from None
    except RecursionError:
        raise QueryError("The query is nested too deeply; simplify it.") from None


def find_binds(sql: str, tokens: list[Token] | None = None) -> list[Bind]:
    """Every bare `:name` outside literals, quoted names and comments, in text order."""
    tokens = tokenize(sql) if tokens is None else tokens
    found: list[Bind] = []
    for colon, name in itertools.pairwise(tokens):
        if (
            colon.token_type == TokenType.COLON
            and name.start == colon.end + 1
            and name.token_type not in _QUOTED
            and _NAME.match(name.text)
            and sql[colon.start : name.end + 1] == ":" + name.text
        ):
            found.append(Bind(name.text, colon.start, name.end + 1))
    return found


def is_code(tokens: list[Token], position: int, types: frozenset[TokenType]) -> bool:
    """True when a token of one of `types` starts exactly at `position` (so the text there is
    SQL, not part of a literal, a quoted name or a comment)."""
    return any(t.start == position and t.token_type in types for t in tokens)


def to_pyformat(sql: str, binds: list[Bind]) -> str:
    """The text for a pyformat driver (PyMySQL): binds become `%(name)s`, every other `%`
    is doubled, so `cursor.mogrify(text, params)` is exactly `sql` with escaped values."""
    out: list[str] = []
    pos = 0
    for bind in binds:
        out.append(sql[pos : bind.start].replace("%", "%%"))
        out.append(f"%({bind.name})s")
        pos = bind.end
    out.append(sql[pos:].replace("%", "%%"))
    return "".join(out)


def check_params(names: Set[str], params: object) -> dict[str, Any]:
    """Each bind the query uses must have a value of a type a driver can send."""
    if type(params) is dict and params.keys() == names:
        # exactly the query's binds (names the tokenizer found: each matches _NAME), so
        # only the values are left to check; statements hybridwb builds always come so
        return _checked_values(dict(params))
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise BindError(
            f"params must be a dict of name -> value, not {type(params).__name__}; "
            "write params={'name': value} and :name in the query."
        )
    params = dict(params)
    for key in params:
        if not isinstance(key, str) or not _NAME.match(key):
            raise BindError(
                f"Parameter name {short(key, 40)} is not a name; use letters, digits and _ (as in :name)."
            )
    missing = sorted(names - params.keys())
    if missing:
        raise BindError(
            f"The query uses :{missing[0]} but no value was given; "
            f"pass params={{'{missing[0]}': ...}}.",
            name=missing[0],
        )
    unused = sorted(params.keys() - names)
    if unused:
        name = unused[0] if len(unused[0]) <= 40 else "name"  # a pasted blob is not echoed
        raise BindError(
            f"Parameter {short(unused[0], 40)} is not used by the query; remove it or add :{name}.",
            name=unused[0],
        )
    return _checked_values(params)


def _checked_values(params: dict[str, Any]) -> dict[str, Any]:
    """`params` with each list-like value as a list and every value as the plain value the
    driver writes exactly (`values.exact_value`), after checking every value."""
    for name, value in params.items():
        kind = type(value)
        # the common cases first, as `_exact` takes them: ASCII text, an int within 64 bits
        if (kind is str and value.isascii()) or (kind is int and value in INT64):
            continue
        listed = items_of(value)  # (the items it holds, not its subclass's `__iter__`)
        if listed is not None:
            if not listed:
                raise BindError(f"Parameter {name!r} is an empty list; IN () matches nothing.")
            if len(listed) > MAX_LIST:
                raise BindError(
                    f"Parameter {name!r} holds {len(listed):,} values; the limit is {MAX_LIST:,}. "
                    "Narrow the list or join on a table instead."
                )
            params[name] = [_exact(name, item) for item in listed]
        else:
            params[name] = _exact(name, value)
    return params


def _exact(name: str, item: object) -> Any:
    kind = type(item)
    # the common cases first: ASCII text holds no lone surrogate; an int (not a bool, a
    # subclass) within 64 bits
    if (kind is str and item.isascii()) or (kind is int and item in INT64):  # type: ignore[attr-defined]
        return item
    if isinstance(item, list | tuple | set | frozenset | dict):
        raise BindError(
            f"Parameter {name!r} is a {kind.__name__}; bind a str, number, date, "
            "or a list of them.",
            name=name,
        )
    return exact_value(name, item)


#: bytes a value other than text counts for (a number or a date is a few dozen at most)
_SMALL_VALUE = 32


def sent_size(sql: str, params: Mapping[str, Any], limit: int) -> int:
    """About how many bytes the statement `sql` with `params` (checked) is as sent: the
    text's and each value's UTF-8 bytes (binary values twice: they may go escaped). Counts
    no further than just past `limit`: a caller asks whether it is over."""
    size = len(sql) if sql.isascii() else len(sql.encode("utf-8"))
    for value in params.values():
        for item in value if type(value) is list else (value,):
            kind = type(item)
            if kind is str:
                size += len(item) if item.isascii() else len(item.encode("utf-8"))
            elif kind is bytes:
                size += 2 * len(item)
            else:
                size += _SMALL_VALUE
            if size > limit:
                return size
    return size


_VALUE_TOKENS = frozenset(
    {
        TokenType.STRING,
        TokenType.NUMBER,
        TokenType.NATIONAL_STRING,
        TokenType.HEX_STRING,
        TokenType.BIT_STRING,
        TokenType.BYTE_STRING,
        TokenType.NULL,
    }
)


def only_values_differ(approved: list[Token], binds: list[Bind], final: list[Token]) -> bool:
    """True when `final` tokenizes as `approved` with each bind replaced by a value: one
    literal (a sign allowed before a number) or a parenthesized list of them, and every other
    token, comment included, the same. Then the final text parses as the approved statement
    with literals in place of placeholders, and checking it again would decide nothing new."""
    bind_starts = {b.start for b in binds}
    i = j = 0
    while i < len(approved):
        tok = approved[i]
        if tok.token_type == TokenType.COLON and tok.start in bind_starts:
            end = _skip_value(final, j)
            # a comment after `:name` belongs to the value's last token in the final text
            if end < 0 or tok.comments or final[end - 1].comments != approved[i + 1].comments:
                return False
            i, j = i + 2, end
            continue
        if j >= len(final) or not _same(tok, final[j]):
            return False
        i += 1
        j += 1
    return j == len(final)


#: what may stand right before a bind (`x = :a`, `(:a`, `,:a`) and right after it (`:a)`,
#: `:a,`, the end) for `values_in_place` to decide without tokenizing: nothing there can
#: join a literal into another token (`N:a` -> N'..' , `x-:a` -> `x--1` a comment, `:a'..'`
#: -> one string with a doubled quote, `_latin1:a` -> an introducer, `0x:a`, `@:a` ...)
_SAFE_BEFORE = frozenset(" \t\n\r(,=")
_SAFE_AFTER = frozenset(" \t\n\r),")
#: the literals the drivers write for a str (quoted; every quote, double quote and backslash
#: escaped by a backslash: PyMySQL and mysqlclient both) and for an int. No bare `"` inside
#: (sqlglot lists `"` among MySQL's string escapes; the server does not). Possessive runs
#: between escapes: a group repeated per character keeps a backtracking entry per
#: character (~140 bytes a byte of a long value); nothing here ever needs to backtrack
_STRING_LITERAL = re.compile(r"'[^'\"\\]*+(?:\\.[^'\"\\]*+)*+'", re.DOTALL)
_INT_LITERAL = re.compile(r"-?[0-9]+")


def values_in_place(sql: str, binds: Sequence[Bind], params: Mapping[str, Any], final: str) -> bool:
    """True when `final` is `sql` with each bind replaced by one str or int literal, each in
    a place where no character next to it can make it part of another token: then `final`
    tokenizes as `sql` with a literal in place of each bind (what `only_values_differ`
    checks by tokenizing), so the same statement was approved. Anything else (another
    value type, a list, a bind next to a letter, a sign, a quote) says False and the caller
    tokenizes. Pure; no tokenizer: it only reads `final` from left to right.

    Relies on what every source session pins (session.py): utf8mb4, in which no byte of a
    multi-byte character is a quote or a backslash, and a sql_mode with backslash escapes
    and without ANSI_QUOTES, so a string literal ends at its first unescaped quote."""
    return values_fit(bind_layout(sql, binds), params, final)


#: `bind_layout`: (text before each bind, that bind's name) in order, and the text after the
#: last bind
Layout = tuple[tuple[tuple[str, str], ...], str]


def bind_layout(sql: str, binds: Sequence[Bind]) -> Layout | None:
    """What `values_in_place` reads `final` against, worked out once per statement (it
    depends on the approved text only): None when a bind stands next to a character that
    could join a literal in its place to another token."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    for bind in binds:
        if bind.start == 0 or sql[bind.start - 1] not in _SAFE_BEFORE:
            return None
        if bind.end < len(sql) and sql[bind.end] not in _SAFE_AFTER:
            return None
        pieces.append((sql[pos : bind.start], bind.name))
        pos = bind.end
    return tuple(pieces), sql[pos:]


def values_fit(layout: Layout | None, params: Mapping[str, Any], final: str) -> bool:
    """`values_in_place` over a statement's `bind_layout`."""
    if layout is None:
        return False
    pieces, tail = layout
    at = 0  # in final
    for piece, name in pieces:
        if not final.startswith(piece, at):
            return False
        at += len(piece)
        value = params.get(name)
        if isinstance(value, str):
            literal = _STRING_LITERAL.match(final, at)
        elif isinstance(value, int) and not isinstance(value, bool):
            literal = _INT_LITERAL.match(final, at)
        else:
            return False
        if literal is None:
            return False
        at = literal.end()
    return len(final) - at == len(tail) and final.startswith(tail, at)


def _same(a: Token, b: Token) -> bool:
    return a.token_type == b.token_type and a.text == b.text and a.comments == b.comments


def _skip_one(final: list[Token], j: int) -> int:
    """The index after one literal at `j` (with its sign), or -1."""
    if j < len(final) and final[j].token_type in (TokenType.DASH, TokenType.PLUS):
        if final[j].comments:
            return -1
        j += 1
    if j < len(final) and final[j].token_type in _VALUE_TOKENS:
        return j + 1
    return -1


def _skip_value(final: list[Token], j: int) -> int:
    """The index after a literal or a `(literal, ...)` list at `j`, or -1; only the last
    token may carry comments (checked by the caller)."""
    if j < len(final) and final[j].token_type == TokenType.L_PAREN:
        j += 1
        while True:
            if final[j - 1].comments:
                return -1
            j = _skip_one(final, j)
            if j < 0 or j >= len(final) or final[j - 1].comments:
                return -1
            if final[j].token_type == TokenType.R_PAREN:
                return j + 1
            if final[j].token_type != TokenType.COMMA:
                return -1
            j += 1
    end = _skip_one(final, j)
    return end


def positive_int_arg(value: object, name: str) -> int:
    """A row count argument (`limit`, `row_cap`): a positive int, never a bool or a str."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BindError(f"{name} must be a positive whole number of rows, not {short(value)}.")
    if value > MAX_ROWS_ARG:
        raise BindError(f"{name} must be at most {MAX_ROWS_ARG:,} rows; ask for fewer.")
    return value


#: the largest row count: the cap + 1 still fits MySQL's `sql_select_limit` (64 bits)
MAX_ROWS_ARG = 2**63 - 2


#: the shortest time limit a statement may get: below it MariaDB's millisecond resolution
#: would round the limit to 0, which means *no* limit
MIN_TIMEOUT_SECONDS = 0.01


def seconds_arg(
    value: object, name: str, ceiling: float | None, minimum: float = MIN_TIMEOUT_SECONDS
) -> float:
    """A time argument: a finite number of seconds, at least `minimum` (0.01 s by default;
    a smaller time limit would round to "unlimited") and at most `ceiling`."""
    if isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
        raise BindError(f"{name} must be a number of seconds, not {short(value)}.")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BindError(f"{name} must be a number of seconds, not {short(value)}.")
    if value <= 0:
        raise BindError(f"{name} must be more than 0 seconds, not {short(value)}.")
    if value < minimum:
        raise BindError(f"{name} must be at least {minimum:g} seconds, not {short(value)}.")
    if ceiling is not None and value > ceiling:
        raise BindError(
            f"{name}={value:g} is above the configured limit of {ceiling:g} seconds; "
            "ask for less (the limit is set by statement_timeout)."
        )
    return float(value)
