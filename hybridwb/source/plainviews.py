"""Which reads inside a snapshot ran no code that could change the session (plain views).

A statement that names a view is followed by the connection reset (`execute._reset`: the
view's code may have changed the session), and the reset ends `Source.consistent`'s
transaction: the block's later reads were of a later moment, silently (round 60's BREAK
1). Inside a snapshot the views a statement read are read themselves instead, after the
statement and on its connection (`refusal`): when every one is plain the reset is not
needed and the snapshot goes on; when one is not, the reset runs and the block fails in
one line (`snapshot.SnapshotRefused`), never a later moment unsaid.

What was checked on MariaDB 10.11 (the reasons this is enough):

- A view's SELECT cannot name a user variable or a system variable (error 1351), so what
  it can run is its function calls. `information_schema.VIEWS.VIEW_DEFINITION` prints
  them as stored: builtins unquoted by their own names (`ucase(...)` for UPPER), a stored
  function quoted, qualified when it is another schema's (`` `f`(..) ``, `` `db`.`g`(..) ``,
  a stored `concat` as `` `db`.`concat`(..) ``), and every table and view qualified by its
  schema (an unqualified name is a WITH's). A word before `(` must be a builtin that
  changes nothing of the session, or a keyword (`PLAIN_WORDS`: an allowlist, so GET_LOCK,
  RELEASE_LOCK, LAST_INSERT_ID(x), NEXTVAL / SETVAL / LASTVAL (NEXT VALUE FOR prints as
  nextval), SLEEP, BENCHMARK, LOAD_FILE, MASTER_POS_WAIT and any function not listed are
  not plain); a quoted or qualified name before `(` is a stored function: not plain.
- A view may read `FOR UPDATE` or `LOCK IN SHARE MODE` (accepted, even in a READ ONLY
  transaction): a locking read sees the latest rows, not the snapshot's: not plain.
- A transaction keeps the metadata locks of what it read until COMMIT: after a read of a
  view over a view over a table, root's `CREATE OR REPLACE VIEW` of either view, `DROP
  VIEW`, `RENAME TABLE` and `ALTER TABLE` of the table wait (lock_wait_timeout), so the
  definitions read after the statement, on its connection, are the ones it ran (a stored
  function's are not locked: one is never plain). Read before it, they could change.
- Every name the statement read is looked up so (not only those the cached list of views
  calls views: a table replaced by a view since the list was read is a view here), by an
  exact `TABLE_SCHEMA = ... AND TABLE_NAME = ...` (information_schema opens that one
  name; the lookup is case-sensitive, so the names are taken as written, not lower-cased).
  A view over a view is read the same way, to `MAX_VIEWS` views.
- Cost: one round trip after each statement of a snapshot that names tables (about 0.3 ms
  on the server for tables; `information_schema.VIEWS` is opened for views only, about
  1 ms), one more per level of nested views; the statement's text is compiled once per
  shape and a definition parsed once per text.
- An account without SHOW VIEW sees a view's row with an empty definition, and one
  without any privilege on a name (a DEFINER view over another schema) sees no row: not
  plain, since what runs cannot be read.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.tokens import TokenType

from hybridwb.source import builtins, rawguard

#: the views read for one statement, at most (nested views included)
MAX_VIEWS = 64
#: schemas whose objects the server makes: their views run no one's code
SYSTEM_SCHEMAS = frozenset({"information_schema", "performance_schema"})

#: builtins (`builtins.MARIADB`'s) that read their arguments and the clock and change nothing
#: of the session: an allowlist (a builtin not named here is not plain)
PLAIN_FUNCTIONS = frozenset(
    """
    abs acos adddate addtime ascii asin atan atan2 avg bin bit_and bit_count bit_length
    bit_or bit_xor cast ceil ceiling char char_length character_length chr coalesce concat
    concat_ws conv convert convert_tz cos cot count crc32 crc32c cume_dist curdate
    current_date current_time current_timestamp curtime date date_add date_format
    date_sub datediff day dayname dayofmonth dayofweek dayofyear decode_histogram degrees
    dense_rank elt exp export_set extract field find_in_set first_value floor format
    from_base64 from_days from_unixtime get_format greatest group_concat hex hour if
    ifnull inet6_aton inet6_ntoa inet_aton inet_ntoa insert instr interval isnull
    json_array json_array_append json_array_insert json_arrayagg json_compact
    json_contains json_contains_path json_depth json_detailed json_equals json_exists
    json_extract json_insert json_keys json_length json_loose json_merge json_merge_patch
    json_merge_preserve json_normalize json_object json_objectagg json_overlaps
    json_pretty json_query json_quote json_remove json_replace json_search json_set
    json_type json_unquote json_valid json_value lag last_day last_value lcase
    lead least left length lengthb ln localtime localtimestamp locate log log10 log2
    lower lpad ltrim make_set makedate maketime max md5 median microsecond mid min minute
    mod month monthname natural_sort_key now nth_value ntile nullif oct octet_length ord
    percent_rank percentile_cont percentile_disc period_add period_diff pi position pow
    power quarter quote radians rank regexp_instr regexp_replace regexp_substr repeat
    replace reverse right round row_number rpad rtrim sec_to_time second sformat sha
    sha1 sha2 sign sin soundex space sqrt std stddev stddev_pop stddev_samp str_to_date
    strcmp subdate substr substring substring_index subtime sum tan time time_format
    time_to_sec timediff timestamp timestampadd timestampdiff to_base64 to_char to_days
    to_seconds trim truncate ucase unhex unix_timestamp upper utc_date utc_time
    utc_timestamp var_pop var_samp variance week weekday weekofyear weight_string year
    yearweek database schema user current_user session_user system_user current_role
    connection_id version charset collation coercibility uuid rand sysdate within default
    """.split()  # noqa: SIM905 - a word list reads better than 200 quoted strings
)
#: words a definition puts before `(` that call nothing: the guard's (type names, clause
#: keywords, operators), JSON_TABLE's syntax, and WITHIN GROUP's
PLAIN_KEYWORDS = frozenset(
    {word.lower() for word in builtins.SYNTAX} | {"json_table", "columns", "path", "group"}
)
PLAIN_WORDS = PLAIN_FUNCTIONS | PLAIN_KEYWORDS
#: in the refusal of a view whose definition the account cannot read
NO_SHOW_VIEW = "no SHOW VIEW grant"
#: in the refusal of a sequence (CREATE SEQUENCE's): its row is read as it is at each
#: statement, not at the snapshot's moment (round 62: root's NEXTVAL between two reads of
#: the block was seen by the second)
SEQUENCE_WHY = "is a sequence, whose row is read as it is now, not at the block's moment"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: the Sequence engine's names, in lower case only (round 62: `SEQ_1_TO_3` is no such table
#: to MariaDB and may be a view, one the account cannot see when a DEFINER view reads it)
_SEQUENCE = re.compile(r"seq_[0-9]+_to_[0-9]+(_step_[0-9]+)?")
_DIALECT = MySQL()


class Definition(NamedTuple):
    """What one view's definition runs: `why` it is not plain ("" when it is), and the
    (schema, name) of every table or view it reads, as written (for the walk)."""

    why: str
    reads: tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=256)
def read_definition(schema: str, definition: str) -> Definition:
    """Whether a view's SELECT (as `information_schema.VIEWS` prints it) is plain, and
    what it reads; names without a schema are `schema`'s (MariaDB qualifies every table,
    so those are a WITH's, skipped). Remembered by the text (a parse costs more than the
    lookup, and the same views are read batch after batch)."""
    try:
        tokens = _DIALECT.tokenize(definition)
        tree = sqlglot.parse_one(definition, read="mysql")
    except Exception:  # sqlglot raises several types
        return Definition("its definition could not be read", ())
    for before, token, paren in zip([None, *tokens], tokens, tokens[1:], strict=False):
        if paren.token_type != TokenType.L_PAREN:
            continue
        if token.token_type in (TokenType.IDENTIFIER, TokenType.VAR) and (
            before is not None and before.token_type == TokenType.DOT
        ):
            return Definition(f"calls `{token.text}` (a stored function)", ())
        if token.token_type == TokenType.IDENTIFIER:
            return Definition(f"calls `{token.text}` (a stored function)", ())
        word = token.text
        if _WORD.fullmatch(word) and word.lower() not in PLAIN_WORDS:
            return Definition(f"calls {word.upper()}()", ())
    if any(True for _ in tree.find_all(exp.Lock)):
        return Definition("reads FOR UPDATE or LOCK IN SHARE MODE (the latest rows)", ())
    ctes = {str(c.alias_or_name).lower() for c in tree.find_all(exp.CTE)}
    reads = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):  # JSON_TABLE(...), a subquery
            continue
        if not table.db and table.name.lower() in ctes:
            continue
        reads.append((table.db or schema, table.name))
    return Definition("", tuple(dict.fromkeys(reads)))


def names_read(prepared: Any) -> list[tuple[str, str]]:
    """The (schema or "", name) of every table or view a guarded statement names, as
    written, but the server's own schemas' and its own WITH's."""
    ctes: frozenset[str] = getattr(prepared, "ctes", frozenset())
    found = []
    for table in prepared.checked.expression.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or not table.name:
            continue
        if table.db.lower() in SYSTEM_SCHEMAS:
            continue
        if not table.db and table.name.lower() in ctes:
            continue
        found.append((table.db, table.name))
    return list(dict.fromkeys(found))


