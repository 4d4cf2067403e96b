"""Where a saved query's recipient comes from in the audience table, for the refusal read.

An advertising run holds back a target whose recipient another row of the audience table
refused (`refusals.read`). That read walks the audience table, not the saved query (whose
WHERE may have left the refusing rows out), so it must compute the recipient the query
sends to from the table's own columns. Round 56: a query joining split columns
(`CONCAT_WS('-', mobile1, mobile2, mobile3) AS hp`) was matched against the mapping's
recipient `mobile1` ('010', no one's number), and a member who said yes was advertised to at
the number another member of the table shares and refused.

`source_of` reads the query's outermost SELECT (sqlglot) and says, for the recipient column:
a column of the audience table (`Column`), or the parts `CONCAT_WS` / `CONCAT` joins them from
(`Joined`, computed by `Joined.value` as the server computes it). Any other shape is None:
the refusal read could not see the number the message goes to, and the caller refuses the
advertisement rather than send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp


@dataclass(frozen=True)
class Column:
    """The recipient is this column of the audience table's row."""

    name: str


@dataclass(frozen=True)
class Joined:
    """The recipient is these columns (str) and literals (`Text`) joined, as `CONCAT_WS`
    (`separator`; NULL parts skipped) or `CONCAT` (`separator` None; any NULL part: NULL)."""

    parts: tuple[str | Text, ...]
    separator: str | None

    @property
    def columns(self) -> list[str]:
        return [p for p in self.parts if isinstance(p, str)]

    def value(self, row: dict[str, Any]) -> str | None:
        """The recipient the server computes from `row`'s parts."""
        values = [p.text if isinstance(p, Text) else row.get(p) for p in self.parts]
        if self.separator is None:
            if any(v is None for v in values):
                return None
            return "".join(_text(v) for v in values)
        return self.separator.join(_text(v) for v in values if v is not None)


@dataclass(frozen=True)
class Text:
    """A literal part of a `Joined` recipient."""

    text: str


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def source_of(sql: str, recipient: str, table: str, columns: set[str]) -> Column | Joined | None:
    """Where the saved query `sql`'s column `recipient` comes from in `table` (the audience
    table, whose live `columns` are given): see the module docstring. None: not known."""
    try:
        tree = sqlglot.parse_one(sql, read="mysql")
    except sqlglot.errors.SqlglotError:
        return None
    if not isinstance(tree, exp.Select):
        return None  # a UNION, a CTE's outer shape sqlglot does not give as a Select
    if tree.args.get("with") is not None:
        return None
    aliases = _audience_aliases(tree, table)
    if aliases is None:
        return None
    lowered = {c.lower(): c for c in columns}
    found: exp.Expression | None = None
    for projection in tree.expressions:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            if found is None and recipient.lower() in lowered and not tree.args.get("joins"):
                found = exp.column(recipient)  # `SELECT *` of the audience table alone
            continue
        if projection.alias_or_name.lower() == recipient.lower():
            found = projection.this if isinstance(projection, exp.Alias) else projection
    if found is None:
        return None
    if isinstance(found, exp.Column):
        name = _own_column(found, aliases, lowered, tree)
        return None if name is None else Column(name)
    if isinstance(found, exp.ConcatWs | exp.Concat):
        args = list(found.expressions)
        separator: str | None = None
        if isinstance(found, exp.ConcatWs):
            if not args or not _is_string(args[0]):
                return None
            separator = args.pop(0).this
        parts: list[str | Text] = []
        for arg in args:
            if _is_string(arg):
                parts.append(Text(arg.this))
                continue
            if not isinstance(arg, exp.Column):
                return None
            name = _own_column(arg, aliases, lowered, tree)
            if name is None:
                return None
            parts.append(name)
        return Joined(tuple(parts), separator) if parts else None
    return None


def _is_string(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _audience_aliases(tree: exp.Select, table: str) -> set[str] | None:
    """The names the audience table goes by in the query's FROM and JOINs (its alias, else
    its name); None when it is not there as a plain table."""
    sources = []
    from_ = tree.args.get("from_") or tree.args.get("from")
    if from_ is not None:
        sources.append(from_.this)
    sources += [j.this for j in tree.args.get("joins") or []]
    names = {
        s.alias_or_name.lower()
        for s in sources
        if isinstance(s, exp.Table) and s.name.lower() == table.lower()
    }
    return names or None


def _own_column(
    column: exp.Column, aliases: set[str], lowered: dict[str, str], tree: exp.Select
) -> str | None:
    """The audience table's column `column` names: qualified by one of its `aliases`, or
    unqualified in a query of that table alone."""
    name = lowered.get(column.name.lower())
    if name is None:
        return None
    if column.table:
        return name if column.table.lower() in aliases else None
    return None if tree.args.get("joins") else name
