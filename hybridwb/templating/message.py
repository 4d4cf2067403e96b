"""Message sizes (pure): characters, EUC-KR bytes, and the message type that fits."""

from __future__ import annotations

import codecs
import functools
from typing import NamedTuple

#: default EUC-KR byte limit per message type (configurable: Settings.sms_max_bytes / lms_max_bytes)
LIMITS = {"SMS": 90, "LMS": 2000}
CHAR_LIMITS = {"alimtalk": 1000}
_JAMO_FILLER = b"\xa4\xd4"
#: `str.encode("euc-kr")` without the codec look-up by name each call (a run sizes every
#: message): the same codec, strict errors
_encode = codecs.getencoder("euc-kr")


class Size(NamedTuple):
    """A message's size (a named tuple: a run sizes every message it writes)."""

    chars: int
    bytes: int
    fits: str  # SMS | LMS | too long
    unencodable: list[str]


#: a `Size` from a tuple of its four fields (what `Size(...)` builds, less a Python frame)
_size = functools.partial(tuple.__new__, Size)


def fits(n: int, limits: dict[str, int] | None = None) -> str:
    """The type a message of `n` EUC-KR bytes fits by `limits` (the user's Settings, see
    `Settings.message_limits`; default `LIMITS`): SMS, LMS or "too long"."""
    limits = LIMITS if limits is None else limits
    sms, lms = limits.get("SMS", LIMITS["SMS"]), limits.get("LMS", LIMITS["LMS"])
    return "SMS" if n <= sms else "LMS" if n <= lms else "too long"


def euc_kr_size(text: str, limits: dict[str, int] | None = None) -> Size:
    """Bytes in EUC-KR as Python encodes them, and the type they fit by `limits` (`fits`).
    Characters outside KS X 1001 are reported: Python spells rare syllables (똠) as 8-byte
    jamo sequences many phones show badly, and cannot encode others (emoji) at all, which
    are counted as 2 bytes."""
    try:  # fast path, one encode: every character is ASCII (1 byte) or KS X 1001 (2 bytes)
        encoded: bytes | None = _encode(text)[0]
    except UnicodeEncodeError:
        encoded = None
    # Python spells a syllable outside KS X 1001 as the jamo filler A4 D4 and three jamo
    # (8 bytes); without those two bytes in a row, no character took more than 2 bytes
    # (`find`, not `in`: bytes' `in` tries the needle as an int first, three times slower)
    if encoded is not None and encoded.find(_JAMO_FILLER) < 0:
        return _size((len(text), len(encoded), fits(len(encoded), limits), []))
    total = 0
    bad: list[str] = []
    for ch in text:
        try:
            size = len(ch.encode("euc-kr"))
            outside = size > 2
        except UnicodeEncodeError:
            size, outside = 2, True
        total += size
        if outside and ch not in bad:
            bad.append(ch)
    return Size(len(text), total, fits(total, limits), bad)


def type_warnings(size: Size, message_type: str, limits: dict[str, int] | None = None) -> list[str]:
    limits = LIMITS if limits is None else limits
    warnings: list[str] = []
    if message_type in LIMITS and size.bytes > limits.get(message_type, LIMITS[message_type]):
        warnings.append(
            f"{size.bytes} bytes is over the {message_type} limit of "
            f"{limits.get(message_type, LIMITS[message_type])}; "
            f"send it as {size.fits if size.fits != 'too long' else 'a shorter message'}."
        )
    if message_type in CHAR_LIMITS and size.chars > CHAR_LIMITS[message_type]:
        warnings.append(
            f"{size.chars} characters is over the {message_type} limit of {CHAR_LIMITS[message_type]}."
        )
    if size.unencodable and message_type in LIMITS:
        warnings.append(f"Not in EUC-KR (may break on phones): {''.join(size.unencodable)}")
    return warnings


def max_chars(message_type: str, limits: dict[str, int] | None = None) -> int:
    """A character bound for rendering a message of this type (EUC-KR needs at least one
    byte per character, so a message over this many characters is over its byte limit)."""
    limits = LIMITS if limits is None else limits
    if message_type in CHAR_LIMITS:
        return CHAR_LIMITS[message_type]
    biggest = max(limits.values(), default=LIMITS["LMS"])
    # an SMS that is too long may still go as an LMS: bound by the largest byte limit
    return limits.get(message_type, biggest) if message_type != "SMS" else biggest


def over_limit(size: Size, message_type: str, limits: dict[str, int] | None = None) -> str | None:
    """Why a rendered message cannot be sent as `message_type`, or None when it fits.

    An SMS over its limit is only a warning (it can go as an LMS); past the largest byte
    limit, or past a character limit, the message is refused."""
    if message_type in CHAR_LIMITS and size.chars > CHAR_LIMITS[message_type]:
        return f"too long: {size.chars:,} characters, over the {message_type} limit of {CHAR_LIMITS[message_type]:,}"
    limit = byte_limit(message_type, limits)
    if size.bytes > limit:
        kind = "LMS" if message_type == "SMS" else message_type
        return f"too long: {size.bytes:,} bytes, over the {kind} limit of {limit:,} (EUC-KR)"
    return None


def byte_limit(message_type: str, limits: dict[str, int] | None = None) -> int:
    """The most EUC-KR bytes a message of this type may have before it is refused (an
    SMS may grow into an LMS: the largest limit)."""
    limits = LIMITS if limits is None else limits
    biggest = max(limits.values(), default=LIMITS["LMS"])
    return biggest if message_type == "SMS" else limits.get(message_type, biggest)
