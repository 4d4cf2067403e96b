"""Target definitions (pure): a mapped table + conditions, or a saved guarded query.

Serializable into a workflow's `target_config`; validated against the mappings (unknown
field, wrong value type, operator not allowed for the type) and turned into SQL with bound
values only — identifiers come from the mapping.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticError

from hybridwb.errors import ValidationError
from hybridwb.mapping.model import TableMapping
from hybridwb.search.predicates import LIKE_ESCAPE, escape_like
from hybridwb.validation import first_error, load_json

Op = Literal[
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "prefix", "is_null", "not_null"
]
OPS_BY_TYPE: dict[str, set[str]] = {
    "string": {"eq", "ne", "in", "not_in", "prefix", "is_null", "not_null"},
    "number": {
        "eq",
        "ne",
        "in",
        "not_in",
        "gt",
        "gte",
        "lt",
        "lte",
        "between",
        "is_null",
        "not_null",
    },
    "date": {"eq", "ne", "gt", "gte", "lt", "lte", "between", "is_null", "not_null"},
    "datetime": {"eq", "ne", "gt", "gte", "lt", "lte", "between", "is_null", "not_null"},
    "boolean": {"eq", "ne", "is_null", "not_null"},
}
SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_M):
    field: str
    op: Op
    value: Any = None


class Group(_M):
    all: list[Union[Condition, Group]] | None = None  # noqa: UP007 - pydantic forward ref
    any: list[Union[Condition, Group]] | None = None  # noqa: UP007

    @model_validator(mode="after")
    def _one(self) -> Group:
        if (self.all is None) == (self.any is None):
            raise ValueError("a group has exactly one of 'all' or 'any'")
        return self


class TargetDefinition(_M):
    table: str | None = None
    where: Condition | Group | None = None
    keyword: str | None = None
    sql: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    recipient: str | None = None  # field holding the phone/email; default: the phone field
    exclude_opt_out: bool = True

    @model_validator(mode="after")
    def _shape(self) -> TargetDefinition:
        if (self.table is None) == (self.sql is None):
            raise ValueError(
                "give either 'table' (with conditions) or 'sql' (a saved query), not both"
            )
        return self


Group.model_rebuild()


def parse(data: Any) -> TargetDefinition:
    """A definition from a dict or JSON text, or one clear error naming the path."""
    if isinstance(data, TargetDefinition):
        return data
    data = load_json(data, "The target definition")
    try:
        return TargetDefinition.model_validate(data)
    except PydanticError as exc:
        path, msg = first_error(exc)
        if "must be" in msg and ".op" in f".{path}":
            msg = "must be one of " + ", ".join(Op.__args__)  # type: ignore[attr-defined]
        raise ValidationError(f"target.{path or '(top level)'}: {msg}.", path=path) from None


def _coerce(value: Any, ftype: str, where: str) -> Any:
    try:
        if ftype == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            return float(value) if "." in str(value) else int(value)
        if ftype == "date":
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if ftype == "datetime":
            return (
                value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
            )
        if ftype == "boolean":
            if isinstance(value, bool) or value in (0, 1):
                return int(bool(value))
            raise ValueError
        if not isinstance(value, str | int):
            raise ValueError
        return str(value)
    except (ValueError, TypeError):
        raise ValidationError(f"{where}: {value!r} is not a {ftype}; fix the value.") from None


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def to_sql(
    node: Condition | Group, mapping: TableMapping, table: str, counter: list[int] | None = None
) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment and its bound values; validates fields, operators and values."""
    counter = counter if counter is not None else [0]
    if isinstance(node, Group):
        parts, params = [], {}
        for child in node.all or node.any or []:
            sql, p = to_sql(child, mapping, table, counter)
            parts.append(sql)
            params.update(p)
        if not parts:
            return "1=1", {}
        joiner = " AND " if node.all is not None else " OR "
        return "(" + joiner.join(parts) + ")", params
    field = mapping.field_by_label(node.field)
    where = f"target condition on {node.field!r}"
    if field is None:
        raise ValidationError(
            f"{where}: {table} has no mapped field {node.field!r}.", field=node.field
        )
    ftype = mapping.fields[field].type
    if node.op not in OPS_BY_TYPE[ftype]:
        raise ValidationError(
            f"{where}: operator {node.op} does not apply to a {ftype} field; use one of {', '.join(sorted(OPS_BY_TYPE[ftype]))}."
        )
    counter[0] += 1
    p = f"t{counter[0]}"
    col = _q(field)
    if node.op == "is_null":
        return f"{col} IS NULL", {}
    if node.op == "not_null":
        return f"{col} IS NOT NULL", {}
    if node.op in ("in", "not_in"):
        if not isinstance(node.value, list) or not node.value:
            raise ValidationError(f"{where}: {node.op} needs a non-empty list of values.")
        values = [_coerce(v, ftype, where) for v in node.value]
        return f"{col} {'IN' if node.op == 'in' else 'NOT IN'} :{p}", {p: values}
    if node.op == "between":
        if not isinstance(node.value, list) or len(node.value) != 2:
            raise ValidationError(f"{where}: between needs [low, high].")
        lo, hi = (_coerce(v, ftype, where) for v in node.value)
        return f"{col} BETWEEN :{p}a AND :{p}b", {f"{p}a": lo, f"{p}b": hi}
    if node.op == "prefix":
        value = _coerce(node.value, ftype, where)
        return f"{col} LIKE :{p} ESCAPE '{LIKE_ESCAPE}'", {p: escape_like(value) + "%"}
    if node.value is None:
        raise ValidationError(f"{where}: {node.op} needs a value (use is_null for missing values).")
    return f"{col} {SQL_OPS[node.op]} :{p}", {p: _coerce(node.value, ftype, where)}
