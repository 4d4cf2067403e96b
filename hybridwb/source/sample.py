"""The sample shop: deterministic Korean customers, subscriptions and payments.

`build_sqlite(path)` makes the embedded sample source; `load(url)` fills a MySQL/MariaDB
database with the same generator (tests and benchmarks). This is the one place that
*writes* a source-shaped database, always through an admin URL given explicitly, never
through the read-only `Source`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from faker import Faker
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    create_engine,
)
from sqlalchemy.engine import URL, make_url

from hybridwb.source.transpile import sqlite_value

metadata = MetaData()
customers = Table(
    "customers",
    metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False, comment="고객ID"),
    Column("name", String(50), nullable=False, comment="고객명"),
    Column("phone", String(20), comment="휴대폰번호"),
    Column("email", String(120), comment="이메일"),
    Column("grade", String(10), nullable=False, comment="등급"),
    Column("status", String(12), nullable=False, comment="상태"),
    Column("marketing_opt_in", SmallInteger, nullable=False, comment="마케팅 수신 동의"),
    Column("birth_date", Date, comment="생년월일"),
    Column("city", String(40), comment="도시"),
    Column("created_at", DateTime, nullable=False, comment="가입일시"),
    Column("updated_at", DateTime, nullable=False, comment="수정일시"),
    mysql_charset="utf8mb4",
    comment="고객 정보",
)
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.customer_id"), nullable=False),
    Column("plan", String(20), nullable=False, comment="요금제"),
    Column("status", String(12), nullable=False, comment="구독 상태"),
    Column("monthly_fee", Integer, nullable=False, comment="월 요금"),
    Column("started_at", DateTime, nullable=False, comment="시작일"),
    Column("ends_at", DateTime, nullable=False, comment="만료일"),
    Column("auto_renew", SmallInteger, nullable=False),
    mysql_charset="utf8mb4",
    comment="구독",
)
payments = Table(
    "payments",
    metadata,
    Column("payment_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.customer_id"), nullable=False),
    Column("subscription_id", Integer, ForeignKey("subscriptions.subscription_id")),
    Column("amount", Numeric(12, 0), nullable=False, comment="결제 금액"),
    Column("method", String(20), nullable=False, comment="결제 수단"),
    Column("status", String(12), nullable=False, comment="결제 상태"),
    Column("paid_at", DateTime, nullable=False, comment="결제일시"),
    mysql_charset="utf8mb4",
    comment="결제",
)
INDEXES = [
    Index("ix_customers_phone", customers.c.phone),
    Index("ix_customers_email", customers.c.email),
    Index("ix_customers_name", customers.c.name),
    Index("ix_customers_grade_status", customers.c.grade, customers.c.status),
    Index("ix_customers_created_at", customers.c.created_at),
    Index("ix_subscriptions_customer", subscriptions.c.customer_id),
    Index("ix_subscriptions_ends_at", subscriptions.c.ends_at),
    Index("ix_payments_customer", payments.c.customer_id),
    Index("ix_payments_paid_at", payments.c.paid_at),
]

PLANS = [("basic", 9900), ("standard", 14900), ("premium", 19900)]
GRADES = ["VIP", "GOLD", "SILVER", "BRONZE"]
GRADE_WEIGHTS = [5, 15, 30, 50]
EPOCH = datetime(2019, 1, 1)
SPAN_SECONDS = int((datetime(2026, 11, 1) - EPOCH).total_seconds())


class Vocabulary:
    """Small pools drawn once from Faker ko_KR, combined fast and deterministically."""

    def __init__(self, seed: int) -> None:
        fake = Faker("ko_KR")
        fake.seed_instance(seed)
        from faker.providers.person.ko_KR import Provider

        self.last_names = list(Provider.last_names)
        self.first_names = list(Provider.first_names)
        self.user_names = sorted({fake.user_name() for _ in range(3000)})
        self.domains = sorted({fake.free_email_domain() for _ in range(50)})
        self.cities = sorted({fake.city() for _ in range(200)})


def phone_for(customer_id: int) -> str:
    """A unique 010 number per customer (a bijection on 8 digits)."""
    n = (customer_id * 7919 + 12345) % 100_000_000
    return f"010-{n // 10000:04d}-{n % 10000:04d}"


def _ts(rng: random.Random, start: datetime = EPOCH, span: int = SPAN_SECONDS) -> datetime:
    return start + timedelta(seconds=rng.randrange(span))


def generate(
    count: int, seed: int = 42, start_id: int = 1
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Yield (table, rows) batches for `count` customers, deterministic for a seed."""
    vocab = Vocabulary(seed)
    rng = random.Random(seed * 1_000_003 + start_id)
    sub_id = start_id * 2
    pay_id = start_id * 4
    batch = 5000
    for first in range(start_id, start_id + count, batch):
        cust: list[tuple[Any, ...]] = []
        subs: list[tuple[Any, ...]] = []
        pays: list[tuple[Any, ...]] = []
        for cid in range(first, min(first + batch, start_id + count)):
            created = _ts(rng)
            stored = phone_for(cid)
            if rng.random() < 0.1:
                stored = stored.replace("-", "")  # production data is never clean
            phone = None if rng.random() < 0.02 else stored
            email = f"{rng.choice(vocab.user_names)}{cid}@{rng.choice(vocab.domains)}"
            cust.append(
                (
                    cid,
                    rng.choice(vocab.last_names) + rng.choice(vocab.first_names),
                    phone,
                    email if rng.random() > 0.03 else None,
                    rng.choices(GRADES, GRADE_WEIGHTS)[0],
                    rng.choices(["active", "dormant", "withdrawn"], [85, 10, 5])[0],
                    int(rng.random() < 0.6),
                    (datetime(1960, 1, 1) + timedelta(days=rng.randrange(16000))).date(),
                    rng.choice(vocab.cities),
                    created,
                    created + timedelta(days=rng.randrange(300)),
                )
            )
            for _ in range(rng.choices([0, 1, 2], [35, 50, 15])[0]):
                sub_id += 1
                plan, fee = rng.choice(PLANS)
                started = created + timedelta(days=rng.randrange(400))
                ends = started + timedelta(days=30 * rng.choice([1, 3, 6, 12]))
                status = (
                    "active"
                    if ends > datetime(2026, 11, 1)
                    else rng.choice(["expired", "cancelled"])
                )
                subs.append(
                    (sub_id, cid, plan, status, fee, started, ends, int(rng.random() < 0.7))
                )
                for k in range(rng.randint(1, 2)):
                    pay_id += 1
                    pays.append(
                        (
                            pay_id,
                            cid,
                            sub_id,
                            fee,
                            rng.choice(["card", "kakaopay", "naverpay", "bank_transfer"]),
                            rng.choices(["paid", "refunded", "failed"], [92, 3, 5])[0],
                            started + timedelta(days=30 * k, seconds=rng.randrange(86400)),
                        )
                    )
        yield "customers", cust
        yield "subscriptions", subs
        yield "payments", pays


