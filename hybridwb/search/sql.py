"""Search branches -> SQLAlchemy Core: one keyset-paged SELECT per branch, UNIONed.

Each branch is `SELECT key FROM t [LEFT JOIN related] WHERE <branch> [AND key > :after]
ORDER BY key LIMIT n+1`, so each can use its own index (often covering: only the key is
read) and continue after the last key (never OFFSET); the UNION of the branches (at most
branches x (n+1) keys) is joined back to the table for the page's fields and ordered by key
once more. A search of one branch reads the page's fields in that branch directly. Identifiers come from the resolver (checked, quoted by the dialect).

Bind names are fixed by position (`b<branch>_<cmp>[_<item>]`, `after`), so the text depends
only on the *shape* of a search (which branches, how many IN items), never on the values:
the compiled text is cached per shape, and each call only builds its parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from cachetools import LRUCache

from hybridwb.errors import ValidationError
from hybridwb.mapping.graph import Hop, Path
from hybridwb.mapping.resolve import (
    DIALECT,
    Resolver,
    _bytes,
    compile_sql,
    limit,
    related_by_bytes,
)
from hybridwb.search.predicates import LIKE_ESCAPE, Cmp, Predicate
from hybridwb.source.cache import lookup

_TEXTS: LRUCache[tuple[Any, ...], str] = LRUCache(maxsize=512)
#: equality by the collation (for the index) and by the bytes too: a probed value of a
#: one-to-many relation's column on a key the schema does not state unique (`expand`)
EQ_BYTES = "eq_bytes"
EQUAL = ("eq", EQ_BYTES)


def _names(i: int, j: int, cmp: Cmp) -> list[str]:
    if cmp.op == "in":
        return [f"b{i}_{j}_{k}" for k in range(len(cmp.value))]
    return [f"b{i}_{j}"]


def _width(cmp: Cmp) -> int:
    """How many binds `cmp` takes (`len(_names(i, j, cmp))`, without making the names)."""
    return len(cmp.value) if cmp.op == "in" else 1


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
    if cmp.op == EQ_BYTES:  # the collation's comparison for the index, the bytes decide
        return sa.and_(column == binds[0], _bytes(column) == _bytes(binds[0]))
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
    cmps = predicate.cmps
    if len(cmps) == 1:  # the common branch, without a generator per call
        only = cmps[0]
        if only.op not in EQUAL or "." in only.path:
            return None
        return _exact_indexes(info).get(frozenset((only.path,)))
    if not cmps or any(c.op not in EQUAL or "." in c.path for c in cmps):
        return None
    return _exact_indexes(info).get(frozenset(c.path for c in cmps))


#: id(schema facts) -> (those facts, {set of an index's columns: the first such index}):
#: a search asks `exact_index` several times per branch; the facts change once a minute
_EXACT: LRUCache[int, tuple[Any, dict[frozenset[str], str]]] = LRUCache(maxsize=64)
#: the entry of `_EXACT` read last (it holds the facts object alive, as the cache does)
_LAST_EXACT: list[tuple[Any, dict[frozenset[str], str]] | None] = [None]


def _exact_indexes(info: Any) -> dict[frozenset[str], str]:
    """Each named index by its set of columns (no column twice), the first of equal sets:
    what `exact_index` looks up, worked out once per schema facts object (held by the
    cache, so its id is not reused while cached)."""
    last = _LAST_EXACT[0]  # the facts of the table searched last (most calls ask about them)
    if last is not None and last[0] is info:
        return last[1]
    known = lookup(_EXACT, id(info))
    if known is not None and known[0] is info:
        _LAST_EXACT[0] = known
        return known[1]
    out: dict[frozenset[str], str] = {}
    for index in info.indexes:
        cols = [c for c in index.get("column_names") or [] if c]
        if index.get("name") and len(set(cols)) == len(cols):
            out.setdefault(frozenset(cols), str(index["name"]))
    _EXACT[id(info)] = _LAST_EXACT[0] = (info, out)
    return out


PROBE_VALUES = 20  # distinct values a branch may expand to (else: "type more")


@dataclass(frozen=True)
class Probe:
    """A branch whose rows an index cannot return in key order (a prefix, several phone
    forms, a field of a related table): the distinct values of `column` (a column of the
    searched table with an index of its own) it matches are read first, then each becomes
    an equality branch that index returns in key order."""

    predicate: Predicate
    column: str


def field_path(graph: Any, table: str, dotted: str) -> Path:
    """A searched field's path: through to-one relations, and through at most one
    one-to-many relation (a person found by any of their addresses' phones, or by any of
    their account's addresses' phones: `account.addresses.phone`; `service._fields_of`)."""
    path: Path = graph.path(table, dotted)
    if sum(not h.to_one for h in path.hops) > 1:
        raise ValidationError(
            f"{dotted}: only one relation of a searched field may be one-to-many."
        )
    return path


def _through_many(path: Path) -> tuple[Hop, ...] | None:
    """The hops of a searched path up to and including its one-to-many hop (what one
    EXISTS of `_conditions` goes through), None for a path of to-one hops only."""
    at = path.many_at
    return None if at is None else path.hops[: at + 1]


def _root_column(predicate: Predicate, graph: Any, table: str) -> str | None:
    """The searched table's column the branch's values can be turned into: the field itself,
    or the first relation's local column (`address.phone` -> `address_id`)."""
    paths = {c.path for c in predicate.cmps}
    if len(paths) != 1:
        return None
    path = field_path(graph, table, paths.pop())
    return path.hops[0].local if path.hops else path.field


