"""Search branches -> SQLAlchemy Core: one keyset-paged SELECT per branch, UNIONed.

Each branch is `SELECT <fields> FROM t [LEFT JOIN related] WHERE <branch> [AND key > :after]
ORDER BY key LIMIT n+1`, so each can use its own index and continue after the last key
(never OFFSET); several branches are UNIONed and ordered by key once more (over at most
branches x (n+1) rows). Identifiers come from the resolver (checked, quoted by the dialect).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hybridwb.mapping.resolve import DIALECT, Resolver, compile_sql, limit
from hybridwb.search.predicates import LIKE_ESCAPE, Cmp, Predicate


def _clause(column: Any, cmp: Cmp) -> Any:
    if cmp.op == "eq":
        return column == cmp.value
    if cmp.op == "in":
        return column.in_(list(cmp.value))
    if cmp.op == "like":
        return column.like(cmp.value, escape=LIKE_ESCAPE)
    if cmp.op == "gte":
        return column >= cmp.value
    if cmp.op == "lt":
        return column < cmp.value
    if cmp.op == "match":
        phrase = '"' + str(cmp.value).replace('"', " ") + '"'
        return column.match(phrase)
    raise ValueError(f"unknown comparison {cmp.op}")


def exact_index(info: Any, predicate: Predicate) -> str | None:
    """The index whose columns are exactly the branch's equality columns: its rows come in
    key order (InnoDB appends the primary key), so the branch needs no filesort."""
    if not predicate.cmps or any(c.op != "eq" or "." in c.path for c in predicate.cmps):
        return None
    wanted = {c.path for c in predicate.cmps}
    for index in info.indexes:
        cols = [c for c in index.get("column_names") or [] if c]
        if set(cols) == wanted and len(cols) == len(wanted) and index.get("name"):
            return str(index["name"])
    return None


def branch(
    resolver: Resolver,
    table: str,
    columns: list[str],
    predicate: Predicate,
    after: Any,
    n: int,
    index: str | None = None,
) -> Any:
    """One branch; with `index`, the server is told to read that index (MySQL FORCE INDEX,
    the name quoted by the dialect) instead of walking the primary key and filtering."""
    sel = resolver.selection(table)
    conds = [
        _clause(sel.column(resolver.path(table, c.path, to_one=True)), c) for c in predicate.cmps
    ]
    if after is not None:
        conds.append(sel.key > after)
    cols = [sel.base.c[c] for c in columns]
    stmt = (
        sa.select(*cols)
        .select_from(sel.from_clause())
        .where(*conds)
        .order_by(sel.key)
        .limit(limit(n))
    )
    if index is not None:
        quoted = DIALECT.identifier_preparer.quote_identifier(index)
        stmt = stmt.with_hint(sel.base, f"FORCE INDEX ({quoted})", "mysql")
    return stmt


def keyset(
    resolver: Resolver,
    table: str,
    columns: list[str],
    key: str,
    predicates: list[Predicate],
    after: Any,
    n: int,
    info: Any = None,
) -> tuple[str, dict[str, Any]]:
    """The statement of one page (n rows + 1 to know whether there is a next page).

    With `info` (live schema facts of a large table), equality branches read the index that
    covers exactly their columns (see `exact_index`)."""
    branches = [
        branch(resolver, table, columns, p, after, n, exact_index(info, p) if info else None)
        for p in predicates
    ]
    if len(branches) == 1:
        return compile_sql(branches[0])
    parts = [sa.select(b.subquery(f"b{i}")) for i, b in enumerate(branches)]
    union = sa.union(*parts).subquery("u")
    return compile_sql(sa.select(union).order_by(union.c[key]).limit(limit(n)))


def naive(
    resolver: Resolver, table: str, columns: list[str], fields: list[str], term: str, n: int
) -> tuple[str, dict[str, Any]]:
    """The OR-LIKE scan search replaces (benchmarks only), through the same joins."""
    sel = resolver.selection(table)
    pattern = f"%{term}%"
    ors = [sel.column(resolver.path(table, f, to_one=True)).like(pattern) for f in fields]
    stmt = (
        sa.select(*(sel.base.c[c] for c in columns))
        .select_from(sel.from_clause())
        .where(sa.or_(*ors))
        .limit(limit(n))
    )
    return compile_sql(stmt)
