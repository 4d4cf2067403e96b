"""Layer one of the read-only guarantee: a parser-based guard (sqlglot tokens + AST).

`check(sql)` admits exactly one read statement and refuses everything else with a
`ReadOnlyViolation` that names what was refused and what to do instead. It runs on the text
the user wrote *and* on the final text the driver sends (binds interpolated), so it must be
right on any text, however hostile its string literals are:

1. **Tokens cover the text.** sqlglot's tokens are compared with the text: everything between
   two tokens must be MySQL whitespace or a MySQL comment (`#`, `-- `, `/* */`). What the
   server would read differently from sqlglot (`--x`, nested comments, odd whitespace) is
   refused, and *executable comments* (`/*! */`, `/*M! */`) are refused outright.
2. **The statement kind** comes from its first words: SELECT, WITH, VALUES, TABLE, SHOW,
   DESCRIBE/DESC and EXPLAIN of a read; anything else is refused by name.
3. **Token rules** that hold whatever the parser makes of the rest: one statement, no user
   variables or `:=`, no INTO, no locking reads, no PROCEDURE, no sequences, optimizer hints
   only from a read-only list, and every call `name(` must be a built-in function that neither
   sleeps, locks, waits, reads files nor runs a column's default (`DEFAULT(col)`); anything else is a stored function or UDF (server code
   the guard cannot see), refused unless it is in `allowed_functions`.
4. **The AST** (sqlglot) of SELECT-like statements is walked for write nodes as a second
   opinion; text sqlglot cannot parse is a `QueryError`.

The guard is a pure function over text. It returns `Checked`; nothing regenerated from the
AST is ever sent to MySQL.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from hybridwb.errors import QueryError, ReadOnlyViolation
from hybridwb.source import builtins

MAX_QUERY_BYTES = 256 * 1024
_SHORTER = "Put long value lists in a bound parameter (:ids) instead of the text."
#: Parenthesis nesting the guard parses (sqlglot recurses ~25 frames per level).
MAX_NESTING = 32

#: Built-in functions that sleep, take locks, read files, wait on replication or touch
#: sequences: refused even though the server knows them.
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
        "WSREP_SYNC_WAIT_UPTO_GTID",
        "SYS_EXEC",
        "SYS_EVAL",
        "NEXTVAL",
        "SETVAL",
        "LASTVAL",
        "PREVIOUSVAL",
    }
)
#: Optimizer hints (`/*+ ... */`) that only steer the plan; SET_VAR, MAX_EXECUTION_TIME and
#: RESOURCE_GROUP change session limits and are refused.
READ_HINTS = frozenset(
    [
        "BKA",
        "NO_BKA",
        "BNL",
        "NO_BNL",
        "HASH_JOIN",
        "NO_HASH_JOIN",
        "INDEX_MERGE",
        "NO_INDEX_MERGE",
        "JOIN_FIXED_ORDER",
        "JOIN_ORDER",
        "JOIN_PREFIX",
        "JOIN_SUFFIX",
        "MERGE",
        "NO_MERGE",
        "MRR",
        "NO_MRR",
        "NO_ICP",
        "NO_RANGE_OPTIMIZATION",
        "QB_NAME",
        "SEMIJOIN",
        "NO_SEMIJOIN",
        "SKIP_SCAN",
        "NO_SKIP_SCAN",
        "SUBQUERY",
        "DERIVED_CONDITION_PUSHDOWN",
        "NO_DERIVED_CONDITION_PUSHDOWN",
        "INDEX",
        "NO_INDEX",
        "GROUP_INDEX",
        "NO_GROUP_INDEX",
        "JOIN_INDEX",
        "NO_JOIN_INDEX",
        "ORDER_INDEX",
        "NO_ORDER_INDEX",
    ]
)
_READ_STARTS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_EXPLAIN_WORDS = frozenset({"EXPLAIN", "DESCRIBE", "DESC"})
_EXPLAIN_OPTIONS = frozenset({"EXTENDED", "PARTITIONS", "ANALYZE"})
#: `EXPLAIN FORMAT=<this>` (MariaDB: JSON; MySQL 8 also TREE, TRADITIONAL), bare or quoted
_EXPLAIN_FORMATS = frozenset({"JSON", "TREE", "TRADITIONAL"})
#: Words that start a statement other than a read (never a table name after DESCRIBE).
_VERBS = frozenset(
    [
        "ALTER",
        "ANALYZE",
        "CALL",
        "CREATE",
        "DELETE",
        "DO",
        "DROP",
        "FOR",
        "GRANT",
        "HANDLER",
        "INSERT",
        "LOAD",
        "LOCK",
        "RENAME",
        "REPLACE",
        "REVOKE",
        "SET",
        "TRUNCATE",
        "UNLOCK",
        "UPDATE",
    ]
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
_READ_ROOTS = (exp.Select, exp.SetOperation, exp.Subquery, exp.Describe, exp.Values)
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
_WORD = re.compile(r"[^\W\d]\w*|\w*[^\W\d]\w*|\$\w*", re.UNICODE)
#: MySQL's whitespace (anything else between tokens is text the server reads).
_SPACE = frozenset(" \t\n\r\f\v")
_HINT_CALL = re.compile(r"([A-Za-z_]\w*)\s*\(")


@dataclass(frozen=True)
class Checked:
    """A statement the guard admitted: its text, parsed form (if parsed) and kind."""

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
        except UnicodeDecodeError:
            raise QueryError(
                "The query is not valid UTF-8; save the text as UTF-8 and try again."
            ) from None  # the parser's error repeats the statement
    if not isinstance(sql, str):
        raise QueryError(f"The query must be text, not {type(sql).__name__}.")
    try:
        size = len(sql.encode("utf-8"))
    except UnicodeEncodeError:
        raise QueryError(
            "The query is not valid UTF-8 (it holds a lone surrogate); retype the odd character."
        ) from None  # the parser's error repeats the statement
    if size > MAX_QUERY_BYTES:
        raise QueryError(
            f"The query is {size:,} bytes; the limit is {MAX_QUERY_BYTES:,}. {_SHORTER}"
        )
    if "\x00" in sql:
        raise QueryError("The query contains a NUL character; remove it.")
    if not sql.strip().strip(";").strip():
        raise QueryError("The query is empty; write one SELECT statement.")
    return sql


def check_size(sql: str) -> None:
    """Refuse a text whose characters alone are over `MAX_QUERY_BYTES` before anything
    reads it (each is a byte at least; tokenizing costs ~250 bytes of memory per byte)."""
    if len(sql) > MAX_QUERY_BYTES:
        raise QueryError(f"The query is over {MAX_QUERY_BYTES:,} bytes (the limit). {_SHORTER}")


# -- 1. tokens cover the text -------------------------------------------------------------
def _audit_gap(text: str, start: int, end: int) -> None:
    """Between two tokens only whitespace and comments as MySQL reads them may stand."""
    i = start
    while i < end:
        ch = text[i]
        if ch in _SPACE:
            i += 1
        elif ch == "#" or (
            text.startswith("--", i) and (i + 2 >= len(text) or text[i + 2] in _SPACE)
        ):
            i = _line_end(text, i, end)
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close < 0 or close + 2 > end:
                raise QueryError("A /* comment is not closed; add */ or remove it.")
            _check_comment(text[i : close + 2])
            i = close + 2
        else:
            snippet = text[i : min(end, i + 12)].strip() or repr(ch)
            raise _refuse(
                f"the text near {snippet!r} reads differently to MySQL than to the guard",
                "Write comments as /* ... */ or '-- ' with a space, and plain spaces between words.",
            )


def _ident(ch: str) -> bool:
    """A character MySQL allows in an unquoted identifier."""
    return ch.isalnum() or ch in "_$" or ord(ch) > 127


def _line_end(text: str, i: int, end: int) -> int:
    nl = text.find("\n", i)
    return end if nl < 0 or nl >= end else nl + 1


def _check_comment(comment: str) -> None:
    if comment.startswith(("/*!", "/*M!", "/*m!")):
        raise _refuse(
            "an executable comment (/*! ... */) runs on the server", "Remove the /*! ... */ part."
        )
    if comment.startswith("/*+"):
        for name in _HINT_CALL.findall(comment):
            if name.upper() not in READ_HINTS:
                raise _refuse(
                    f"the optimizer hint {name.upper()} changes session settings or limits",
                    "Remove the hint.",
                )


# -- 2. statement kind -------------------------------------------------------------------
def _word(tok: Token | None) -> str:
    """The upper-cased bare word of a token ('' for literals, quoted names and symbols)."""
    if tok is None or tok.token_type in _QUOTED_TOKENS:
        return ""
    text = tok.text
    return text.upper() if _WORD.fullmatch(text) else ""


def _kind(tokens: list[Token]) -> tuple[str, int]:
    """The statement kind and where the statement to parse begins (or refuse by name)."""
    i = 0
    while i < len(tokens) and tokens[i].token_type == TokenType.L_PAREN:
        i += 1
    first = _word(tokens[i]) if i < len(tokens) else ""
    if first in _READ_STARTS:
        return "select", 0
    if i == 0 and first == "SHOW":
        return "show", 0
    if i == 0 and first in _EXPLAIN_WORDS:
        j = 1
        while j < len(tokens):
            word = _word(tokens[j])
            if word in _EXPLAIN_OPTIONS:
                j += 1
            elif word == "FORMAT" and j + 2 < len(tokens) and tokens[j + 1].text == "=":
                if _format_name(tokens[j + 2]) not in _EXPLAIN_FORMATS:
                    break  # `EXPLAIN format` alone is DESCRIBE of a table named format
                j += 3
            else:
                break
        k = j
        while k < len(tokens) and tokens[k].token_type == TokenType.L_PAREN:
            k += 1
        inner = _word(tokens[k]) if k < len(tokens) else ""
        if inner in _READ_STARTS:
            return "explain", j
        if j == 1 and _is_describe_target(tokens[1:]):
            return "describe", 1
        what = f"{first} {_named(inner or _word(tokens[j])) if j < len(tokens) else ''}".strip()
        raise _refuse(
            f"{_cut(what)} is not a read statement", "EXPLAIN a SELECT, or DESCRIBE a table."
        )
    if first:
        name = _named(first)
    elif tokens:  # a literal is a value typed (a phone, a quoted name): never repeated
        name = "?" if tokens[0].token_type in _QUOTED_TOKENS else tokens[0].text.upper()
    else:
        name = ""
    raise _refuse(f"{_cut(name)} is not a read statement", "Use SELECT, SHOW, DESCRIBE or EXPLAIN.")


def _named(word: str) -> str:
    """A bare word as a refusal names it: a SQL verb is ASCII; a word in Hangul (a name
    typed without quotes) is shown as `?`, as the query log shows it (the message is logged
    beside the statement, and `hybridwb stats` lists it)."""
    return word if word.isascii() else "?"


def _cut(word: str, width: int = 40) -> str:
    """A statement's first word as a message names it: a pasted blob (a 5,000-digit
    number, a megabyte of text) is cut, so the message stays one short line."""
    return word if len(word) <= width else word[: width - 1] + "…"


def _format_name(tok: Token) -> str:
    """The output format `tok` names after `FORMAT=`: a bare word or a quoted one."""
    return tok.text.upper() if tok.token_type == TokenType.STRING else _word(tok)


def _is_describe_target(rest: list[Token]) -> bool:
    """`DESCRIBE [db.]table [column | 'pattern']`."""
    names = [t for t in rest if t.token_type != TokenType.SEMICOLON]
    allowed = {TokenType.IDENTIFIER, TokenType.VAR, TokenType.DOT, TokenType.STRING}
    if not names or len(names) > 5 or _word(names[0]) in _VERBS:
        return False
    return all(t.token_type in allowed or _word(t) for t in names)


# -- 3. token rules ----------------------------------------------------------------------
def _check_tokens(tokens: list[Token], allowed: frozenset[str]) -> None:
    n = len(tokens)
    depth = 0
    closes: dict[int, int] = {}
    stack: list[int] = []
    for i, tok in enumerate(tokens):
        kind = tok.token_type
        if kind == TokenType.SEMICOLON:
            if any(t.token_type != TokenType.SEMICOLON for t in tokens[i + 1 :]):
                count = 1 + sum(
                    1
                    for a, b in zip(tokens[i:], tokens[i + 1 :], strict=False)
                    if a.token_type == TokenType.SEMICOLON and b.token_type != TokenType.SEMICOLON
                )
                raise _refuse(f"{count} statements in one query", "Run one statement at a time.")
            break
        if kind == TokenType.L_PAREN:
            stack.append(i)
            depth = max(depth, len(stack))
        elif kind == TokenType.R_PAREN and stack:
            closes[stack.pop()] = i
        elif kind == TokenType.PARAMETER:
            raise _refuse(
                "@variables carry state between statements",
                "Compute the value in a column or pass it as a :bind.",
            )
        elif kind == TokenType.COLON_EQ:
            raise _refuse("':=' assigns a variable", "Compute the value in a column or in Python.")
        elif kind == TokenType.HINT:
            _check_comment(tok.text)
        word = _word(tok)
        if not word:
            continue
        nxt = _word(tokens[i + 1]) if i + 1 < n else ""
        if word in ("INTO", "OUTFILE", "DUMPFILE"):
            raise _refuse(
                "INTO writes a file, a variable or a table",
                "Drop the INTO clause; the rows come back to the notebook.",
            )
        if word == "LOCK":
            raise _refuse("LOCK IN SHARE MODE takes row locks", "Remove it; a plain SELECT reads.")
        if word == "FOR" and nxt in ("UPDATE", "SHARE"):
            raise _refuse(f"FOR {nxt} takes row locks", "Remove it; a plain SELECT reads.")
        if word == "PROCEDURE":
            raise _refuse("PROCEDURE runs server code", "Remove the PROCEDURE clause.")
        if word in ("NEXT", "PREVIOUS") and nxt == "VALUE":
            raise _refuse(f"{word} VALUE FOR reads or advances a sequence", "Remove it.")
    for i in range(n - 1):
        if tokens[i + 1].token_type == TokenType.L_PAREN:
            _check_call(tokens, i, closes.get(i + 1), allowed)
    if depth > MAX_NESTING:
        raise QueryError(
            f"The query is nested {depth} parentheses deep; the limit is {MAX_NESTING}. "
            "Flatten it (a CTE per level)."
        )


def _arguments(tokens: list[Token], open_: int, close: int | None) -> int:
    """How many arguments stand between the parentheses at `open_` and `close`."""
    if close is None or close == open_ + 1:
        return 0
    depth, count = 0, 1
    for tok in tokens[open_ + 1 : close]:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif tok.token_type == TokenType.COMMA and depth == 0:
            count += 1
    return count


def _in_place(name: str, prev: Token | None, prev_word: str) -> bool:
    """Words that are syntax only in one place (elsewhere they call a stored function)."""
    if name == "AGAINST":  # MATCH (cols) AGAINST (...)
        return prev is not None and prev.token_type == TokenType.R_PAREN
    if name == "COLUMNS":  # JSON_TABLE(doc, '$[*]' COLUMNS (...)), NESTED PATH '$' COLUMNS
        return prev is not None and prev.token_type == TokenType.STRING
    if name == "OF":  # MEMBER OF (json)
        return prev_word == "MEMBER"
    if name == "JSON_TABLE":  # a table function: only after FROM / JOIN
        return prev_word in ("FROM", "JOIN") or prev_word.endswith(" JOIN")
    return False


def _check_call(tokens: list[Token], i: int, close: int | None, allowed: frozenset[str]) -> None:
    """`tokens[i]` stands right before "(": a call, unless it is syntax (types, clauses)."""
    tok = tokens[i]
    prev = tokens[i - 1] if i > 0 else None
    quoted = tok.token_type in _QUOTED_TOKENS
    if quoted and tok.token_type not in (TokenType.IDENTIFIER, TokenType.STRING):
        return  # a number or a hex literal before "(" is a syntax error, not a call
    name = tok.text.upper() if quoted else tok.text.upper().split()[-1]  # `ORDER BY` is one token
    if not quoted and tok.text.upper().split() == ["MEMBER", "OF"]:
        return  # `x MEMBER OF (json)` (one token to sqlglot)
    if not quoted and not any(c.isalnum() or c in "_$" or ord(c) > 127 for c in name):
        return  # an operator or a bracket before "(" (`= (`, `, (`, `((`)
    qualified = prev is not None and prev.token_type == TokenType.DOT
    # a quoted part holding a dot (`` `shop.fn` ``) is one name to the server: as a dotted
    # text it would match the allowlist's `shop.fn`, another function in another schema
    dotted = quoted and "." in tok.text
    if qualified and i >= 2:
        dotted = dotted or "." in tokens[i - 2].text
        name = f"{tokens[i - 2].text.upper()}.{name}"
    base = name.rsplit(".", 1)[-1]
    if base in DANGEROUS_FUNCTIONS:
        raise _refuse(
            f"{base}() can sleep, lock, read server files or change state",
            "Remove the call.",
        )
    if base == "LAST_INSERT_ID" and close is not None and close > i + 2:
        raise _refuse("LAST_INSERT_ID(expr) sets session state", "Call LAST_INSERT_ID() alone.")
    if base == "DEFAULT":
        # DEFAULT(col) evaluates the column's default expression on the server, and MariaDB
        # allows `DEFAULT (NEXTVAL(seq))` there: reading it advances the sequence
        raise _refuse(
            "DEFAULT(col) runs the column's default expression (it may advance a sequence)",
            "Remove the call; read the column itself.",
        )
    if name.lower() in allowed and not dotted:
        return
    if not quoted and not qualified:
        if name in builtins.ARITY:
            low, high = builtins.ARITY[name]
            args = _arguments(tokens, i + 1, close)
            if args >= low and (high is None or args <= high):
                return
        elif name in builtins.BUILTINS or name in builtins.SYNTAX:
            return
        prev_word = _word(prev)
        if _in_place(name, prev, prev_word):
            return
        if prev_word in ("WITH", "RECURSIVE", "AS"):
            return  # a CTE's column list, an alias's column list or a type
        if (
            close is not None
            and _word(tokens[close + 1] if close + 1 < len(tokens) else None) == "AS"
        ):
            after = tokens[close + 2] if close + 2 < len(tokens) else None
            if after is not None and after.token_type == TokenType.L_PAREN:
                return  # `, name (a, b) AS (` — the next CTE's column list
    raise _refuse(
        f"{name.lower()}() is not a built-in function (a stored function runs server code)",
        "Ask a DBA to vet it and add it to allowed_functions, or compute the value in Python.",
    )


# -- 4. the AST ---------------------------------------------------------------------------
def _parse(tokens: list[Token], text: str) -> exp.Expr:
    body = [t for t in tokens if t.token_type != TokenType.SEMICOLON]
    body = _drop_rows_examined(body)
    values = bool(body) and _word(body[0]) == "VALUES"
    try:
        if values:  # sqlglot reads a table value constructor only inside FROM
            wrapped = _DIALECT.tokenize("SELECT * FROM (") + body + _DIALECT.tokenize(") AS v")
            statements = _DIALECT.parser().parse(wrapped, text)
        else:
            statements = _DIALECT.parser().parse(body, text)
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        where = f" at line {err.get('line')}, column {err.get('col')}" if err else ""
        desc = err.get("description", "invalid syntax") if err else str(exc)
        raise QueryError(
            f"Syntax error{where}: {desc}. Fix the SQL (MySQL dialect).",
            line=err.get("line"),
            column=err.get("col"),
        ) from None  # the parser's error repeats the statement
    except RecursionError:
        raise QueryError(
            "The query is nested too deeply to check; flatten it (a CTE per level)."
        ) from None  # the parser's error repeats the statement
    except TokenError:
        # the parser tokenizes an optimizer hint's body (`SELECT /*+ ... */`) again
        raise QueryError(
            "The optimizer hint (/*+ ... */) does not tokenize (an unclosed quote?); "
            "fix or remove it."
        ) from None  # sqlglot's message repeats the text around the problem
    except (AttributeError, TypeError, ValueError, IndexError, KeyError):
        # sqlglot fails this way on some wrong calls (e.g. `DATE_ADD()`): still a syntax error
        raise QueryError(
            "Syntax error: the statement cannot be read (check the arguments of each call). "
            "Fix the SQL (MySQL dialect)."
        ) from None  # the parser's error repeats the statement
    parsed = [s for s in statements if s is not None]
    if len(parsed) != 1:
        raise _refuse(f"{len(parsed)} statements in one query", "Run one statement at a time.")
    return parsed[0]


def _drop_rows_examined(tokens: list[Token]) -> list[Token]:
    """MariaDB's `LIMIT n ROWS EXAMINED m` is unknown to sqlglot; parse without it."""
    for i in range(len(tokens) - 2):
        if _word(tokens[i]) == "ROWS" and _word(tokens[i + 1]) == "EXAMINED":
            return tokens[:i] + tokens[i + 3 :]
    return tokens


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


