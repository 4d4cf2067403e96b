"""One resolver: field paths -> SQL (SQLAlchemy Core) and -> values, for every consumer.

Search, targets, template variables, completeness and rendering all go through here, so a
path the completeness report accepts is a path rendering fetches — by construction.

The small API other packages use (workflows use it for recipient/consent paths):

    r = Resolver(wb.mappings)
    path = r.path("customer", "address.phone", to_one=True)   # Graph path, checked
    sel = r.selection("customer")                               # FROM customer [LEFT JOIN ...]
    col = sel.column(path)                                      # a Core column on its alias
    stmt = sa.select(sel.key, col.label(path.name)).select_from(sel.from_clause())
    sql, params = compile_sql(stmt)                             # text for Source.records
    values = r.fetch("customer", rows, [path, ...])             # per row: {path.name: value}

Every identifier that reaches SQL passes `Resolver.table`/`Resolver.column` (checked against
the mapping and the live schema) and is quoted by the one dialect in `compile_sql`.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.dialects import mysql
from sqlalchemy.sql.elements import quoted_name

from hybridwb.errors import ValidationError
from hybridwb.mapping.graph import Graph, Hop, Path, relations_from_foreign_keys
from hybridwb.mapping.model import Relation
from hybridwb.source.cache import lookup
from hybridwb.validation import INT64, short

if TYPE_CHECKING:
    from hybridwb.mapping.discovery import TableInfo
    from hybridwb.mapping.service import MappingService

#: the one dialect every generated statement is compiled with: MySQL quoting, `:name` binds
#: (the Source guards this text; the embedded SQLite sample transpiles it)


class _AsciiBinds(mysql.base.MySQLCompiler):
    """Bind names a column lends its name to are ASCII: `광고수신동의 = :광고수신동의_1`
    is not a `:name` the source's tokenizer reads, `:hwb_b3` is."""

    def _truncate_bindparam(self, bindparam: Any) -> str:
        if bindparam in self.bind_names:
            return str(self.bind_names[bindparam])
        name = str(super()._truncate_bindparam(bindparam))
        if not (name.isascii() and name.isidentifier()):
            name = f"hwb_b{len(self.bind_names)}"
            self.bind_names[bindparam] = name
        return name


DIALECT = mysql.dialect(paramstyle="named")
DIALECT.statement_compiler = _AsciiBinds  # type: ignore[assignment]
CHUNK = 1000  # keys per IN list
SCHEMA_TTL = 60.0
SCAN_ROWS = 50_000  # rows: a plan reading more than this from one table is a scan


