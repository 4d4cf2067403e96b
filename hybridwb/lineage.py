"""Which output columns of a query carry personal data (column lineage, by sqlglot).

Masking by a result column's *name* is defeated by one `AS`: `SELECT email AS contact`
shows the address under a name no mapping flags. Here the query is qualified against the
schema (sqlglot's optimizer: aliases, `SELECT *` and `t.*` expanded, CTEs and derived
tables resolved) and each output column is followed back to the table columns it is
computed from (`sqlglot.lineage`: through aliases, expressions like CONCAT/SUBSTR/LOWER,
subqueries, CTEs and every branch of a UNION). An output that reaches a pii column is pii.

Fail-safe: whatever cannot be followed — a parse error, a table the schema does not know,
a `*` that could not be expanded, a column count that does not match the result, more
than `MAX_SCOPES` query bodies — is masked. Statements that return no table rows (SHOW,
DESCRIBE, EXPLAIN) mask nothing.

Views are followed: an unmapped view the statement reads is looked up
(`definition_of`), its own SELECT is traced the same way, and the view's columns that reach
a pii column are pii (views over views too, up to `VIEW_DEPTH`). A view whose definition
cannot be read (no SHOW VIEW privilege, a body sqlglot cannot parse) has every column
masked. A mapped view keeps the mapping's flags: the mapping is the user's own statement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

#: columns that are only counted give no value away
_COUNTS = (exp.Count,)
#: views over views followed this deep; deeper ones are masked whole
VIEW_DEPTH = 8
#: query bodies (CTEs, set operations, subqueries) a statement is traced through; one with
#: more is masked whole (sqlglot's scopes grow with their square: 8,000 CTEs took 2 GB)
MAX_SCOPES = 256


class _Unknown(Exception):
    """Lineage could not be determined: the caller masks everything."""


def _normalised(sql: str, dialect: str) -> exp.Expr:
    """The statement with every identifier lower-cased and tables without their database:
    MySQL column names are case-insensitive, and the mapping names tables alone."""
    tree = sqlglot.parse_one(sql, read=dialect)
    for ident in tree.find_all(exp.Identifier):
        ident.set("this", ident.this.lower())
    for table in tree.find_all(exp.Table):
        table.set("db", None)
        table.set("catalog", None)
    return tree


def tables_in(sql: str, dialect: str = "mysql") -> set[str]:
    """The table names a statement reads (lower-case, without the names of its CTEs)."""
    try:
        tree = _normalised(sql, dialect)
    except Exception:  # sqlglot raises several types; nothing to look up then
        return set()
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes}


def _leaf_is_pii(node: Node, pii: Mapping[str, Collection[str]], known: Collection[str]) -> bool:
    source = node.expression
    if isinstance(source, exp.Table):
        table = source.name
        column = node.name.rsplit(".", 1)[-1].strip('"`')
        if table not in known or column == "*":
            return True
        return column in pii.get(table, ())
    # a literal, a parameter or a function of nothing: pii only if a column hides in it
    return any(True for _ in source.find_all(exp.Column, exp.Star))


def _flags(
    tree: exp.Expr,
    pii: Mapping[str, Collection[str]],
    schema: Mapping[str, Mapping[str, str]],
    dialect: str,
) -> list[bool]:
    qualified = qualify(tree, schema=dict(schema), dialect=dialect, validate_qualify_columns=False)
    scope = build_scope(qualified)
    if scope is None or not isinstance(qualified, exp.Query):
        raise _Unknown
    selects = qualified.selects
    names = [s.alias_or_name for s in selects]
    twice = {n for n, c in Counter(names).items() if c > 1}
    # trim_selects off: a node's label would be a copy of its whole SELECT per column
    nodes = lineage(
        None, qualified, schema=dict(schema), dialect=dialect, scope=scope, trim_selects=False
    )
    assert isinstance(nodes, dict)
    out: list[bool] = []
    for select, name in zip(selects, names, strict=True):
        if isinstance(select, exp.Star) or select.is_star or not name or name in twice:
            raise _Unknown  # not expanded, or not told apart by name
        if isinstance(select.unalias(), _COUNTS):
            out.append(False)
            continue
        leaves = [n for n in nodes[name].walk() if not n.downstream]
        out.append(any(_leaf_is_pii(n, pii, schema) for n in leaves))
    return out


def pii_output_columns(
    sql: str,
    columns: Sequence[Any],
    pii: Mapping[str, Collection[str]],
    columns_of: Callable[[str], Sequence[str] | None],
    *,
    dialect: str = "mysql",
    definition_of: Callable[[str], str | None] | None = None,
    _depth: int = 0,
) -> set[str]:
    """The names among `columns` (a result's columns, in order) to mask for `sql`.

    `pii` maps a table to its pii column names; `columns_of(table)` gives a table's columns
    (the live schema), or None when the table is unknown; `definition_of(name)` gives a
    view's SELECT (MySQL dialect), "" for a view whose body cannot be read, and None for
    anything that is not a view."""
    names = [str(c) for c in columns]
    try:
        tree = _normalised(sql, dialect)
    except Exception:  # cannot be parsed: cannot be followed
        return set(names)
    if not isinstance(tree, exp.Query):
        return set()  # SHOW, DESCRIBE, EXPLAIN: what the server says about tables, no rows
    bodies = tree.find_all(exp.CTE, exp.SetOperation, exp.Subquery)
    if any(i >= MAX_SCOPES for i, _ in enumerate(bodies)):
        return set(names)  # too many to follow at a bounded cost: masked whole
    schema: dict[str, dict[str, str]] = {}
    flagged = {t.lower(): {c.lower() for c in cols} for t, cols in pii.items()}
    for table in sorted(tables_in(sql, dialect)):
        found = columns_of(table)
        if found:
            schema[table] = {str(c).lower(): "TEXT" for c in found}
        if definition_of is not None and found and table not in flagged:
            view = _view_pii(table, found, pii, columns_of, definition_of, _depth)
            if view is not None:
                flagged[table] = view
    try:
        flags = _flags(tree, flagged, schema, dialect)
    except Exception:  # _Unknown, or sqlglot could not qualify or follow a column
        return set(names)
    if len(flags) != len(names):
        return set(names)
    return {name for name, flag in zip(names, flags, strict=True) if flag}


def _view_pii(
    name: str,
    columns: Sequence[str],
    pii: Mapping[str, Collection[str]],
    columns_of: Callable[[str], Sequence[str] | None],
    definition_of: Callable[[str], str | None],
    depth: int,
) -> set[str] | None:
    """A view's columns that reach pii through its own SELECT (lower-case), or None when
    `name` is not a view. Unreadable or too deep: every column."""
    try:
        body = definition_of(name)
    except Exception:  # could not be asked: treated as a view that cannot be read
        body = ""
    if body is None:
        return None
    every = {str(c).lower() for c in columns}
    if not body or depth >= VIEW_DEPTH:
        return every
    traced = pii_output_columns(
        body, columns, pii, columns_of, definition_of=definition_of, _depth=depth + 1
    )
    return {c.lower() for c in traced}


__all__ = ["VIEW_DEPTH", "pii_output_columns", "tables_in"]
