"""Recipients as one spelling each (pure): E.164 phones, lower-case mailboxes.

The history a send policy reads (once per recipient, cooldown, frequency cap) and the
refusals an advertising run reads (`refusals`) match recipients by this one spelling, so a
phone written `010-1234-5678`, `01012345678` or `+82 10 1234 5678` is one recipient.
Korean numbers are read with `phonenumbers`' metadata; the spelling nearly every source
uses takes one regex call and one check (`normalizer`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from email.utils import getaddresses
from functools import cache, lru_cache
from typing import Any

import phonenumbers

from hybridwb.platform.campaigns import fits_index

_NOT_DIGIT = re.compile(r"\D")
_IDD = re.compile(r"^\s*00")  # "0082-10-…": 00 + country code, as dialled abroad
REGION = "KR"  # numbers written without a country code are Korean


#: a Korean mobile number in national format, digits with at most single separators
_NATIONAL_MOBILE = re.compile(r"01[0-9][-. ]?[0-9]{3,4}[-. ]?[0-9]{4}")


@cache
def _kr_mobile() -> tuple[re.Pattern[str], frozenset[int], re.Pattern[str], frozenset[int]]:
    """KR's general and mobile number patterns, read from phonenumbers' own metadata, so
    the fast path below follows the installed library's rules, not a copy of them."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(REGION)
    assert meta is not None and meta.general_desc is not None and meta.mobile is not None
    general, mobile = meta.general_desc, meta.mobile
    return (
        re.compile(str(general.national_number_pattern)),
        frozenset(general.possible_length or ()),
        re.compile(str(mobile.national_number_pattern)),
        frozenset(mobile.possible_length or ()),
    )


def _combined(
    general: re.Pattern[str],
    general_lengths: frozenset[int],
    mobile: re.Pattern[str],
    mobile_lengths: frozenset[int],
) -> Callable[[str], bool]:
    """Whether digits match the general and the mobile pattern, each with its possible
    lengths (an empty set allows any), as one check: the general pattern as a lookahead
    over the whole text before the mobile one (a full match of this is a full match of
    both) and the lengths both allow."""
    both = _both(general, mobile).fullmatch
    lengths = _both_lengths(general_lengths, mobile_lengths)
    if lengths is None:
        return lambda digits: both(digits) is not None
    return lambda digits: len(digits) in lengths and both(digits) is not None


