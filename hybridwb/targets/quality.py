"""What a sender needs to know about a target set before sending (pure, over rows given).

Columns are found by role (phone, email, consent), never by a table's column names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hybridwb.mapping.model import TableMapping
from hybridwb.recipients import deliverable, normalize
from hybridwb.targets.consent import consent_of

if TYPE_CHECKING:
    import pandas as pd

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"


def valid_phone(value: Any) -> bool:
    """Whether a run messages this phone: the one number the run's rules read in it
    (`recipients.normalize`: a note beside it, `010-1234-5678 (집)`, is read past) is
    deliverable. The preview counts what the run excludes, by the run's own rules (round
    46: a copy of its own called the noted number invalid, which the run messages)."""
    found = normalize("sms", value)
    return found is not None and deliverable(found)


def normalized_phone(value: Any) -> str:
    """The run's one spelling of a phone (E.164), or the text when it reads no number."""
    return normalize("sms", value) or str(value)


#: what `marketing_opt_out` is when the refusals of other rows were not read
UNKNOWN_OPT_OUT = (
    "not known: an advertising run also excludes the targets whose recipient another "
    "customer refused, read from the whole audience table, which this preview may not "
    "walk (20,000 rows or more); pass allow_scan=True to count them"
)

#: what `night_hold` is when the night refusals of other rows were not read
UNKNOWN_NIGHT_HOLD = (
    "not known: an advertising run at night also holds the targets whose recipient another "
    "customer refused night consent for, read from the whole audience table, which this "
    "preview may not walk (20,000 rows or more); pass allow_scan=True to count them"
)
#: why `night_hold` is not counted (None): no night rule applies, or no run can be made
NIGHT_INFORMATIONAL = (
    "not counted: an informational message is not held at night (night consent is an "
    "advertising rule); preview with advertising=True for an advertisement"
)
NIGHT_NO_FIELD = (
    "not counted: no night-consent field is mapped, so an advertising run at night holds "
    "every target it would message until 08:00; map nightConsent to count them"
)
NIGHT_NO_RUN = "not counted: no run can message this audience (no recipient is mapped)"


def quality(
    df: pd.DataFrame,
    plan: Any,
    mapping: TableMapping,
    checked_of: int | None = None,
    shared: Sequence[bool | None] | None = (),
    night_held: Sequence[bool] | None = None,
    night_reason: str | None = None,
) -> dict[str, Any]:
    """Counts over the rows given. `shared`: for each row, whether another row of the
    audience refused marketing for its recipient (what an advertising run excludes it for,
    `workflows.refusals`), or None when the run excludes it before reading its consent (no
    recipient, or not deliverable); None: not known, so `marketing_opt_out` is None and
    `marketing_opt_out_unknown` says why, rather than a count short of the run's.
    `night_held`: for each row, whether an advertising run at night holds it for night
    consent (the run's own decision, `refusals.in_preview`), counted as `night_hold`;
    `night_reason`: why there is no such count (`night_hold` None, and the reason under
    `night_hold_unknown` when the preview's limits kept it from reading, else under
    `night_hold_not_counted`). Neither: no night count asked for."""
    n = len(df)
    out: dict[str, Any] = {"checked_rows": n}
    if checked_of is not None and checked_of > n:
        out["note"] = f"statistics over the first {n:,} of {checked_of:,} matches"
    roles = {name: f.role for name, f in mapping.fields.items()}
    if plan.recipient and plan.recipient not in roles:  # a related field: its own role
        roles[plan.recipient] = "phone" if mapping.channel == "sms" else "email"
    for col, role in roles.items():
        if role not in ("phone", "email") or col not in df.columns:
            continue
        values = df[col]
        missing = values.isna() | (values.astype(str).str.strip() == "")
        out[f"missing_{role}"] = out.get(f"missing_{role}", 0) + int(missing.sum())
        present = values[~missing].astype(str)
        if role == "phone":
            invalid = int((~present.map(valid_phone)).sum()) if len(present) else 0
        else:
            invalid = int((~present.str.match(EMAIL_PATTERN)).sum())
        out[f"invalid_{role}"] = out.get(f"invalid_{role}", 0) + invalid
    if plan.recipient and plan.recipient in df.columns:
        present = df[plan.recipient].dropna().astype(str)
        present = present[present.str.strip() != ""]
        if roles.get(plan.recipient) == "phone":
            present = present.map(normalized_phone)
        counts = Counter(present)
        out["duplicate_recipients"] = sum(c - 1 for c in counts.values() if c > 1)
        out["missing_recipient"] = int(n - len(present))
    if plan.consent and plan.consent in df.columns:
        # what the run reads as no consent: a no or an unclear value (`consent.consent_of`)
        said = map(consent_of, df[plan.consent])  # a NULL (NaN in pandas) is a no too
        if shared is None:
            out["marketing_opt_out"] = None
            out["marketing_opt_out_unknown"] = UNKNOWN_OPT_OUT
        else:
            # another row's refusal of its recipient, or its own no or unclear value when
            # the run reads it: not for a row it excludes first for its recipient (none, or
            # not deliverable: round 46 counted 9 where the run excluded 6 for consent)
            others = iter(shared)
            out["marketing_opt_out"] = sum(
                1 for s in said if (o := next(others, False)) or (o is False and s is not True)
            )
    if night_held is not None:
        out["night_hold"] = sum(night_held)
    elif night_reason is not None:
        out["night_hold"] = None
        unknown = night_reason == UNKNOWN_NIGHT_HOLD
        out["night_hold_unknown" if unknown else "night_hold_not_counted"] = night_reason
    out["nulls"] = {str(c): int(v) for c, v in df.isna().sum().items() if v}
    return out
