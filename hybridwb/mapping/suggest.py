"""Mapping suggestions for a table (pure): types, roles, PII, display names, relations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hybridwb.mapping.discovery import TableInfo
from hybridwb.mapping.model import FieldMapping, Relation, TableMapping

#: usual column names -> Korean display names
KOREAN_NAMES = {
    "customer_id": "고객ID",
    "name": "고객명",
    "customer_name": "고객명",
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
PHONE = re.compile(r"^(\+?82-?|0)1[016789]-?\d{3,4}-?\d{4}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
KOREAN_NAME = re.compile(r"^[가-힣]{2,4}$")


def field_type(sql_type: str) -> str:
    t = sql_type.upper()
    if t.startswith(("TINYINT(1)", "BOOL", "BIT")):
        return "boolean"
    if any(k in t for k in ("INT", "DECIMAL", "NUMERIC", "FLOAT", "DOUBLE", "REAL")):
        return "number"
    if "DATETIME" in t or "TIMESTAMP" in t:
        return "datetime"
    if t.startswith("DATE"):
        return "date"
    return "string"


def _share(values: Iterable[Any], pattern: re.Pattern[str]) -> float:
    vals = [str(v) for v in values if v not in (None, "")]
    return sum(bool(pattern.match(v)) for v in vals) / len(vals) if vals else 0.0


def role_for(name: str, ftype: str, values: list[Any], is_key: bool) -> str:
    low = name.lower()
    if is_key or low == "id" or low.endswith("_id"):
        return "id"
    if "phone" in low or "mobile" in low or "tel" in low or _share(values, PHONE) > 0.8:
        return "phone"
    if "email" in low or "mail" in low or _share(values, EMAIL) > 0.8:
        return "email"
    if (
        low in ("name", "customer_name", "full_name")
        or low.endswith("_name")
        or _share(values, KOREAN_NAME) > 0.8
    ):
        return "name"
    if ftype in ("date", "datetime"):
        return "date"
    if ftype == "boolean" or low.endswith("_opt_in") or low.startswith(("is_", "has_")):
        return "flag"
    if ftype == "number" and any(k in low for k in ("amount", "fee", "price", "total", "balance")):
        return "amount"
    if low in ("status", "grade", "state", "type", "plan", "method") or low.endswith(
        ("_status", "_type")
    ):
        return "status"
    if ftype == "string":
        return "text"
    return "other"


def readable(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or name


def display_name(column: str, comment: str | None, table: str) -> str:
    if comment and comment.strip():
        return comment.strip()
    if column == "name" and table not in ("customers", "customer", "users", "members"):
        return "이름"
    return KOREAN_NAMES.get(column.lower(), readable(column))


def suggest(
    info: TableInfo, sample: list[dict[str, Any]], others: list[TableInfo] | None = None
) -> TableMapping:
    """A mapping for one table from its schema and a few sample rows.

    `filterable` is true only where an index (or the primary key) leads with the column;
    `others` (the rest of the schema) turns foreign keys and `*_id` names into relations,
    both ways: a customer's subscriptions are one-to-many, ordered by their latest date.
    """
    cheap = info.indexed_leading_columns()
    key = info.primary_key[0] if len(info.primary_key) == 1 else None
    fields: dict[str, FieldMapping] = {}
    used: set[str] = set()
    for col in info.columns:
        ftype = field_type(col.type)
        role = role_for(col.name, ftype, [row.get(col.name) for row in sample], col.name == key)
        label = display_name(col.name, col.comment, info.name)
        if label in used:
            label = f"{label} ({col.name})"
        used.add(label)
        fields[col.name] = FieldMapping(
            displayName=label,
            type=ftype,  # type: ignore[arg-type]
            filterable=col.name in cheap,
            role=role,  # type: ignore[arg-type]
            searchable=role in ("id", "name", "phone", "email") and col.name in cheap,
            pii=role in ("name", "phone", "email")
            or "birth" in col.name.lower()
            or "address" in col.name.lower(),
        )
    relations = [
        Relation(
            table=fk["referred_table"],
            localField=fk["constrained_columns"][0],
            foreignField=fk["referred_columns"][0],
            kind="many-to-one",
        )
        for fk in info.foreign_keys
        if len(fk.get("constrained_columns") or []) == 1
    ]
    linked = {r.localField for r in relations}
    for other in others or []:
        pk = other.primary_key
        if other.name == info.name:
            continue
        for col in info.columns:  # this table points at the other one
            if (
                len(pk) == 1
                and col.name == pk[0]
                and col.name != key
                and col.name not in linked
                and col.name.endswith("_id")
            ):
                relations.append(
                    Relation(
                        table=other.name,
                        localField=col.name,
                        foreignField=pk[0],
                        kind="many-to-one",
                    )
                )
        if key is None:
            continue
        points_here = any(
            fk.get("referred_table") == info.name for fk in other.foreign_keys
        ) or key in {c.name for c in other.columns}
        if points_here and key in {c.name for c in other.columns}:
            dates = [c.name for c in other.columns if field_type(c.type) in ("date", "datetime")]
            cheap = other.indexed_leading_columns()
            order = next((d for d in dates if d in cheap), dates[0] if dates else None)
            relations.append(
                Relation(
                    table=other.name,
                    localField=key,
                    foreignField=key,
                    kind="one-to-many",
                    orderBy=order,
                )
            )
    table_label = info.comment or KOREAN_TABLES.get(info.name, readable(info.name))
    return TableMapping(
        displayName=table_label, description="", fields=fields, key=key, relations=relations
    )


KOREAN_TABLES = {
    "customers": "고객 정보",
    "subscriptions": "구독",
    "payments": "결제",
    "orders": "주문",
}
