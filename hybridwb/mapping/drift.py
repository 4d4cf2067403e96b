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
    unique = ", ".join(cols[0] for cols in live.unique_keys() if len(cols) == 1)
    if not unique:
        # the account reads only (SELECT): it cannot add a key, so say what it can do
        kind = (
            "a view"
            if live.is_view
            else "a table whose keys span several columns"
            if live.unique_keys()
            else "a table without a primary key or unique index"
        )
        return (
            f"{name} is {kind}, so no column identifies each recipient once; make a base "
            "table with a one-column primary key or unique index the audience instead, or "
            "ask the DBA to add a unique index to it."
        )
    if mapping.key is None:
        return f"{name}: an audience table needs a key; set key to one of {unique}."
    if not live.is_unique(mapping.key):
        return (
            f"{name}.{mapping.key}: the audience key is not a primary key or unique index in the "
            f"live table; use one that is ({unique})."
        )
    return None
