"""`wb.targets`: validate, preview and stream the recipients of a target definition."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from hybridwb.errors import ValidationError
from hybridwb.targets.definition import TargetDefinition, parse, to_sql

if TYPE_CHECKING:
    from hybridwb.mapping import MappingService
    from hybridwb.search import SearchService

EXACT_COUNT_LIMIT = 100_000
QUALITY_SAMPLE = 10_000
PHONE_RE = re.compile(r"^01[016789]-?\d{3,4}-?\d{4}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


@dataclass
class Preview:
    count: int
    exact: bool
    sample: pd.DataFrame
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def count_text(self) -> str:
        return f"{self.count:,}" if self.exact else f"more than {self.count:,} (estimate)"


@dataclass
class Plan:
    table: str | None
    key: str | None
    where: str
    params: dict[str, Any]
    columns: list[str]
    recipient: str | None
    sql: str | None = None


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class TargetService:
    def __init__(self, mappings: MappingService, search: SearchService) -> None:
        self.mappings = mappings
        self.search = search

    def validate(self, definition: Any) -> TargetDefinition:
        """Parse and check against the mappings; raises one clear error."""
        d = parse(definition)
        self.plan(d)
        return d

    def plan(self, definition: Any) -> Plan:
        d = parse(definition)
        if d.sql is not None:
            from hybridwb.source import guard

            # a saved query must be a single guarded read (stored functions: the allowlist)
            guard.check(d.sql, allowed_functions=self.mappings.source.allowed_functions)
            return Plan(None, None, "", dict(d.params), [], d.recipient, d.sql)
        name, mapping = self.mappings.resolve(d.table or "")
        if not mapping.key:
            raise ValidationError(
                f"{name} has no 'key' in its mapping; targets are streamed in key order."
            )
        where, params = to_sql(d.where, mapping, name) if d.where is not None else ("1=1", {})
        if d.exclude_opt_out and "marketing_opt_in" in mapping.fields:
            where = f"({where}) AND {_q('marketing_opt_in')} = 1"
        if d.keyword:
            result = self.search(name, d.keyword, limit=500)
            keys = [r[mapping.key] for r in result.raw_rows]
            if not keys:
                where = "1=0"
            else:
                where = f"({where}) AND {_q(mapping.key)} IN :kw_keys"
                params["kw_keys"] = keys
        recipient = d.recipient
        if recipient is None:
            recipient = next((n for n, f in mapping.fields.items() if f.role == "phone"), None)
        elif mapping.field_by_label(recipient) is None:
            raise ValidationError(f"target.recipient: {name} has no mapped field {recipient!r}.")
        else:
            recipient = mapping.field_by_label(recipient)
        return Plan(name, mapping.key, where, params, list(mapping.fields), recipient)

    def _select(
        self, plan: Plan, extra: str = "", limit: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        if plan.sql is not None:
            return plan.sql, dict(plan.params)
        cols = ", ".join(_q(c) for c in plan.columns)
        tail = f" LIMIT {int(limit)}" if limit else ""
        return (
            f"SELECT {cols} FROM {_q(plan.table or '')} WHERE {plan.where}{extra} ORDER BY {_q(plan.key or '')}{tail}",
            dict(plan.params),
        )

    def preview(self, definition: Any, sample: int = 20, cache_ttl: float | None = 30.0) -> Preview:
        """Count (exact up to a limit, else an estimate that says so), a sample, quality."""
        plan = self.plan(definition)
        source = self.mappings.source
        if plan.sql is not None:
            df = source.sql(plan.sql, plan.params, limit=QUALITY_SAMPLE, cache_ttl=cache_ttl)
            return Preview(
                len(df), len(df) < QUALITY_SAMPLE, df.head(sample), quality(df, plan.recipient)
            )
        inner, params = self._select(plan, limit=EXACT_COUNT_LIMIT + 1)
        counted = int(
            source.sql(f"SELECT COUNT(*) AS n FROM ({inner}) AS c", params, cache_ttl=cache_ttl)[
                "n"
            ].iloc[0]
        )
        exact = counted <= EXACT_COUNT_LIMIT
        head_sql, params = self._select(plan, limit=QUALITY_SAMPLE)
        df = source.sql(head_sql, params, cache_ttl=cache_ttl)
        return Preview(
            counted if exact else EXACT_COUNT_LIMIT,
            exact,
            df.head(sample),
            quality(df, plan.recipient, checked_of=counted),
        )

    def iter(self, definition: Any, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Batches of the latest matching rows in key order, in constant memory.

        Each batch is its own short keyset query (`key > last ORDER BY key LIMIT n`), so a
        run never holds one long read open on production while it renders and writes.
        """
        plan = self.plan(definition)
        source = self.mappings.source
        if plan.sql is not None:
            yield from _chunks(source.records(plan.sql, plan.params), batch_size)
            return
        after: Any = None
        while True:
            extra = ""
            params_extra: dict[str, Any] = {}
            if after is not None:
                extra = f" AND {_q(plan.key or '')} > :after_key"
                params_extra["after_key"] = after
            sql, params = self._select(plan, extra, limit=batch_size)
            rows = source.records(sql, {**params, **params_extra})
            if not rows:
                return
            yield rows
            if len(rows) < batch_size:
                return
            after = rows[-1][plan.key]


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def quality(
    df: pd.DataFrame, recipient: str | None, checked_of: int | None = None
) -> dict[str, Any]:
    """What a sender needs to know before sending (over the rows given)."""
    n = len(df)
    out: dict[str, Any] = {"checked_rows": n}
    if checked_of is not None and checked_of > n:
        out["note"] = f"statistics over the first {n:,} of {checked_of:,} matches"
    for col, pattern, label in (("phone", PHONE_RE, "phone"), ("email", EMAIL_RE, "email")):
        if col in df.columns:
            values = df[col]
            missing = values.isna() | (values.astype(str).str.strip() == "")
            out[f"missing_{label}"] = int(missing.sum())
            out[f"invalid_{label}"] = int((~missing & ~values.astype(str).str.match(pattern)).sum())
    if recipient and recipient in df.columns:
        normalized = (
            df[recipient].dropna().astype(str).str.replace(r"\D", "", regex=True)
            if recipient == "phone"
            else df[recipient].dropna()
        )
        counts = Counter(normalized)
        out["duplicate_recipients"] = sum(c - 1 for c in counts.values() if c > 1)
    if "marketing_opt_in" in df.columns:
        out["marketing_opt_out"] = int((df["marketing_opt_in"] == 0).sum())
    out["nulls"] = {c: int(v) for c, v in df.isna().sum().items() if v}
    return out
