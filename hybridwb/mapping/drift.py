"""Drift between a mapping and the live schema (pure).

A type is drift only when the mapped type no longer fits the column (`suggest.compatible`):
a `tinyint(1)` mapped as boolean, or a flag kept in a SMALLINT mapped as boolean, is fine.
"""

from __future__ import annotations

from dataclasses import dataclass

from hybridwb.mapping.discovery import TableInfo
from hybridwb.mapping.model import TableMapping
from hybridwb.mapping.suggest import compatible


@dataclass(frozen=True)
class Finding:
    table: str
    field: str | None
    kind: str  # table-missing | column-dropped | type-changed | column-added | key-not-unique
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
        elif not compatible(col.type, fm.type):
            findings.append(
                Finding(
                    name,
                    field,
                    "type-changed",
                    f"{name}.{field}: mapped as {fm.type} but the column is now {col.type}; update its type.",
                    "warning",
                )
            )
    problem = key_problem(name, mapping, live)
    if problem:
        findings.append(Finding(name, mapping.key, "key-not-unique", problem, "error"))
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


def key_problem(name: str, mapping: TableMapping, live: TableInfo) -> str | None:
    """Why an audience table's key cannot identify a recipient, or None when it can.

    Targets are paged and frozen by key, so a key that is not a primary key or unique index
    in the live schema would lose or repeat people at batch boundaries."""
    if not mapping.audience:
        return None
    if mapping.key is None:
        pk = ", ".join(live.primary_key) or "none"
        return (
            f"{name}: an audience table needs a key; set key to its primary key ({pk}) "
            "or a unique indexed column."
        )
    if not live.is_unique(mapping.key):
        unique = ", ".join(",".join(cols) for cols in live.unique_keys() if len(cols) == 1)
        return (
            f"{name}.{mapping.key}: the audience key is not a primary key or unique index in the "
            f"live table; use one that is ({unique or 'the table has none: add one'})."
        )
    return None
