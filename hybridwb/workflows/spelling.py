"""How a canonical recipient may be spelled in the send history: the spellings earlier
versions stored (national digits for phones), what a batch's history look-up probes, and
the canonical phone migration 0006 rewrites a legacy spelling to."""

from __future__ import annotations

import re

import phonenumbers

from hybridwb.workflows.policies import _NOT_DIGIT, _kr_mobile_nsn, normalize


def stored_spellings(channel: str, canonical: list[str]) -> dict[str, str]:
    """{spelling: canonical} of how these recipients may be stored in send_records: the
    canonical form, and for phones what earlier versions stored (national digits such as
    `01055550001`, `00821055550001`, `001055550001`), so old history still matches."""
    out = {c: c for c in canonical}
    if channel != "sms":
        return out
    put = out.setdefault
    for c in canonical:
        if not c.startswith("+"):
            continue
        digits = c[1:]
        put(digits, c)
        put("00" + digits, c)
        if digits.startswith("82") and _kr_mobile_nsn(digits[2:]):
            # a KR mobile number's national format is the trunk 0 and its digits
            # (`010-1234-5678`): no parse and format per recipient
            put("0" + digits[2:], c)
            put("00" + digits[2:], c)
        else:
            for spelling in sorted(_national_spellings(c)):
                put(spelling, c)
    return out


def history_spellings(channel: str, canonical: list[str], *, legacy_rows: bool) -> dict[str, str]:
    """{spelling: canonical} a batch's history look-up probes.

    Migration 0006 rewrote the legacy spellings of phones in `send_records` to the canonical
    one, so a store without digit-only recipients (`legacy_rows` False, asked per batch)
    is probed with the canonical spellings alone; one that holds some (a spelling the
    migration could not tell apart, or rows written since by something older) with every
    spelling, as before. A digit-only recipient of another channel (an id, not a phone)
    is also looked up by the spellings 0006 may have rewritten it to."""
    if channel == "sms":
        if legacy_rows:
            return stored_spellings(channel, canonical)
        return {c: c for c in canonical}
    out = {c: c for c in canonical}
    if channel not in ("sms", "email"):
        for c in canonical:
            if _DIGITS.fullmatch(c):
                for alias in _near_canonicals(c):
                    out.setdefault(alias, c)
    return out


_DIGITS = re.compile(r"[0-9]+")


def _near_canonicals(spelling: str) -> list[str]:
    """E.164 forms a stored digit string may be a legacy spelling of, by its digits alone:
    the digits with a `+`, after a `00` (international prefix), or after a trunk `0` of a
    Korean number. The only ones migration 0006 rewrites to."""
    out = ["+" + spelling]
    if spelling.startswith("00"):
        out += ["+" + spelling[2:], "+82" + spelling[2:]]
    if spelling.startswith("0"):
        out.append("+82" + spelling[1:])
    return out


def legacy_canonical(spelling: str) -> str | None:
    """The canonical phone migration 0006 rewrites a legacy spelling in `send_records` to:
    the one near form (`_near_canonicals`) that is a canonical phone whose
    `stored_spellings` include it. None (the row is left as it is, and runs go on probing
    every spelling while such a row exists) when no near form claims it, or several do.

    Earlier versions stored the digits of the number as the source wrote it (with `82`
    turned into a trunk `0`), so a legacy row is one of its near forms. A foreign number
    whose national format has the same digits (`01055550001` is also the UK's
    `01055 550001`) matched such a row before 0006 too, but no version stored a foreign
    number that way (one written with its country code kept it), so that match is not
    carried over."""
    if not _DIGITS.fullmatch(spelling):
        return None
    claims = {
        c
        for c in _near_canonicals(spelling)
        if normalize("sms", c) == c and spelling in stored_spellings("sms", [c])
    }
    return claims.pop() if len(claims) == 1 else None


def _national_spellings(canonical: str) -> set[str]:
    """The national digits of an E.164 phone (and with a second 0), by phonenumbers."""
    try:
        number = phonenumbers.parse(canonical)
    except phonenumbers.NumberParseException:  # pragma: no cover - it came from _phone
        return set()
    national = _NOT_DIGIT.sub(
        "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    )
    return {national, "0" + national}
