"""MySQL dialect -> SQLite for the embedded sample (pure, sqlglot)."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from hybridwb.errors import BindError, TranspileError
from hybridwb.source import guard
from hybridwb.source.values import exact_value, items_of, sqlite_number

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


def expand_lists(
    expression: exp.Expression, params: dict[str, Any]
) -> tuple[exp.Expression, dict[str, Any]]:
    """`x IN :ids` with a list value -> `x IN (:ids_0, :ids_1, ...)` for SQLite, which binds
    one value per placeholder (PyMySQL writes a list as `(a, b)` itself)."""
    lists = {k: v for k, v in params.items() if isinstance(v, list)}
    if not lists:
        return expression, params
    expression = expression.copy()
    bound = {k: v for k, v in params.items() if k not in lists}
    for node in list(expression.find_all(exp.Placeholder)):
        name = node.name
        if name not in lists:
            continue
        parent = node.parent
        if not (isinstance(parent, exp.In) and parent.args.get("field") is node):
            raise BindError(f"List parameter {name!r} can only follow IN (x IN :{name}).")
        names = [f"{name}__{i}" for i in range(len(lists[name]))]
        bound.update(zip(names, lists[name], strict=True))
        parent.set("field", None)
        parent.set("expressions", [exp.Placeholder(this=n) for n in names])
    return expression, bound


def sqlite_value(value: Any) -> Any:
    """A date, time or datetime as the text the sample stores (`datetime.isoformat(" ")`,
    `2026-06-09 19:48:28`), any other value as it is. sqlite3 turns a datetime into text
    through a process-wide adapter that any library may replace: importing `nbformat.sign`
    (JupyterLab's server, IPython's `%notebook`) makes it `isoformat()`, with a `T`, and
    a `T` sorts after the stored space, so "the last 180 days" dropped its first day and
    took in all of today. hybridwb writes the text itself, in its one format."""
    if isinstance(value, dt.datetime):  # a pandas Timestamp is one
        # an aware one as its wall clock, the zone left out: what the MySQL drivers send
        # (PyMySQL's escape_datetime), and what the sample stores (`+09:00` appended
        # sorted after the equal stored value: `>=` lost it, `=` found none)
        return (value if value.tzinfo is None else value.replace(tzinfo=None)).isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return (value if value.tzinfo is None else value.replace(tzinfo=None)).isoformat()
    return value


def sqlite_params(params: dict[str, Any]) -> dict[str, Any]:
    """`params` with each date, time and datetime as its text (`sqlite_value`), and each
    Decimal as the number SQLite keeps for it (`values.sqlite_number`; sqlite3 binds none)."""
    return {
        k: sqlite_number(k, v) if type(v) is decimal.Decimal else sqlite_value(v)
        for k, v in params.items()
    }


def sqlite_driver_params(params: Any, many: bool) -> Any:
    """sqlite3's own parameters (a dict, a sequence, or for `many` a list of those) with
    each date, time and datetime as its text (`sqlite_value`): for statements a caller
    sends through the sample's engine (`pd.read_sql(sql, wb.source.engine, params=...)`,
    a `text()` clause's NullType binds), which reach the driver as given."""
    if many:
        return [sqlite_driver_params(p, False) for p in params]
    if isinstance(params, dict):
        return sqlite_params({k: exact_value(k, v, store=True) for k, v in dict.items(params)})
    listed = items_of(params) if isinstance(params, list | tuple) else None
    if listed is not None:
        # each as its plain value first (sqlite3 bound an np.int64 as a BLOB of its bytes);
        # a tuple subclass (a namedtuple: its own constructor took no one iterable) as a tuple
        return tuple(
            _sqlite_one(f"#{i}", exact_value(f"#{i}", v, store=True))
            for i, v in enumerate(listed, 1)
        )
    return params


def _sqlite_one(name: str, value: Any) -> Any:
    return sqlite_number(name, value) if type(value) is decimal.Decimal else sqlite_value(value)
