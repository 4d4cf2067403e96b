"""Mapping suggestions for a table (pure): types, roles, PII, display names, relations, audience.

Everything here is a plain function over `TableInfo` (the live schema) and a few sample rows,
so the rules are unit-tested without a database. The rules, in the order they apply:

- the one-column primary key is the `id`; a foreign key (or another `*_id` column) is a
  `reference`, never an `id`, so searching "5" never finds the row whose *address* is 5;
- `tinyint(1)` / BOOLEAN / BIT(1) are booleans; consent flags (`marketing_opt_in`, `sms_agree`,
  `광고수신동의`, `night_opt_in`, `야간수신동의` …) get the roles `consent` / `night_consent`;
- person names are `name`, `first_name` or `last_name`; names, phones and emails are searchable;
- foreign keys become named relations both ways (to-one `address`, to-many `payment` ordered
  by its date column);
- a people-like table (names plus a phone or email, here or one to-one hop away, and a key
  that is a primary key or unique index) is suggested as the audience, with its recipient
  (`address.phone` when the phone lives in the address) and consent paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hybridwb.mapping.discovery import TableInfo
from hybridwb.mapping.graph import relation_name
from hybridwb.mapping.model import FieldMapping, Relation, TableMapping, mappable

#: usual column names -> Korean display names
KOREAN_NAMES = {
    "customer_id": "고객ID",
    "name": "고객명",
    "customer_name": "고객명",
    "first_name": "이름",
    "last_name": "성",
    "phone": "휴대폰번호",
    "mobile": "휴대폰번호",
    "phone_number": "휴대폰번호",
    "email": "이메일",
    "grade": "등급",
    "status": "상태",
    "created_at": "생성일시",
    "updated_at": "수정일시",
    "birth_date": "생년월일",
    "city": "도시",
    "address": "주소",
    "marketing_opt_in": "마케팅 수신 동의",
    "night_opt_in": "야간 광고 수신 동의",
    "plan": "요금제",
    "started_at": "시작일",
    "ends_at": "만료일",
    "expires_at": "만료일",
    "monthly_fee": "월 요금",
    "amount": "금액",
    "method": "결제 수단",
    "paid_at": "결제일시",
    "subscription_id": "구독ID",
    "payment_id": "결제ID",
    "order_id": "주문ID",
}
PHONE = re.compile(r"^(\+?82[- ]?|0)1[016789][- ]?\d{3,4}[- ]?\d{4}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
KOREAN_NAME = re.compile(r"^[가-힣]{2,4}$")

FULL_NAMES = {"name", "full_name", "fullname", "customer_name", "member_name", "user_name"}
FIRST_NAMES = {"first_name", "firstname", "given_name", "forename", "fname", "first_nm"}
LAST_NAMES = {"last_name", "lastname", "surname", "family_name", "lname", "last_nm"}
# night-time advertising consent (checked before the general consent words)
NIGHT_CONSENT = re.compile(r"night|야간", re.IGNORECASE)
CONSENT = re.compile(
    r"opt_?in|agree|consent|accept|수신\s*동의|수신동의|광고\s*동의|마케팅\s*동의|수신\s*여부|동의",
    re.IGNORECASE,
)
CONSENT_NAMES = re.compile(
    r"(^|_)(opt_?in|agree[ds]?|agreement|consent(ed)?|accept(ed)?|allow(ed)?|receive)(_|$)"
    r"|^(sms|email|mail|push|ad|ads|marketing|promo(tion)?)_(ok|yn|flag)$"
    r"|수신|동의",
    re.IGNORECASE,
)
#: a flag that says "no" when set (opt-out, unsubscribed, 수신거부): 1 means refused, so it is
#: never marketing consent (1 = agreed), whatever consent word it also contains
OPT_OUT = re.compile(
    r"opt_?out|unsubscri|reject|refus|deny|denied|declin|block|withdr[ae]w|revok|블랙|"
    r"거부|거절|철회|해지|차단|미동의|비동의",
    re.IGNORECASE,
)
PERSON_ROLES = ("name", "first_name", "last_name")
CONTACT_ROLES = ("phone", "email")
SEARCHABLE_ROLES = ("id", "name", "first_name", "last_name", "phone", "email")
PII_ROLES = ("name", "first_name", "last_name", "phone", "email")


def field_type(sql_type: str) -> str:
    """The mapping type of a column type as the server states it (`tinyint(1)` is boolean)."""
    t = sql_type.upper().strip()
    if t.startswith(("TINYINT(1)", "BOOL", "BIT(1)")) or t == "BIT":
        return "boolean"
    if any(k in t for k in ("INT", "DECIMAL", "NUMERIC", "FLOAT", "DOUBLE", "REAL", "BIT")):
        return "number"
    if "DATETIME" in t or "TIMESTAMP" in t:
        return "datetime"
    if t.startswith("DATE"):
        return "date"
    return "string"


#: mapping types a column type may be mapped as without drift (a tinyint(1) used as a small
#: number, a date shown as a datetime, a date kept in a varchar)
COMPATIBLE = {
    "boolean": {"boolean", "number"},
    "number": {"number", "boolean"},
    "datetime": {"datetime", "date"},
    "date": {"date", "datetime"},
    "string": {"string", "date", "datetime"},
}


#: fewer characters than any phone number has ('1588-1234' is the shortest Korean one)
PHONE_MIN_CHARS = 7
_TEXT_LENGTH = re.compile(r"\s*(?:VAR)?CHAR\s*\(\s*(\d+)\s*\)", re.IGNORECASE)


def too_short_for_phone(sql_type: str) -> int | None:
    """The length of a CHAR/VARCHAR column too short to hold a phone number, else None: a
    part of a number split across columns (`mobile1` CHAR(3) '010', `mobile2`, `mobile3`,
    as Korean shops keep it), never the number itself."""
    found = _TEXT_LENGTH.match(sql_type)
    length = int(found[1]) if found else None
    return length if length is not None and length < PHONE_MIN_CHARS else None


def compatible(sql_type: str, mapped: str) -> bool:
    """Whether a column of `sql_type` may be mapped as `mapped` (drift agrees with this)."""
    return mapped in COMPATIBLE[field_type(sql_type)]


def _share(values: Iterable[Any], pattern: re.Pattern[str]) -> float:
    vals = [str(v) for v in values if v not in (None, "")]
    return sum(bool(pattern.match(v)) for v in vals) / len(vals) if vals else 0.0


FLAG_VALUES = {"y", "n", "yes", "no", "true", "false", "t", "f", "0", "1", "동의", "미동의"}


def _flaglike(values: Iterable[Any]) -> bool:
    """Text values that are all yes/no answers (`Y`/`N`, `동의`): a flag kept in a varchar."""
    vals = [str(v).strip().lower() for v in values if v not in (None, "")]
    return bool(vals) and all(v in FLAG_VALUES for v in vals)


def is_opt_out(name: str, comment: str | None = None) -> bool:
    """Whether a column (by its name or comment) records a refusal rather than consent."""
    return bool(OPT_OUT.search(name) or OPT_OUT.search(comment or ""))


def is_consent(name: str, comment: str | None = None) -> str | None:
    """`consent`, `night_consent` or None for a column name (and its comment)."""
    words = f"{name} {comment or ''}"
    if is_opt_out(name, comment):
        return None
    if not (CONSENT_NAMES.search(name) or CONSENT.search(comment or "")):
        return None
    return "night_consent" if NIGHT_CONSENT.search(words) else "consent"


def role_for(
    name: str,
    ftype: str,
    values: list[Any],
    is_key: bool,
    *,
    is_reference: bool = False,
    comment: str | None = None,
) -> str:
    """The role of one column; see the module docstring for the order of the rules."""
    low = name.lower()
    note = comment or ""
    if is_key or (low == "id" and not is_reference):
        return "id"
    if is_reference or low.endswith("_id"):
        return "reference"
    if ftype in ("date", "datetime"):
        return "date"
    consent = is_consent(name, comment)
    if consent and (ftype in ("boolean", "number") or _flaglike(values)):
        return consent
    if low in FIRST_NAMES:
        return "first_name"
    if low in LAST_NAMES:
        return "last_name"
    if (
        "phone" in low
        or "mobile" in low
        or re.search(r"(^|_)(tel|hp|cell)(_|$)", low)
        or re.search(r"전화|휴대폰|핸드폰|연락처", note)
        or (ftype == "string" and _share(values, PHONE) > 0.8)
    ):
        return "phone"
    if "email" in low or "e_mail" in low or "이메일" in note or _share(values, EMAIL) > 0.8:
        return "email"
    if low in FULL_NAMES or (ftype == "string" and _share(values, KOREAN_NAME) > 0.8):
        return "name"
    if ftype == "boolean" or low.startswith(("is_", "has_")):
        return "flag"
    if ftype == "number" and any(k in low for k in ("amount", "fee", "price", "total", "balance")):
        return "amount"
    if low in ("status", "grade", "state", "type", "plan", "method", "active") or low.endswith(
        ("_status", "_type")
    ):
        return "status"
    if ftype == "string":
        return "text"
    return "other"


def readable(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or name


def display_name(column: str, comment: str | None, *, people: bool) -> str:
    """The column's comment, else a Korean label; a bare `name` is the customer's only in a
    table about people (`is_people`)."""
    if comment and comment.strip():
        return comment.strip()
    if column == "name" and not people:
        return "이름"
    return KOREAN_NAMES.get(column.lower(), readable(column))


def _order_by(other: TableInfo, foreign_field: str) -> str | None:
    """The date column to take the "latest" related row by: one indexed after the foreign key
    first, then any indexed date, then any date column."""
    dates = [c.name for c in other.columns if field_type(c.type) in ("date", "datetime")]
    if not dates:
        return None
    for index in other.indexes:
        cols = index.get("column_names") or []
        if len(cols) > 1 and cols[0] == foreign_field and cols[1] in dates:
            return str(cols[1])
    lead = other.indexed_leading_columns()
    return next((d for d in dates if d in lead), dates[0])


def suggest_relations(
    info: TableInfo, others: list[TableInfo], labels: set[str] | frozenset[str] = frozenset()
) -> list[Relation]:
    """Named relations from foreign keys (both directions), and from `*_id` columns that name
    another table's key where the schema declares no foreign key; no relation is named like
    a column or one of the fields' `labels` (a template could not use both)."""
    relations: list[Relation] = []
    names: set[str] = set()
    columns = {c.name for c in info.columns} | set(labels)

    def add(rel: Relation) -> None:
        if not mappable(rel.path_name):  # after a table `sales.customers`: two hops in a path
            return
        base, n = rel.path_name, 2
        while rel.path_name in names or rel.path_name in columns:
            rel.name = f"{base}_{n}"
            n += 1
        names.add(rel.path_name)
        relations.append(rel)

    for fk in info.foreign_keys:
        if len(fk.get("constrained_columns") or []) != 1:
            continue
        local = fk["constrained_columns"][0]
        add(
            Relation(
                table=fk["referred_table"],
                localField=local,
                foreignField=fk["referred_columns"][0],
                kind="many-to-one",
                name=relation_name(local, fk["referred_table"]),
            )
        )
    linked = {r.localField for r in relations}
    key = info.primary_key[0] if len(info.primary_key) == 1 else None
    for other in others:
        if other.name == info.name:
            continue
        pk = other.primary_key
        for col in info.columns:  # this table names the other one's key, without a foreign key
            if (
                len(pk) == 1
                and col.name == pk[0]
                and col.name != key
                and col.name not in linked
                and col.name.endswith("_id")
                and not other.is_view
            ):
                add(
                    Relation(
                        table=other.name,
                        localField=col.name,
                        foreignField=pk[0],
                        kind="many-to-one",
                        name=relation_name(col.name, other.name),
                    )
                )
        if key is None or other.is_view:
            continue
        declared = [
            fk
            for fk in other.foreign_keys
            if fk.get("referred_table") == info.name
            and fk.get("referred_columns") == [key]
            and len(fk.get("constrained_columns") or []) == 1
        ]
        pointing = [fk["constrained_columns"][0] for fk in declared]
        if not declared and key in {c.name for c in other.columns} and other.primary_key != [key]:
            pointing = [key]  # a same-named key column without a declared foreign key
        for foreign in pointing:
            add(
                Relation(
                    table=other.name,
                    localField=key,
                    foreignField=foreign,
                    kind="one-to-many",
                    orderBy=_order_by(other, foreign),
                    name=other.name,
                )
            )
    return relations