def _both(general: re.Pattern[str], mobile: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(rf"(?=(?:{general.pattern})\Z)(?:{mobile.pattern})")


def _both_lengths(general: frozenset[int], mobile: frozenset[int]) -> frozenset[int] | None:
    """The lengths both patterns allow; None: any."""
    if general and mobile:
        return general & mobile
    return general or mobile or None


@cache
def _kr_mobile_check() -> Callable[[str], bool]:
    return _combined(*_kr_mobile())


@cache
def _national_mobile_check() -> Callable[[str], object]:
    """`_kr_mobile_check` for what `national_mobile` gives (9 or 10 digits), true or false:
    the combined pattern's own full match when the metadata allows both lengths (no length
    check then, and no call of ours per number), else `_kr_mobile_check`."""
    general, general_lengths, mobile, mobile_lengths = _kr_mobile()
    lengths = _both_lengths(general_lengths, mobile_lengths)
    if lengths is None or {9, 10} <= lengths:
        return _both(general, mobile).fullmatch
    return _kr_mobile_check()


def _kr_mobile_nsn(digits: str) -> bool:
    """Whether `digits` (a national significant number) is a valid KR mobile number by
    phonenumbers' metadata: the general pattern and the mobile pattern, each with its
    possible lengths (what `is_valid_number` checks for such a number)."""
    return _kr_mobile_check()(digits)


def _national_mobile_nsn(text: str) -> str | None:
    """The national significant number of `text` when it is written as `_NATIONAL_MOBILE`
    (`010-1234-5678`, `01012345678`): the digits after the trunk 0; else None.

    The two spellings nearly every source uses, 10-11 ASCII digits and `0XX-XXXX-XXXX`,
    are recognised by their shape (each is a full match of the pattern); any other
    text goes through the pattern."""
    n = len(text)
    if (n == 11 or n == 10) and text.isascii() and text.isdigit():
        return text[1:] if text[1] == "1" and text[0] == "0" else None
    if (
        n == 13
        and text[3] == "-"
        and text[8] == "-"
        and text.isascii()
        and text[:2] == "01"
        and (nsn := text[1:3] + text[4:8] + text[9:]).isdigit()
    ):
        return nsn
    if _NATIONAL_MOBILE.fullmatch(text):
        return _NOT_DIGIT.sub("", text)[1:]
    return None


#: `_NATIONAL_MOBILE` with the whitespace `str.strip` takes off around it (`\s` is the same
#: test of a character as `strip`'s), its three runs of digits as groups
_PADDED_NATIONAL_MOBILE = re.compile(r"\s*0(1[0-9])[-. ]?([0-9]{3,4})[-. ]?([0-9]{4})\s*")


def national_mobile() -> Callable[[str], str | None]:
    """`_national_mobile_nsn(text.strip())` in one regex call, for the many phones of a run:
    the national significant number of a text written as `_NATIONAL_MOBILE`, whitespace
    around it allowed; else None."""
    shape = _PADDED_NATIONAL_MOBILE.fullmatch

    def nsn(text: str) -> str | None:
        found = shape(text)
        return None if found is None else "".join(found.groups())

    return nsn


@lru_cache(maxsize=16_384)
def _parsed_national_mobile(text: str) -> str | None:
    """`_parsed_phone` of a stripped text that `national_mobile` reads but the KR metadata
    does not call valid (`010-5979-1234`), remembered: parsing one takes some 100 µs, and a
    run reads each such number twice (in the freeze, then in its batch). Such a text is
    13 characters at most, so the cache holds a few hundred kB at most."""
    return _parsed_phone(text)


def _phone(text: str) -> str | None:
    """One phone in E.164 (`+821055550001`) however it is spelled; None when the text
    holds no number, or more than one, that phonenumbers can read.

    Fast path (a run normalizes every target): `010-1234-5678` and `01012345678` are what
    phonenumbers reads as country 82 with the trunk 0 stripped (no carrier code after a
    `01`), valid when the rest matches KR's mobile metadata; anything else is parsed."""
    nsn = _national_mobile_nsn(text)
    if nsn is not None and _kr_mobile_nsn(nsn):
        return "+82" + nsn
    return _parsed_phone(text)


def _parsed_phone(text: str) -> str | None:
    """`_phone` by phonenumbers alone (what the fast path must agree with).

    Text with letters in it (`010-1234-5678 (집)`, `… 내선 12`) is searched for numbers,
    never parsed whole: phonenumbers would read the letters as keypad digits. One valid
    number found is the recipient; none or several (`010-…, 010-…`) is no recipient,
    because guessing would message someone else or a number nobody gave."""
    spellings = [text]
    if _IDD.match(text):
        # `0044 …` is dialled from abroad: its country code is read first, so a number
        # that is only possible (`0044 7700 900000`) is not kept in its Korean reading
        # (`+8200…`, which no Korean number starts with)
        spellings.insert(0, "+" + text.lstrip()[2:])
    e164 = phonenumbers.PhoneNumberFormat.E164
    possible = None
    if not any(ch.isalpha() for ch in text):
        for spelling in spellings:
            try:
                number = phonenumbers.parse(spelling, REGION)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return phonenumbers.format_number(number, e164)
            if possible is None and phonenumbers.is_possible_number(number):
                possible = phonenumbers.format_number(number, e164)
    found = {
        phonenumbers.format_number(match.number, e164)
        for spelling in spellings
        for match in phonenumbers.PhoneNumberMatcher(
            spelling, REGION, leniency=phonenumbers.Leniency.VALID
        )
    }
    if found:
        return found.pop() if len(found) == 1 else None
    return possible


def deliverable(recipient: str) -> bool:
    """Whether a canonical recipient (what `normalize` returns) can be messaged: a mailbox,
    or a phone number phonenumbers calls *valid*. A number that is only *possible*
    (`010-1234` read as `+82101234`, the fictional `+44 7700 900000`) keeps its E.164
    spelling, so history still matches it, but no message is written to it: it is a
    truncated or mistyped number, nobody's, and the run counts it as such. (A number in a
    range newer than the installed phonenumbers is excluded too, and counted: upgrading
    phonenumbers brings it in.)"""
    if "@" in recipient or not recipient.startswith("+"):
        return True  # a mailbox (`+news@…` too): `normalize` spells every phone in E.164
    if recipient.startswith("+82") and _kr_mobile_nsn(recipient[3:]):
        return True  # the common case, without parsing
    return _valid_e164(recipient)


@lru_cache(maxsize=4096)
def _valid_e164(recipient: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(recipient, None))
    except phonenumbers.NumberParseException:
        return False


def _email(text: str) -> str | None:
    """The one mailbox in `text` (`김철수 <Kim@Example.com>` is `kim@example.com`), lower
    case; None when it names no mailbox or several."""
    mailboxes = [address for _, address in getaddresses([text]) if address]
    if len(mailboxes) != 1 or "@" not in mailboxes[0]:
        return None
    return mailboxes[0].strip().lower()


def _number_text(value: float | Decimal) -> str | None:
    """A number column's value as the digits it holds (`1012345678.0` is `1012345678`, as
    a DOUBLE column imported from a spreadsheet returns it); a fraction is no phone."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    if value != int(value):
        return None
    return str(int(value))


def normalize(channel: str, recipient: Any) -> str | None:
    """One spelling per address, so history matches: E.164 phone, lower-case mailbox.

    Idempotent, so a stored (already canonical) recipient normalizes to itself."""
    text: str | None
    if recipient is None:
        return None
    if type(recipient) is str:  # nearly always: no conversion
        text = recipient.strip()
    elif isinstance(recipient, float | Decimal):
        text = _number_text(recipient)
        if text is None:
            return None
    else:
        text = str(recipient).strip()
    if not text or not fits_index(text):  # no one's address (`LONGEST_INDEXED`)
        return None
    if channel == "sms":
        return _phone(text)
    if channel == "email":
        return _email(text)
    return text


def normalizer(channel: str) -> Callable[[Any], str | None]:
    """`normalize` for one channel, for the many recipients of a run: a phone spelled as
    nearly every source spells it (`national_mobile`, valid by the KR metadata) is read
    in one regex call and one check; anything else goes through `normalize`."""
    if channel != "sms":
        return lambda recipient: normalize(channel, recipient)
    # `national_mobile` inline: one regex call, no call of its own per recipient
    shape, valid = _PADDED_NATIONAL_MOBILE.fullmatch, _national_mobile_check()
    parsed = _parsed_national_mobile

    def phone(recipient: Any) -> str | None:
        if type(recipient) is str and (found := shape(recipient)) is not None:
            nsn = "".join(found.groups())
            # what `normalize` gives such a text: its E.164 when valid, else as parsed
            return "+82" + nsn if valid(nsn) else parsed(recipient.strip())
        return normalize("sms", recipient)

    return phone