def refusal(conn: Any, raw: Any, names: list[tuple[str, str]], *, failed: bool = False) -> str:
    """Why the views among `names` ("" schema: the connection's) may have run code that
    changes the session, as "the view `s`.`v` calls ...": "" when every name is a table
    or a plain view (nested views read to `MAX_VIEWS`). Run after the statement, on its
    connection, inside its transaction (which holds the views' metadata locks). After a
    statement that `failed`, a name it named that is not there (or not the account's to
    see) was never opened, so ran nothing: the server's own error says what is wrong."""
    seen: set[tuple[str, str]] = set()
    todo = list(dict.fromkeys(names))
    via: dict[tuple[str, str], str] = {}  # a nested view: the named view read through
    views = 0
    while todo:
        found = _objects(conn, raw, todo)
        seen.update(todo)
        nxt: list[tuple[str, str]] = []
        for key, (resolved, kind, body) in zip(todo, found, strict=True):
            shown = f"`{resolved}`.`{key[1]}`" + (
                f" (read through {via[key]})" if key in via else ""
            )
            if kind == "SEQUENCE":
                return f"{shown} {SEQUENCE_WHY}"
            if body is None and kind is not None and kind != "VIEW":
                continue  # a table (a system view): no code
            if body is None and kind is None:
                if _SEQUENCE.fullmatch(key[1]) or (failed and key not in via):
                    continue  # the Sequence engine's (listed nowhere), or never opened
                return f"{shown} could not be looked up (no privilege on it)"
            if not body:
                return f"the view {shown}'s definition cannot be read ({NO_SHOW_VIEW})"
            views += 1
            if views > MAX_VIEWS:
                return f"the view {shown} reads over {MAX_VIEWS} views"
            definition = read_definition(resolved, body)
            if definition.why:
                return f"the view {shown} {definition.why}"
            for name in definition.reads:
                if name not in seen and name not in nxt:
                    nxt.append(name)
                    via[name] = via.get(key, f"`{resolved}`.`{key[1]}`")
        todo = nxt
    return ""


