"""Drift between a mapping and the live schema (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from hybridwb.mapping.discovery import TableInfo
from hybridwb.mapping.model import TableMapping
from hybridwb.mapping.suggest import field_type


@dataclass(frozen=True)
class Finding:
    table: str
    field: str | None
    kind: str  # table-missing | column-dropped | type-changed | column-added
    message: str
    severity: str  # error | warning | info


def check_table(name: str, mapping: TableMapping, live: TableInfo | None) -> list[Finding]:
    if live is None:
        return [
            Finding(
                name,
                None,
                "table-missing",
                f"{name}: the table is gone from the source; remove or fix its mapping.",
                "error",
            )
        ]
    columns = {c.name: c for c in live.columns}
    findings: list[Finding] = []
    for field, fm in mapping.fields.items():
        col = columns.get(field)
        if col is None:
            findings.append(
                Finding(
                    name,
                    field,
                    "column-dropped",
                    f"{name}.{field}: mapped but dropped from the table; remove it from the mapping.",
                    "error",
                )
            )
        elif field_type(col.type) != fm.type:
            findings.append(
                Finding(
                    name,
                    field,
                    "type-changed",
                    f"{name}.{field}: mapped as {fm.type} but the column is now {col.type}; update its type.",
                    "warning",
                )
            )
    for col in live.columns:
        if col.name not in mapping.fields:
            findings.append(
                Finding(
                    name,
                    col.name,
                    "column-added",
                    f"{name}.{col.name}: a column the mapping does not name yet.",
                    "info",
                )
            )
    return findings
