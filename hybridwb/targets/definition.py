"""Target definitions (pure model): who a campaign is for, without writing SQL.

A definition names the audience table (default: the mapping marked `audience`) and a tree
of conditions; or a saved guarded query; or a search keyword. Conditions:

    {"field": "grade", "op": "eq", "value": "VIP"}                 a field of the table
    {"field": "address.city.city", "op": "eq", "value": "서울"}      through to-one relations
    {"field": "create_date", "op": "within_last", "value": {"days": 30}}   relative dates
    {"exists": "payment", "where": {...}}  /  {"not_exists": "rental"}   to-many relations
    {"aggregate": "sum", "relation": "payment", "field": "amount",
     "op": "gt", "value": 100, "within_last": {"days": 90}}        aggregates over to-many
    {"all": [...]}  /  {"any": [...]}                               groups (never empty)

Relative dates are evaluated when the target is resolved, at `now` in the definition's time
zone (`timezone`, default Asia/Seoul). SQL is built in `hybridwb.targets.sql`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticError

from hybridwb.errors import ValidationError
from hybridwb.validation import first_error, load_json, short

Op = Literal[
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "prefix",
    "is_null",
    "not_null",
    "within_last",
    "within_next",
    "older_than",
]
AggregateOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "between"]
RELATIVE = {"within_last", "within_next", "older_than"}
_COMPARE = {"eq", "ne", "in", "not_in", "is_null", "not_null"}
_ORDER = {"gt", "gte", "lt", "lte", "between"}
OPS_BY_TYPE: dict[str, set[str]] = {
    "string": _COMPARE | {"prefix"},
    "number": _COMPARE | _ORDER,
    "date": _COMPARE - {"in", "not_in"} | _ORDER | RELATIVE,
    "datetime": _COMPARE - {"in", "not_in"} | _ORDER | RELATIVE,
    "boolean": {"eq", "ne", "is_null", "not_null"},
}
AGGREGATES = ("count", "sum", "min", "max", "avg")
MAX_SPAN_DAYS = 36_600  # a century: larger spans are typos


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Span(_M):
    """A relative time span: exactly one of days or hours, positive."""

    days: float | None = Field(default=None, gt=0, le=MAX_SPAN_DAYS)
    hours: float | None = Field(default=None, gt=0, le=MAX_SPAN_DAYS * 24)

    @model_validator(mode="after")
    def _one(self) -> Span:
        if (self.days is None) == (self.hours is None):
            raise ValueError("give exactly one of 'days' or 'hours'")
        return self

    def seconds(self) -> float:
        return (self.days or 0) * 86_400 + (self.hours or 0) * 3_600


class Condition(_M):
    field: str = Field(min_length=1)
    op: Op
    value: Any = None


class Exists(_M):
    exists: str | None = None
    not_exists: str | None = None
    where: Node | None = None

    @model_validator(mode="after")
    def _one(self) -> Exists:
        if (self.exists is None) == (self.not_exists is None):
            raise ValueError("give exactly one of 'exists' or 'not_exists' (a relation name)")
        return self

    @property
    def relation(self) -> str:
        return self.exists or self.not_exists or ""


class Aggregate(_M):
    aggregate: Literal["count", "sum", "min", "max", "avg"]
    relation: str = Field(min_length=1)
    field: str | None = None  # not needed for count
    op: AggregateOp
    value: Any
    where: Node | None = None
    within_last: Span | None = None
    date_field: str | None = None  # the related date the window applies to (default: orderBy)

    @model_validator(mode="after")
    def _field(self) -> Aggregate:
        if self.aggregate != "count" and not self.field:
            raise ValueError(f"{self.aggregate} needs 'field' (the related field to aggregate)")
        return self


class Group(_M):
    all: list[Node] | None = None
    any: list[Node] | None = None

    @model_validator(mode="after")
    def _one(self) -> Group:
        if (self.all is None) == (self.any is None):
            raise ValueError("a group has exactly one of 'all' or 'any'")
        if not (self.all or self.any):
            raise ValueError(
                "an empty group would select everyone or no one; add a condition or remove it"
            )
        return self


def _kind(value: Any) -> str:
    """Which kind of node a dict is, by its keys (so errors name the right fields)."""
    if isinstance(value, dict):
        if "all" in value or "any" in value:
            return "group"
        if "exists" in value or "not_exists" in value:
            return "exists"
        if "aggregate" in value:
            return "aggregate"
        return "condition"
    kinds: dict[type[Any], str] = {Group: "group", Exists: "exists", Aggregate: "aggregate"}
    return kinds.get(type(value), "condition")


_TAGS = {"group", "exists", "aggregate", "condition"}
Node = Annotated[
    Union[  # noqa: UP007 - pydantic forward refs
        Annotated[Condition, Tag("condition")],
        Annotated[Exists, Tag("exists")],
        Annotated[Aggregate, Tag("aggregate")],
        Annotated[Group, Tag("group")],
    ],
    Discriminator(_kind),
]


class TargetDefinition(_M):
    table: str | None = None  # default: the mapping marked as the audience
    where: Node | None = None
    keyword: str | None = None
    sql: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    recipient: str | None = None  # a field or to-one path; default: the mapping's recipient
    exclude_opt_out: bool = True  # only recipients whose consent field is truthy
    timezone: str = "Asia/Seoul"  # where relative dates are evaluated

    @model_validator(mode="after")
    def _shape(self) -> TargetDefinition:
        if self.sql is not None and (self.where is not None or self.keyword is not None):
            raise ValueError(
                "give either conditions/keyword on a table or 'sql' (a saved query), not both"
            )
        if self.sql is not None and not self.sql.strip():
            raise ValueError("'sql' is empty; write the saved query or remove it")
        if self.keyword is not None and not self.keyword.strip():
            raise ValueError("'keyword' is empty; give a search term or remove it")
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        # OSError: a folder of zones ('America', round 51) or a name too long for a path
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"{short(value)} is not a time zone name (e.g. Asia/Seoul)") from None
        return value


for _model in (Exists, Aggregate, Group, TargetDefinition):
    _model.model_rebuild()


def parse(data: Any) -> TargetDefinition:
    """A definition from a dict or JSON text, or one clear error naming the path."""
    if isinstance(data, TargetDefinition):
        return data
    data = load_json(data, "The target definition")
    if isinstance(data, dict) and "sql" in data and "table" in data:
        raise ValidationError(
            "target: give either 'table' (with conditions) or 'sql' (a saved query), not both."
        )
    try:
        return TargetDefinition.model_validate(data)
    except PydanticError as exc:
        path, msg = first_error(exc)
        parts = path.split(".")
        path = ".".join(p for p in parts if p not in _TAGS)
        if "must be" in msg and path.endswith("op"):
            # the node the op belongs to is the last tag on the path (a condition inside an
            # aggregate's `where` takes condition operators)
            node = next((p for p in reversed(parts) if p in _TAGS), "condition")
            ops = get_args(AggregateOp) if node == "aggregate" else get_args(Op)
            msg = "must be one of " + ", ".join(ops)
        raise ValidationError(f"target.{path or '(top level)'}: {msg}.", path=path) from None
