"""Message sizes (pure): characters, EUC-KR bytes, and the message type that fits."""

from __future__ import annotations

from dataclasses import dataclass, field

LIMITS = {"SMS": 90, "LMS": 2000}  # bytes in EUC-KR
CHAR_LIMITS = {"alimtalk": 1000}


@dataclass(frozen=True)
class Size:
    chars: int
    bytes: int
    fits: str  # SMS | LMS | too long
    unencodable: list[str] = field(default_factory=list)


def euc_kr_size(text: str) -> Size:
    """Bytes in EUC-KR as Python encodes them. Characters outside KS X 1001 are reported:
    Python spells rare syllables (똠) as 8-byte jamo sequences many phones show badly, and
    cannot encode others (emoji) at all, which are counted as 2 bytes."""
    try:  # fast path: every character is ASCII (1 byte) or KS X 1001 (2 bytes)
        encoded = len(text.encode("euc-kr"))
        ascii_chars = len(text.encode("ascii", "ignore"))
        if encoded == ascii_chars + 2 * (len(text) - ascii_chars):
            fits = (
                "SMS"
                if encoded <= LIMITS["SMS"]
                else "LMS"
                if encoded <= LIMITS["LMS"]
                else "too long"
            )
            return Size(len(text), encoded, fits, [])
    except UnicodeEncodeError:
        pass
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
    fits = "SMS" if total <= LIMITS["SMS"] else "LMS" if total <= LIMITS["LMS"] else "too long"
    return Size(len(text), total, fits, bad)


def type_warnings(size: Size, message_type: str) -> list[str]:
    warnings: list[str] = []
    if message_type in LIMITS and size.bytes > LIMITS[message_type]:
        warnings.append(
            f"{size.bytes} bytes is over the {message_type} limit of {LIMITS[message_type]}; "
            f"send it as {size.fits if size.fits != 'too long' else 'a shorter message'}."
        )
    if message_type in CHAR_LIMITS and size.chars > CHAR_LIMITS[message_type]:
        warnings.append(
            f"{size.chars} characters is over the {message_type} limit of {CHAR_LIMITS[message_type]}."
        )
    if size.unencodable and message_type in LIMITS:
        warnings.append(f"Not in EUC-KR (may break on phones): {''.join(size.unencodable)}")
    return warnings
