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

A date or time column (YEAR, DATE, DATETIME, TIMESTAMP, TIME) is never read as a flag: a
YEAR 2021 comes back as the int 2021 and would read as yes, so a "year of signup" mapped
as consent would make everyone consent. `temporal_type` names such a column's type and the
target plan refuses the mapping (`targets.service`).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

#: how a text consent flag says yes / no, trimmed and lower-cased
YES_SPELLINGS = ("1", "y", "yes", "true", "t", "동의")
NO_SPELLINGS = ("0", "n", "no", "false", "f", "", "미동의")
#: column types that hold a date or a time, never a yes or a no
TEMPORAL_TYPES = ("YEAR", "DATE", "DATETIME", "TIMESTAMP", "TIME")
_TYPE_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
#: a column type's family by its first word, as information_schema spells it ('TINYINT(1)')
#: and as a read's cursor description does ('TINY', 'VAR_STRING'; a TEXT is a 'BLOB' there,
#: an ENUM a 'STRING'): within one family a consent flag's values read alike
_FAMILIES = {
    "number": "TINYINT SMALLINT MEDIUMINT INT INTEGER BIGINT BOOL BOOLEAN TINY SHORT INT24 LONG "
    "LONGLONG",
    "decimal": "DECIMAL NUMERIC DEC FIXED NEWDECIMAL",
    "floating-point": "FLOAT DOUBLE REAL",
    "BIT": "BIT",
    "text": "CHAR VARCHAR BINARY VARBINARY TINYTEXT TEXT MEDIUMTEXT LONGTEXT TINYBLOB BLOB "
    "MEDIUMBLOB LONGBLOB ENUM SET JSON STRING VAR_STRING TINY_BLOB MEDIUM_BLOB LONG_BLOB",
    "date or time": " ".join(TEMPORAL_TYPES) + " NEWDATE",
}
_FAMILY_OF = {word: family for family, words in _FAMILIES.items() for word in words.split()}


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


def temporal_type(column_type: str) -> str | None:
    """The type word of a date or time column as the server states it ('YEAR' for
    'YEAR(4)', 'DATETIME' for 'datetime(6)'), or None for any other column type."""
    found = _TYPE_WORD.match(column_type)
    word = found[1].upper() if found else ""
    return word if word in TEMPORAL_TYPES else None


def type_family(column_type: str) -> str | None:
    """The family of a column type as the server states it in either spelling (`_FAMILIES`:
    'number' for 'TINYINT(1)' and for 'TINY'), or None when it is not one a flag is kept in
    or the server states none (SQLite's reads)."""
    found = _TYPE_WORD.match(column_type)
    return _FAMILY_OF.get(found[1].upper()) if found else None
