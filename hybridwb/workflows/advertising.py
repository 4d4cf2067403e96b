"""Korea's advertising rules for messages (정보통신망법 제50조), as pure functions.

An advertising message starts with `(광고)`, names the sender, and ends with a free opt-out
line (`무료수신거부 080-…`); it goes only to recipients with marketing consent, and between
21:00 and 08:00 Asia/Seoul only to recipients with a separate night-time consent.
Informational messages are exempt from all of this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hybridwb.errors import ValidationError
from hybridwb.targets.consent import consent_of

if TYPE_CHECKING:
    from hybridwb.templating import TemplateService

SEOUL = ZoneInfo("Asia/Seoul")
AD_PREFIX = "(광고)"
OPT_OUT = re.compile(r"무료\s*수신\s*거부\s*[:：]?\s*080-?\d{3,4}-?\d{4}\s*$")
# "광고" between any pair of brackets ('(광고)', '[광고]', '〔광고〕', '‹광고>', '【 광고 】'):
# the reader sees an advertisement label whatever the brackets; only `(광고)` is lawful
OPENERS, CLOSERS = "(（[［{｛<＜‹«〈《〔【〖〘〚「『", ")）]］}｝>＞›»〉》〕】〗〙〛」』"
AD_MARK = re.compile(rf"[{re.escape(OPENERS)}]\s*광\s*고\s*[{re.escape(CLOSERS)}]")
NIGHT_START, NIGHT_END = time(21, 0), time(8, 0)


def is_advertising(text: str | None, flagged: bool = False) -> bool:
    """Flagged as advertising, or saying so: a text with `(광고)` (in any brackets) anywhere
    is an advertisement whether or not the template was marked, so every rule applies to it."""
    return bool(flagged) or bool(text and AD_MARK.search(text))


def problems(text: str, sender: str | None) -> list[str]:
    """What an advertising text lacks; empty when it complies."""
    found: list[str] = []
    body = text.strip()
    if not body.startswith(AD_PREFIX):
        found.append(f"an advertising message must start with {AD_PREFIX}")
    if not sender or not sender.strip():
        found.append("an advertising template must name its sender (set 'sender')")
    elif sender.strip() not in body:
        found.append(f"the text must name the sender {sender.strip()!r}")
    last = body.splitlines()[-1] if body else ""
    if not OPT_OUT.search(last):
        found.append("the last line must be a free opt-out such as '무료수신거부 080-123-4567'")
    return found


def check(text: str, sender: str | None, what: str = "template") -> None:
    """Raise one ValidationError listing every rule the text breaks (정보통신망법 제50조)."""
    found = problems(text, sender)
    if found:
        raise ValidationError(
            f"This {what} is marked advertising but breaks 정보통신망법 제50조: "
            + "; ".join(found)
            + ". Nothing was saved."
        )


def is_night(at: datetime) -> bool:
    """21:00-08:00 in Seoul, whatever zone `at` is given in (naive means UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo("UTC"))
    local = at.astimezone(SEOUL).time()
    return local >= NIGHT_START or local < NIGHT_END


def truthy(value: object) -> bool:
    """A consent flag that clearly says yes (`targets.consent`: 1, True, Decimal('1.0'),
    1.0, b'\x01', 'Y', 'yes', 'true', '동의' ...); no and unclear values are no consent."""
    return consent_of(value) is True


@dataclass
class Message:
    """What a workflow sends: text, type, and whether it is advertising (and by whom)."""

    text: str
    message_type: str
    mode: str
    advertising: bool
    sender: str | None
    template: dict[str, Any] | None


def message_of(templates: TemplateService, message_cfg: dict[str, Any]) -> Message:
    """The workflow's message: its template's (a library template) or its own text."""
    from hybridwb.workflows.config import message_config

    msg = message_config(message_cfg)
    template = templates.get(msg.template) if msg.template else None
    if template is not None:
        return Message(
            template["content"],
            msg.message_type or template["message_type"],
            msg.mode,
            is_advertising(template["content"], bool(template.get("advertising"))),
            template.get("sender"),
            template,
        )
    text = str(msg.content)
    ad = is_advertising(text, msg.advertising)
    return Message(text, msg.message_type or "SMS", msg.mode, ad, msg.sender, None)