def order_plan(
    graph: Any, table: str, info: Any, predicates: list[Predicate]
) -> tuple[list[Predicate], list[Probe], list[str]]:
    """For a large table: the branches an index already returns in key order, the ones to
    probe first, and why others cannot be searched without sorting (pure).

    Equality on the columns of one index is kept (InnoDB returns its rows in key order); an
    IN list on such a column becomes one equality branch per value; anything else is probed
    through the index of its root column, or reported with the reason.

    What happens to a branch depends on its comparisons' paths and operators only, never
    on the values (but whether an IN list has any): that is worked out once per shape of
    branch (and graph, table and schema facts object), then applied to the values of each
    search."""
    keep: list[Predicate] = []
    probes: list[Probe] = []
    why: list[str] = []
    for p in predicates:
        # an IN list with no value is its own shape: `_decide` gives it no branch, which
        # an IN list of the same field with values must not inherit (nor the reverse)
        shape = (p.field, tuple((c.path, c.op, c.op == "in" and not c.value) for c in p.cmps))
        key = (graph, table, id(info), shape)
        known = lookup(_DECISIONS, key)
        if known is None or known[0] is not info:
            known = _DECISIONS[key] = (info, _decide(graph, table, info, p))
        what, detail = known[1]
        if what == "keep":
            keep.append(p)
        elif what == "split":
            first = p.cmps[0]
            keep += [replace(p, cmps=(Cmp(first.path, "eq", v),)) for v in first.value]
        elif what == "probe":
            probes.append(Probe(p, detail))
        else:
            why.append(detail)
    return keep, probes, why


#: (graph, table, id(schema facts), branch shape) -> (those facts, `_decide`'s answer):
#: the facts are held, so their id is not reused while cached
_DECISIONS: LRUCache[tuple[Any, ...], tuple[Any, tuple[str, str]]] = LRUCache(maxsize=1024)


def _decide(graph: Any, table: str, info: Any, p: Predicate) -> tuple[str, str]:
    """What `order_plan` does with a branch of this shape: ("keep", ""), ("split", "")
    (an IN list on a column an index returns in key order: one equality per value),
    ("probe", the root column), or ("why", the reason it is not searched)."""
    if exact_index(info, p) or _on_primary_key(info, p):
        return "keep", ""
    (first, *rest) = p.cmps
    if not rest and first.op == "in" and "." not in first.path:
        if not first.value:
            return "split", ""  # no value: no branch
        one = replace(p, cmps=(Cmp(first.path, "eq", None),))  # every value alike
        if exact_index(info, one) or _on_primary_key(info, one):
            return "split", ""
    column = _root_column(p, graph, table)
    if column is None or not (exact_index(info, _eq(column)) or _on_primary_key(info, _eq(column))):
        what = column or " and ".join(dict.fromkeys(c.path for c in p.cmps))
        return "why", (
            f"{p.field} was not searched: {table} has no index on {what} alone, so its "
            "matches could not be read in key order without sorting the table; "
            "ask for such an index or search by another field"
        )
    return "probe", column


