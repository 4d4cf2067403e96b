"""Is a `%%platform` / `store.sql` statement a plain read? (a pure function over its text)

The guard is allowlist-minded: a read is one SELECT (or set operation of SELECTs) that
writes nothing anywhere in its tree (no data-modifying CTE, no `SELECT … INTO`, no row
locks) and calls only functions known to be harmless — every function sqlglot models as a
built-in, plus a short list of common ones it does not model. Everything else (server
files, large objects, advisory locks, settings, sequences, transaction ids, dblink,
sleeping, signalling other backends, SQL run from a string) is refused before anything is
sent, with a one-line message naming the function.

It is the first of two layers: reads also run in a READ ONLY transaction with a
statement time limit (Postgres) or under `PRAGMA query_only` (SQLite), see console.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from hybridwb.errors import ReadOnlyViolation, ValidationError

#: the longest statement text read (as `hybridwb.source.guard.MAX_QUERY_BYTES`)
MAX_QUERY_CHARS = 256 * 1024

#: names (lowercase) or prefixes (ending in "*") of functions refused with their reason
FORBIDDEN: dict[str, str] = {
    "pg_read_*": "reads files on the server",
    "pg_ls_*": "lists server directories",
    "pg_stat_file": "reads files on the server",
    "pg_file_*": "writes files on the server",
    "pg_logdir_ls": "lists server directories",
    "lo_*": "creates or reads large objects",
    "pg_advisory_*": "takes a lock that outlives the statement",
    "pg_try_advisory_*": "takes a lock that outlives the statement",
    "set_config": "changes session settings",
    "dblink*": "connects to other databases",
    "pg_terminate_backend": "ends other sessions",
    "pg_cancel_backend": "cancels other sessions' queries",
    "pg_reload_conf": "reloads the server configuration",
    "pg_rotate_logfile": "rotates the server log",
    "pg_sleep*": "sleeps on the server",
    "pg_notify": "signals other sessions",
    "nextval": "advances a sequence",
    "setval": "changes a sequence",
    "txid_*": "assigns a transaction id",
    "pg_current_xact_id*": "assigns a transaction id",
    "pg_switch_wal": "changes the server's write-ahead log",
    "pg_create_*": "creates server objects",
    "pg_drop_replication_slot": "drops a replication slot",
    "pg_promote": "promotes a standby",
    "pg_backup_*": "starts or stops a backup",
    "query_to_*": "runs SQL given as text",
    "cursor_to_*": "runs SQL given as text",
    "load_extension": "loads native code",
    "readfile": "reads files",
    "writefile": "writes files",
    "fts3_tokenizer": "loads native code",
}

#: functions sqlglot does not model but that only compute a value (lowercase)
ALLOWED_UNMODELLED = frozenset(
    """
    current_setting current_database current_schema current_schemas current_user
    session_user version pg_typeof format quote_ident quote_literal quote_nullable
    to_jsonb to_json row_to_json array_to_json json_build_object jsonb_build_object
    json_build_array jsonb_build_array json_object_agg jsonb_object_agg json_agg jsonb_agg
    jsonb_array_elements jsonb_array_elements_text json_array_elements
    json_array_elements_text jsonb_each jsonb_each_text json_each json_each_text
    jsonb_object_keys json_object_keys jsonb_typeof json_typeof jsonb_pretty
    jsonb_array_length json_array_length jsonb_strip_nulls jsonb_path_query
    jsonb_path_exists jsonb_extract_path jsonb_extract_path_text json_extract_path
    json_extract_path_text jsonb_set jsonb_insert age date_part justify_days
    justify_hours justify_interval make_date make_time make_timestamp make_timestamptz
    make_interval clock_timestamp statement_timestamp transaction_timestamp timeofday
    to_timestamp to_date to_number isfinite array_length array_position array_positions
    array_remove array_replace array_cat array_append array_prepend array_dims
    array_lower array_upper cardinality unnest string_to_array regexp_match
    regexp_matches regexp_replace regexp_split_to_array regexp_split_to_table
    split_part btrim ltrim rtrim lpad rpad initcap translate left right repeat reverse
    strpos starts_with md5 encode decode convert_from convert_to octet_length
    bit_length char_length character_length chr ascii concat_ws gen_random_uuid
    width_bucket div mod sign trunc ceiling cbrt degrees radians pi random
    percentile_cont percentile_disc mode rank dense_rank row_number ntile lag lead
    first_value last_value nth_value cume_dist percent_rank bool_and bool_or every
    pg_size_pretty pg_total_relation_size pg_relation_size pg_table_size
    pg_indexes_size obj_description col_description has_table_privilege
    has_schema_privilege has_column_privilege pg_get_userbyid pg_get_indexdef
    pg_get_constraintdef pg_get_viewdef pg_get_expr format_type generate_subscripts
    printf instr ifnull julianday date datetime time typeof hex quote zeroblob
    likelihood unlikely unicode char total changes total_changes sqlite_version
    json_extract json_array json_object json_type json_valid json_group_array
    json_group_object json_quote json_tree json_patch json_remove json_replace json_insert
    """.split()  # noqa: SIM905 - a word list reads better than 200 quoted strings
)


@dataclass(frozen=True)
class Verdict:
    """What the guard found: a read, or a write (with the reason a read is not allowed)."""

    read: bool
    reason: str = ""


def _forbidden(name: str) -> str | None:
    name = name.lower()
    for pattern, why in FORBIDDEN.items():
        if (pattern.endswith("*") and name.startswith(pattern[:-1])) or name == pattern:
            return why
    return None


def _called_names(query: str, dialect: str) -> list[str]:
    """Every name directly followed by "(" in the token stream, whatever the parser makes
    of it: a function sqlglot maps to a known class is still checked by its real name."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(query)
    except sqlglot.errors.SqlglotError:
        return []
    return [
        a.text
        for a, b in itertools.pairwise(tokens)
        if b.token_type == TokenType.L_PAREN and a.token_type != TokenType.STRING
    ]


