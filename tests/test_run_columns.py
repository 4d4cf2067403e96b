"""A run reads only the columns it uses. Oracle: MariaDB's own column privileges. The run's
account may SELECT the key, the name the template uses and the phone, and nothing else of
the table; any statement of the run that names another column (the mapped e-mail, a memo,
`*`) is refused by the server, so the run fails. Mappings are saved by the database-wide
SELECT account first (a mapping is checked against the live table)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL

import hybridwb
from tests.conftest import MYSQL_HOST, MYSQL_PORT, _admin, mariadb_maker
from tests.test_attack_once_round2 import DAY, INFO, oracle, people, records, start, workbench

pytestmark = [pytest.mark.mysql]
ROWS = [(f"m{i}", f"회원{i}", f"010-3000-{i:04d}", f"m{i}@example.com", "메모") for i in range(6)]


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_cols")


@pytest.fixture
def narrow(source: Callable[..., str]) -> Iterator[tuple[str, str]]:
    """(database, URL of an account with SELECT on members(code, name, mobile) only)."""
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), email VARCHAR(60), memo TEXT)",
        rows={"members": ROWS},
    )
    user, password = f"hwb_cols_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = _admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            cur.execute(
                f"GRANT SELECT (code, name, mobile), REFERENCES (email, memo) "
                f"ON `{db}`.members TO '{user}'@'%'"
            )
        url = URL.create(
            "mysql+pymysql", username=user, password=password, host=MYSQL_HOST,
            port=MYSQL_PORT, database=db, query={"charset": "utf8mb4"},
        )  # fmt: skip
        yield db, url.render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


def test_a_run_reads_only_the_key_the_recipient_and_the_templates_fields(
    narrow: tuple[str, str], tmp_path: Any
) -> None:
    db, url = narrow
    store = f"sqlite:///{tmp_path / 'store.db'}"
    extra = {
        "email": {"displayName": "이메일", "type": "string", "role": "email"},
        "memo": {"displayName": "메모", "type": "string"},
    }
    wide = workbench(db, store, {"members": people(fields=extra)})
    try:
        wf = wide.workflows.create(
            "cols", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = start(wide, wf)
    finally:
        wide.close()
    with hybridwb.connect(source=url, store=store) as wb:
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    sent = records(store, run_id)
    assert sorted(k for k, _ in sent) == [f"m{i}" for i in range(6)]
    texts = [t for (t,) in oracle(store, "SELECT content FROM send_records", ())]
    assert sorted(texts) == sorted(f"회원{i}님, 이번 달 안내입니다." for i in range(6))
