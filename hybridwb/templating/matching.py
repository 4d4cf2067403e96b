"""Automatic variable mapping (pure): each template variable -> its source, or why not.

The documented order, first match wins; two matches at the same step are *ambiguous*:

1. an individual variable of that name;
2. a field of the main table whose name, display name or alias is the variable
   (`customer.name` / `customers.name` / `고객.고객명` also work through the table's
   name or display name);
3. a field reached through relations (`hybridwb.mapping.graph`, any depth, nearest first),
   e.g. the latest subscription's `ends_at` for `#{만료일}`, or `city.city` through
   customer -> address -> city. The resolved `Path` is what rendering fetches
   (`Resolver.fetch`), so a variable reported mapped is a variable rendering can fill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hybridwb.mapping.graph import Graph, Path
from hybridwb.mapping.model import TableMapping
from hybridwb.templating.formatters import ACCEPTS
from hybridwb.templating.parse import VariableUse


@dataclass(frozen=True)
class Source:
    kind: str  # variable | field | relation
    table: str | None = None
    field: str | None = None
    variable: dict[str, Any] | None = None
    field_type: str | None = None
    path: Path | None = None  # the resolved relation path (what rendering fetches)

    def describe(self) -> str:
        if self.kind == "variable" and self.variable is not None:
            return f"individual variable {self.variable['name']} ({self.variable['source_type']}: {self.variable['source']})"
        if self.path is not None and len(self.path.hops) > 1:
            via = " -> ".join([self.path.root, *(h.target for h in self.path.hops)])
            return f"{self.table}.{self.field} ({via})"
        return f"{self.table}.{self.field}"


@dataclass
class VariableStatus:
    name: str
    status: str  # mapped | fallback | missing | ambiguous | type mismatch
    source: Source | None = None
    candidates: list[str] = field(default_factory=list)
    warning: str | None = None
    filters: tuple[str, ...] = ()


@dataclass
class Report:
    table: str
    variables: list[VariableStatus]

    @property
    def completeness(self) -> float:
        if not self.variables:
            return 100.0
        good = sum(v.status in ("mapped", "fallback") for v in self.variables)
        return round(100.0 * good / len(self.variables), 1)

    @property
    def warnings(self) -> list[str]:
        return [v.warning for v in self.variables if v.warning]

    def get(self, name: str) -> VariableStatus:
        return next(v for v in self.variables if v.name == name)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "variable": v.name,
                "source": v.source.describe() if v.source else "",
                "status": v.status,
                "warning": v.warning or "",
            }
            for v in self.variables
        ]


def match_one(
    use_name: str,
    table: str,
    mappings: dict[str, TableMapping] | Graph,
    individual: dict[str, dict[str, Any]],
) -> tuple[list[Source], int]:
    """Candidates for one variable, and the step (1-3) that found them (0: none)."""
    if use_name in individual:
        return [Source("variable", variable=individual[use_name])], 1
    graph = mappings if isinstance(mappings, Graph) else Graph(mappings)
    found = graph.find(table, use_name)
    if not found:
        return [], 0
    return [_source(p) for p in found], 2 if not found[0].hops else 3


def _source(path: Path) -> Source:
    return Source(
        "field" if not path.hops else "relation",
        path.table,
        path.field,
        field_type=path.field_type,
        path=path,
    )


def automap(
    uses: list[VariableUse],
    table: str,
    mappings: dict[str, TableMapping] | Graph,
    individual: dict[str, dict[str, Any]] | None = None,
) -> Report:
    """The completeness report of a template's variables against the mappings (or the
    resolver's graph, which adds the live schema's foreign keys: what rendering fetches)."""
    individual = individual or {}
    graph = mappings if isinstance(mappings, Graph) else Graph(mappings)
    seen: dict[str, VariableStatus] = {}
    for use in uses:
        if use.name in seen:
            continue
        candidates, _ = match_one(use.name, table, graph, individual)
        filters = tuple(f for f in use.filters if f in ACCEPTS)
        if not candidates:
            fix = (
                f"{{{{ {use.joined} }}}} reads as arithmetic on its parts: a name with a sign "
                f"is written #{{{use.joined}}}"
                if use.joined
                else "add an alias in the mapping or create an individual variable"
            )
            status = VariableStatus(
                use.name,
                "missing",
                warning=f"{use.name}: no mapped field or individual variable has this name; {fix}.",
                filters=filters,
            )
        elif len(candidates) > 1:
            where = [c.describe() for c in candidates]
            status = VariableStatus(
                use.name,
                "ambiguous",
                candidates=where,
                warning=f"{use.name}: matches {', '.join(where)}; create an individual variable to choose one.",
                filters=filters,
            )
        else:
            source = candidates[0]
            status = VariableStatus(use.name, "mapped", source, filters=filters)
            var = source.variable or {}
            formatter = var.get("formatter") or (filters[0] if filters else None)
            if source.kind == "variable" and var.get("source_type") == "field":
                # `table.field` at its last dot: a field's name holds none, a table's may
                tbl, _, fld = str(var["source"]).rpartition(".")
                found = (
                    graph.find(table, fld if tbl == table else f"{tbl}.{fld}")
                    if tbl in graph.mappings
                    else []
                )
                found = [p for p in found if p.table == tbl]
                if len(found) != 1:
                    if var.get("fallback_value") or var.get("default_value"):
                        status.status = "fallback"
                        status.warning = f"{use.name}: {var['source']} is not reachable from {table}; its fallback value is used."
                    else:
                        status.status = "missing"
                        status.warning = f"{use.name}: its individual variable points at {var['source']}, which is not reachable from {table}."
                else:
                    source = Source(
                        "variable", tbl, found[0].field, var, found[0].field_type, found[0]
                    )
                    status.source = source
            if status.status == "mapped" and source.path is not None and source.path.problem:
                status.status = "missing"
                status.warning = f"{use.name}: {source.path.problem}."
            if (
                status.status == "mapped"
                and formatter in ACCEPTS
                and source.field_type
                and source.field_type not in ACCEPTS[formatter]
            ):
                status.status = "type mismatch"
                status.warning = f"{use.name}: formatter {formatter} needs {' or '.join(ACCEPTS[formatter])}, but {source.describe()} is {source.field_type}."
        seen[use.name] = status
    return Report(table, list(seen.values()))


def fallback_for(status: VariableStatus) -> str | None:
    var = status.source.variable if status.source else None
    if var:
        return var.get("fallback_value") or var.get("default_value")
    return None