def _allowed(names: Collection[str]) -> frozenset[str]:
    if isinstance(names, str):
        names = [names]
    return frozenset(str(n).strip().lower() for n in names if str(n).strip())


def check(sql: object, *, allowed_functions: Collection[str] = ()) -> Checked:
    """Admit one read statement or raise `ReadOnlyViolation` (a write, a side effect) or
    `QueryError` (text that is not a usable query)."""
    text = check_text(sql)
    try:
        tokens = _DIALECT.tokenize(text)
    except TokenError:
        # sqlglot's message repeats the text around the problem (a customer's literal)
        raise QueryError(
            "The query does not tokenize (an unclosed quote or comment?); check the quotes."
        ) from None
    if not tokens:
        _audit_gap(text, 0, len(text))  # an executable comment is refused, not "only comments"
        raise QueryError("The query holds only comments; write one SELECT statement.")
    kind, start = _kind(tokens)  # first: a refusal names the statement the user wrote
    pos = 0
    for tok in tokens:
        if pos == tok.start and pos > 0 and _ident(text[pos - 1]) and _ident(text[pos]):
            # MySQL reads `1abs` or `a$b` as one identifier: two tokens there are a misreading
            raise _refuse(
                f"the text near {text[max(0, pos - 6) : pos + 6]!r} reads differently to MySQL "
                "than to the guard",
                "Put a space between the two words.",
            )
        _audit_gap(text, pos, tok.start)
        pos = tok.end + 1
    _audit_gap(text, pos, len(text))
    # an EXPLAIN's options (`FORMAT=JSON`) are vetted by `_kind`; the rules apply to the
    # statement it explains (`FORMAT=JSON (SELECT 1)` calls no function `JSON`)
    _check_tokens(tokens[start:] if kind == "explain" else tokens, _allowed(allowed_functions))
    if kind in ("show", "describe"):
        return Checked(text, exp.Command(this=tokens[0].text.upper()), kind, tuple(tokens))
    expression = _parse(tokens[start:], text)
    if not isinstance(expression, _READ_ROOTS):
        raise _refuse(
            f"{type(expression).__name__.upper()} is not a read statement",
            "Use SELECT, SHOW, DESCRIBE or EXPLAIN.",
        )
    _check_tree(expression)
    if kind == "explain":
        return Checked(text, exp.Describe(this=expression), "describe", tuple(tokens))
    return Checked(text, expression, "select", tuple(tokens))


def normalize_tokens(tokens: tuple[Token, ...] | list[Token]) -> str:
    return " ".join("?" if t.token_type in _LITERAL_TOKENS else t.text for t in tokens)


def normalize(sql: str) -> str:
    """Replace literals with `?` so no customer data lands in a log; never raises."""
    try:
        return normalize_tokens(_DIALECT.tokenize(sql))
    except Exception:  # a log line must never fail the query it describes
        return "<unparseable statement>"
