"""`wb.search(table, term)`: keyword search over a mapped table, paged by key."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
import unicodedata
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken

from hybridwb.errors import HybridwbError, NotFound, ScanRefused, ValidationError
from hybridwb.mapping.resolve import explain_sql, is_scan
from hybridwb.render import render_table, row_count
from hybridwb.search import predicates
from hybridwb.search import sql as search_sql
from hybridwb.source import zones
from hybridwb.source.binds import positive_int_arg
from hybridwb.validation import checked_calls, short

if TYPE_CHECKING:  # pandas (and hybridwb.grid with it) is imported where a frame is built
    import pandas as pd

    from hybridwb.mapping import MappingService
    from hybridwb.mapping.discovery import TableInfo

SCAN_THRESHOLD = 50_000  # rows: above this a predicate without an index is refused
MAX_LIMIT = 500
MAX_TOKEN = 32_768  # characters of a page token read at all (it is sealed and checked)
MAX_KEY_TEXT = 8_000  # characters of a last key (as JSON) a token holds: well within MAX_TOKEN


class _Page:
    """A page's customer rows, held in slots: `vars()` of a result shows no value."""

    __slots__ = ("frame", "more", "records")

    def __init__(
        self,
        frame: pd.DataFrame | Callable[[], pd.DataFrame],
        records: list[dict[str, Any]],
        more: str | tuple[str, str, Any, str] | None = None,
    ) -> None:
        self.frame = frame
        self.records = records
        # the next page's token, or what it is sealed from (table, term, last key value,
        # and key) until someone asks for it: sealing costs more than a page's query
        self.more = more

    def __repr__(self) -> str:
        return f"<page of {len(self.records)} rows>"


class SearchResult:
    """One page of a search. What it shows (repr, a notebook's text and HTML output) has
    the mapping's pii fields masked; the values are read explicitly, as `rows` (display
    names as column labels) or `raw_rows` (field names)."""

    def __init__(
        self,
        table: str,
        key: str,
        rows: pd.DataFrame | Callable[[], pd.DataFrame],
        raw_rows: list[dict[str, Any]],
        next_page: str | tuple[str, str, Any, str] | None,
        meta: dict[str, Any] | None = None,
        pii: Collection[str] = (),
    ) -> None:
        self.table = table
        self.key = key
        self._page = _Page(rows, raw_rows, next_page)
        self.meta: dict[str, Any] = dict(meta or {})
        self.pii = frozenset(pii)  # column labels of `rows` that are masked when shown

    @property
    def rows(self) -> pd.DataFrame:
        """The page as a DataFrame, built on first use (the widget, the CLI and targets read
        `raw_rows` only; a page's DataFrame costs more than its query)."""
        if callable(self._page.frame):
            self._page.frame = self._page.frame()
        return self._page.frame

    @property
    def next_page(self) -> str | None:
        """The token of the next page (`page=`), None on the last page; sealed on first use."""
        more = self._page.more
        if isinstance(more, tuple):
            self._page.more = more = encode_token(*more)
        return more

    @property
    def raw_rows(self) -> list[dict[str, Any]]:
        return self._page.records

    def __len__(self) -> int:
        return len(self._page.records)

    def _caption(self) -> str:
        more = "; more with page=result.next_page" if self.next_page else ""
        return f"{row_count(len(self))} of {self.table}{more}"

    def __repr__(self) -> str:
        from hybridwb.grid import masked_display

        shown = masked_display(self.rows, self.pii).to_string(index=False)
        return f"SearchResult({self._caption()})\n{shown}"

    def _repr_html_(self) -> str:
        from hybridwb.grid import masked_display

        return render_table(masked_display(self.rows, self.pii), caption=self._caption())


def search_term(term: object) -> str:
    """The term as plain text: a str subclass as the text it holds (its own `strip`,
    `lower` ... searched for other text), a lone surrogate refused in one line (it was
    refused as "Parameter 'b0_0'", a name the user never wrote)."""
    if not isinstance(term, str):
        raise ValidationError(f"The search term must be text, not {type(term).__name__}.")
    term = str.__str__(term)
    if not term.isascii():
        try:
            term.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                "The search term is not valid text (it holds a lone surrogate); "
                "retype the odd character."
            ) from None
    return term


