"""Search branches -> SQLAlchemy Core: one keyset-paged SELECT per branch, UNIONed.

Each branch is `SELECT key FROM t [LEFT JOIN related] WHERE <branch> [AND key > :after]
ORDER BY key LIMIT n+1`, so each can use its own index (often covering: only the key is
read) and continue after the last key (never OFFSET); the UNION of the branches is ordered
by key once more (over at most branches x (n+1) keys) and joined back to the table for the
page's fields. Identifiers come from the resolver (checked, quoted by the dialect).

Bind names are fixed by position (`b<branch>_<cmp>[_<item>]`, `after`), so the text depends
only on the *shape* of a search (which branches, how many IN items), never on the values:
the compiled text is cached per shape, and each call only builds its parameters.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from cachetools import LRUCache

from hybridwb.mapping.resolve import DIALECT, Resolver, compile_sql, limit
from hybridwb.search.predicates import LIKE_ESCAPE, Cmp, Predicate

_TEXTS: LRUCache[tuple[Any, ...], str] = LRUCache(maxsize=512)


def _names(i: int, j: int, cmp: Cmp) -> list[str]:
    if cmp.op == "in":
        return [f"b{i}_{j}_{k}" for k in range(len(cmp.value))]
    return [f"b{i}_{j}"]


def _value(cmp: Cmp) -> list[Any]:
    if cmp.op == "in":
        return list(cmp.value)
    if cmp.op == "match":
        return ['"' + str(cmp.value).replace('"', " ") + '"']
    return [cmp.value]


def params(predicates: list[Predicate], after: Any) -> dict[str, Any]:
    """The parameters of a search statement (see the bind names above)."""
    out: dict[str, Any] = {}
    for i, p in enumerate(predicates):
        for j, cmp in enumerate(p.cmps):
            out.update(zip(_names(i, j, cmp), _value(cmp), strict=True))
    if after is not None:
        out["after"] = after
    return out


def _clause(column: Any, cmp: Cmp, names: list[str], values: list[Any]) -> Any:
    binds: list[sa.BindParameter[Any]] = [
        sa.bindparam(n, v) for n, v in zip(names, values, strict=True)
    ]
    if cmp.op == "eq":
        return column == binds[0]
    if cmp.op == "in":
        return column.in_(binds)
    if cmp.op == "like":
        return column.like(binds[0], escape=LIKE_ESCAPE)
    if cmp.op == "gte":
        return column >= binds[0]
    if cmp.op == "lt":
        return column < binds[0]
    if cmp.op == "match":
        return column.match(binds[0])
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
    i: int,
    predicate: Predicate,
    after: Any,
    n: int,
    index: str | None = None,
) -> Any:
    """Branch `i`: the keys it matches, in key order. With `index`, the server is told to
    read that index (MySQL FORCE INDEX, the name quoted by the dialect) instead of walking
    the primary key and filtering."""
    sel = resolver.selection(table)
    conds = [
        _clause(
            sel.column(resolver.path(table, c.path, to_one=True)),
            c,
            _names(i, j, c),
            _value(c),
        )
        for j, c in enumerate(predicate.cmps)
    ]
    if after is not None:
        conds.append(sel.key > sa.bindparam("after", after))
    stmt = (
        sa.select(sel.key)
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
    """The statement of one page (n rows: ask for limit + 1 to know whether there is more).

    With `info` (live schema facts of a large table), equality branches read the index that
    covers exactly their columns (see `exact_index`)."""
    hints = tuple(exact_index(info, p) if info else None for p in predicates)
    shape = (
        resolver.graph,  # a reloaded mapping is a new graph: nothing stale is reused
        table,
        tuple(columns),
        tuple(tuple((c.path, c.op, len(_names(0, 0, c))) for c in p.cmps) for p in predicates),
        after is None,
        n,
        hints,
    )
    values = params(predicates, after)
    text = _TEXTS.get(shape)
    if text is not None:
        return text, values
    branches = [branch(resolver, table, i, p, after, n, hints[i]) for i, p in enumerate(predicates)]
    if len(branches) == 1:
        keys = branches[0].subquery("k")
    else:
        parts = [sa.select(b.subquery(f"b{i}")) for i, b in enumerate(branches)]
        union = sa.union(*parts).subquery("u")
        keys = sa.select(union).order_by(union.c[key]).limit(limit(n)).subquery("k")
    base = resolver.table(table)
    stmt = (
        sa.select(*(base.c[c] for c in columns))
        .select_from(keys.join(base, base.c[key] == keys.c[key]))
        .order_by(base.c[key])
        .limit(limit(n))  # a literal bound: the source need not add its row cap
    )
    text, compiled = compile_sql(stmt)
    if compiled != values:  # the fixed bind names are the contract the cache relies on
        raise AssertionError("search parameters do not match the compiled statement")
    _TEXTS[shape] = text
    return text, values


def naive(
    resolver: Resolver, table: str, columns: list[str], fields: list[str], term: str, n: int
) -> tuple[str, dict[str, Any]]:
    """The OR-LIKE scan search replaces (benchmarks only), through the same joins."""
    sel = resolver.selection(table)
    pattern: sa.BindParameter[str] = sa.bindparam("pattern", f"%{term}%")
    ors = [sel.column(resolver.path(table, f, to_one=True)).like(pattern) for f in fields]
    stmt = (
        sa.select(*(sel.base.c[c] for c in columns))
        .select_from(sel.from_clause())
        .where(sa.or_(*ors))
        .limit(limit(n))
    )
    return compile_sql(stmt)
