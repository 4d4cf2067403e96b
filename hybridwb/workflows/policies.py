"""Who is messaged, decided per batch (pure): consent, quiet hours and send policies.

The source says who qualifies; the store's own history says who was already messaged.
`decide()` takes a batch of candidates and the history rows of their recipients and
returns, for each, `None` (send), `WAIT` (leave pending: quiet hours) or the reason it is
excluded. Reasons are the words the run and the report count.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hybridwb.workflows.advertising import is_night, truthy
from hybridwb.workflows.config import SendPolicy

WAIT = "wait"
GONE = "gone from source"
NO_RECIPIENT = "no recipient"
NO_CONSENT = "no marketing consent"
QUIET = "quiet hours (no night consent)"
ONCE = "already messaged (once per recipient)"
COOLDOWN = "cooldown"
DUPLICATE = "duplicate recipient in this run"
CAP = "frequency cap"
BAD_ROW = "unreadable value (NUL byte)"
#: reasons a policy decided (what "a re-run applies them and says so" reports)
POLICY_REASONS = (ONCE, COOLDOWN, CAP, DUPLICATE)
CONSENT_REASONS = (NO_CONSENT, QUIET)

_NOT_DIGIT = re.compile(r"\D")


def normalize(channel: str, recipient: Any) -> str | None:
    """One spelling per address, so history matches: digits of a phone, lower-case email."""
    if recipient is None:
        return None
    text = str(recipient).strip()
    if not text:
        return None
    if channel == "sms":
        digits = _NOT_DIGIT.sub("", text)
        if digits.startswith("82") and len(digits) > 10:
            digits = "0" + digits[2:]
        return digits or None
    if channel == "email":
        return text.lower()
    return text


@dataclass(frozen=True)
class Rules:
    workflow_id: Any
    run_id: Any
    now: datetime
    policy: SendPolicy
    advertising: bool
    quiet_hours: str = "wait"  # wait | exclude


@dataclass(frozen=True)
class Candidate:
    key: str
    recipient: str | None  # normalized
    consent: Any = None
    night_consent: Any = None
    present: bool = True  # the source row still exists


def _aware(at: datetime, like: datetime) -> datetime:
    return at.replace(tzinfo=like.tzinfo) if at.tzinfo is None and like.tzinfo else at


def decide(
    candidates: list[Candidate], history: list[dict[str, Any]], rules: Rules
) -> list[str | None]:
    """One decision per candidate, in order; later candidates see earlier ones' sends."""
    policy = rules.policy
    now = rules.now
    cap = policy.frequency_cap
    cap_since = now - timedelta(days=cap.days) if cap else None
    cool_since = now - timedelta(days=policy.cooldown_days) if policy.cooldown_days else None
    wf, run = str(rules.workflow_id), str(rules.run_id)
    earlier_wf: set[str] = set()
    cooling: set[str] = set()
    in_run: set[str] = set()
    in_window: Counter[str] = Counter()
    for h in history:
        rec = h["recipient"]
        at = _aware(h["created_at"], now)
        if str(h["run_id"]) == run:
            in_run.add(rec)
        elif str(h["workflow_id"]) == wf:
            earlier_wf.add(rec)
            if cool_since is not None and at >= cool_since:
                cooling.add(rec)
        if cap_since is not None and at >= cap_since:
            in_window[rec] += 1
    night = rules.advertising and is_night(now)
    out: list[str | None] = []
    for c in candidates:
        reason: str | None = None
        if not c.present:
            reason = GONE
        elif not c.recipient:
            reason = NO_RECIPIENT
        elif rules.advertising and not truthy(c.consent):
            reason = NO_CONSENT
        elif night and not truthy(c.night_consent):
            reason = WAIT if rules.quiet_hours == "wait" else QUIET
        elif policy.once_per_recipient and c.recipient in earlier_wf:
            reason = ONCE
        elif c.recipient in cooling:
            reason = COOLDOWN
        elif c.recipient in in_run:
            reason = DUPLICATE
        elif cap is not None and in_window[c.recipient] >= cap.messages:
            reason = CAP
        if reason is None:
            in_run.add(c.recipient or "")
            in_window[c.recipient or ""] += 1
        out.append(reason)
    return out