def _on_primary_key(info: Any, predicate: Predicate) -> bool:
    """Equality on the whole primary key: at most one row (const access)."""
    if any(c.op != "eq" or "." in c.path for c in predicate.cmps):
        return False
    return bool(info.primary_key) and {c.path for c in predicate.cmps} == set(info.primary_key)


def _eq(column: str) -> Predicate:
    return Predicate(column, "equal", (Cmp(column, "eq", None),), True)


def probed_type(resolver: Resolver, table: str, probe: Probe) -> str:
    """The live type of the column whose values a probe reads (upper case): the searched
    table's own field, or the first relation's column in the related table. Worked out
    again only for another graph or a new object of the live schema facts (each minute)."""
    graph = resolver.graph
    dotted = probe.predicate.cmps[0].path
    where_of = (graph, table, dotted)
    found = lookup(_PROBED, where_of)
    if found is None:
        path = field_path(graph, table, dotted)
        hop = path.hops[0] if path.hops else None
        found = _PROBED[where_of] = (hop.target, hop.foreign) if hop else (table, path.field)
    where, name = found
    info = resolver.info(where)
    known = lookup(_PROBED_TYPES, (id(info), name))
    if known is None or known[0] is not info:
        column = info.column(name)
        known = (info, column.type.upper() if column is not None else "")
        _PROBED_TYPES[(id(info), name)] = known
    return str(known[1])


#: (graph, table, field path) -> (the table and column a probe of it reads)
_PROBED: LRUCache[tuple[Any, str, str], tuple[str, str]] = LRUCache(maxsize=256)
#: (id(schema facts), column) -> (those facts, the column's type in upper case)
_PROBED_TYPES: LRUCache[tuple[int, str], tuple[Any, str]] = LRUCache(maxsize=256)


def inexact(kind: str) -> bool:
    """A FLOAT is kept approximately: MariaDB prints the stored 0.100000001 as 0.1, and
    `column = 0.1` matches no row (no portable CAST reads it back exactly: FLOAT(7,4) + 0.0
    is printed 0.1000 again)."""
    return kind.startswith("FLOAT")


def _as_compared(value: Any, kind: str) -> Any:
    """A probed value as the server compares it with its column: a BIT reads back as bytes
    (`bit = X'01'` matches nothing; `bit + 0` is its number), a TIME as a Python timedelta
    no parameter takes (its text, CAST AS CHAR, is compared as a TIME)."""
    if kind.startswith("BIT"):
        return value + sa.literal(0, literal_execute=True)
    if kind.startswith("TIME") and not kind.startswith("TIMESTAMP"):
        return sa.cast(value, sa.CHAR)
    return value


def probe_statement(
    resolver: Resolver, table: str, probes: list[Probe], kinds: list[str] | None = None
) -> tuple[str, dict[str, Any]]:
    """See `_probe_text`; the text is cached per shape, like a page's. `kinds`: the
    `probed_type` of each probe (how its values are read, see `_as_compared`)."""
    kinds = kinds or [""] * len(probes)
    shape = (
        "probe",
        resolver.graph,
        table,
        tuple(kinds),
        tuple(
            (p.column, tuple((c.path, c.op, _width(c)) for c in p.predicate.cmps)) for p in probes
        ),
    )
    values = {
        name: value
        for i, p in enumerate(probes)
        for j, c in enumerate(p.predicate.cmps)
        for name, value in zip(_names(i, j, c), _value(c), strict=True)
    }
    text = lookup(_TEXTS, shape)
    if text is None:
        text, compiled = _probe_text(resolver, table, probes, kinds)
        if compiled != values:  # the fixed bind names are the contract the cache relies on
            raise AssertionError("probe parameters do not match the compiled statement")
        _TEXTS[shape] = text
    return text, values


