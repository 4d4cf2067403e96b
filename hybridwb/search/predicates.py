"""Index-friendly search predicates by field role, as people search (pure).

A naive `LIKE '%term%' OR ...` scans the whole table on every keystroke. Here each
*searchable* field (never a foreign-key `reference`, never one only marked filterable) gets
branches its index can serve, each a conjunction of comparisons on field paths (a path may
go through to-one relations: `address.phone`):

- id: equality on the key; phone: every stored form of the number `phonenumbers` parses
  (`010-1234-5678`, `01012345678`, `+821012345678`, `821012345678`, `+82 10-1234-5678`,
  landlines `02-123-4567`); email: equality (or a prefix from three characters);
- names: the full name over first/last columns in both orders, with or without a space
  (`백지훈`, `백 지훈`, `JANE DOE`, `DOE JANE`); a short term (< MIN_PREFIX characters), or
  a Korean given name or surname, on a large table is matched by equality only where an
  index returns rows in key order, so the first page is read from the index without a
  filesort; otherwise the plan says to type more. Longer prefixes on a large table are
  expanded by the service into the values they cover (see `search.sql.order_plan`).

The service turns branches into SQLAlchemy Core (`search.sql`); nothing here writes SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from hybridwb.errors import ValidationError
from hybridwb.validation import short

LIKE_ESCAPE = "!"
MAX_TERM = 200
MIN_PREFIX = 3  # shorter prefixes on a large table are answered by equality or refused
REGION = "KR"


@dataclass(frozen=True)
class Cmp:
    path: str  # a field path from the searched table
    op: str  # eq | in | like
    value: Any


@dataclass(frozen=True)
class SearchField:
    """A searchable field path and what the live schema says about it."""

    path: str
    role: str | None
    type: str
    indexed: bool = False  # leads an index: equality/range is cheap
    key_ordered: bool = False  # a one-column index: equality returns rows in key order
    fulltext: bool = False
    charset: str | None = None  # the column's character set (`holds`)


#: character sets whose columns hold only some characters, and a test of a character each
#: (generous: a superset of what the server stores; a set not named here holds anything)
_HOLDS = {
    "ascii": lambda ch: ord(ch) < 0x80,
    # MariaDB's latin1 is cp1252, its five unused bytes kept as U+0081, U+008D, ...
    "latin1": lambda ch: ord(ch) < 0x100 or _encodes(ch, "cp1252"),
    "utf8mb3": lambda ch: ord(ch) <= 0xFFFF,
    "utf8": lambda ch: ord(ch) <= 0xFFFF,
    "ucs2": lambda ch: ord(ch) <= 0xFFFF,
    "euckr": lambda ch: _encodes(ch, "cp949"),  # cp949 holds all of EUC-KR
}


def _encodes(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def holds(charset: str | None, text: str) -> bool:
    """Whether a column of `charset` can hold `text`: a Korean name in a latin1 column, an
    emoji in a utf8mb3 one cannot, so no row equals or starts with it (and MariaDB refuses
    to compare them: "Illegal mix of collations"). A set not known here: True."""
    test = _HOLDS.get((charset or "").lower())
    return test is None or all(test(ch) for ch in text)


def _held(p: Predicate, charsets: dict[str, str | None]) -> Predicate | None:
    """`p` without the text values its columns cannot hold (`holds`), or None when it can
    match no row at all: such a branch is left out rather than sent (round 53: a Korean
    term on a latin1 table was a QueryError about collations)."""
    cmps: list[Cmp] = []
    for c in p.cmps:
        charset = charsets.get(c.path)
        if c.op == "in":
            kept = [v for v in c.value if not isinstance(v, str) or holds(charset, v)]
            if not kept:
                return None
            c = Cmp(c.path, c.op, kept)
        elif c.op in ("eq", "like") and isinstance(c.value, str) and not holds(charset, c.value):
            return None
        cmps.append(c)
    return Predicate(p.field, p.kind, tuple(cmps), p.indexed)


@dataclass(frozen=True)
class Predicate:
    field: str  # what is shown in meta (`address.phone`, `first_name+last_name`)
    kind: str  # id | phone | email | prefix | name | fulltext | date | number | equal
    cmps: tuple[Cmp, ...]
    indexed: bool


@dataclass
class Plan:
    predicates: list[Predicate] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # fields whose predicate would scan
    hint: str | None = None  # e.g. type at least N characters


def consent(allow_scan: object) -> bool:
    """`allow_scan` must be True or False: consent to scan a large table is never inferred
    from a truthy value (`"False"`, `"no"`, 1)."""
    if not isinstance(allow_scan, bool):
        raise ValidationError(
            f"allow_scan must be True or False, not {short(allow_scan)}; nothing was read."
        )
    return allow_scan


def escape_like(term: str) -> str:
    """Make %, _ and the escape character literal inside a LIKE pattern."""
    return (
        term.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


#: a whole Korean mobile number, as digits: 0 or 82, then 1x, a 3- or 4-digit and a
#: 4-digit group (`01012345678`, `821012345678`, `0111234567`)
_MOBILE = re.compile(r"(?:0|82)(1[016789])(\d{3,4})(\d{4})")
#: the patterns a search term is read with, compiled once (every search reads the term)
_PHONE_CHARS = re.compile(r"[\d\s\-+().]+")
_PREFIX_CHARS = re.compile(r"[\d\s\-]+")
_NOT_DIGIT = re.compile(r"\D")
_EMAIL_PREFIX = re.compile(r"[\w.+-]{2,}", re.ASCII)
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def phone_forms(term: str) -> list[str] | None:
    """Every stored form of a whole phone number, or None if `term` is not one."""
    if not _PHONE_CHARS.fullmatch(term) or sum(map(str.isdigit, term)) < 8:
        return None
    digits = _NOT_DIGIT.sub("", term)
    if not (digits.startswith(("0", "82")) or term.lstrip().startswith("+")):
        return None  # Korean numbers start with 0 at home and +82 / 82 abroad
    mobile = _MOBILE.fullmatch(digits)
    plus = "+" in term
    if mobile and (not plus or (digits[0] == "8" and term.lstrip().startswith("+82"))):
        # the common case, written out: the forms phonenumbers gives a Korean mobile
        # number (tests/test_search_phone_forms.py compares the two on many numbers)
        code, middle, last = mobile.groups()
        national = f"0{code}-{middle}-{last}"
        e164 = f"+82{code}{middle}{last}"
        return [national, national.replace("-", ""), e164, e164[1:], f"+82 {code}-{middle}-{last}"]
    candidates = [term]
    if digits.startswith("82") and not term.lstrip().startswith("0"):
        candidates.append("+" + digits)
    forms: list[str] = []
    for text in candidates:
        try:
            number = phonenumbers.parse(text, REGION)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_possible_number(number):
            continue
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        forms += [national, _NOT_DIGIT.sub("", national), e164, e164[1:], intl]
        break
    return list(dict.fromkeys(forms)) or None


def phone_prefix(term: str) -> list[str] | None:
    """Stored-form prefixes of a partial mobile number (`0101234` -> 010-1234, 0101234)."""
    if not _PREFIX_CHARS.fullmatch(term):
        return None
    digits = _NOT_DIGIT.sub("", term)
    if not (3 <= len(digits) < 11 and digits.startswith("01")):
        return None
    dashed = digits if len(digits) <= 3 else f"{digits[:3]}-{digits[3:7]}"
    if len(digits) > 7:
        dashed += "-" + digits[7:]
    return list(dict.fromkeys([dashed, digits]))


def _hangul(text: str) -> bool:
    return all("\uac00" <= ch <= "\ud7a3" for ch in text)


def plan(
    fields: list[SearchField],
    term: str,
    *,
    large: bool = True,
    allow_scan: bool = False,
) -> Plan:
    """The branches to OR together for `term` (each served by an index where possible)."""
    term = term.strip()[:MAX_TERM] if isinstance(term, str) else ""
    out = Plan()
    if not term:
        return out
    short = len(term) < MIN_PREFIX

    def add(label: str, kind: str, cmps: list[Cmp], cheap: bool) -> None:
        if not cheap and large and not allow_scan:
            out.refused.append(label)
            return
        out.predicates.append(Predicate(label, kind, tuple(cmps), cheap))

    def prefix_ok(f: SearchField) -> bool:
        if short and large:
            out.hint = f"type at least {MIN_PREFIX} characters to search names by prefix"
            return False
        return True

    by_role: dict[str, list[SearchField]] = {}
    for f in fields:
        by_role.setdefault(f.role or "", []).append(f)
    firsts, lasts = by_role.get("first_name", []), by_role.get("last_name", [])
    alpha = any(map(str.isalpha, term))
    nameish = alpha and "@" not in term

    for f in fields:
        role = f.role
        if role == "reference":
            continue  # a foreign key is never the searched row's id
        if role == "id" and f.type == "number":
            if term.isdigit() and len(term) <= 18:
                add(f.path, "id", [Cmp(f.path, "eq", int(term))], f.indexed)
        elif role == "id" and f.type == "string":
            # a text key is a login id ('kim01', gnuboard's `mb_id`): matched whole; before
            # (round 56) it was searched by no branch, and support found no one by it
            if " " not in term:
                add(f.path, "id", [Cmp(f.path, "eq", term)], f.indexed)
        elif role == "phone":
            forms = phone_forms(term)
            if forms:
                add(f.path, "phone", [Cmp(f.path, "in", forms)], f.indexed)
            elif (prefixes := phone_prefix(term)) is not None and not (short and large):
                for p in prefixes:
                    add(f.path, "phone", [Cmp(f.path, "like", escape_like(p) + "%")], f.indexed)
        elif role == "email":
            if "@" in term:
                add(f.path, "email", [Cmp(f.path, "eq", term)], f.indexed)
            elif alpha and _EMAIL_PREFIX.fullmatch(term) and prefix_ok(f):
                add(f.path, "email", [Cmp(f.path, "like", escape_like(term) + "%")], f.indexed)
        elif role in ("first_name", "last_name"):
            if not nameish or " " in term:
                continue
            if short and large:
                if f.key_ordered:
                    add(f.path, "name", [Cmp(f.path, "eq", term)], True)
                else:
                    out.hint = f"type at least {MIN_PREFIX} characters to search names by prefix"
            elif large and f.key_ordered and _hangul(term):
                # a Korean given name or surname is typed whole: on a large table it is
                # matched whole, read from its own index in key order (a prefix would
                # first need the names it covers read: one more statement)
                add(f.path, "name", [Cmp(f.path, "eq", term)], True)
            else:
                add(f.path, "prefix", [Cmp(f.path, "like", escape_like(term) + "%")], f.indexed)
        elif role in ("name", "text"):
            if not nameish:
                continue
            if f.fulltext and len(term) >= 2:
                add(f.path, "fulltext", [Cmp(f.path, "match", term)], True)
            elif prefix_ok(f):
                add(f.path, "prefix", [Cmp(f.path, "like", escape_like(term) + "%")], f.indexed)
        elif role in ("status", "other", None, "") and f.type == "string" and alpha:
            add(f.path, "equal", [Cmp(f.path, "eq", term)], f.indexed)
        elif f.type in ("date", "datetime"):
            try:
                day = dt.date.fromisoformat(term)
            except ValueError:
                continue
            cmps = [Cmp(f.path, "gte", day), Cmp(f.path, "lt", day + dt.timedelta(days=1))]
            add(f.path, "date", cmps, f.indexed)
        elif f.type == "number" and role not in ("id",) and _NUMBER.fullmatch(term):
            value = float(term) if "." in term else int(term)
            add(f.path, "number", [Cmp(f.path, "eq", value)], f.indexed)

    # a mobile number split across three searchable text columns (`mobile1` '010',
    # `mobile2`, `mobile3`, as Korean shops keep it): each part equal, the composite index
    # `(mobile1, mobile2, mobile3)` serves it; before (round 56) no branch found such a member
    whole = _MOBILE.fullmatch(_NOT_DIGIT.sub("", term)) if _PHONE_CHARS.fullmatch(term) else None
    if whole is not None:
        values = ("0" + whole[1], whole[2], whole[3])
        for group in split_phones(fields):
            cmps = [Cmp(f.path, "eq", v) for f, v in zip(group, values, strict=True)]
            add("+".join(f.path for f in group), "phone", cmps, group[0].indexed)

    # the full name over first/last columns: both orders, with or without a space
    if firsts and lasts and nameish:
        first, last = firsts[0], lasts[0]
        words = term.split()
        splits: list[tuple[str, str]] = []
        if len(words) == 2:
            splits = [(words[0], words[1]), (words[1], words[0])]
        elif len(words) == 1 and _hangul(term) and len(term) >= 2:
            # a one-character surname; a two-character one (남궁, 선우) only with 4+ characters
            splits = [(term[:i], term[i:]) for i in (1, 2) if len(term) - i >= 2 or i == 1]
        label = f"{last.path}+{first.path}"
        for a, b in splits:
            # a Korean name is written last-first; a Latin one first-last or last-first
            for lv, fv in ((a, b), (b, a)) if len(words) == 2 else ((a, b),):
                cmps = [Cmp(last.path, "eq", lv), Cmp(first.path, "eq", fv)]
                add(label, "name", cmps, first.indexed or last.indexed)
        out.predicates = list(dict.fromkeys(out.predicates))
    charsets = {f.path: f.charset for f in fields}
    out.predicates = [h for p in out.predicates if (h := _held(p, charsets)) is not None]
    return out


#: a part of a split phone's column name: the stem, then 1, 2 or 3 (`mobile1`, `hp_2`)
_PART = re.compile(r"(.+?)_?([123])")


def split_phones(fields: list[SearchField]) -> list[tuple[SearchField, ...]]:
    """The searchable text columns of the searched table (no relation path) that hold one
    phone number split in three: a stem with 1, 2 and 3 (`mobile1`, `mobile2`, `mobile3`;
    `hp_1` ...), none of them a phone or an id of its own."""
    stems: dict[str, dict[str, SearchField]] = {}
    for f in fields:
        if "." in f.path or f.type != "string" or f.role in ("phone", "id", "email"):
            continue
        if (m := _PART.fullmatch(f.path)) is not None:
            stems.setdefault(m[1], {})[m[2]] = f
    return [(p["1"], p["2"], p["3"]) for p in stems.values() if len(p) == 3]