def _digest(table: str, term: str, key: str) -> str:
    """Which search a token belongs to, without the term itself. The key is part of it: a
    token holds the last value of the key it was made under, and read under another key
    (`id > 'd'` after the mapping's key changed from code to id) it repeated rows."""
    data = f"{table}\0{term}\0{key}".encode()
    return hashlib.blake2b(data, digest_size=12, person=b"hybridwb-page").hexdigest()


def _sealer(table: str, term: str) -> Fernet:
    """The key a page's last key value is sealed with: only the same search can read it."""
    seed = hashlib.sha256(f"hybridwb page key\0{table}\0{term}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(seed))


def _exact_after(value: Any, kind: str) -> Any:
    """The last key value as the server compares it. Python's spelling of a few driver
    values is not that: a BINARY/VARBINARY key arrives as bytes (`str` gave "b'..'", so
    `key > "b'ab'"` skipped or repeated rows), a BIT key as bytes the server compares with
    a number only, a TIME as a timedelta ("-1 day, 23:00:00" is no TIME). A BIGINT UNSIGNED
    beyond the signed 64 bits a parameter may hold is read back a Decimal (`decode_token`)."""
    if isinstance(value, bytes | bytearray):
        if kind.upper().startswith("BIT"):
            return int.from_bytes(value, "big")
        return {"x": bytes(value).hex()}
    if isinstance(value, timedelta):
        micro = abs(value) // timedelta(microseconds=1)
        seconds, micro = divmod(micro, 1_000_000)
        sign = "-" if value < timedelta(0) else ""
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{micro:06d}"
    return value


def encode_token(table: str, term: str, after: Any, key: str) -> str:
    """A page token: the table, a digest of the term, and the last key value sealed
    (neither the term nor the key value is readable from it)."""
    sealed = _sealer(table, term).encrypt(json.dumps(after, default=str).encode()).decode()
    raw = json.dumps({"t": table, "d": _digest(table, term, key), "a": sealed}, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_token(token: Any, table: str, term: str, key: str) -> Any:
    """The key a page token continues after; any token hybridwb did not make is refused."""
    bad = ValidationError("The page token is not one hybridwb made; start from the first page.")
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise bad
    data: Any = None
    with contextlib.suppress(ValueError, UnicodeError):
        data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
    if not isinstance(data, dict) or set(data) != {"t", "d", "a"}:
        raise bad
    if not all(isinstance(v, str) for v in data.values()):
        raise bad
    if data["t"] != table or data["d"] != _digest(table, term, key):
        raise ValidationError(
            "The page token belongs to another search; start from the first page."
        )
    after: Any = None
    with contextlib.suppress(InvalidToken, ValueError, UnicodeError):
        after = json.loads(_sealer(table, term).decrypt(data["a"].encode()).decode())
    if isinstance(after, dict) and set(after) == {"x"} and isinstance(after["x"], str):
        with contextlib.suppress(ValueError):
            return bytes.fromhex(after["x"])  # a binary key (see `_exact_after`)
    if isinstance(after, int) and not isinstance(after, bool) and not -(2**63) <= after < 2**63:
        return Decimal(after)  # a BIGINT UNSIGNED key: compared exactly, as a number
    if isinstance(after, bool) or not isinstance(after, int | float | str):
        raise bad
    return after


def _refuse_paging(table: str, key: str, info: TableInfo, limit: int, source: Any) -> None:
    """A page after the first continues at `key > last key`, which is exact only when the
    key reads back as the server compares it. A MariaDB FLOAT 0.100000001 is printed as 0.1,
    so `key > 0.1` found the same row again, page after page; an ENUM or SET sorts by list
    position but compares as text, so ENUM('b','a') never reached 'a' (rows lost without a
    word); a TIMESTAMP read in a zone with daylight saving time is two instants as one text
    when the clocks go back (`key > '02:15'` skipped the second 02:15-03:00, see
    `zones`). Such a key gets no next page: a one-line error says what to do instead."""
    if source.is_sqlite:  # SQLite keeps a float as the double it prints
        return
    kind = next((c.type for c in info.columns if c.name == key), "").upper()
    what = (
        "a FLOAT, which the server keeps approximately"
        if kind.startswith("FLOAT")
        else "an ENUM or SET, which the server sorts by list position but compares as text"
        if kind.startswith(("ENUM(", "SET("))
        else "a TIMESTAMP read in a time zone with daylight saving time (two instants, one text)"
        if zones.is_timestamp(kind) and not zones.session_zone_is_fixed(source)
        else None
    )
    if what is not None:
        raise ValidationError(
            f"More than {limit} results in {table}, but its key {key!r} is {what}, so later "
            f"pages would repeat or skip rows; narrow the search, raise limit (up to "
            f"{MAX_LIMIT}), or set the mapping's key to an integer, DECIMAL or text column."
        )


def _nullable(info: TableInfo, key: str) -> bool:
    column = info.column(key)
    return column is None or column.nullable


def _folded(value: Any) -> Any:
    """A key value as loosely as a collation may compare it: case, accents and trailing
    spaces dropped (utf8mb4_general_ci has 'a' = 'A ' = 'á')."""
    if not isinstance(value, str):
        return value
    bare = unicodedata.normalize("NFKD", value.rstrip(" ")).casefold()
    return "".join(ch for ch in bare if not unicodedata.combining(ch))


def _refuse_split_key(
    table: str,
    key: str,
    info: TableInfo,
    last: Any,
    following: Any,
    same: Callable[[str, str], bool],
) -> None:
    """The next page continues at `key > last`: rows whose key equals the page's last key
    and did not fit on it would never be shown (a mapping's key that is not unique, e.g. a
    view's or a non-key column), and a NULL last key continues at nothing (`key > NULL`).
    The row after the page (it is read to know there is more) tells: a key the schema does
    not state unique that repeats there, or a NULL, gets a one-line error.

    "Repeats" is as the key column's collation compares: two different texts may be one
    key ('ß' = 's' in utf8mb4_general_ci, 'æ' = 'ae' in unicode_520_ci), which no fold in
    Python knows exactly, so `same` asks (the server, see `_same_key`). Numbers, dates and
    bytes compare exactly in Python."""
    if last is None:
        why = f"its key {key!r} is NULL in some rows"
    elif not info.is_unique(key) and (
        last == following
        or (isinstance(last, str) and isinstance(following, str) and same(last, following))
    ):
        why = f"its key {key!r} is not unique (a value repeats across the page boundary)"
    else:
        return
    raise ValidationError(
        f"More results in {table} than one page holds, but {why}, so later pages would "
        f"skip rows; narrow the search, raise limit (up to {MAX_LIMIT}), or set the "
        "mapping's key to a unique, NOT NULL column."
    )


def _refuse_long_key(table: str, key: str, last: Any) -> None:
    """A page token holds the page's last key; a token too long to be read back would
    answer the next page with "start from the first page", whose token is the same again.
    (A JSON string spends at most 12 characters on one character: the cheap test first.)"""
    if not isinstance(last, str) or len(last) * 12 <= MAX_KEY_TEXT:
        return
    if len(json.dumps(last)) > MAX_KEY_TEXT:
        raise ValidationError(
            f"More results in {table} than one page holds, but the last key ({key!r}) on this "
            "page is too long to continue after; narrow the search, raise limit (up to "
            f"{MAX_LIMIT}), or set the mapping's key to a shorter column."
        )


def _pii_labels(mapping: Any) -> set[str]:
    """The columns of a result's frame that hold a pii field (by display name and name)."""
    return {label for n, f in mapping.fields.items() if f.pii for label in (n, f.displayName)}


def _declared(graph: Any, hop: Any) -> bool:
    """Whether the mapping of the hop's own table declares it (not only a foreign key)."""
    return any(r.path_name == hop.name for r in graph.mappings[hop.source].relations)


def _searched_through(hops: tuple[Any, ...], sent_through: list[str]) -> bool:
    """Whether a one-to-many hop past the first of `hops` is on the path the table's
    recipient is sent through (`sent_through`: its relation names), up to that hop."""
    at = next((i for i, h in enumerate(hops) if not h.to_one), None)
    if not at:  # none, or the first hop
        return True
    return [h.name for h in hops[: at + 1]] == sent_through[: at + 1]


@checked_calls("wb.search")
class SearchService:
    """Callable: `wb.search(table, term, limit=20, page=None, allow_scan=False)`."""

    def __init__(self, mappings: MappingService) -> None:
        self.mappings = mappings
        self.resolver = mappings.resolver
        self._estimates: tuple[float, dict[str, int]] | None = None
        # the statement the last search sent (for EXPLAIN in tests and --explain); never logged
        self.last_statement: tuple[str, dict[str, Any]] | None = None
        # every statement the last search sent, probes first
        self.last_statements: list[tuple[str, dict[str, Any]]] = []
        # table -> (graph, (table, schema facts) of each table read, fields): see `fields`
        self._fields: dict[str, tuple[Any, tuple[Any, ...], list[predicates.SearchField]]] = {}
        # table -> (mapping, schema facts, key, what `_page_facts` made of them)
        self._facts: dict[str, tuple[Any, Any, str, tuple[list[str], bool, frozenset[str]]]] = {}

    def table_info(self, table: str) -> TableInfo:
        """Schema facts for planning (the resolver caches them for a minute)."""
        if not isinstance(table, str) or table not in self.mappings.source.table_names():
            raise NotFound(
                f"The source has no table {short(table)}; see wb.mappings.discover().", table=table
            )
        return self._table_info(table)

    def _table_info(self, table: str) -> TableInfo:
        # what `table_info` does; the service's own calls skip the argument check of the
        # public method (`checked_calls`): a search asks several times
        info = self.resolver.info(table)
        if info.rows_estimate is None:
            info.rows_estimate = self._row_estimates().get(table)
        return info

    def _row_estimates(self) -> dict[str, int]:
        if self._estimates and time.monotonic() - self._estimates[0] < 60:
            return self._estimates[1]
        from hybridwb.mapping.discovery import row_estimates

        self._estimates = (time.monotonic(), row_estimates(self.mappings.source))
        return self._estimates[1]

    def fields(self, table: str) -> list[predicates.SearchField]:
        """Searchable fields of `table` and of tables reached through to-one relations.

        Worked out again only when the mapping (a new graph) or the schema facts of a
        table it reads (refreshed each minute) changed; else the last answer is reused."""
        name, _ = self.mappings.resolve(table)  # a table with no mapping: NotFound, one line
        return self._fields_for(name)

    def _fields_for(self, table: str) -> list[predicates.SearchField]:
        graph = self.resolver.graph
        known = self._fields.get(table)
        if known is not None and known[0] is graph:
            infos = known[1]
            if all(self._table_info(name) is info for name, info in infos):
                return list(known[2])
        out, infos = self._fields_of(graph, table)
        self._fields[table] = (graph, infos, out)
        return list(out)

    def _fields_of(
        self, graph: Any, table: str
    ) -> tuple[list[predicates.SearchField], tuple[Any, ...]]:
        out: list[predicates.SearchField] = []
        infos: list[Any] = []
        # through to-one relations, and through at most one one-to-many relation its
        # table's own mapping declares, for its phones and emails: first (a person found
        # by any of their addresses' phones; not by a payment's number), or past to-one
        # hops where the table's recipient goes that way (a customer by any of their
        # account's addresses' phones: `account.addresses.phone`, round 54; not every
        # customer of a store by a phone of its staff, which a keyword target would message)
        recipient = graph.mappings[table].recipient
        sent_through = recipient.split(".")[:-1] if isinstance(recipient, str) else []
        hop_lists: list[tuple] = [()] + [
            hops
            for hops in graph.reachable(table, 2)
            if all(h.to_one or _declared(graph, h) for h in hops)
            and sum(not h.to_one for h in hops) <= 1
            and _searched_through(hops, sent_through)
        ]
        for hops in hop_lists:
            target = hops[-1].target if hops else table
            mapping = graph.mappings[target]
            any_role = all(h.to_one for h in hops)
            wanted = [
                (n, f)
                for n, f in mapping.fields.items()
                if f.searchable and (any_role or f.role in ("phone", "email"))
            ]
            if not wanted:
                continue
            info = self._table_info(target)
            infos.append((target, info))
            leading = info.indexed_leading_columns()
            single = {
                cols[0]
                for cols in [i.get("column_names") or [] for i in info.indexes]
                if len(cols) == 1
            }
            fulltext = info.fulltext_columns()
            prefix = ".".join(h.name for h in hops)
            for name, f in wanted:
                out.append(
                    predicates.SearchField(
                        f"{prefix}.{name}" if prefix else name,
                        f.role,
                        f.type,
                        indexed=name in leading,
                        key_ordered=not hops and name in single,
                        fulltext=name in fulltext,
                        charset=live.charset if (live := info.column(name)) else None,
                    )
                )
        return out, tuple(infos)

    def __call__(
        self,
        table: str,
        term: str,
        limit: int = 20,
        page: str | None = None,
        *,
        allow_scan: bool = False,
    ) -> SearchResult:
        started = time.perf_counter()
        # one read of the mapping serves the whole search (plan, probe and page)
        with self.resolver.one_graph():
            return self._search(table, term, limit, page, allow_scan, started)

    def _search(
        self, table: str, term: str, limit: int, page: str | None, allow_scan: bool, started: float
    ) -> SearchResult:
        term = search_term(term)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValidationError(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
        allow_scan = predicates.consent(allow_scan)
        if page is not None and not isinstance(page, str):
            raise ValidationError(
                "The page token is not one hybridwb made; start from the first page."
            )
        held = self.resolver.held_tables()  # the mapping file one_graph read: not read again
        name, mapping = (
            self.mappings.resolve(table) if held is None else self.mappings._resolve_in(table, held)
        )
        if not mapping.isActive:
            raise ValidationError(
                f"The mapping of {name} is inactive; activate it with wb.mappings.activate({name!r})."
            )
        info = self._table_info(name)
        key = mapping.key or (info.primary_key[0] if len(info.primary_key) == 1 else None)
        if key is None or key != (mapping.key or key):
            raise ValidationError(
                f"{name} has no single-column key; set 'key' in its mapping so results can be paged."
            )
        if mapping.key is None:
            raise ValidationError(
                f"{name} has no 'key' in its mapping; set it so results can be paged by key."
            )
        large = (info.rows_estimate or 0) > SCAN_THRESHOLD
        plan = predicates.plan(self._fields_for(name), term, large=large, allow_scan=allow_scan)
        meta: dict[str, Any] = {
            "predicates": [f"{p.field}:{p.kind}" for p in plan.predicates],
            "index_used": all(p.indexed for p in plan.predicates) if plan.predicates else None,
            "refused_scan": plan.refused,
            "scanned": any(not p.indexed for p in plan.predicates),
            "hint": plan.hint,
            # a view states no size and no index: the server's plan of the page decides
            "unknown_size": info.rows_estimate is None and not self.mappings.source.is_sqlite,
        }
        after = decode_token(page, name, term, key) if page is not None else None
        if after is not None:
            _refuse_paging(name, key, info, limit, self.mappings.source)
        self.last_statement, self.last_statements = None, []
        source = self.mappings.source
        # a probe and its page read on one connection: one checkout, one session SET
        probing = large and not source.is_sqlite and bool(plan.predicates) and not allow_scan
        with source.one_connection() if probing else contextlib.nullcontext():
            return self._page(
                name, mapping, info, key, term, plan, meta, after, limit, started, allow_scan
            )

    def _page(
        self,
        name: str,
        mapping: Any,
        info: TableInfo,
        key: str,
        term: str,
        plan: predicates.Plan,
        meta: dict[str, Any],
        after: Any,
        limit: int,
        started: float,
        allow_scan: bool,
    ) -> SearchResult:
        columns, unique, pii = self._page_facts(name, mapping, info, key)
        large = (info.rows_estimate or 0) > SCAN_THRESHOLD
        if large and not self.mappings.source.is_sqlite and plan.predicates and not allow_scan:
            plan.predicates, why = self._in_key_order(name, info, plan.predicates)
            if why:
                meta["hint"] = plan.hint = "; ".join(why)
                meta["predicates"] = [f"{p.field}:{p.kind}" for p in plan.predicates]
        if not plan.predicates:
            if plan.refused:
                raise ScanRefused(
                    f"Searching {name} would scan {info.rows_estimate:,} rows "
                    f"({', '.join(plan.refused)} have no index); pass allow_scan=True or search by id, phone, email or name.",
                    fields=plan.refused,
                )
            if plan.hint and not self.last_statements:
                raise ValidationError(f"{plan.hint[0].upper()}{plan.hint[1:]} in {name}.")
            if plan.hint:  # a probe ran: some branches matched nothing, others too much
                raise ValidationError(f"{plan.hint[0].upper()}{plan.hint[1:]}.")
            meta["elapsed_ms"] = (time.perf_counter() - started) * 1000
            return SearchResult(
                name,
                key,
                lambda: self._empty(columns, mapping),
                [],
                None,
                meta,
                pii,
            )
        sql, params = search_sql.keyset(
            self.resolver,
            name,
            columns,
            key,
            plan.predicates,
            after,
            limit + 1,
            info if large and not self.mappings.source.is_sqlite else None,
            unique=unique,
        )
        if meta.pop("unknown_size") and not allow_scan:
            self._refuse_a_scan(name, sql, params)
        self.last_statement = (sql, params)
        self.last_statements.append((sql, params))
        # the statement's own LIMIT bounds the rows; no per-query cap means no extra
        # SET SESSION round trip (the session's default cap still holds on the server)
        raw = self.mappings.source.records(sql, params)
        next_page = None
        if len(raw) > limit:
            _refuse_paging(name, key, info, limit, self.mappings.source)
            _refuse_split_key(
                name,
                key,
                info,
                raw[limit - 1][key],
                raw[limit][key],
                lambda a, b: self._same_key(name, a, b),
            )
            raw = raw[:limit]
            kind = next((c.type for c in info.columns if c.name == key), "")
            last = _exact_after(raw[-1][key], kind)
            _refuse_long_key(name, key, last)
            next_page = (name, term, last, key)  # sealed when asked for (next_page)
        meta["elapsed_ms"] = (time.perf_counter() - started) * 1000
        return SearchResult(
            name,
            key,
            lambda: self._frame(raw, columns, mapping),
            raw,
            next_page,
            meta,
            pii,
        )

    def _page_facts(
        self, name: str, mapping: Any, info: TableInfo, key: str
    ) -> tuple[list[str], bool, frozenset[str]]:
        """The page's columns, whether the key is unique and NOT NULL, and the pii labels:
        worked out again only when the mapping or the schema facts are new objects (a
        mapping read again, facts refreshed each minute), not on every search."""
        known = self._facts.get(name)
        if known is not None and known[0] is mapping and known[1] is info and known[2] == key:
            return known[3]
        facts = (
            list(dict.fromkeys([key, *mapping.fields])),
            info.is_unique(key) and not _nullable(info, key),
            frozenset(_pii_labels(mapping)),
        )
        self._facts[name] = (mapping, info, key, facts)
        return facts

    def _same_key(self, table: str, a: str, b: str) -> bool:
        """Whether the server holds two texts one value of `table`'s key column: one tiny
        statement that reads no row, sent only when a page of a key the schema does not
        state unique ends on a text the next row does not repeat exactly. SQLite compares
        in Python, loosely (a refusal too many, never a row skipped): its collations are
        BINARY, NOCASE (ASCII case) and RTRIM (trailing spaces)."""
        if self.mappings.source.is_sqlite:
            return bool(_folded(a) == _folded(b))
        sql, params = search_sql.same_key(self.resolver, table)
        params = {**params, "a": a, "b": b}
        self.last_statements.append((sql, params))
        rows = self.mappings.source.records(sql, params)
        return bool(rows and rows[0]["same"])

    @staticmethod
    def _frame(raw: list[dict[str, Any]], columns: list[str], mapping: Any) -> pd.DataFrame:
        """The rows under their display names, built once (no rename of a built frame:
        on a 20-row page, DataFrame-from-dicts plus rename cost more than the query)."""
        import pandas as pd

        labels = {n: f.displayName for n, f in mapping.fields.items()}
        names = [labels.get(c, c) for c in columns]
        out = pd.DataFrame.from_records(
            [tuple(row[c] for c in columns) for row in raw], columns=names, nrows=len(raw)
        )
        out.attrs["fields"] = {labels.get(c, c): c for c in columns}
        return out

    def _refuse_a_scan(self, table: str, sql: str, params: dict[str, Any]) -> None:
        """EXPLAIN the page of a table of unknown size (a view); refuse it when the server
        would read more than SCAN_THRESHOLD rows of any base table behind it."""
        try:
            rows = self.mappings.source.records(explain_sql(sql), params)
        except HybridwbError as exc:  # EXPLAIN of a view needs SHOW VIEW: a SELECT-only
            raise ScanRefused(  # account cannot see how the server would read it
                f"{table} is a view, and the read-only account may not ask the server how it "
                "would read it (EXPLAIN of a view needs SHOW VIEW), so a scan cannot be ruled "
                "out; pass allow_scan=True to search it anyway, or search the table behind it."
            ) from exc
        scans = [r for r in rows if is_scan(r, SCAN_THRESHOLD)]
        if scans:
            where = ", ".join(f"{r['table']} ({int(r.get('rows') or 0):,} rows)" for r in scans)
            raise ScanRefused(
                f"Searching {table} (a view) would scan {where}; pass allow_scan=True or "
                "search a table with an index on what you type.",
                explain=rows,
            )

    def _in_key_order(
        self, table: str, info: TableInfo, branches: list[predicates.Predicate]
    ) -> tuple[list[predicates.Predicate], list[str]]:
        """Branches every index returns in key order, so no page of a large table is ever
        sorted: equality on one index as it is; prefixes, phone forms and related fields
        first read the (at most PROBE_VALUES) values they match, in one statement, and
        search those by equality. What cannot be done that way is said, not scanned."""
        keep, probes, why = search_sql.order_plan(self.resolver.graph, table, info, branches)
        kinds = [search_sql.probed_type(self.resolver, table, p) for p in probes]
        for probe, kind in zip(probes, kinds, strict=True):
            if search_sql.inexact(kind):
                why.append(
                    f"{probe.predicate.field} was not searched: its rows are found by the "
                    f"values of a FLOAT column (through {table}.{probe.column}), which the "
                    "server keeps approximately, so they could not be matched exactly; search "
                    "by another field, or relate the tables by an integer, DECIMAL or text column"
                )
        probes, kinds = (
            [p for p, k in zip(probes, kinds, strict=True) if not search_sql.inexact(k)],
            [k for k in kinds if not search_sql.inexact(k)],
        )
        if probes:
            # (refused before the probe reads: a relation of a number and a text column)
            exactly = [search_sql.by_bytes(self.resolver, table, p) for p in probes]
            sql, params = search_sql.probe_statement(self.resolver, table, probes, kinds)
            self.last_statements.append((sql, params))
            rows = self.mappings.source.records(sql, params)
            found, too_many = search_sql.expand(table, probes, rows, exactly)
            keep = list(dict.fromkeys([*keep, *found]))
            why += too_many
        return keep, why

    @classmethod
    def _empty(cls, columns: list[str], mapping: Any) -> pd.DataFrame:
        """No rows, the columns under their display names (built when first read)."""
        import pandas as pd

        return cls._labelled(pd.DataFrame(columns=columns), mapping)

    @staticmethod
    def _labelled(df: pd.DataFrame, mapping: Any) -> pd.DataFrame:
        labels = {n: f.displayName for n, f in mapping.fields.items()}
        out = df.rename(columns=labels)
        out.attrs["fields"] = {labels.get(c, c): c for c in df.columns}
        return out

    def variables(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Every mapped field of a chosen row, under its field name and its display name."""
        _, mapping = self.mappings.resolve(table)
        if not isinstance(row, Mapping):
            raise ValidationError(
                f"row must be a dict of field -> value (a search result's row), not "
                f"{type(row).__name__}."
            )
        out: dict[str, Any] = {}
        for fname, f in mapping.fields.items():
            if fname in row:
                out[fname] = row[fname]
                out[f.displayName] = row[fname]
                for alias in f.aliases:
                    out[alias] = row[fname]
        return out

    def naive(
        self, table: str, term: str, limit: int = 20, *, allow_scan: bool = False
    ) -> pd.DataFrame:
        """The OR-LIKE scan this service replaces (benchmarks only). It reads every row, so
        on a large table (or a view, whose size is unknown) it needs `allow_scan=True` too."""
        allow_scan = predicates.consent(allow_scan)
        limit = positive_int_arg(limit, "limit")
        term = search_term(term)
        name, mapping = self.mappings.resolve(table)
        info = self._table_info(name)
        if not allow_scan and (info.rows_estimate is None or info.rows_estimate > SCAN_THRESHOLD):
            raise ScanRefused(
                f"The naive OR-LIKE search reads all of {name}; pass allow_scan=True to run it."
            )
        fields = [f.path for f in self.fields(name) if f.type == "string"]
        columns = list(dict.fromkeys([mapping.key or "", *mapping.fields]))
        sql, params = search_sql.naive(self.resolver, name, columns, fields, term, limit)
        return self.mappings.source.sql(sql, params)