def _probe_text(
    resolver: Resolver, table: str, probes: list[Probe], kinds: list[str]
) -> tuple[str, dict[str, Any]]:
    """One statement reading, for every probe, at most PROBE_VALUES + 1 distinct values of
    its root column: `(SELECT <i> AS b, col AS v<i> ... LIMIT n) UNION ALL ...`. A field
    of the table itself is grouped (MariaDB reads one index entry per value: "index for
    group-by"); a related field is read through its own index and joined back up to the
    first relation's key (no GROUP BY: that would sort), DISTINCT through a one-to-many
    relation (the server stops at the limit's distinct values, sorting nothing): without
    it, one account's 29 addresses of one phone filled the limit's rows and hid every
    other holder of that phone from a large table's search (round 54, branch r54fix)."""
    parts = []
    for i, probe in enumerate(probes):
        path = field_path(resolver.graph, table, probe.predicate.cmps[0].path)
        if path.many_at:  # a one-to-many hop past to-one ones: `account.addresses.phone`
            sel, value, column, joined = _probe_up(resolver, table, path, i)
        elif path.hops:
            first = path.hops[0]
            rest = ".".join([*(h.name for h in path.hops[1:]), path.field])
            sel = resolver.selection(first.target, alias=f"p{i}")
            inner = resolver.path(first.target, rest, to_one=True)
            value = sel.base.c[resolver.column(first.target, first.foreign)]
            column = sel.column(inner)
        else:
            sel = resolver.selection(table, alias=f"p{i}")
            column = value = sel.column(path)
        if not path.many_at:
            joined = sel.from_clause()
        conds = [
            _clause(column, c, _names(i, j, c), _value(c))
            for j, c in enumerate(probe.predicate.cmps)
        ]
        shown = _as_compared(value, kinds[i])
        cols = [limit(i).label("b")] + [
            (shown if j == i else sa.null()).label(f"v{j}") for j in range(len(probes))
        ]
        # DISTINCT by the bytes too: by the collation alone 'k3' and 'K3' (customers of one
        # case-blind account key, families 'f1' and 'F1' of one phone) were one value, and
        # the one dropped was never found (round 57)
        cols.append((_bytes(value) if path.many_at is not None else sa.null()).label("x"))
        stmt = sa.select(*cols).select_from(joined).where(*conds)
        if not path.hops and all(c.op != "match" for c in probe.predicate.cmps):
            stmt = stmt.group_by(value)  # (a FULLTEXT match grouped would be sorted)
        elif path.many_at is not None:  # many related rows of one value: each value once
            stmt = stmt.distinct()
        parts.append(stmt.limit(limit(PROBE_VALUES + 1)))
    statement = parts[0] if len(parts) == 1 else sa.union_all(*parts)
    return compile_sql(statement)


def _probe_up(resolver: Resolver, table: str, path: Path, i: int) -> tuple[Any, Any, Any, Any]:
    """A probe of a field past to-one hops and then a one-to-many one (`account.addresses
    .phone`): the related rows read through the field's own index, and joined back up the
    hops to the first relation's key, the value the searched table's column is compared
    with: `SELECT a.acc FROM acct_addr AS p JOIN acct AS a ON a.acc = p.acc [AND bytes]
    WHERE p.phone = ...`. The to-one hops are checked as a join of them is (unique, of one
    kind: `Selection.alias_for`), so the probe finds whom the small table's search finds.
    Returns (the related rows' selection, the value, the field's column, the FROM)."""
    at = path.many_at
    assert at
    hops, hop = path.hops[:at], path.hops[at]
    resolver.selection(table).alias_for(hops)  # (refused as the page's join would be)
    sel = resolver.selection(hop.target, alias=f"p{i}")
    column = sel.column(Path(hop.target, path.hops[at + 1 :], path.field, path.field_type))
    joined, below, on_col = sel.from_clause(), sel.base, hop.foreign
    upper = hop
    for j in range(at - 1, -1, -1):  # from the one-to-many hop's parent up to the first
        parent_table = hops[j].target
        row = resolver.table(parent_table).alias(resolver.alias(f"p{i}u{j}"))
        local, foreign = row.c[resolver.column(parent_table, upper.local)], below.c[on_col]
        on = local == foreign
        if upper is hop and related_by_bytes(resolver, parent_table, hop, path.describe()):
            on = sa.and_(on, _bytes(local) == _bytes(foreign))
        joined = joined.join(row, on)
        below, on_col, upper = row, hops[j].foreign, hops[j]
    # and on to the searched table's own column, as the page's join compares it: the values
    # are then the searched rows' own, matched by their bytes (`by_bytes`); the first hop's
    # key read instead and compared by its bytes missed customer 'k1' of the case-blind key
    # 'K1' (round 57), and compared by the collation found 'K1' beside 'k1' of a _bin key
    root = resolver.table(table).alias(resolver.alias(f"p{i}r"))
    local = root.c[resolver.column(table, hops[0].local)]
    joined = joined.join(root, local == below.c[resolver.column(hops[0].target, hops[0].foreign)])
    return sel, local, column, joined


