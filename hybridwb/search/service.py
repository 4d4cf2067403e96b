"""`wb.search(table, term)`: keyword search over a mapped table, paged by key."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from hybridwb.errors import ScanRefused, ValidationError
from hybridwb.search import predicates

if TYPE_CHECKING:
    from hybridwb.mapping import MappingService
    from hybridwb.mapping.discovery import TableInfo

SCAN_THRESHOLD = 50_000  # rows: above this a predicate without an index is refused
MAX_LIMIT = 500


@dataclass
class SearchResult:
    table: str
    key: str
    rows: pd.DataFrame  # display names as column labels
    raw_rows: list[dict[str, Any]]  # field names
    next_page: str | None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.raw_rows)


def encode_token(table: str, term: str, after: Any) -> str:
    raw = json.dumps({"t": table, "q": term, "a": after}, ensure_ascii=False, default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_token(token: str, table: str, term: str) -> Any:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(
            "The page token is not one hybridwb made; start from the first page."
        ) from None
    if data.get("t") != table or data.get("q") != term:
        raise ValidationError(
            "The page token belongs to another search; start from the first page."
        )
    return data.get("a")


class SearchService:
    """Callable: `wb.search(table, term, limit=20, page=None, allow_scan=False)`."""

    def __init__(self, mappings: MappingService) -> None:
        self.mappings = mappings
        self._info: dict[str, tuple[float, TableInfo]] = {}

    def table_info(self, table: str) -> TableInfo:
        """Schema facts for planning, cached for a minute (indexes rarely change)."""
        cached = self._info.get(table)
        if cached and time.monotonic() - cached[0] < 60:
            return cached[1]
        from hybridwb.mapping.discovery import describe, row_estimates

        info = describe(self.mappings.source, table, row_estimates(self.mappings.source))
        self._info[table] = (time.monotonic(), info)
        return info

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
        if not isinstance(term, str):
            raise ValidationError(f"The search term must be text, not {type(term).__name__}.")
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}.")
        name, mapping = self.mappings.resolve(table)
        if not mapping.isActive:
            raise ValidationError(
                f"The mapping of {name} is inactive; activate it with wb.mappings.activate({name!r})."
            )
        info = self.table_info(name)
        key = mapping.key or (info.primary_key[0] if len(info.primary_key) == 1 else None)
        if key is None:
            raise ValidationError(
                f"{name} has no single-column key; set 'key' in its mapping so results can be paged."
            )
        large = (info.rows_estimate or 0) > SCAN_THRESHOLD
        plan = predicates.plan(
            mapping,
            term,
            info.indexed_leading_columns(),
            info.fulltext_columns(),
            large=large,
            allow_scan=allow_scan,
        )
        columns = list(dict.fromkeys([key, *mapping.fields]))
        meta: dict[str, Any] = {
            "predicates": [f"{p.field}:{p.kind}" for p in plan.predicates],
            "index_used": all(p.indexed for p in plan.predicates) if plan.predicates else None,
            "refused_scan": plan.refused,
            "scanned": any(not p.indexed for p in plan.predicates),
        }
        if not plan.predicates:
            if plan.refused:
                raise ScanRefused(
                    f"Searching {name} for {term[:30]!r} would scan {info.rows_estimate:,} rows "
                    f"({', '.join(plan.refused)} have no index); pass allow_scan=True or search by id, phone, email or name.",
                    fields=plan.refused,
                )
            meta["elapsed_ms"] = (time.perf_counter() - started) * 1000
            return SearchResult(
                name, key, self._labelled(pd.DataFrame(columns=columns), mapping), [], None, meta
            )
        after = decode_token(page, name, term) if page else None
        sql, params = predicates.keyset_sql(name, columns, key, plan.predicates, after, int(limit))
        raw = self.mappings.source.records(sql, params)
        next_page = None
        if len(raw) > limit:
            raw = raw[:limit]
            next_page = encode_token(name, term, raw[-1][key])
        meta["elapsed_ms"] = (time.perf_counter() - started) * 1000
        meta["page_token"] = next_page
        return SearchResult(
            name,
            key,
            self._labelled(pd.DataFrame(raw, columns=columns), mapping),
            raw,
            next_page,
            meta,
        )

    @staticmethod
    def _labelled(df: pd.DataFrame, mapping: Any) -> pd.DataFrame:
        labels = {n: f.displayName for n, f in mapping.fields.items()}
        out = df.rename(columns=labels)
        out.attrs["fields"] = {labels.get(c, c): c for c in df.columns}
        return out

    def variables(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Every mapped field of a chosen row, under its field name and its display name."""
        _, mapping = self.mappings.resolve(table)
        out: dict[str, Any] = {}
        for fname, f in mapping.fields.items():
            if fname in row:
                out[fname] = row[fname]
                out[f.displayName] = row[fname]
                for alias in f.aliases:
                    out[alias] = row[fname]
        return out

    def naive(self, table: str, term: str, limit: int = 20) -> pd.DataFrame:
        """The OR-LIKE scan this service replaces (benchmarks only)."""
        name, mapping = self.mappings.resolve(table)
        fields = [n for n, f in mapping.fields.items() if f.filterable or f.searchable]
        sql = predicates.naive_sql(name, list(mapping.fields), fields, limit)
        return self.mappings.source.sql(sql, {"term": f"%{term}%"})
