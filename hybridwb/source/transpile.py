"""MySQL dialect -> SQLite for the embedded sample (pure, sqlglot)."""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from hybridwb.errors import TranspileError
from hybridwb.source import guard

_SHOW_TABLES = re.compile(r"^\s*SHOW\s+(FULL\s+)?TABLES\s*;?\s*$", re.IGNORECASE)
_DESCRIBE = re.compile(r"^\s*(DESCRIBE|DESC)\s+`?([\w가-힣]+)`?\s*;?\s*$", re.IGNORECASE)


def to_sqlite(checked: guard.Checked, expression: exp.Expression) -> str:
    """MySQL dialect -> SQLite for the embedded sample; a clear error when impossible."""
    if checked.kind == "show":
        if _SHOW_TABLES.match(checked.sql):
            return (
                "SELECT name AS Tables_in_sample FROM sqlite_master "
                "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        raise TranspileError(
            "This SHOW has no equivalent on the embedded sample; only SHOW TABLES works there."
        )
    if checked.kind == "describe":
        match = _DESCRIBE.match(checked.sql)
        if match:
            table = match.group(2).replace("'", "''")
            return (
                "SELECT name AS Field, type AS Type, "
                "CASE WHEN \"notnull\" THEN 'NO' ELSE 'YES' END AS \"Null\", "
                f"CASE WHEN pk THEN 'PRI' ELSE '' END AS Key FROM pragma_table_info('{table}')"
            )
        if isinstance(expression.this, exp.Select | exp.SetOperation):
            return "EXPLAIN QUERY PLAN " + to_sqlite(
                guard.Checked(checked.sql, expression.this, "select", checked.tokens),
                expression.this,
            )
        raise TranspileError("This DESCRIBE/EXPLAIN has no equivalent on the embedded sample.")
    try:
        return expression.sql(dialect="sqlite", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise TranspileError(
            f"This MySQL query cannot run on the embedded sample ({exc}); "
            "rewrite that part or connect a MySQL source."
        ) from exc
