# ruff: noqa: F811  (the fixtures imported are test parameters here)
"""Attack round 30 on "no phone in logs, python logging at DEBUG included".

`logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)` is how one sees what
SQLAlchemy sends. Every engine hybridwb makes hides its parameters (`hide_parameters`), but
at DEBUG SQLAlchemy also logs each result row it reads (`Row (...)`), which
`hide_parameters` does not cover: a workflow run logged every frozen target's phone (E.164),
and every send record's phone and message (the customer's name) as the store read them back,
on SQLite and PostgreSQL stores alike. Now no engine of hybridwb logs a row; its statements
still show at INFO/DEBUG.

Source: a fresh MariaDB database read by the SELECT-only account; stores: SQLite and
PostgreSQL; oracle: the phones, e-mails and names put in the source (and their E.164
form), searched for in the captured log records, with the account's password.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.platform.campaigns import Campaigns
from tests.conftest import SEL_PASSWORD, mariadb_maker
from tests.test_attack_once_round2 import DAY, any_store, pg_store, records, source_url  # noqa: F401

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

PEOPLE = [
    (i, f"회원{i:02d}", f"010-7300-{i:04d}", f"member{i:02d}@example.kr") for i in range(1, 9)
]
VALUES = [v for _, *row in PEOPLE for v in row] + [f"+82107300{i:04d}" for i, *_ in PEOPLE]
LOGGERS = ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "pymysql", "psycopg", "hybridwb")


def F(label: str, ftype: str = "string", role: str | None = None, **kw: Any) -> dict[str, Any]:
    """A mapped field: its display name, type, role and any other key."""
    return {"displayName": label, "type": ftype, "role": role, **kw}


MEMBERS = {
    "displayName": "회원",
    "key": "code",
    "audience": True,
    "recipient": "tel",
    "fields": {
        "code": F("번호", "number", "id"),
        "name": F("이름", role="name", pii=True, searchable=True),
        "tel": F("전화", role="phone", pii=True, searchable=True),
        "mail": F("메일", role="email", pii=True),
    },
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_dbg")


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger a user would turn up at DEBUG, captured (set before the engines exist:
    SQLAlchemy decides what it logs from the level a connection starts with)."""
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG):
            yield caplog
    finally:
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_a_run_at_debug_logs_no_phone_name_or_password(
    source: Callable[..., str], any_store: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    import pandas as pd

    db = source(
        "CREATE TABLE members (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20), "
        "mail VARCHAR(40))",
        rows={"members": PEOPLE},
    )
    with hybridwb.connect(source=source_url(db), store=any_store) as wb:
        wb.store.init()
        wb.mappings.suggest("members")  # reads sample rows
        pd.read_sql("SELECT name, tel, mail FROM members", wb.source.engine)  # the README's
        wb.mappings.save("members", MEMBERS)
        repr(wb.search("members", PEOPLE[2][2]))
        repr(wb.targets.preview({"table": "members"}))
        wb.templates.create("안내", "{{ 이름 }}님, 이번 달 안내입니다.")
        wf = wb.workflows.create(
            "dbg", target_config={"table": "members"}, message_config={"template": "안내"}
        )
        run = wb.store.runs.create(wf["id"], {})
        Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
        wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY, batch_size=3)
        wb.store.runs.records(run["id"])
    assert len(records(any_store, run["id"])) == len(PEOPLE)  # the run sent (oracle: SQL)
    engine_lines = [r for r in debug_logs.records if r.name.startswith("sqlalchemy.engine")]
    assert engine_lines  # the statements are still logged
    text = debug_logs.text + "\n".join(r.getMessage() for r in debug_logs.records)
    leaked = [v for v in [*VALUES, SEL_PASSWORD] if v in text]
    assert not leaked, leaked[:5]


def test_the_embedded_sample_at_debug_logs_no_customer_value(
    shop: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    """The SQLite sample's engine (and the store's) log no row either, read by pandas
    through the engine the README offers (`pd.read_sql(sql, wb.source.engine)`) too."""
    import sqlite3
    from pathlib import Path

    import pandas as pd

    with sqlite3.connect(Path(".hybridwb") / "sample.db") as conn:
        people = conn.execute(
            "SELECT name, phone, email FROM customers WHERE phone IS NOT NULL "
            "AND email IS NOT NULL ORDER BY customer_id LIMIT 20"
        ).fetchall()
    repr(shop.sql("SELECT name, phone, email FROM customers ORDER BY customer_id LIMIT 20"))
    shop.mappings.suggest("customers")
    pd.read_sql("SELECT name, phone, email FROM customers LIMIT 20", shop.source.engine)
    repr(shop.search("customers", people[3][1]))
    assert [r for r in debug_logs.records if r.name.startswith("sqlalchemy.engine")]
    text = "\n".join(r.getMessage() for r in debug_logs.records)
    leaked = [v for row in people for v in row if v in text]
    assert not leaked, leaked[:5]