def by_bytes(resolver: Resolver, table: str, probe: Probe) -> bool:
    """Whether a probe's values (a one-to-many relation's foreign column) are compared with
    `table`'s column by their bytes too, as a small table's search compares the related
    rows (`resolve.related_by_bytes`: refused when the columns are not of one kind).

    A to-one first hop's values (the related key, read past it: `account.addresses.phone`)
    are compared by their bytes too where both columns are text and `table`'s is not
    stated unique: a case-blind `code` of customers joined to an exact (`_bin`) account key
    is compared by that key's collation, so 'K1''s address found the customers 'k1' and
    'k1 ' too when the probed 'K1' was compared by the customers' collation (round 54)."""
    dotted = probe.predicate.cmps[0].path
    path = field_path(resolver.graph, table, dotted)
    if not path.hops:
        return False
    first = path.hops[0]
    if first.to_one:
        info = resolver.info(table)
        local, foreign = info.column(first.local), resolver.info(first.target).column(first.foreign)
        texts = local is not None and foreign is not None and local.charset and foreign.charset
        if path.many_at:  # the searched rows' own values (`_probe_up`): their bytes decide
            return bool(local is not None and local.charset)
        return bool(texts) and not info.is_unique(first.local)
    return related_by_bytes(resolver, table, first, path.describe())


def expand(
    table: str,
    probes: list[Probe],
    rows: list[dict[str, Any]],
    exactly: Sequence[bool] = (),
) -> tuple[list[Predicate], list[str]]:
    """Equality branches from the probe's rows, or why a probe had too many values (pure).
    The hint never repeats the typed term (it may be a phone number or an address).
    `exactly[i]` (`by_bytes`): probe i's values are compared by their bytes too, so a
    related row 'k1' finds the person 'k1' only, not 'K1' beside it (round 54)."""
    found: dict[int, list[Any]] = {i: [] for i in range(len(probes))}
    for row in rows:
        i = int(row["b"])
        value = row.get(f"v{i}")
        if value is not None and value not in found[i]:
            found[i].append(value)
    out: list[Predicate] = []
    why: list[str] = []
    for i, probe in enumerate(probes):
        p = probe.predicate
        if len(found[i]) > PROBE_VALUES:
            why.append(
                f"{p.field} was not searched: more than {PROBE_VALUES} different {table}."
                f"{probe.column} values match what you typed; type more of it"
            )
            continue
        op = EQ_BYTES if i < len(exactly) and exactly[i] else "eq"
        out += [Predicate(p.field, p.kind, (Cmp(probe.column, op, v),), True) for v in found[i]]
    return list(dict.fromkeys(out)), why


def _column(resolver: Resolver, sel: Any, table: str, path: str) -> Any:
    """A branch's column: a mapped field path, or (for branches a probe made) a live column
    of the searched table that is not mapped (a relation's local column)."""
    if "." not in path and resolver.graph.field(table, path) is None:
        return sel.base.c[resolver.column(table, path)]
    return sel.column(resolver.path(table, path, to_one=True))


def _conditions(
    resolver: Resolver, sel: Any, table: str, i: int, predicate: Predicate
) -> list[Any]:
    """Branch `i`'s conditions: each comparison on its column, and those through a
    one-to-many relation together in one EXISTS (one related row meets them all)."""
    conds: list[Any] = []
    related: dict[Any, list[tuple[int, Cmp]]] = {}
    for j, c in enumerate(predicate.cmps):
        path = None if "." not in c.path else field_path(resolver.graph, table, c.path)
        through = None if path is None else _through_many(path)
        if through is not None:
            related.setdefault(through, []).append((j, c))
        else:
            column = _column(resolver, sel, table, c.path)
            conds.append(_clause(column, c, _names(i, j, c), _value(c)))
    for cmps in related.values():
        paths = [field_path(resolver.graph, table, c.path) for _, c in cmps]

        def where(columns: list[Any], cmps: list[tuple[int, Cmp]] = cmps) -> Any:
            return sa.and_(
                *(
                    _clause(col, c, _names(i, j, c), _value(c))
                    for col, (j, c) in zip(columns, cmps, strict=True)
                )
            )

        conds.append(sel.exists(paths, where))
    return conds


