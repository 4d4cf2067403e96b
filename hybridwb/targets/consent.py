"""How a consent flag's value reads (pure): yes, no, or unclear.

One reading for every place that decides on consent: the run (`advertising.truthy`,
`policies.decide`), the target definition's consent filter (`sql.truthy`, which keeps
what is not a clear no so the run can count the unclear ones) and a preview's quality.

| source value (as PyMySQL gives it)            | reads as |
|-----------------------------------------------|----------|
| TRUE, any non-zero integer (TINYINT(1)/BOOLEAN 1, 2, -1, INT 7; MySQL's `WHERE flag`) | yes |
| a DECIMAL or DOUBLE equal to a non-zero integer (`Decimal('1.0')`, `1.0`)             | yes |
| BIT / binary bytes all 0 or 1, one of them 1 (`b'\\x01'`)                             | yes |
| text (or binary text) in `YES_SPELLINGS`, trimmed, any case ('Y', 'yes', 'true', '1', '동의') | yes |
| FALSE, NULL, zero of any number type, `b'\\x00'`                                      | no |
| text in `NO_SPELLINGS` ('N', 'no', 'false', '0', '', '미동의')                         | no |
| anything else: a fraction (0.5), NaN, other text ('maybe', '2', '1.0'), other bytes   | unclear |

An unclear value is no consent; a run excludes it with its own reason
(`policies.UNCLEAR_CONSENT`), counted with the consent exclusions, so it is seen.
"""

from __future__ import annotations

import math
from decimal import Decimal

#: how a text consent flag says yes / no, trimmed and lower-cased
YES_SPELLINGS = ("1", "y", "yes", "true", "t", "동의")
NO_SPELLINGS = ("0", "n", "no", "false", "f", "", "미동의")


def consent_of(value: object) -> bool | None:
    """True (yes), False (no) or None (unclear) for a consent flag's value (the module's
    table)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int):
        return value != 0
    if isinstance(value, float | Decimal):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
            return None
        if value == 0:
            return False
        # whole without `int(value)`: a Decimal of a huge exponent would be a huge int
        whole = (
            value == value.to_integral_value() if isinstance(value, Decimal) else value.is_integer()
        )
        return True if whole else None
    if isinstance(value, bytes | bytearray):
        if all(b in (0, 1) for b in value):  # BIT(n): b'\x01', b'\x00\x01'
            return any(value)
        try:  # a flag kept in a BINARY / VARBINARY
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text in YES_SPELLINGS else False if text in NO_SPELLINGS else None
    return None
