"""A Sakila-like "real" shop schema on MariaDB, the shape real customer databases have.

Unlike the sample shop, nothing an analyst needs is in one table: names are split into
first/last name, the phone lives in `address` (stored in mixed formats), the city is two
joins away, booleans are `tinyint(1)`, there is a view and a table without a primary key,
and payments/rentals are to-many relations. Deterministic for a given `seed`.

`build(conn, database, customers)` creates the tables in `database` (which must exist) and
fills them with fast multi-row inserts. Known rows for tests:

- customer 1: 백 지훈, phone `010-1234-5678`, email `jihoon.baek@example.kr`, opted in (day+night)
- customer 2: JANE DOE, phone `+82 10-2345-6789`, email `jane.doe@example.com`, not opted in
- every other customer's phone is `phone_for(i)` (see `PHONE_FORMATS`), unique per customer
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pymysql

KOREAN_LAST = ["김", "이", "박", "최", "정", "강", "조", "윤", "장", "백"]
KOREAN_FIRST = ["지훈", "민준", "서연", "지우", "하은", "도윤", "서준", "예은", "수아", "현우"]
LATIN_FIRST = ["JANE", "JOHN", "MARY", "PATRICIA", "LINDA", "BARBARA", "ELIZABETH", "SUSAN"]
LATIN_LAST = ["DOE", "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "MILLER", "DAVIS"]
COUNTRIES = ["South Korea", "United States", "Japan", "Canada", "Germany", "France"]
CITIES_PER_COUNTRY = 8
STORES = ["Gangnam", "Downtown"]
# stored phone formats, cycled by customer number; None is NULL, "" an empty string
PHONE_FORMATS = (
    "dashed",  # 010-1234-5678
    "plain",  # 01012345678
    "intl",  # 821012345678
    "plus",  # +82 10-1234-5678
    "landline",  # 02-123-4567
    "dashed",
    "null",
    "empty",
    "old9",  # 011-123-4567 (9 national digits)
    "plain",
)
BATCH = 5000

DDL = [
    """CREATE TABLE country (
        country_id SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
        country VARCHAR(50) NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='국가'""",
    """CREATE TABLE city (
        city_id SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
        city VARCHAR(50) NOT NULL,
        country_id SMALLINT UNSIGNED NOT NULL,
        CONSTRAINT fk_city_country FOREIGN KEY (country_id) REFERENCES country (country_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE address (
        address_id INT UNSIGNED NOT NULL PRIMARY KEY,
        address VARCHAR(80) NOT NULL,
        district VARCHAR(30) NOT NULL,
        city_id SMALLINT UNSIGNED NOT NULL,
        postal_code VARCHAR(10) NULL,
        phone VARCHAR(24) NULL COMMENT '전화번호',
        KEY idx_address_phone (phone),
        CONSTRAINT fk_address_city FOREIGN KEY (city_id) REFERENCES city (city_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE store (
        store_id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
        name VARCHAR(40) NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE customer (
        customer_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        store_id TINYINT UNSIGNED NOT NULL,
        first_name VARCHAR(45) NOT NULL,
        last_name VARCHAR(45) NOT NULL,
        email VARCHAR(100) NULL,
        address_id INT UNSIGNED NOT NULL,
        active TINYINT(1) NOT NULL DEFAULT 1,
        marketing_opt_in TINYINT(1) NOT NULL DEFAULT 0 COMMENT '광고수신동의',
        night_opt_in TINYINT(1) NOT NULL DEFAULT 0 COMMENT '야간수신동의',
        create_date DATETIME NOT NULL,
        last_update TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        UNIQUE KEY uq_customer_email (email),
        KEY idx_customer_name (last_name, first_name),
        KEY idx_customer_first_name (first_name),
        CONSTRAINT fk_customer_store FOREIGN KEY (store_id) REFERENCES store (store_id),
        CONSTRAINT fk_customer_address FOREIGN KEY (address_id) REFERENCES address (address_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='고객'""",
    """CREATE TABLE payment (
        payment_id INT UNSIGNED NOT NULL PRIMARY KEY,
        customer_id INT UNSIGNED NOT NULL,
        amount DECIMAL(10,2) NOT NULL,
        payment_date DATETIME NOT NULL,
        KEY idx_payment_customer_date (customer_id, payment_date),
        CONSTRAINT fk_payment_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE rental (
        rental_id INT UNSIGNED NOT NULL PRIMARY KEY,
        rental_date DATETIME NOT NULL,
        customer_id INT UNSIGNED NOT NULL,
        return_date DATETIME NULL,
        KEY idx_rental_customer (customer_id),
        CONSTRAINT fk_rental_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE audit_trail (
        customer_id INT UNSIGNED NULL,
        action VARCHAR(20) NOT NULL,
        at DATETIME NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE VIEW customer_list AS
        SELECT cu.customer_id AS customer_id,
               CONCAT(cu.first_name, ' ', cu.last_name) AS name,
               a.phone AS phone,
               ci.city AS city
        FROM customer cu
        JOIN address a ON a.address_id = cu.address_id
        JOIN city ci ON ci.city_id = a.city_id""",
]
TABLES = [
    "country",
    "city",
    "address",
    "store",
    "customer",
    "payment",
    "rental",
    "audit_trail",
]
VIEWS = ["customer_list"]


def phone_for(i: int) -> str | None:
    """The stored phone of customer `i` (1-based); unique per customer for mobile formats."""
    if i == 1:
        return "010-1234-5678"
    if i == 2:
        return "+82 10-2345-6789"
    n = (i * 7919 + 12345) % 100_000_000  # a bijection on 8 digits: unique numbers
    mid, last = n // 10000, n % 10000
    kind = PHONE_FORMATS[i % len(PHONE_FORMATS)]
    if kind == "dashed":
        return f"010-{mid:04d}-{last:04d}"
    if kind == "plain":
        return f"010{mid:04d}{last:04d}"
    if kind == "intl":
        return f"8210{mid:04d}{last:04d}"
    if kind == "plus":
        return f"+82 10-{mid:04d}-{last:04d}"
    if kind == "landline":
        return f"02-{mid % 900 + 100}-{last:04d}"
    if kind == "old9":
        return f"011-{mid % 900 + 100}-{last:04d}"
    if kind == "null":
        return None
    return ""


def _customer(i: int, rng: random.Random) -> tuple[str, str, str]:
    if i == 1:
        return "지훈", "백", "jihoon.baek@example.kr"
    if i == 2:
        return "JANE", "DOE", "jane.doe@example.com"
    if i % 2:
        first, last = rng.choice(KOREAN_FIRST), rng.choice(KOREAN_LAST)
        return first, last, f"user{i}@example.kr"
    first, last = rng.choice(LATIN_FIRST), rng.choice(LATIN_LAST)
    return first, last, f"{first.lower()}.{last.lower()}{i}@example.com"


def _insert(cur: pymysql.cursors.Cursor, sql: str, rows: list[tuple]) -> None:
    for start in range(0, len(rows), BATCH):
        cur.executemany(sql, rows[start : start + BATCH])


def build(conn: pymysql.Connection, database: str, customers: int = 2000, seed: int = 7) -> None:
    """Create and fill the realshop schema in the existing, empty `database`."""
    if customers < 2:
        raise ValueError("realshop needs at least 2 customers (the two known rows)")
    rng = random.Random(seed)
    base = datetime(2024, 1, 1)
    with conn.cursor() as cur:
        cur.execute(f"USE `{database}`")
        for statement in DDL:
            cur.execute(statement)
        cur.executemany(
            "INSERT INTO country (country_id, country) VALUES (%s, %s)",
            list(enumerate(COUNTRIES, start=1)),
        )
        cities = [
            (c * CITIES_PER_COUNTRY + k + 1, f"{country} City {k + 1}", c + 1)
            for c, country in enumerate(COUNTRIES)
            for k in range(CITIES_PER_COUNTRY)
        ]
        cities[0] = (1, "서울", 1)
        cur.executemany("INSERT INTO city (city_id, city, country_id) VALUES (%s, %s, %s)", cities)
        cur.executemany(
            "INSERT INTO store (store_id, name) VALUES (%s, %s)", list(enumerate(STORES, start=1))
        )
        addresses, people, payments, rentals, audits = [], [], [], [], []
        payment_id = rental_id = 0
        for i in range(1, customers + 1):
            city_id = 1 if i <= 2 else rng.randint(1, len(cities))
            addresses.append(
                (
                    i,
                    f"{i} Main Street",
                    f"District {i % 25}",
                    city_id,
                    f"{i % 99999:05d}",
                    phone_for(i),
                )
            )
            first, last, email = _customer(i, rng)
            opt_in = 1 if i == 1 else (0 if i == 2 else int(rng.random() < 0.6))
            night = 1 if i == 1 else (opt_in if rng.random() < 0.3 else 0)
            created = base - timedelta(days=rng.randint(0, 1500), seconds=rng.randint(0, 86399))
            people.append(
                (
                    i,
                    1 + i % len(STORES),
                    first,
                    last,
                    email,
                    i,
                    int(i % 13 != 0),
                    opt_in,
                    night,
                    created,
                )
            )
            for _ in range(rng.randint(0, 6)):
                payment_id += 1
                when = base + timedelta(days=rng.randint(0, 600), seconds=rng.randint(0, 86399))
                payments.append((payment_id, i, f"{rng.randint(1, 400) * 0.5 + 0.49:.2f}", when))
            for _ in range(rng.randint(0, 4)):
                rental_id += 1
                when = base + timedelta(days=rng.randint(0, 600), seconds=rng.randint(0, 86399))
                back = None if rng.random() < 0.1 else when + timedelta(days=rng.randint(1, 10))
                rentals.append((rental_id, when, i, back))
            if i % 10 == 0:
                audits.append((i, "login", created))
                audits.append((i, "login", created))  # duplicates: no key to tell them apart
        _insert(
            cur,
            "INSERT INTO address (address_id, address, district, city_id, postal_code, phone)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            addresses,
        )
        _insert(
            cur,
            "INSERT INTO customer (customer_id, store_id, first_name, last_name, email, address_id,"
            " active, marketing_opt_in, night_opt_in, create_date)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            people,
        )
        _insert(
            cur,
            "INSERT INTO payment (payment_id, customer_id, amount, payment_date)"
            " VALUES (%s, %s, %s, %s)",
            payments,
        )
        _insert(
            cur,
            "INSERT INTO rental (rental_id, rental_date, customer_id, return_date)"
            " VALUES (%s, %s, %s, %s)",
            rentals,
        )
        _insert(
            cur, "INSERT INTO audit_trail (customer_id, action, at) VALUES (%s, %s, %s)", audits
        )
        cur.execute(f"ANALYZE TABLE {', '.join(TABLES)}")
        cur.fetchall()
    conn.commit()