def _objects(
    conn: Any, raw: Any, names: list[tuple[str, str]]
) -> list[tuple[str, str | None, str | None]]:
    """(schema, TABLE_TYPE, VIEW_DEFINITION) of each name, in one statement: one exact
    lookup in information_schema per name (None where no row)."""
    text, order = _lookup_sql(conn.dialect, tuple(bool(schema) for schema, _ in names))
    values: dict[str, Any] = {}
    for i, (schema, name) in enumerate(names):
        values[f"s{i}"], values[f"n{i}"] = schema, name
    params: Any = values if order is None else tuple(values[key] for key in order)
    with rawguard.internal(raw):
        cursor = raw.cursor()
        try:
            cursor.execute(text, params)
            rows = sorted(cursor.fetchall())
        finally:
            cursor.close()
    return [(str(s), _text(kind), _text(body)) for _, s, kind, body in rows]


@functools.lru_cache(maxsize=64)
def _lookup_sql(dialect: Any, given: tuple[bool, ...]) -> tuple[str, tuple[str, ...] | None]:
    """The lookup of `_objects` for names whose schema is given (or the connection's), as
    the driver's text and, for a positional driver, the order of its values: built as
    SQLAlchemy Core and compiled once per shape (a compile costs more than the lookup)."""
    from sqlalchemy import (
        bindparam,
        case,
        column,
        func,
        literal_column,
        select,
        table,
        union_all,
    )

    tables = table("TABLES", column("TABLE_SCHEMA"), column("TABLE_NAME"),
                   column("TABLE_TYPE"), schema="information_schema")  # fmt: skip
    views = table("VIEWS", column("TABLE_SCHEMA"), column("TABLE_NAME"),
                  column("VIEW_DEFINITION"), schema="information_schema")  # fmt: skip
    parts = []
    for i, has_schema in enumerate(given):
        schema: Any = bindparam(f"s{i}") if has_schema else func.database()
        name: Any = bindparam(f"n{i}")
        kind = select(tables.c.TABLE_TYPE).where(
            tables.c.TABLE_SCHEMA == schema,  # noqa: SIM300
            tables.c.TABLE_NAME == name,  # noqa: SIM300
        )
        body = select(views.c.VIEW_DEFINITION).where(
            views.c.TABLE_SCHEMA == schema,  # noqa: SIM300
            views.c.TABLE_NAME == name,  # noqa: SIM300
        )
        parts.append(
            select(
                literal_column(str(int(i))).label("i"),  # the lookup's own index
                schema.label("s"),
                kind.scalar_subquery().label("kind"),
                # information_schema.VIEWS is opened for views only (a table's costs ~1 ms)
                case(
                    (kind.scalar_subquery() == literal_column("'VIEW'"), body.scalar_subquery())
                ).label("body"),
            )
        )
    query = parts[0] if len(parts) == 1 else union_all(*parts)
    compiled = query.compile(dialect=dialect)
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    return str(compiled), order


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