PEOPLE_TABLES = re.compile(
    r"customer|client|member|user|person|people|contact|subscriber|patient|student|employee"
    r"|고객|회원|사용자|인원",
    re.IGNORECASE,
)


def is_people(info: TableInfo, sample: list[dict[str, Any]]) -> bool:
    """A table about people: a people-like name, or person/contact columns beside `name`."""
    if PEOPLE_TABLES.search(info.name) or PEOPLE_TABLES.search(info.comment or ""):
        return True
    for col in info.columns:
        role = role_for(col.name, field_type(col.type), [r.get(col.name) for r in sample], False)
        if role in ("first_name", "last_name", "phone", "email"):
            return True
    return False


def suggest_fields(info: TableInfo, sample: list[dict[str, Any]]) -> dict[str, FieldMapping]:
    cheap = info.indexed_leading_columns()
    key = info.primary_key[0] if len(info.primary_key) == 1 else None
    references = {c for fk in info.foreign_keys for c in fk.get("constrained_columns") or []}
    # a text column unique by itself is a key of the row too (gnuboard's login `mb_id`
    # beside the number `mb_no`): an id, searched whole, not a reference for its `_id`
    unique = {
        c
        for ix in info.indexes
        if ix.get("unique") and len(cols := ix.get("column_names") or []) == 1
        for c in cols
        if c.lower().endswith("_id")
        and (live := info.column(c)) is not None
        and field_type(live.type) == "string"
    }
    fields: dict[str, FieldMapping] = {}
    used: set[str] = set()
    people = is_people(info, sample)
    names = {c.name for c in info.columns if mappable(c.name)}
    for col in info.columns:
        if not mappable(col.name):  # a dot or an end space: read as another column
            continue
        ftype = field_type(col.type)
        role = role_for(
            col.name,
            ftype,
            [row.get(col.name) for row in sample],
            col.name == key or (col.name in unique and col.name not in references),
            is_reference=col.name in references,
            comment=col.comment,
        )
        if role == "phone" and too_short_for_phone(col.type):
            role = "text"  # a part of a split number ('010' of mobile1/2/3) is no recipient
        if role == "name" and col.name.lower() in FULL_NAMES and not people:
            role = "text"  # a store's or a product's name is not a person's
        label = display_name(col.name, col.comment, people=people)
        # a label is no other field's label or name (a comment 'tel' on `tel2` beside `tel`:
        # the mapping refuses it, since a path `tel` could read either column)
        while label in used or (label in names and label != col.name):
            label = f"{label} ({col.name})"
        used.add(label)
        fields[col.name] = FieldMapping(
            displayName=label,
            type=ftype,  # type: ignore[arg-type]
            filterable=col.name in cheap,
            role=role,  # type: ignore[arg-type]
            searchable=role in SEARCHABLE_ROLES,
            pii=role in PII_ROLES
            or (role != "reference" and any(k in col.name.lower() for k in ("birth", "address"))),
        )
    return fields


