"""Workflow configs beyond field types (pure): message, send policy and quiet-hours checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from hybridwb.errors import ValidationError
from hybridwb.validation import first_error


class FrequencyCap(BaseModel):
    """At most `messages` per recipient per `days`, counted across every workflow."""

    model_config = ConfigDict(extra="forbid")

    messages: int = Field(gt=0)
    days: float = Field(gt=0)


class SendPolicy(BaseModel):
    """Who may be messaged again, decided from the store's own send history."""

    model_config = ConfigDict(extra="forbid")

    once_per_recipient: bool = False  # never twice by this workflow
    cooldown_days: float | None = Field(None, gt=0)  # not again by this workflow within N days
    frequency_cap: FrequencyCap | None = None


class MessageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str | None = None  # a template's name or id in the library
    content: str | None = None  # or the text itself
    channel: str = "outbox"
    message_type: str | None = None
    mode: str = Field("strict", pattern="^(strict|fallback)$")
    # inline content only (a library template carries its own flag and sender)
    advertising: bool = False
    sender: str | None = None
    policy: SendPolicy = Field(default_factory=SendPolicy)
    # an advertising run between 21:00 and 08:00 KST, for recipients without night consent
    quiet_hours: Literal["wait", "exclude"] = "wait"

    def check(self) -> MessageConfig:
        if (self.template is None) == (self.content is None):
            raise ValueError("give either 'template' (a library template) or 'content'")
        stored_text(self.content, "content")
        stored_text(self.sender, "sender")
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


def stored_text(value: Any, what: str) -> None:
    """Refuse (one line) a message's text or sender no store can hold and no record of it
    could be written with: a lone surrogate (a run raised the driver's raw
    UnicodeEncodeError at its first record) or a NUL (every customer was excluded as an
    unreadable source row)."""
    if not isinstance(value, str):
        return
    if "\x00" in value:
        raise ValidationError(f"The message's {what} holds a NUL character; remove it.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"The message's {what} is not valid text (a lone surrogate); retype it."
        ) from None
