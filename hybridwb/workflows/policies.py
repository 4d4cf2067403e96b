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

import phonenumbers

from hybridwb.platform.campaigns import as_utc
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
_IDD = re.compile(r"^\s*00")  # "0082-10-…": 00 + country code, as dialled abroad
REGION = "KR"  # numbers written without a country code are Korean


def _phone(text: str) -> str | None:
    """One phone in E.164 (`+821055550001`) however it is spelled; digits only when
    phonenumbers cannot read it as a number."""
    spellings = [text]
    if _IDD.match(text):
        spellings.append("+" + text.lstrip()[2:])
    possible = None
    for spelling in spellings:
        try:
            number = phonenumbers.parse(spelling, REGION)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if possible is None and phonenumbers.is_possible_number(number):
            possible = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return possible or _NOT_DIGIT.sub("", text) or None


def normalize(channel: str, recipient: Any) -> str | None:
    """One spelling per address, so history matches: E.164 phone, lower-case email.

    Idempotent, so a stored (already canonical) recipient normalizes to itself."""
    if recipient is None:
        return None
    text = str(recipient).strip()
    if not text:
        return None
    if channel == "sms":
        return _phone(text)
    if channel == "email":
        return text.lower()
    return text


def stored_spellings(channel: str, canonical: list[str]) -> dict[str, str]:
    """{spelling: canonical} of how these recipients may be stored in send_records: the
    canonical form, and for phones what earlier versions stored (national digits such as
    `01055550001`, `00821055550001`, `001055550001`), so old history still matches."""
    out = {c: c for c in canonical}
    if channel != "sms":
        return out
    for c in canonical:
        if not c.startswith("+"):
            continue
        digits = c[1:]
        legacy = {digits, "00" + digits}
        try:
            number = phonenumbers.parse(c)
        except phonenumbers.NumberParseException:  # pragma: no cover - c came from _phone
            number = None
        if number is not None:
            national = _NOT_DIGIT.sub(
                "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            )
            legacy |= {national, "0" + national}
        for spelling in legacy:
            out.setdefault(spelling, c)
    return out


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


def decide(
    candidates: list[Candidate], history: list[dict[str, Any]], rules: Rules
) -> list[str | None]:
    """One decision per candidate, in order; later candidates see earlier ones' sends."""
    policy = rules.policy
    now = as_utc(rules.now)  # windows in UTC; naive store timestamps are UTC
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
        at = as_utc(h["created_at"])
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
