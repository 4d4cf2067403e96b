"""Validation of what users write to the store (pydantic), with one-line errors."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticError

from hybridwb.errors import ValidationError
from hybridwb.validation import MAX_DEPTH, first_error, holds_nul, nesting_depth, short

MESSAGE_TYPES = ("SMS", "LMS", "alimtalk", "email", "push")


def _json_object(value: Any) -> Any:
    """Configs may arrive as JSON text (from a form or the CLI); parse it or say why not."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, not {type(value).__name__}")
    if nesting_depth(value, MAX_DEPTH + 1) > MAX_DEPTH:
        raise ValueError(f"is nested too deeply (more than {MAX_DEPTH} levels)")
    try:  # what the store's JSON column will hold (a bytes value raised at the INSERT)
        json.dumps(value, allow_nan=False, default=_stored_text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"holds a value JSON cannot store ({exc}); use text or numbers") from None
    return value


def _stored_text(value: Any) -> str:
    """What `repos.jsonable` writes as text (ids, dates); anything else is refused."""
    if isinstance(value, uuid.UUID | date):  # (datetime is a date)
        return str(value)
    raise TypeError(f"a {type(value).__name__}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WorkflowIn(_Model):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    status: Literal["draft", "active", "paused", "archived"] = "draft"
    trigger_type: Literal["manual", "schedule"] = "manual"
    trigger_config: dict[str, Any] = Field(default_factory=dict)
    target_config: dict[str, Any] = Field(default_factory=dict)
    message_config: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    schedule_config: dict[str, Any] = Field(default_factory=dict)
    notebook: str | None = None

    _objects = field_validator(
        "trigger_config",
        "target_config",
        "message_config",
        "variables",
        "schedule_config",
        mode="before",
    )(_json_object)

    @model_validator(mode="after")
    def _schedule(self) -> WorkflowIn:
        if self.trigger_type == "schedule" or self.schedule_config:
            cron = self.schedule_config.get("cron")
            if not cron or not isinstance(cron, str) or not croniter.is_valid(cron):
                raise ValueError(
                    "schedule_config.cron must be a cron expression such as '0 9 * * *' "
                    f"(got {short(cron)})"
                )
            tz = self.schedule_config.get("timezone", "Asia/Seoul")
            try:
                if not isinstance(tz, str):
                    raise ValueError(tz)
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: too long a name
                raise ValueError(
                    f"schedule_config.timezone {short(tz)} is not a time zone such as 'Asia/Seoul'"
                ) from None
        return self


class TemplateIn(_Model):
    name: str = Field(min_length=1, max_length=200)
    category: str | None = None
    message_type: str = "SMS"
    content: str = Field(min_length=1)
    variables: list[str] = Field(default_factory=list)
    advertising: bool = False  # 정보통신망법 제50조 applies (checked by wb.templates)
    sender: str | None = Field(None, max_length=100)

    @field_validator("message_type")
    @classmethod
    def _type(cls, value: str) -> str:
        for known in MESSAGE_TYPES:
            if value.lower() == known.lower():
                return known
        raise ValueError(f"must be one of {', '.join(MESSAGE_TYPES)}")


class VariableIn(_Model):
    name: str = Field(min_length=1, max_length=200)
    source_type: Literal["field", "constant", "expression"]
    source: str = Field(min_length=1)
    default_value: str | None = None
    fallback_value: str | None = None
    formatter: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _field_source(self) -> VariableIn:
        if self.source_type == "field" and "." not in self.source:
            raise ValueError(f"source of a field variable is 'table.field', not {self.source!r}")
        return self


class MappingIn(_Model):
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any]
    is_active: bool = True

    _config = field_validator("config", mode="before")(_json_object)


def validate(model: type[_Model], entity: str, data: dict[str, Any]) -> dict[str, Any]:
    """Validate `data` or raise one `ValidationError` naming the field."""
    try:
        valid = model(**data).model_dump()
    except PydanticError as exc:
        loc, msg = first_error(exc)
        msg = msg.replace("is not a known key", "is not a known field")
        field = f"{entity}.{loc}" if loc else entity
        raise ValidationError(f"{field} {msg}; nothing was saved.", field=loc or None) from None
    for name, value in valid.items():
        if holds_nul(value):  # PostgreSQL refused it as "unsupported Unicode escape sequence"
            raise ValidationError(
                f"{entity}.{name} holds a NUL character, which the store cannot keep; "
                "remove it. Nothing was saved.",
                field=name,
            )
    return valid