def branch(
    resolver: Resolver,
    table: str,
    i: int,
    predicate: Predicate,
    after: Any,
    n: int,
    index: str | None = None,
    columns: list[str] | None = None,
) -> Any:
    """Branch `i`: the keys it matches (or, for a search of one branch, the page's
    `columns`), in key order. With `index`, the server is told to read that index (MySQL
    FORCE INDEX, the name quoted by the dialect) instead of walking the primary key and
    filtering."""
    sel = resolver.selection(table)
    conds = _conditions(resolver, sel, table, i, predicate)
    if after is not None:
        conds.append(sel.key > sa.bindparam("after", after))
    wanted = [sel.base.c[c] for c in columns] if columns else [sel.key]
    stmt = (
        sa.select(*wanted)
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
    unique: bool = True,
) -> tuple[str, dict[str, Any]]:
    """The statement of one page (n rows: ask for limit + 1 to know whether there is more).

    With `info` (live schema facts of a large table), equality branches read the index that
    covers exactly their columns (see `exact_index`). Without `unique` (the schema does not
    state the key unique and NOT NULL: a view, a non-key column), the UNIONed keys are joined
    back null-safely and the rows filtered by the branches again: `key = key` lost the rows
    of a NULL key, and a repeated key brought in its rows that match nothing."""
    hints = tuple(exact_index(info, p) if info else None for p in predicates)
    shape = (
        resolver.graph,  # a reloaded mapping is a new graph: nothing stale is reused
        table,
        tuple(columns),
        tuple(tuple((c.path, c.op, _width(c)) for c in p.cmps) for p in predicates),
        after is None,
        n,
        hints,
        unique,
    )
    values = params(predicates, after)
    text = lookup(_TEXTS, shape)
    if text is not None:
        return text, values
    if len(predicates) == 1:  # the branch reads the page itself: the shortest text
        stmt = branch(resolver, table, 0, predicates[0], after, n, hints[0], columns)
    else:  # (branch) UNION (branch) ...: at most branches x n keys, joined back for the page
        branches = [
            branch(resolver, table, i, p, after, n, hints[i]) for i, p in enumerate(predicates)
        ]
        # each branch wrapped (SQLite, which the sample is, has no `(SELECT .. LIMIT) UNION`)
        parts = [sa.select(b.subquery(f"b{i}")) for i, b in enumerate(branches)]
        keys = sa.union(*parts).subquery(resolver.alias("k"))
        if unique:
            base = resolver.table(table)
            stmt = (
                sa.select(*(base.c[c] for c in columns))
                .select_from(keys.join(base, base.c[key] == keys.c[key]))
                .order_by(base.c[key])
                .limit(limit(n))  # a literal bound: the source need not add its row cap
            )
        else:
            sel = resolver.selection(table)
            matches = sa.or_(
                *(
                    sa.and_(*_conditions(resolver, sel, table, i, p))
                    for i, p in enumerate(predicates)
                )
            )
            on = sel.key.is_not_distinct_from(keys.c[key])
            stmt = (
                sa.select(*(sel.base.c[c] for c in columns))
                .select_from(keys.join(sel.from_clause(), on))
                .where(matches)
                .order_by(sel.key)
                .limit(limit(n))
            )
    text, compiled = compile_sql(stmt)
    if compiled != values:  # the fixed bind names are the contract the cache relies on
        raise AssertionError("search parameters do not match the compiled statement")
    _TEXTS[shape] = text
    return text, values


def same_key(resolver: Resolver, table: str) -> tuple[str, dict[str, Any]]:
    """Whether two key values are one key as the server compares the key column: `SELECT
    COALESCE((SELECT key FROM t LIMIT 0), :a) = :b`. The subquery reads no row ("Zero
    limit"); it only lends :a the column's type, so the comparison takes the column's
    character set and collation (a view's too, whatever it is derived from): 'ß' = 's' in
    utf8mb4_general_ci, 'æ' = 'ae' in unicode_520_ci, 'a' <> 'a ' in a NO PAD one."""
    sel = resolver.selection(table)
    typed = sa.select(sel.key).select_from(sel.base).limit(limit(0)).scalar_subquery()
    a: sa.BindParameter[Any] = sa.bindparam("a", None)
    b: sa.BindParameter[Any] = sa.bindparam("b", None)
    return compile_sql(sa.select((sa.func.coalesce(typed, a) == b).label("same")))


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
