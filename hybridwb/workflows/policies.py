"""Who is messaged, decided per batch (pure): consent, quiet hours and send policies.

The source says who qualifies; the store's own history says who was already messaged.
`decide()` takes a batch of candidates and the history rows of their recipients and
returns, for each, `None` (send), `WAIT` (leave pending: quiet hours) or the reason it is
excluded. Reasons are the words the run and the report count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from hybridwb.platform.campaigns import CapCheck, as_utc
from hybridwb.recipients import (  # noqa: F401  # their home before
    _IDD,
    _NATIONAL_MOBILE,
    _NOT_DIGIT,
    _PADDED_NATIONAL_MOBILE,
    REGION,
    _both,
    _both_lengths,
    _combined,
    _email,
    _kr_mobile,
    _kr_mobile_check,
    _kr_mobile_nsn,
    _national_mobile_check,
    _national_mobile_nsn,
    _number_text,
    _parsed_national_mobile,
    _parsed_phone,
    _phone,
    _valid_e164,
    deliverable,
    national_mobile,
    normalize,
    normalizer,
)
from hybridwb.targets.consent import consent_of
from hybridwb.workflows.advertising import is_night
from hybridwb.workflows.config import SendPolicy

WAIT = "wait"
GONE = "gone from source"
NO_RECIPIENT = "no recipient"
INVALID_PHONE = "not a valid phone number"
NO_CONSENT = "no marketing consent"
#: a consent value neither clearly yes nor clearly no (`advertising.consent_of`): no consent
UNCLEAR_CONSENT = "unclear consent value (neither yes nor no)"
#: at night, a night consent that clearly says no (in "exclude" mode)
QUIET = "quiet hours (no night consent)"
#: at night, a night-consent value neither clearly yes nor clearly no: no night consent,
#: excluded under its own reason (left waiting for the day, like a no, in "wait" mode)
UNCLEAR_NIGHT_CONSENT = "unclear night consent value (neither yes nor no)"
ONCE = "already messaged (once per recipient)"
COOLDOWN = "cooldown"
DUPLICATE = "duplicate recipient in this run"
CAP = "frequency cap"
BAD_ROW = "unreadable value (NUL byte)"
RECIPIENT_CHANGED = "recipient changed since the run started"
#: an advertisement's recipient that another row of the audience table holds (in any
#: spelling) without a clear yes to marketing: the holder of the number refused, so no
#: customer's advertisement goes to it (decided at the freeze: `targets.refusals`)
SHARED_NO_CONSENT = "no marketing consent (another customer with this recipient has none)"
#: at night, an advertisement's recipient that another row holds without night consent
SHARED_NO_NIGHT_CONSENT = "quiet hours (another customer with this recipient has no night consent)"


class _NightHeld:
    """The night consent a frozen target is decided with when another row of the audience
    with its recipient has none (`refusals`, `batches.candidates`): no consent at night."""

    def __repr__(self) -> str:
        return "<no night consent: another customer with this recipient has none>"


NIGHT_HELD = _NightHeld()
#: reasons a policy decided (what "a re-run applies them and says so" reports)
POLICY_REASONS = (ONCE, COOLDOWN, CAP, DUPLICATE)
CONSENT_REASONS = (
    NO_CONSENT,
    UNCLEAR_CONSENT,
    QUIET,
    UNCLEAR_NIGHT_CONSENT,
    SHARED_NO_CONSENT,
    SHARED_NO_NIGHT_CONSENT,
)


@dataclass(frozen=True)
class Rules:
    workflow_id: Any
    run_id: Any
    now: datetime
    policy: SendPolicy
    advertising: bool
    quiet_hours: str = "wait"  # wait | exclude
    #: decide on marketing consent for an informational message too: the target
    #: definition filters by it (`exclude_opt_out`), and its filter keeps unclear values
    #: for the run to exclude and count (`targets.sql.truthy`)
    consent: bool = False


class Candidate(NamedTuple):
    """One frozen target as the policies see it (a named tuple: a run makes one per
    target, and a tuple is built in a third of a frozen dataclass's time)."""

    key: str
    recipient: str | None  # normalized
    consent: Any = None
    night_consent: Any = None
    present: bool = True  # the source row still exists
    checked: bool = False  # known `deliverable` (`batches.checked_normalizer`): not checked


@dataclass
class Seen:
    """What the store's history says about a batch's recipients (canonical spellings):
    messaged by an earlier run of this workflow, within its cooldown, by this run, and how
    many messages any workflow sent them within the frequency-cap window."""

    earlier: set[str] = field(default_factory=set)
    cooling: set[str] = field(default_factory=set)
    in_run: set[str] = field(default_factory=set)
    in_window: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of_rows(cls, history: list[dict[str, Any]], rules: Rules) -> Seen:
        """From history rows (recipient, workflow_id, run_id, created_at)."""
        cool_since, cap_since = windows(rules)
        wf, run = str(rules.workflow_id), str(rules.run_id)
        seen = cls()
        for h in history:
            rec = h["recipient"]
            at = as_utc(h["created_at"])
            if str(h["run_id"]) == run:
                seen.in_run.add(rec)
            elif str(h["workflow_id"]) == wf:
                seen.earlier.add(rec)
                if cool_since is not None and at >= cool_since:
                    seen.cooling.add(rec)
            if cap_since is not None and at >= cap_since:
                seen.in_window[rec] += 1
        return seen

    @classmethod
    def of_counts(
        cls, counts: list[tuple[str, int, int, int, int]], spellings: dict[str, str]
    ) -> Seen:
        """From per-spelling counts `(recipient, in this run, earlier runs of this
        workflow, of those within the cooldown, any workflow within the cap window)`, as
        the store aggregates them, each spelling counted for its canonical recipient."""
        seen = cls()
        get = spellings.get
        # summed in a plain dict: a Counter calls `__missing__` (a Python frame) for each
        # recipient it meets first, and this is read in the step every batch waits for
        window: dict[str, int] = {}
        for spelling, in_run, earlier, cooling, in_window in counts:
            rec = get(spelling, spelling)
            if in_run:
                seen.in_run.add(rec)
            if earlier:
                seen.earlier.add(rec)
            if cooling:
                seen.cooling.add(rec)
            if in_window:
                window[rec] = window.get(rec, 0) + int(in_window)
        seen.in_window = Counter(window)
        return seen


def windows(rules: Rules) -> tuple[datetime | None, datetime | None]:
    """(cooldown start, frequency-cap window start) in UTC; None when off."""
    policy = rules.policy
    now = as_utc(rules.now)  # windows in UTC; naive store timestamps are UTC
    cap = policy.frequency_cap
    cap_since = _since(now, cap.days) if cap else None
    cool_since = _since(now, policy.cooldown_days) if policy.cooldown_days else None
    return cool_since, cap_since


#: where a window longer than the calendar starts: before every record ("since ever")
EVER = datetime.min.replace(tzinfo=UTC)


def _since(now: datetime, days: float) -> datetime:
    """`now` less `days` days; `EVER` for a window reaching past year 1 (a cooldown of
    1,000,000 days, "never again", made a run raise a raw OverflowError per batch)."""
    try:
        return now - timedelta(days=days)
    except OverflowError:
        return EVER


def cap_space(channel: str) -> str:
    """The name of the lock every run holds (or takes again where it writes) between
    counting a batch's recipients under the frequency cap and storing their records: one
    for every channel (as the SQLite store's one lock file), since the cap counts a
    recipient's history whatever channel wrote it. Named by the channel, an `other`
    workflow whose addresses are E.164 phones wrote under a lock of its own, between a
    capped SMS workflow's check and its write (round 31)."""
    del channel  # one space: see above
    return "hybridwb:recipients"


def cap_check(rules: Rules, channel: str, spellings: dict[str, str]) -> CapCheck | None:
    """The batch's frequency cap for a store that checks it again as it writes (REST)."""
    cap = rules.policy.frequency_cap
    _, since = windows(rules)
    if cap is None or since is None:
        return None
    return CapCheck(cap_space(channel), cap.messages, since, CAP, spellings)


def decide(
    candidates: list[Candidate], history: list[dict[str, Any]] | Seen, rules: Rules
) -> list[str | None]:
    """One decision per candidate, in order; later candidates see earlier ones' sends.

    `history`: the store's rows for these recipients, or what they add up to (`Seen`)."""
    policy = rules.policy
    cap = policy.frequency_cap
    seen = history if isinstance(history, Seen) else Seen.of_rows(history, rules)
    earlier_wf = seen.earlier if policy.once_per_recipient else frozenset()
    cooling = seen.cooling
    # a plain dict read with a default: a Counter calls `__missing__` (a Python frame)
    # for every recipient it has not counted yet, twice per message let through
    in_run, in_window = set(seen.in_run), dict(seen.in_window)
    counted = in_window.get
    advertising = rules.advertising
    needs_consent = advertising or rules.consent
    night = advertising and is_night(as_utc(rules.now))
    wait = rules.quiet_hours == "wait"
    most = cap.messages if cap is not None else None
    kr_mobile = _kr_mobile_check()  # `deliverable`'s common case, without its calls
    out: list[str | None] = []
    append = out.append
    # a run decides every target: the rules are read once, each candidate unpacked once
    for _, recipient, consent, night_consent, present, checked in candidates:
        if not present:
            append(GONE)
        elif not recipient:
            append(NO_RECIPIENT)
        elif not (checked or (recipient[:3] == "+82" and kr_mobile(recipient[3:]))) and not (
            deliverable(recipient)
        ):
            append(INVALID_PHONE)
        elif needs_consent and (said := consent_of(consent)) is not True:
            append(NO_CONSENT if said is False else UNCLEAR_CONSENT)
        elif night and (said := consent_of(night_consent)) is not True:
            append(
                WAIT
                if wait
                else QUIET
                if said is False
                else UNCLEAR_NIGHT_CONSENT
                if night_consent is not NIGHT_HELD
                else SHARED_NO_NIGHT_CONSENT
            )
        elif recipient in earlier_wf:
            append(ONCE)
        elif recipient in cooling:
            append(COOLDOWN)
        elif recipient in in_run:
            append(DUPLICATE)
        elif most is not None and counted(recipient, 0) >= most:
            append(CAP)
        else:
            in_run.add(recipient)
            in_window[recipient] = counted(recipient, 0) + 1
            append(None)
    return out
