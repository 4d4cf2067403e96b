"""Workflow configs beyond field types (pure-ish): target, message and schedule checks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from hybridwb.errors import ValidationError
from hybridwb.validation import first_error


class MessageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str | None = None  # a template's name or id in the library
    content: str | None = None  # or the text itself
    channel: str = "outbox"
    message_type: str | None = None
    mode: str = Field("strict", pattern="^(strict|fallback)$")

    def check(self) -> MessageConfig:
        if (self.template is None) == (self.content is None):
            raise ValueError("give either 'template' (a library template) or 'content'")
        if self.channel != "outbox":
            raise ValueError(
                "channel must be 'outbox' (records wait for the platform's dispatcher)"
            )
        return self


def message_config(data: dict[str, Any]) -> MessageConfig:
    try:
        return MessageConfig.model_validate(data).check()
    except PydanticError as exc:
        where, msg = first_error(exc)
        if where == "mode":
            msg = "must be 'strict' or 'fallback'"
        raise ValidationError(
            f"workflow.message_config.{where} {msg}; nothing was saved."
        ) from None
    except ValueError as exc:
        raise ValidationError(f"workflow.message_config: {exc}; nothing was saved.") from None
