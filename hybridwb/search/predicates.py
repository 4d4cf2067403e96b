"""Index-friendly search predicates by field role (pure).

A naive `LIKE '%term%' OR ...` scans the whole table on every keystroke. Here each mapped
field gets a predicate its index can serve — equality for ids, normalized phone numbers
in both stored formats, email equality or prefix, name/text prefix or FULLTEXT — and
anything that would scan a large table is refused unless the caller opts in.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from hybridwb.mapping.model import TableMapping

LIKE_ESCAPE = "!"
MAX_TERM = 200


@dataclass(frozen=True)
class Predicate:
    field: str
    kind: str  # id | phone | email | prefix | fulltext | date | number
    sql: str  # a boolean SQL fragment (MySQL dialect) with :binds
    params: dict[str, Any]
    indexed: bool


@dataclass
class Plan:
    predicates: list[Predicate] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # fields whose predicate would scan


def escape_like(term: str) -> str:
    """Make %, _ and the escape character literal inside a LIKE pattern."""
    return (
        term.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def phone_digits(term: str) -> str | None:
    """The digits of a phone-looking term (+82 10 ... becomes 010...), or None."""
    if not re.fullmatch(r"[\d\s\-+().]+", term):
        return None
    digits = re.sub(r"\D", "", term)
    if digits.startswith("82") and len(digits) >= 11:
        digits = "0" + digits[2:]
    return digits if len(digits) >= 3 else None


def dashed(digits: str) -> str:
    """010-1234-5678 style for a full or partial number."""
    if len(digits) <= 3:
        return digits
    if len(digits) <= 7:
        return f"{digits[:3]}-{digits[3:]}"
    middle = 4 if len(digits) >= 11 else 3
    return f"{digits[:3]}-{digits[3 : 3 + middle]}-{digits[3 + middle :]}"


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def plan(
    mapping: TableMapping,
    term: str,
    indexed: set[str],
    fulltext: set[str] | None = None,
    *,
    large: bool = True,
    allow_scan: bool = False,
) -> Plan:
    """The predicates to OR together for `term`, one per usable field."""
    fulltext = fulltext or set()
    term = term.strip()[:MAX_TERM] if isinstance(term, str) else ""
    out = Plan()
    if not term:
        return out
    n = 0

    def add(fname: str, kind: str, sql: str, params: dict[str, Any], cheap: bool) -> None:
        nonlocal n
        if not cheap and large and not allow_scan:
            out.refused.append(fname)
            return
        out.predicates.append(Predicate(fname, kind, sql, params, cheap))

    for fname, f in mapping.fields.items():
        if not (f.filterable or f.searchable):
            continue
        col = _q(fname)
        cheap = fname in indexed
        n += 1
        p = f"p{n}"
        role = f.role
        if role == "id" and f.type == "number":
            if term.isdigit() and len(term) <= 18:
                add(fname, "id", f"{col} = :{p}", {p: int(term)}, cheap)
        elif role == "phone":
            digits = phone_digits(term)
            if digits is None:
                continue
            if len(digits) >= 10:
                add(
                    fname,
                    "phone",
                    f"{col} IN (:{p}a, :{p}b)",
                    {f"{p}a": dashed(digits), f"{p}b": digits},
                    cheap,
                )
            elif digits.startswith("01"):
                add(
                    fname,
                    "phone",
                    f"({col} LIKE :{p}a ESCAPE '{LIKE_ESCAPE}' OR {col} LIKE :{p}b ESCAPE '{LIKE_ESCAPE}')",
                    {f"{p}a": dashed(digits) + "%", f"{p}b": digits + "%"},
                    cheap,
                )
        elif role == "email":
            if "@" in term:
                add(fname, "email", f"{col} = :{p}", {p: term}, cheap)
            elif re.fullmatch(r"[\w.+-]{2,}", term, re.ASCII):
                add(
                    fname,
                    "email",
                    f"{col} LIKE :{p} ESCAPE '{LIKE_ESCAPE}'",
                    {p: escape_like(term) + "%"},
                    cheap,
                )
        elif role in ("name", "text"):
            if not any(ch.isalpha() for ch in term):
                continue  # digits and symbols are not a name
            if fname in fulltext and len(term) >= 2:
                add(
                    fname,
                    "fulltext",
                    f"MATCH({col}) AGAINST (:{p} IN BOOLEAN MODE)",
                    {p: '"' + term.replace('"', " ") + '"'},
                    True,
                )
            else:
                add(
                    fname,
                    "prefix",
                    f"{col} LIKE :{p} ESCAPE '{LIKE_ESCAPE}'",
                    {p: escape_like(term) + "%"},
                    cheap,
                )
        elif (
            f.type == "string"
            and role in ("status", None, "other")
            and any(ch.isalpha() for ch in term)
        ):
            add(fname, "equal", f"{col} = :{p}", {p: term}, cheap)
        elif f.type in ("date", "datetime"):
            try:
                day = dt.date.fromisoformat(term)
            except ValueError:
                continue
            add(
                fname,
                "date",
                f"({col} >= :{p}a AND {col} < :{p}b)",
                {f"{p}a": day, f"{p}b": day + dt.timedelta(days=1)},
                cheap,
            )
        elif f.type == "number" and re.fullmatch(r"-?\d+(\.\d+)?", term):
            add(
                fname,
                "number",
                f"{col} = :{p}",
                {p: float(term) if "." in term else int(term)},
                cheap,
            )
    return out


def keyset_sql(
    table: str, columns: list[str], key: str, predicates: list[Predicate], after: Any, limit: int
) -> tuple[str, dict[str, Any]]:
    """One indexed branch per predicate, UNIONed, then ordered by key: each branch can use
    its own index, and the page continues after the last key (never OFFSET)."""
    cols = ", ".join(_q(c) for c in columns)
    params: dict[str, Any] = {}
    n = int(limit) + 1
    after_sql = ""
    if after is not None:
        after_sql = f" AND {_q(key)} > :after"
        params["after"] = after
    branches = []
    for i, pred in enumerate(predicates):
        branches.append(
            f"SELECT * FROM (SELECT {cols} FROM {_q(table)} WHERE {pred.sql}{after_sql} "
            f"ORDER BY {_q(key)} LIMIT {n}) AS b{i}"
        )
        params.update(pred.params)
    return f"SELECT * FROM ({' UNION '.join(branches)}) AS u ORDER BY {_q(key)} LIMIT {n}", params


def naive_sql(table: str, columns: list[str], fields: list[str], limit: int) -> str:
    """The query hybridwb replaces (for benchmarks): a scan on every keystroke."""
    ors = " OR ".join(f"{_q(f)} LIKE :term" for f in fields)
    return f"SELECT {', '.join(_q(c) for c in columns)} FROM {_q(table)} WHERE {ors} LIMIT {int(limit)}"
