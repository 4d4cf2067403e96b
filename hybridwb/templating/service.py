"""`wb.templates`: the template library, variable extraction, automatic mapping, rendering."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hybridwb.errors import TemplateError, ValidationError
from hybridwb.templating import matching, parse
from hybridwb.templating.formatters import FORMATTERS
from hybridwb.templating.message import Size, euc_kr_size, max_chars, over_limit, type_warnings

if TYPE_CHECKING:
    from hybridwb.mapping import MappingService
    from hybridwb.platform.store import Store


@dataclass
class Rendered:
    text: str | None
    size: Size | None
    message_type: str
    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the recipient was skipped (strict mode)


def evaluate(expression: str, row: dict[str, Any]) -> Any:
    """A small expression over fields (e.g. `monthly_fee * 12`), in the sandbox."""
    return parse.evaluate(expression, row)  # bounded like templates, one-line errors


def resolve_values(
    report: matching.Report, row: dict[str, Any], related: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The value of every variable for one target row; the names that had no value."""
    related = related or {}
    values: dict[str, Any] = {}
    empty: list[str] = []
    for status in report.variables:
        value: Any = None
        src = status.source
        var = src.variable if src else None
        if status.status in ("mapped", "type mismatch") and src is not None:
            if var and var.get("source_type") == "constant":
                value = var["source"]
            elif var and var.get("source_type") == "expression":
                value = evaluate(var["source"], row)
            elif src.table is not None and src.field is not None:
                holder = (
                    row
                    if src.kind == "field" or src.table == report.table
                    else related.get(src.table) or {}
                )
                value = holder.get(src.field)
            formatter = var.get("formatter") if var else None
            if formatter in FORMATTERS and value not in (None, ""):
                value = FORMATTERS[formatter](value)
        if value in (None, ""):
            fallback = matching.fallback_for(status)
            if fallback is not None:
                value = fallback
            else:
                empty.append(status.name)
        values[status.name] = value
    return values, empty


class TemplateService:
    def __init__(self, store: Callable[[], Store], mappings: MappingService) -> None:
        self._store = store
        self.mappings = mappings
        #: EUC-KR byte limit per message type (the workbench sets it from Settings)
        self.limits: dict[str, int] | None = None

    # -- the library (message_templates) ---------------------------------------------------
    def create(
        self, name: str, content: str, message_type: str = "SMS", category: str | None = None
    ) -> dict[str, Any]:
        return self._store().templates.create(
            name=name,
            content=content,
            message_type=message_type,
            category=category,
            variables=parse.names(content),
        )

    def get(self, key: Any) -> dict[str, Any]:
        return self._store().templates.get(key)

    def list(self, **where: Any) -> list[dict[str, Any]]:
        return self._store().templates.list(**where)

    def update(self, key: Any, **fields: Any) -> dict[str, Any]:
        if "content" in fields:
            fields["variables"] = parse.names(fields["content"])
        return self._store().templates.update(key, **fields)

    def delete(self, key: Any) -> None:
        self._store().templates.delete(key)

    # -- analysis --------------------------------------------------------------------------
    @staticmethod
    def variables(text: str) -> list[parse.VariableUse]:
        return parse.variables(text)

    def individual(self) -> dict[str, dict[str, Any]]:
        return {v["name"]: v for v in self._store().variables.list()}

    def automap(self, text: str, table: str = "customers") -> matching.Report:
        """Each variable -> its source and status, with completeness and warnings."""
        name, _ = self.mappings.resolve(table)
        return matching.automap(
            parse.variables(text), name, self.mappings.tables(), self.individual()
        )

    def related(
        self, report: matching.Report, rows: list[dict[str, Any]], chunk: int = 1000
    ) -> list[dict[str, dict[str, Any]]]:
        """For each target row, the related rows its variables need, fetched in bulk.

        One query per related table and chunk of keys (never one per recipient); for a
        one-to-many relation the latest row by the relation's `orderBy` wins.
        """
        tables = {
            v.source.table
            for v in report.variables
            if v.source and v.source.table and v.source.table != report.table
        }
        out: list[dict[str, dict[str, Any]]] = [{} for _ in rows]
        if not tables or not rows:
            return out
        main = self.mappings.get(report.table)
        for rel in main.relations:
            if rel.table not in tables:
                continue
            keys = sorted(
                {r[rel.localField] for r in rows if r.get(rel.localField) is not None}, key=str
            )
            best: dict[Any, dict[str, Any]] = {}
            for start in range(0, len(keys), chunk):
                recs = self.mappings.source.records(
                    f"SELECT * FROM `{rel.table}` WHERE `{rel.foreignField}` IN :keys",
                    {"keys": keys[start : start + chunk]},
                    limit=10_000_000,
                )
                for rec in recs:
                    key = rec[rel.foreignField]
                    held = best.get(key)
                    if held is None or (
                        rel.orderBy and str(rec.get(rel.orderBy)) > str(held.get(rel.orderBy))
                    ):
                        best[key] = rec
            for i, row in enumerate(rows):
                found = best.get(row.get(rel.localField))
                if found is not None:
                    out[i][rel.table] = found
        return out

    def render(
        self,
        text: str,
        row: dict[str, Any],
        *,
        table: str = "customers",
        mode: str = "strict",
        message_type: str = "SMS",
        related: dict[str, dict[str, Any]] | None = None,
        report: matching.Report | None = None,
    ) -> Rendered:
        """Render for one target row. strict: a missing value skips the recipient;
        fallback: defaults are used and the gap becomes a warning."""
        if mode not in ("strict", "fallback"):
            raise ValidationError(f"mode must be 'strict' or 'fallback', not {mode!r}.")
        report = report or self.automap(text, table)
        values, empty = resolve_values(report, row, related)
        warnings = list(report.warnings)
        if empty:
            if mode == "strict":
                return Rendered(
                    None,
                    None,
                    message_type,
                    values,
                    warnings,
                    skipped=f"missing {', '.join(empty)}",
                )
            warnings.append(f"No value for {', '.join(empty)}; rendered as empty.")
            values = {k: ("" if v is None else v) for k, v in values.items()}
        try:
            out = parse.render(text, values, max_chars=max_chars(message_type, self.limits))
        except TemplateError as exc:
            if not getattr(exc, "too_long", False):
                raise
            return Rendered(None, None, message_type, values, warnings, skipped="too long")
        size = euc_kr_size(out)
        reason = over_limit(size, message_type, self.limits)
        if reason:
            return Rendered(None, size, message_type, values, warnings, skipped=reason)
        return Rendered(
            out, size, message_type, values, warnings + type_warnings(size, message_type)
        )