def ident(name: str) -> quoted_name:
    """An identifier, always quoted by the dialect (never spliced into text)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValidationError(f"{short(name)} is not a table or column name.")
    return quoted_name(name, quote=True)


def compile_sql(statement: sa.ClauseElement) -> tuple[str, dict[str, Any]]:
    """SQL text with `:name` binds and its parameters (IN lists expanded, LIMIT inline).

    A whole number past the signed 64-bit range (a `BIGINT UNSIGNED` key above 2**63-1,
    which the driver reads as an int: a page's start, a frozen key) is bound as a
    `Decimal`, which the server compares exactly and the bind check admits."""
    compiled = statement.compile(
        dialect=DIALECT, compile_kwargs={"render_postcompile": True, "literal_binds": False}
    )
    params = {k: _bindable(v) for k, v in compiled.params.items()}
    return str(compiled), params


def _bindable(value: Any) -> Any:
    """A value read from the source as a parameter the bind check admits and the server
    compares as it stored it: a `BIGINT UNSIGNED` past 2**63-1 as a `Decimal`, a `TIME` (the
    driver's timedelta) as its `time_text`; anything else as it is."""
    if type(value) is int and value not in INT64:
        return Decimal(value)
    if isinstance(value, dt.timedelta):
        return time_text(value)
    return value


def time_text(value: dt.timedelta) -> str:
    """A MySQL `TIME` value (the driver's timedelta) as the server writes it: `-1:00:00`,
    `25:30:00`, `0:00:01.500000` (hours unpadded, as `str(timedelta)` writes those of a
    day), not `str(timedelta)`'s `-1 day, 23:00:00`, which the server does not read."""
    micros = abs(value) // dt.timedelta(microseconds=1)
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    sign = "-" if value < dt.timedelta(0) else ""
    return f"{sign}{hours}:{minute:02d}:{second:02d}" + (f".{micro:06d}" if micro else "")


def explain_sql(sql: str) -> str:
    """The EXPLAIN of a compiled statement (a keyword in front of library-built text)."""
    return "EXPLAIN " + sql


def is_scan(row: dict[str, Any], threshold: int = SCAN_ROWS) -> bool:
    """An EXPLAIN row that reads more than `threshold` rows of one base table, whatever
    the access type (a range over the whole table is a scan too); derived tables are not."""
    table = str(row.get("table") or "")
    if not table or table.startswith("<"):
        return False
    try:
        rows = int(str(row.get("rows") or 0).split()[0])
    except ValueError:
        rows = 0
    return rows > threshold


def limit(n: int) -> Any:
    """A LIMIT value rendered inline (a server-side row bound, not a bound parameter)."""
    return sa.literal(int(n), literal_execute=True)


_TEXT_TYPES = ("CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT", "ENUM", "SET")
_BYTES_TYPES = ("BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "JSON")


def _is_text(kind: str) -> bool:
    """A text or byte-string column type (as the live schema states it, upper-cased)."""
    word = kind.upper().split("(")[0].split()[0] if kind.strip() else ""
    return word in _TEXT_TYPES or word in _BYTES_TYPES


def _bytes(column: Any) -> Any:
    """A text column's value as the hex of its bytes in the connection's character set."""
    return sa.func.hex(sa.cast(column, sa.CHAR))


def text_date(column: Any, ftype: str) -> Any:
    """A date kept as text (`reg_date` VARCHAR '20260301093000', gnuboard's
    `mb_leave_date` '' for "never") as the server reads it (`CAST(... AS DATETIME)` / `AS
    DATE`), NULL where it is no real date. MariaDB's CAST gives NULL for '', '2026-02-30',
    '2026-03-01 25:00:00', but compared with a date it reads '' and any garbage as
    0000-00-00 and '2026-02-30' as a date after 2026-02-28 (fuzzy), and '00000000' casts to
    the zero date: `older_than 365 days` on a withdrawal date chose every member who never
    left (round 57). A day and month above zero are asked of the value first, outside any
    comparison, where the CAST gives NULL."""
    cast = sa.cast(column, sa.DateTime() if ftype == "datetime" else sa.Date())
    return sa.case((real_date(cast), cast), else_=sa.null())


def real_date(value: Any) -> Any:
    """A date (or a DATE / DATETIME / TIMESTAMP column) with a day and a month: not the
    zero date '0000-00-00' nor '2025-00-15' or '2024-06-00', which MariaDB keeps where the
    sql_mode lets it and orders before every real date (NULL for NULL)."""
    return sa.and_(sa.func.dayofmonth(value) > 0, sa.func.month(value) > 0)


def _refuse_loose_join(resolver: Resolver, table: str, hop: Hop) -> None:
    """A related column unique as text is not unique as a number or a date: joined to an
    INT column, MariaDB (and SQLite) compares the text as a number, so '1', '01' and ' 1'
    all join the row with 1, and a to-one join repeated it (the same customer twice on a
    search page, counted twice in a target). Such a relation is refused, like one whose
    related column is not unique at all."""
    local = resolver.info(table).column(hop.local)
    foreign = resolver.info(hop.target).column(hop.foreign)
    if local is None or foreign is None:
        return
    _refuse_converted_join(table, hop, local, foreign)
    if not _is_text(foreign.type) or _is_text(local.type):
        return
    raise ValidationError(
        f"{hop.source} -> {hop.target} ({hop.name!r}) is declared many-to-one, but "
        f"{hop.source}.{hop.local} ({local.type}) is compared with the text column "
        f"{hop.target}.{hop.foreign} as a number or date ('1' = '01' = ' 1'), so one row can "
        "join several; relate columns of one kind (both text or both numbers)."
    )


def _refuse_converted_join(table: str, hop: Hop, local: Any, foreign: Any) -> None:
    """A related column unique in its character set is not unique in another: MariaDB
    compares a latin1 column with a utf8mb4 one in utf8mb4, by the utf8mb4 column's
    collation, so a latin1_bin key holding 'K1' and 'k1' joined both to a case-blind 'k1':
    the customer chosen by one account's label was named the other's (round 59). A
    to-one relation whose related column the server converts to the local column's
    character set is refused; one converted the other way (to the related column's) is
    compared by the related column's own collation, or a binary one, and stands."""
    charsets = {local.charset, foreign.charset}
    if None in charsets or "binary" in charsets or local.charset == foreign.charset:
        return
    if foreign.charset == "utf8mb4" or _keeps_apart(local.collation, foreign.collation):
        return
    raise ValidationError(
        f"{hop.source} -> {hop.target} ({hop.name!r}) is declared many-to-one, but "
        f"{hop.target}.{hop.foreign} ({foreign.charset}) is compared with "
        f"{table}.{hop.local} ({local.charset}) in {local.charset}, where values unique in "
        f"{foreign.charset} may be equal ('K1' and 'k1'), so one row can join several; "
        "relate columns of one character set."
    )


def _keeps_apart(local: str | None, foreign: str | None) -> bool:
    """Whether comparing by the `local` collation keeps apart every two values the
    `foreign` one does: a binary one (PAD SPACE, so not of a NO PAD `foreign`), or the
    same rule in another character set (utf8mb3_general_ci's values in
    utf8mb4_general_ci: a utf8 table related to a utf8mb4 one)."""
    if not local or not foreign:
        return False
    if local.endswith("_bin") and "nopad" not in foreign:
        return True
    rule = foreign.split("_", 1)[1] if "_" in foreign else None
    return rule is not None and local.split("_", 1)[-1] == rule


def related_by_bytes(resolver: Resolver, parent_table: str, hop: Hop, where: str) -> bool:
    """Whether the rows of the one-to-many `hop` are `parent_table`'s by the bytes of the
    related column as well as by its collation; refused when the two columns are not of one
    kind (text compared with a number reads '01' and ' 1' as 1: another person's row).

    Bytes decide where both are text and the parent's column is not stated unique: 'k1'
    and 'K1' two people of a view (no key the schema states unique), whose case- or
    pad-blind collation gave each the other's rows. (A unique key's collation is the
    schema's own rule of which rows are whose.) `Selection._correlated` (the latest row, a
    small table's search) and a large table's search probe (`search.sql.expand`) ask here."""
    local = resolver.info(parent_table).column(resolver.column(parent_table, hop.local))
    foreign = resolver.info(hop.target).column(resolver.column(hop.target, hop.foreign))
    if local is None or foreign is None:
        return False
    if _is_text(foreign.type) != _is_text(local.type):
        raise ValidationError(
            f"{where}: {parent_table}.{hop.local} ({local.type}) and "
            f"{hop.target}.{hop.foreign} ({foreign.type}) are not of one kind, so the "
            "server would compare them loosely ('01' = 1); relate columns of one kind."
        )
    return bool(
        local.charset and foreign.charset and not resolver.info(parent_table).is_unique(hop.local)
    )


@dataclass
class Selection:
    """The root table and the to-one joins the columns used so far need (LEFT OUTER)."""

    resolver: Resolver
    root: str
    base: Any
    key_name: str | None
    prefix: str = "j"
    joins: dict[tuple[Hop, ...], Any] = field(default_factory=dict)
    latest: int = 0  # the correlated subqueries `_latest` made (each its own alias)

    @property
    def key(self) -> Any:
        if self.key_name is None:
            raise ValidationError(f"{self.root} has no 'key' in its mapping; set one.")
        return self.base.c[self.key_name]

    def alias_for(self, hops: Sequence[Hop]) -> Any:
        """The alias of the table at the end of `hops`, joining to-one hops as needed."""
        current, table = self.base, self.root
        for i, hop in enumerate(hops):
            if not hop.to_one:
                raise ValidationError(
                    f"{hop.source} -> {hop.target} is one-to-many; it cannot be joined here."
                )
            prefix = tuple(hops[: i + 1])
            if prefix not in self.joins:
                name = self.resolver.alias(f"{self.prefix}{len(self.joins) + 1}")
                alias = self.resolver.table(hop.target).alias(name)
                self.resolver.column(table, hop.local)
                self.resolver.column(hop.target, hop.foreign)
                if not self.resolver.info(hop.target).is_unique(hop.foreign):
                    # joined as to-one, a repeated value would repeat root rows: counts and
                    # pages would promise rows the run never sends
                    raise ValidationError(
                        f"{hop.source} -> {hop.target} ({hop.name!r}) is declared many-to-one, "
                        f"but {hop.target}.{hop.foreign} is not unique (no primary key or "
                        "unique index on it alone); declare the relation one-to-many (with an "
                        "orderBy) or point it at a unique column."
                    )
                _refuse_loose_join(self.resolver, table, hop)
                self.joins[prefix] = alias
            current, table = self.joins[prefix], hop.target
        return current

    def column(self, path: Path) -> Any:
        if path.hops and not path.hops[-1].to_one:
            return self._latest(path)
        alias = self.alias_for(path.hops)
        self.resolver.column(path.table, path.field)
        return alias.c[path.field]

    def _latest(self, path: Path) -> Any:
        """The field of the latest related row through the path's last, one-to-many hop
        (a recipient `addresses.phone`, `Graph.path(latest=True)`): `(SELECT f FROM t WHERE
        t.foreign = parent.local ORDER BY t.orderBy DESC, t.key DESC LIMIT 1)`, one value per
        root row, whatever the number of related rows. Ties in `orderBy` (and NULLs, which
        sort last) are broken by the related table's key, so every read picks the same row."""
        *head, hop = path.hops
        resolver = self.resolver
        where = path.describe()
        if any(not h.to_one for h in head) or not hop.order_by:
            raise ValidationError(
                f"{where}: only the last relation may be one-to-many, and it needs an "
                "orderBy (the latest related row gives the value)."
            )
        key = resolver.graph.mapping(hop.target).key
        if not key:
            raise ValidationError(
                f"{where}: {hop.target} has no 'key' in its mapping; set one, so that rows "
                f"with the same {hop.order_by} are picked in one order."
            )
        by_row = self._by_row(head, hop, where)
        if by_row is not None:
            related, source, on = by_row
        else:
            related, on = self._correlated(head, hop, where)
            source = related
        latest = (
            sa.select(related.c[resolver.column(hop.target, path.field)])
            .select_from(source)
            .where(on)
            .order_by(*resolver.latest_order(related, hop))
            .limit(limit(1))
        )
        return latest.scalar_subquery()

    def _by_row(self, head: Sequence[Hop], hop: Hop, where: str) -> tuple[Any, Any, Any] | None:
        """Where the related rows are the parent's by their bytes (`related_by_bytes`: a
        family code 'f1' beside 'F1'), the latest row's subquery correlated by the parent
        row's unique column instead of the text: `FROM parent AS p JOIN t ON t.foreign =
        p.local AND bytes ... WHERE p.unique = parent.unique`. MariaDB caches a dependent
        subquery's result by its outer values compared by their collation, so with the text
        as the outer value, 'F1' was handed 'f1''s cached phone, another family's (round
        54). None where bytes do not decide, or the parent has no column stated unique (the
        text correlation then stands: `_correlated`). Returns (the related table's alias,
        the FROM of the subquery, its correlation)."""
        resolver = self.resolver
        parent_table = head[-1].target if head else self.root
        if not related_by_bytes(resolver, parent_table, hop, where):
            return None
        unique = head[-1].foreign if head else self.key_name
        if unique is None or not resolver.info(parent_table).is_unique(unique):
            return None
        parent = self.alias_for(head)
        self.latest += 1
        name = f"{self.prefix}l{self.latest}"
        related = resolver.table(hop.target).alias(resolver.alias(name))
        row = resolver.table(parent_table).alias(resolver.alias(f"{name}p"))
        local, foreign = row.c[hop.local], related.c[hop.foreign]
        joined = row.join(related, sa.and_(foreign == local, _bytes(foreign) == _bytes(local)))
        return related, joined, row.c[unique] == parent.c[unique]

    def exists(self, paths: Sequence[Path], where: Callable[[list[Any]], Any]) -> Any:
        """Whether one row through the paths' common one-to-many hop meets `where` (given
        each path's column on that row): a search of a person by any of their addresses'
        phones. `EXISTS (SELECT 1 FROM t [to-one joins] WHERE t.foreign = parent.local AND
        where(...))`, the parent the root or, past to-one hops before the one-to-many one
        (a customer by any of their account's addresses' phones: `account.addresses.phone`,
        round 54), the row those hops reach, joined here.

        Where the related rows are the root's by their bytes (`related_by_bytes`: 'k1' and
        'K1' two people of a table without a primary key), not correlated at all: `(root.local,
        bytes) IN (SELECT t.foreign, bytes FROM t ... WHERE where(...))`. MariaDB caches a
        dependent subquery's answer by its outer value compared by the collation: inside
        the OR a page of several branches filters its rows by, 'K1' was handed 'k1''s cached
        yes and found by k1's address's phone (round 54)."""
        at = paths[0].many_at
        if at is None:
            raise ValidationError(f"{paths[0].describe()}: no relation is one-to-many.")
        *head, hop = through = paths[0].hops[: at + 1]
        for path in paths:
            if path.hops[: at + 1] != through or any(not h.to_one for h in path.hops[at + 1 :]):
                raise ValidationError(f"{path.describe()}: only one relation may be one-to-many.")
        parent_table = head[-1].target if head else self.root
        exactly = related_by_bytes(self.resolver, parent_table, hop, paths[0].describe())
        related, on = self._correlated(head, hop, paths[0].describe())
        inner = Selection(self.resolver, hop.target, related, None, prefix=f"{related.name}j")
        columns = [
            inner.column(Path(hop.target, path.hops[at + 1 :], path.field, path.field_type))
            for path in paths
        ]
        if exactly:
            foreign, local = related.c[hop.foreign], self.alias_for(head).c[hop.local]
            owners = (
                sa.select(foreign, _bytes(foreign))
                .select_from(inner.from_clause())
                .where(where(columns))
            )
            return sa.tuple_(local, _bytes(local)).in_(owners)
        found: sa.Select[Any] = (
            sa.select(sa.literal_column("1"))
            .select_from(inner.from_clause())
            .where(on, where(columns))
        )
        return found.exists()

    def _correlated(self, head: Sequence[Hop], hop: Hop, where: str) -> tuple[Any, Any]:
        """An alias of the one-to-many `hop`'s table and its condition on the row reached
        by the to-one `head` (joined here): `t.foreign = parent.local`, on columns of one
        kind, and byte for byte where the parent's column is text not stated unique."""
        resolver = self.resolver
        parent = self.alias_for(head)
        parent_table = head[-1].target if head else self.root
        exactly = related_by_bytes(resolver, parent_table, hop, where)
        self.latest += 1
        related = resolver.table(hop.target).alias(resolver.alias(f"{self.prefix}l{self.latest}"))
        on = related.c[hop.foreign] == parent.c[hop.local]
        if exactly:
            on = sa.and_(on, _bytes(related.c[hop.foreign]) == _bytes(parent.c[hop.local]))
        return related, on

    def from_clause(self) -> Any:
        clause = self.base
        for prefix, alias in self.joins.items():
            hop = prefix[-1]
            parent = self.joins[prefix[:-1]] if len(prefix) > 1 else self.base
            clause = clause.outerjoin(alias, parent.c[hop.local] == alias.c[hop.foreign])
        return clause


class Resolver:
    """Paths, checked identifiers and bulk values over one MappingService."""

    def __init__(self, mappings: MappingService) -> None:
        self.mappings = mappings
        self._graph: tuple[Any, Any, Graph] | None = None
        self._live: dict[str, tuple[float, TableInfo]] = {}
        # {mapped table names: relations from the live schema's foreign keys}, a minute
        self._foreign: TTLCache[tuple[str, ...], dict[str, list[Relation]]] = TTLCache(
            maxsize=4, ttl=SCHEMA_TTL
        )
        # .graph, .tables: this thread's graph, and the mapping file's tables it was made
        # from, inside `one_graph()`
        self._held = threading.local()
        # (mapping tables, the names of the active ones): worked out once per file read
        self._active: tuple[dict[str, Any], tuple[str, ...]] | None = None

    # -- the graph ------------------------------------------------------------------------
    @contextmanager
    def one_graph(self) -> Iterator[Graph]:
        """Inside, this thread's uses of `graph` see the one graph read on entry: an
        operation (a search: its plan, probe and page) reads the mapping file once and sees
        one version of it, not a mix of two when the file changes half-way."""
        held = getattr(self._held, "graph", None)
        if held is not None:  # nested: the outer block's graph holds
            yield held
            return
        tables, graph = self._read()
        self._held.graph, self._held.tables = graph, tables
        try:
            yield graph
        finally:
            self._held.graph = self._held.tables = None

    def held_tables(self) -> dict[str, Any] | None:
        """Inside `one_graph()`, every table of the mapping file its graph was made from
        (inactive ones too), so the operation resolves a name without reading it again."""
        return getattr(self._held, "tables", None)

    @property
    def graph(self) -> Graph:
        """The mapping's relations plus the live schema's foreign keys (the mapping wins)."""
        held = getattr(self._held, "graph", None)
        return held if held is not None else self._read_graph()

    def _read_graph(self) -> Graph:
        return self._read()[1]

    def _read(self) -> tuple[dict[str, Any], Graph]:
        """The mapping file's tables and the graph over them (made again only when the file
        was read again or the foreign keys were)."""
        loaded = self.mappings.load()
        tables = loaded.tables()
        extra = self.foreign_relations(tables)
        cached = self._graph
        if cached is None or cached[0] is not loaded or cached[1] is not extra:
            self._graph = cached = (loaded, extra, Graph(tables, extra))
        return tables, cached[2]

    def foreign_relations(self, tables: dict[str, Any]) -> dict[str, list[Relation]]:
        """Relations implied by the foreign keys among the active mapped tables (cached)."""
        active = self._active
        if active is not None and active[0] is tables:  # the same read of the file
            names = active[1]
        else:
            names = tuple(sorted(n for n, m in tables.items() if m.isActive))
            self._active = (tables, names)
        found = lookup(self._foreign, names)
        if found is None:
            from hybridwb.mapping import discovery

            found = relations_from_foreign_keys(
                discovery.foreign_keys(self.mappings.source, list(names))
            )
            self._foreign[names] = found
        return found

    def path(self, root: str, dotted: str, *, to_one: bool = False, exact: bool = False) -> Path:
        return self.graph.path(root, dotted, to_one=to_one, exact=exact)

    # -- identifiers, checked ---------------------------------------------------------------
    def info(self, table: str) -> TableInfo:
        """Live schema facts of a table (cached for a minute)."""
        cached = self._live.get(table)
        if cached and time.monotonic() - cached[0] < SCHEMA_TTL:
            return cached[1]
        from hybridwb.mapping import discovery

        info = discovery.describe(self.mappings.source, table)
        self._live[table] = (time.monotonic(), info)
        return info

    def fresh_types(self, columns: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """{(table, column): type} read from the server now, past the minute's cache of
        `info` (one statement): for the few columns a run must not read by a stale type."""
        from hybridwb.mapping import discovery

        return discovery.column_types(self.mappings.source, columns)

    def table(self, name: str, columns: Iterable[str] = ()) -> Any:
        """A Core table for a mapped table whose name the live schema confirms."""
        mapping = self.graph.mappings.get(name)
        if mapping is None:
            raise ValidationError(
                f"{name!r} is not an active mapped table; map it before using it in a query."
            )
        live = {c.name for c in self.info(name).columns}
        wanted = list(dict.fromkeys([*mapping.fields, *columns]))
        missing = [c for c in wanted if c not in live]
        if missing:
            raise ValidationError(
                f"{name}: column {missing[0]!r} is in the mapping but not in the live table; "
                "run wb.mappings.check().",
                column=missing[0],
            )
        extra = [c for c in live if c not in wanted]
        return sa.table(ident(name), *(sa.column(ident(c)) for c in [*wanted, *extra]))

    def column(self, table: str, name: str) -> str:
        """`name` if it is a column of the live `table` (relations name unmapped columns)."""
        if name not in {c.name for c in self.info(table).columns}:
            raise ValidationError(
                f"{table} has no column {name!r}; fix the mapping (relations or fields)."
            )
        return name

    def alias(self, name: str) -> str:
        """`name` as an alias no mapped table is named (MariaDB may compare them case-blind),
        with underscores after it until it is not: a table `j1` joined to an alias `j1` was
        "Not unique table/alias", and an audience `r1` correlated with an EXISTS over its
        alias `r1` compared the related table with itself (a wrong target set)."""
        taken = {t.casefold() for t in self.graph.mappings}
        while name.casefold() in taken:
            name += "_"
        return name

    def selection(self, root: str, alias: str | None = None) -> Selection:
        """The root table (aliased when given, for subqueries) ready for to-one joins."""
        mapping = self.graph.mapping(root)
        base = self.table(root)
        if alias is not None:
            alias = self.alias(alias)
            return Selection(self, root, base.alias(alias), mapping.key, prefix=f"{alias}j")
        return Selection(self, root, base, mapping.key)

    # -- values ----------------------------------------------------------------------------
    def fetch(
        self, root: str, rows: Sequence[dict[str, Any]], paths: Iterable[Path]
    ) -> list[dict[str, Any]]:
        """For each root row, `{path.name: value}`: hop by hop, one query per hop and chunk
        of keys, never one per row. A to-many hop takes the latest row by its `orderBy`,
        ordered by the server as the column's type (so 10 > 9 and dates compare as dates)."""
        out: list[dict[str, Any]] = [{} for _ in rows]
        paths = [p for p in paths if p.root == root]
        for p in paths:
            if p.problem:
                raise ValidationError(f"{p.describe()}: {p.problem}.")
        rows = self._with_locals(root, rows, {p.hops[0].local for p in paths if p.hops})
        # current[i][prefix] = the related row reached by `prefix` for root row i
        current: list[dict[tuple[Hop, ...], dict[str, Any] | None]] = [{(): row} for row in rows]
        prefixes = sorted({p.hops[:n] for p in paths for n in range(1, len(p.hops) + 1)}, key=len)
        for prefix in prefixes:
            hop = prefix[-1]
            needed = {hop.foreign}
            needed |= {p.field for p in paths if p.hops == prefix}
            needed |= {
                p.hops[len(prefix)].local
                for p in paths
                if p.hops[: len(prefix)] == prefix and len(p.hops) > len(prefix)
            }
            keys = {
                r[hop.local]
                for cur in current
                if (r := cur.get(prefix[:-1])) is not None and r.get(hop.local) is not None
            }
            ordered = sorted(keys, key=_sortable)
            if hop.to_one:
                _refuse_loose_join(self, hop.source, hop)
            if hop.to_one and not self.info(hop.target).is_unique(hop.foreign):
                # (a view of accounts: 'V1' and 'v1' both joined to a case-blind 'v1', and
                # 'V1 ' was given 'v1''s label, one of the two, round 59)
                found = self._one_per_key(hop, ordered, needed, through=True, single=True)
            else:
                found = self._one_per_key(hop, ordered, needed)
                if hop.to_one:
                    found = self._as_joined(hop, found, keys, needed)
            for cur in current:
                parent = cur.get(prefix[:-1])
                cur[prefix] = found.get(parent.get(hop.local)) if parent is not None else None
        for i, cur in enumerate(current):
            for p in paths:
                holder = cur.get(p.hops)
                out[i][p.name] = holder.get(p.field) if holder is not None else None
        return out

    def _with_locals(
        self, root: str, rows: Sequence[dict[str, Any]], locals_: set[str]
    ) -> Sequence[dict[str, Any]]:
        """The rows with the columns relations start from that they do not hold (a search's
        row holds mapped fields only: `cust.acc` of `account.addresses.phone` left out of
        the mapping, round 54), read by the root's key where the schema states it unique;
        a row whose key is not found exactly once gets none (its related values missing,
        never another row's). A run reads them with the row itself (`Plan.locals`)."""
        lacking = sorted(c for c in locals_ if any(c not in r for r in rows))
        key = self.graph.mapping(root).key
        if not lacking or key is None or not self.info(root).is_unique(key):
            return rows
        base = self.table(root)
        cols = [base.c[self.column(root, c)] for c in lacking]
        keys = sorted({v for r in rows if (v := r.get(key)) is not None}, key=_sortable)
        held: dict[Any, list[dict[str, Any]]] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            stmt = sa.select(base.c[key], *cols).where(base.c[key].in_(chunk))
            sql, params = compile_sql(stmt)
            for rec in self.mappings.source.records(sql, params):
                held.setdefault(rec[key], []).append(rec)
        out = []
        for row in rows:
            found = held.get(row.get(key), [])
            got = found[0] if len(found) == 1 else {}
            out.append({**{c: got.get(c) for c in lacking}, **row})
        return out

    def latest_order(self, related: Any, hop: Hop) -> list[Any]:
        """The order whose first row is a one-to-many `hop`'s latest (`related`: an alias of
        its table): `orderBy` descending (NULLs last), ties by the mapping's key, the higher;
        where the schema does not state that key unique (a view, a table without a primary
        key: round 54, two rows of one key and one date in a UNION of two address tables), by
        every mapped field after it, so the recipient's read (`Selection._latest`) and a
        template's (`_one_per_key`) pick the same row, and every read picks it again."""
        mapping = self.graph.mapping(hop.target)
        key, first = mapping.key, self.column(hop.target, hop.order_by or "")
        order = [self._dated_order(hop.target, first, related.c[first]).desc()]
        if key and key != first:
            order.append(related.c[self.column(hop.target, key)].desc())
        if not key or not self.info(hop.target).is_unique(key):
            order += [
                related.c[self.column(hop.target, name)].desc()
                for name in sorted(mapping.fields)
                if name not in (first, key)
            ]
        return order

    def _dated_order(self, table: str, name: str, column: Any) -> Any:
        """An `orderBy` column as its order compares it: a date field the server keeps as
        text read as a date (`text_date`; a MariaDB source), since text put '2026-9-30'
        after '2026-10-01' and '20260930' after '2026-10-01': the latest address was an
        older one, its phone messaged (round 57). A text not a real date sorts last. A
        SQLite source reads no such text as a date: there it is refused (round 58)."""
        field = self.graph.mapping(table).fields.get(name)
        live = self.info(table).column(name)
        if field is None or field.type not in ("date", "datetime") or live is None:
            return column
        if self.mappings.source.is_sqlite:
            if _is_text(live.type):
                # SQLite reads no '2026-9-30' or '20260930' as a date: by text, the latest
                # address was an older one, its phone messaged (round 58)
                raise ValidationError(
                    f"{table}.{name}: a SQLite source keeps this date as text "
                    f"({short(live.type)}) and orders it as text ('2026-9-30' after "
                    "'2026-10-01'), so the latest row by it may be an older one; store it as "
                    "DATETIME ('YYYY-MM-DD HH:MM:SS'), or order the relation by another column."
                )
            return column
        if not live.charset:
            if live.type.upper().split("(")[0] in ("DATE", "DATETIME", "TIMESTAMP"):
                # a zero date ('0000-00-00') or one without a month or day ('2026-00-15')
                # is no date, as to the conditions: last, with NULL; MariaDB put
                # '2026-00-15' after '2025-12-01', its address the latest (round 59)
                return sa.case((real_date(column), column), else_=sa.null())
            return column
        return text_date(column, field.type)

    def _as_joined(
        self, hop: Hop, found: dict[Any, dict[str, Any]], keys: set[Any], needed: set[str]
    ) -> dict[Any, dict[str, Any]]:
        """`found` (a to-one hop's rows by their own value) with the text parent values no
        row holds byte for byte given the row the server's join gives them, read through
        the parent table (`_one_per_key(through=True)`: its own values, each related as
        the run's recipient join relates it, by the column's collation). Customer 'k1' of
        the case-blind account 'K1' was looked up by 'k1' among rows keyed 'K1' and
        skipped as missing (round 57); Python's folding of the two (case, accents,
        trailing spaces) that stood in for the server's then gave a customer 'u1' the
        latin1_swedish_ci account 'Ü1' (the server's 'y1''s: 'Ü' is 'Y' there), 'ss1' the
        utf8mb4_general_ci 'ß1' ('s1''s), and skipped 'é1 ' and 'e1' of 'É1' (round 58).
        Only the values left over are read again (a reference to no row, a collation's
        match), and only for text."""
        left = sorted((k for k in keys if k not in found and isinstance(k, str)), key=_sortable)
        if not left:
            return found
        return {**found, **self._one_per_key(hop, left, needed, through=True)}

    def _one_per_key(
        self,
        hop: Hop,
        keys: list[Any],
        needed: set[str],
        through: bool = False,
        single: bool = False,
    ) -> dict[Any, dict[str, Any]]:
        """`{local value: row}` with one row per value: the latest by `orderBy` (ties by the
        related table's key, the higher, as `Selection._latest`), else the first by the
        related table's key (a window function, so at most len(keys) rows).

        A one-to-many hop reads its rows through the parent table, related as
        `Selection._correlated` relates them (by the collation, and by the bytes too where
        the parent's column is not stated unique: `related_by_bytes`), and keys them by the
        parent's own value: a case-blind unique key 'k1' whose latest address is written
        'K1' was messaged at that address's phone, but its `{{ addresses.city }}` was looked
        up by 'k1' among rows keyed 'K1' and found none (round 54). `through`: a to-one
        hop's rows read that way too, for the values `_as_joined` asks of the server.
        `single`: only the values the server's join gives exactly one row (a to-one hop
        whose related column no key states unique: a value it joins to two rows has no
        row of its own, and is missing, never given one of the two)."""
        if not keys:
            return {}
        # (`through`: a to-one hop's rows read through the parent table too, `_as_joined`)
        many = not hop.to_one or through
        related = self.table(hop.target)
        if many:
            related = related.alias(self.alias("hwb_related"))
        self.column(hop.target, hop.foreign)
        key = self.graph.mapping(hop.target).key
        order_col = hop.order_by or key or hop.foreign
        self.column(hop.target, order_col)
        # the latest row in `Selection._latest`'s own order: the row whose city a message
        # names is the row whose phone it went to (round 54: several addresses of one date,
        # the city of one, the phone of another)
        order = self.latest_order(related, hop) if hop.order_by else [related.c[order_col].asc()]
        cols = [related.c[self.column(hop.target, c)] for c in sorted(needed)]
        # the labels are no column's name (MariaDB compares them case-blind): a related
        # table's own `hybridwb_rank` made SQLAlchemy raise, or the filter read that column
        taken = {c.casefold() for c in needed}
        rank, owner, count = "hybridwb_rank", "hybridwb_parent", "hybridwb_count"
        while rank.casefold() in taken:
            rank += "_"
        while owner.casefold() in taken:
            owner += "_"
        while count.casefold() in taken:
            count += "_"
        if many:
            parent = self.table(hop.source).alias(self.alias("hwb_parent"))
            column = parent.c[self.column(hop.source, hop.local)]
            local = self.info(hop.source).column(hop.local)
            text = local is not None and bool(local.charset)
            # (a to-one hop relates by the collation alone, as the run's join: `from_clause`)
            exactly = not hop.to_one and related_by_bytes(
                self, hop.source, hop, f"{hop.source}.{hop.name}"
            )
        found: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            if many:
                # each value of the chunk as the parent table stores it, once ('k1' and 'K1'
                # of a view two values, two keys of `found`; a column that is not unique, a
                # family id, not once per parent row), and its related rows
                values = (
                    sa.select(sa.func.min(column).label(owner))
                    .where(column.in_(chunk))
                    .group_by(_bytes(column) if text else column)
                    .subquery(self.alias("hwb_parent_values"))
                )
                by = values.c[owner]
                on = related.c[hop.foreign] == by
                if exactly:
                    on = sa.and_(on, _bytes(related.c[hop.foreign]) == _bytes(by))
                partition = _bytes(by) if text else by
                ranked_from, chunk_cols, where = values.join(related, on), [*cols, by], None
            else:
                by = partition = related.c[hop.foreign]
                ranked_from, chunk_cols, where = related, cols, by.in_(chunk)
            if single:
                chunk_cols = [
                    *chunk_cols,
                    sa.func.count().over(partition_by=partition).label(count),
                ]
            ranked_select = sa.select(
                *chunk_cols,
                sa.func.row_number().over(partition_by=partition, order_by=order).label(rank),
            ).select_from(ranked_from)
            if where is not None:
                ranked_select = ranked_select.where(where)
            ranked = ranked_select.subquery("ranked")
            wanted = sorted(needed) + ([owner] if many else [])
            stmt = sa.select(*(ranked.c[c] for c in wanted)).where(ranked.c[rank] == 1)
            if single:
                stmt = stmt.where(ranked.c[count] == 1)
            sql, params = compile_sql(stmt)
            # (a parent column not stated unique may hold, beside a key of the chunk, one
            # its collation holds equal: a partition of its own, so no cap of len(chunk))
            most = None if many else len(chunk)
            for rec in self.mappings.source.records(sql, params, limit=most):
                if many:
                    found[rec[owner]] = {c: v for c, v in rec.items() if c != owner}
                else:
                    found[rec[hop.foreign]] = rec
        return found


def _sortable(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def audience_table(mappings: dict[str, Any]) -> str:
    """The table whose rows are message recipients: the one mapping marked `audience`,
    else the one active mapping with a phone or email field (nothing names a table)."""
    marked = [n for n, m in mappings.items() if m.isActive and m.audience]
    if len(marked) == 1:
        return marked[0]
    if len(marked) > 1:
        raise ValidationError(
            f"Several mappings are marked as the audience ({', '.join(marked)}); name the table."
        )
    reachable = [
        n
        for n, m in mappings.items()
        if m.isActive and m.key and any(f.role in ("phone", "email") for f in m.fields.values())
    ]
    if len(reachable) == 1:
        return reachable[0]
    raise ValidationError(
        'No mapping is marked as the audience; set "audience": true (and its key and '
        "recipient) on the table whose rows are recipients, or name the table."
    )