def _audience_key(info: TableInfo) -> str | None:
    """The primary key when it is one column, else the first one-column unique index."""
    for cols in info.unique_keys():
        if len(cols) == 1:
            return cols[0]
    return None


def suggest_audience(
    info: TableInfo,
    fields: dict[str, FieldMapping],
    relations: list[Relation],
    others: list[TableInfo],
    samples: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Audience roles for a people-like table (else {}): key, recipient, channel, consents."""
    roles = {name: f.role for name, f in fields.items()}
    key = _audience_key(info)
    if key is None or info.is_view or not any(r in PERSON_ROLES for r in roles.values()):
        return {}
    recipient = next((n for n, r in roles.items() if r == "phone"), None)
    channel = "sms"
    if recipient is None:  # a phone one to-one hop away (the customer's address)
        by_name = {o.name: o for o in others}
        for rel in relations:
            other = by_name.get(rel.table)
            if rel.kind != "many-to-one" or other is None:
                continue
            other_fields = suggest_fields(other, (samples or {}).get(other.name, []))
            phone = next((n for n, f in other_fields.items() if f.role == "phone"), None)
            if phone:
                recipient = f"{rel.path_name}.{phone}"
                break
    if recipient is None:
        recipient = next((n for n, r in roles.items() if r == "email"), None)
        channel = "email"
    if recipient is None:
        return {}
    out: dict[str, Any] = {
        "audience": True,
        "key": key,
        "recipient": recipient,
        "channel": channel,
    }
    consent = next((n for n, r in roles.items() if r == "consent"), None)
    night = next((n for n, r in roles.items() if r == "night_consent"), None)
    if consent:
        out["consent"] = consent
    if night:
        out["nightConsent"] = night
    return out


def suggest(
    info: TableInfo,
    sample: list[dict[str, Any]],
    others: list[TableInfo] | None = None,
    samples: dict[str, list[dict[str, Any]]] | None = None,
) -> TableMapping:
    """A mapping for one table from its schema, a few sample rows and the rest of the schema.

    `filterable` is true only where an index (or the primary key) leads with the column;
    `others` turns foreign keys into relations both ways and lets the audience's recipient be
    found in a related table; `samples` are a few rows of those tables, by name.
    """
    others = others or []
    fields = suggest_fields(info, sample)
    labels = {label for f in fields.values() for label in (f.displayName, *f.aliases)}
    relations = suggest_relations(info, others, labels)
    audience = suggest_audience(info, fields, relations, others, samples)
    key = audience.get("key") or (info.primary_key[0] if len(info.primary_key) == 1 else None)
    if key is not None and key not in fields:
        key = None
    table_label = info.comment or table_label_for(info.name)
    extra = {k: v for k, v in audience.items() if k != "key"}
    return TableMapping(
        displayName=table_label,
        description="",
        fields=fields,
        key=key,
        relations=relations,
        **extra,
    )


#: Korean labels of common tables, by the singular of their name
KOREAN_TABLES = {
    "customer": "고객 정보",
    "subscription": "구독",
    "payment": "결제",
    "order": "주문",
}


def table_label_for(name: str) -> str:
    """A Korean label for a common table name, singular or plural; else the name made readable."""
    lowered = name.lower()
    singular = lowered[:-1] if lowered.endswith("s") else lowered
    return KOREAN_TABLES.get(singular) or readable(name)