def classify(query: str, dialect: str) -> tuple[exp.Expr, Verdict]:
    """Parse one statement and decide whether it is a plain read.

    Raises ValidationError for empty input, a text over `MAX_QUERY_CHARS`, one nested too
    deeply to parse, several statements or unparseable text (which can never be a read), and ReadOnlyViolation for a read that calls a
    forbidden function — such a statement is refused even before `--write` is considered.
    """
    if not query or not query.strip():
        raise ValidationError("The query is empty; write one SQL statement.")
    if len(query) > MAX_QUERY_CHARS:  # refused unread: parsing costs ~800 bytes per byte
        raise ValidationError(
            f"The statement is over {MAX_QUERY_CHARS:,} characters (the limit); put long "
            "value lists in a bound parameter (:ids) instead of the text."
        )
    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError:
        statements = []
    except RecursionError:
        raise ValidationError(
            "The statement is nested too deeply to check; flatten it (a CTE per level)."
        ) from None
    if len(statements) > 1:
        raise ValidationError("Write exactly one statement per %%platform cell.")
    tree = statements[0] if statements else exp.Command(this=query)
    for name in _called_names(query, dialect):
        why = _forbidden(name)
        if why:
            return tree, Verdict(False, f"{name}() {why}")
    if not isinstance(tree, exp.Select | exp.SetOperation):
        return tree, Verdict(False, "it is not a SELECT")
    if tree.find(exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop):
        return tree, Verdict(False, "it changes data inside a subquery")
    if tree.find(exp.Into):
        return tree, Verdict(False, "SELECT … INTO creates a table")
    if tree.find(exp.Lock):
        return tree, Verdict(False, "FOR UPDATE/SHARE locks rows")
    for func in tree.find_all(exp.Anonymous):
        name = func.name.lower()
        if name not in ALLOWED_UNMODELLED:
            return tree, Verdict(False, f"{name}() is not on the list of read-only functions")
    return tree, Verdict(True)


def refusal(verdict: Verdict) -> ReadOnlyViolation:
    return ReadOnlyViolation(
        f"This statement is not a plain read ({verdict.reason}); "
        "add --write (write=True) to run it deliberately, audited.",
        reason=verdict.reason,
    )


__all__ = ["ALLOWED_UNMODELLED", "FORBIDDEN", "Verdict", "classify", "refusal"]
