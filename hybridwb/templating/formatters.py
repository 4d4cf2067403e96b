"""Formatters messaging needs (pure). Each takes None and empty values without failing."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

#: what each formatter needs from its input ("any" takes everything)
ACCEPTS: dict[str, tuple[str, ...]] = {
    "phone_mask": ("string", "number"),
    "won": ("number",),
    "date_ko": ("date", "datetime"),
    "date_iso": ("date", "datetime"),
    "honorific": ("string",),
    "truncate": ("string", "number", "date", "datetime", "boolean"),
}


def phone_mask(value: Any) -> str:
    """010-1234-5678 -> 010-****-5678, 0212345678 -> 02-****-5678 (Korean numbering plan,
    by `phonenumbers`); a value that is not a valid phone number is hidden entirely."""
    if value is None or str(value).strip() == "":
        return ""
    text = str(value)[:40]
    try:
        number = phonenumbers.parse(text, "KR")
    except phonenumbers.NumberParseException:
        return "***"
    if not phonenumbers.is_valid_number(number):
        return "***"
    groups = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL).split("-")
    if len(groups) < 3:  # 1588-1234: mask the first group
        return "-".join(["*" * len(groups[0]), *groups[1:]])
    return "-".join([groups[0], *("*" * len(g) for g in groups[1:-1]), groups[-1]])


#: most digits before the point `won` shows as an amount (a message holds 2,000 bytes)
WON_DIGITS = 1_000


def won(value: Any) -> str:
    """12000 -> 12,000원; text that is not a number is returned unchanged, and so is one
    that is no amount: not finite (`Infinity`, `NaN`) or of more than `WON_DIGITS` digits
    (`1e9999999` would be a ten-million-digit integer: minutes of CPU, then an error)."""
    if value is None or str(value).strip() == "":
        return ""
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        return str(value)
    if not number.is_finite() or number.adjusted() >= WON_DIGITS:
        return str(value)
    if number == number.to_integral_value():
        return f"{int(number):,}원"
    return f"{number:,.2f}원"


#: a date as text in the forms a MariaDB server reads one ('2026-03-01', '2026-3-1',
#: '2025/12/24 08:00:00', '20260301', '20260301093000'), its parts checked by `_text_date`
_DATE_TEXT = re.compile(
    r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?)?"
    r"|(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2}))?"
)


def _text_date(text: str) -> dt.datetime | None:
    """The date (and time) a text names, None when it names none: 30 February, month 13,
    hour 25, MySQL's zero date '0000-00-00' or '00000000', '', 'N' (round 57)."""
    found = _DATE_TEXT.fullmatch(text)
    if found is not None:
        parts = [int(p) for p in found.groups() if p is not None]
        try:
            return dt.datetime(*parts[:6])  # type: ignore[arg-type]
        except ValueError:
            return None
    try:
        return dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    named = _text_date(text)
    if named is not None:
        return named.date()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def zero_date_none(value: Any) -> Any:
    """None for a date field's text that names no date, else the value: MySQL's zero date
    ('0000-00-00 00:00:00': gnuboard's DATETIME NOT NULL DEFAULT for "never", which the
    driver hands over as text, round 56), and a date kept as text that is none ('00000000',
    '', '2026-02-30', '2026-03-01 25:00:00', round 57: the server's CAST reads each as no
    date, so no date condition chose them, yet the message told the customer "가입일
    00000000"). It has no value, and its message is skipped as missing, as for NULL."""
    return None if type(value) is str and _text_date(value.strip()) is None else value


def date_ko(value: Any) -> str:
    """2026-11-25 -> 2026년 11월 25일."""
    day = _as_date(value)
    if day is None:
        return "" if value is None else str(value)
    return f"{day.year}년 {day.month}월 {day.day}일"


def date_iso(value: Any) -> str:
    day = _as_date(value)
    if day is None:
        return "" if value is None else str(value)
    return day.isoformat()


def honorific(value: Any, suffix: str = "님") -> str:
    """홍길동 -> 홍길동님; an empty name becomes 고객님 rather than a bare 님."""
    name = "" if value is None else str(value).strip()
    if not name:
        return "고객" + suffix
    return name if name.endswith(suffix) else name + suffix


def truncate(value: Any, length: int = 20, end: str = "…") -> str:
    text = "" if value is None else str(value)
    if length <= 0:
        return ""
    return text if len(text) <= length else text[: max(0, length - len(end))] + end


FORMATTERS: dict[str, Callable[..., str]] = {
    "phone_mask": phone_mask,
    "won": won,
    "date_ko": date_ko,
    "date_iso": date_iso,
    "honorific": honorific,
    "truncate": truncate,
}