def load(
    url: str | URL, customers_count: int = 10_000, seed: int = 42, *, replace: bool = True
) -> dict[str, int]:
    """Create the sample tables at an admin URL and fill them; returns row counts."""
    url = make_url(url) if isinstance(url, str) else url
    engine = create_engine(url)
    counts = {"customers": 0, "subscriptions": 0, "payments": 0}
    try:
        if replace:
            metadata.drop_all(engine)
        for index in INDEXES:  # created after the load: much faster
            if index.table is not None:  # always: each is built on its table's columns
                index.table.indexes.discard(index)
        metadata.create_all(engine)
        raw = engine.raw_connection()
        try:
            marker = "?" if url.get_backend_name() == "sqlite" else "%s"
            cursor = raw.cursor()
            for table, rows in generate(customers_count, seed):
                if not rows:
                    continue
                cols = ", ".join(c.name for c in metadata.tables[table].columns)
                marks = ", ".join([marker] * len(metadata.tables[table].columns))
                if marker == "?":  # dates as text of our own, not sqlite3's adapters'
                    rows = [tuple(sqlite_value(v) for v in row) for row in rows]
                cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
                counts[table] += len(rows)
            raw.commit()
            cursor.close()
        finally:
            raw.close()
        with engine.begin() as conn:
            for index in INDEXES:
                index.create(conn)
    finally:
        engine.dispose()
    return counts


#: the last sample file this process built, as its bytes: the sample is a pure function of
#: its size and seed (fixed dates, a seeded generator), so a second build in one process
#: (a notebook server's projects, a test suite's directories) copies it (about 1 MB per
#: 2,000 customers; kept only up to this size)
_IMAGE_BYTES = 16 * 1024 * 1024
_image: tuple[tuple[int, int], bytes, dict[str, int]] | None = None


def build_sqlite(path: Path, customers_count: int = 10_000, seed: int = 42) -> dict[str, int]:
    """Write the embedded sample source to `path` (replacing it atomically)."""
    global _image
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    image = _image
    if image is not None and image[0] == (customers_count, seed):
        tmp.write_bytes(image[1])
        counts = dict(image[2])
    else:
        counts = load(URL.create("sqlite", database=str(tmp)), customers_count, seed)
        if tmp.stat().st_size <= _IMAGE_BYTES:
            _image = ((customers_count, seed), tmp.read_bytes(), dict(counts))
    tmp.replace(path)
    return counts
