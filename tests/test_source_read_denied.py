"""A SELECT the account may not run is a read it lacks, not a write refused: the message
names the column (when the schema knows it) or the table, and says what to do.

Oracle: MariaDB's own column privileges on an account made here (as in
tests/test_run_columns.py): SELECT on members(code, name), REFERENCES on memo (visible,
not readable), nothing on email (invisible)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL

import hybridwb
from hybridwb.errors import QueryError
from hybridwb.source.catalogue import read_denied_message
from tests.conftest import MYSQL_HOST, MYSQL_PORT, _admin, mariadb_maker

NAME = "백지훈"
DENIED = "SELECT command denied to user 'ro'@'10.0.0.7' for "


# == pure ====================================================================================
@pytest.mark.parametrize(
    ("raw", "names", "said", "unsaid"),
    [
        (DENIED + "column 'memo' in table 'members'", {"memo"}, "column memo of members", NAME),
        (DENIED + "column 'Memo' in table 'members'", {"memo"}, "SELECT on Memo", "a column"),
        (DENIED + f"column '{NAME}' in table 'members'", {"memo"}, "a column this", NAME),
        (DENIED + "column 'email' in table 'members'", set(), "a column this", "email"),
        (DENIED + f"column 'memo' in table '{NAME}'", {"memo"}, "column memo (", NAME),
        (DENIED + "table `shop`.`members`", set(), "the table shop.members", "`"),
        (DENIED + "table 'members'", set(), "the table members (", "'"),
        (DENIED + f"table `shop`.`{NAME}`", set(), "a table of the query", NAME),
    ],
    ids=[
        "column-known",
        "column-case",
        "column-unquoted-value",
        "column-invisible",
        "column-table-not-plain",
        "table-mariadb",
        "table-mysql8",
        "table-not-plain",
    ],
)
def test_a_select_denied_says_what_may_not_be_read(
    raw: str, names: set[str], said: str, unsaid: str
) -> None:
    message = read_denied_message(raw, names)
    assert said in message and unsaid not in message
    assert "read-only, as it should be" not in message and "10.0.0.7" not in message
    assert "\n" not in message and "ask the DBA for SELECT" in message


# == real MariaDB =============================================================================
@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_deny")


@pytest.fixture
def narrow(source: Callable[..., str], tmp_path: Any) -> Iterator[hybridwb.Workbench]:
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "email VARCHAR(60), memo TEXT)",
        rows={"members": [("m1", NAME, "kim@example.com", "메모")]},
    )
    user, password = f"hwb_deny_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = _admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            cur.execute(
                f"GRANT SELECT (code, name), REFERENCES (memo) ON `{db}`.members TO '{user}'@'%'"
            )
        url = URL.create(
            "mysql+pymysql", username=user, password=password, host=MYSQL_HOST,
            port=MYSQL_PORT, database=db, query={"charset": "utf8mb4"},
        )  # fmt: skip
        wb = hybridwb.connect(
            source=url.render_as_string(hide_password=False),
            store=f"sqlite:///{tmp_path / 'store.db'}",
        )
        yield wb
        wb.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


@pytest.mark.mysql
@pytest.mark.parametrize(
    ("sql", "said", "unsaid"),
    [
        ("SELECT code, memo FROM members", "may not read the column memo of members", NAME),
        ("SELECT code FROM members ORDER BY memo", "ask the DBA for SELECT on memo", NAME),
        (f"SELECT code FROM members WHERE {NAME} = 1", "a column this query names", NAME),
        ("SELECT email FROM members", "a column this query names of members", "@"),
        ("SELECT * FROM members", "may not read the table", NAME),
    ],
    ids=["visible-column", "order-by", "unquoted-value", "invisible-column", "star"],
)
def test_mariadb_column_privilege_denial_names_what_may_not_be_read(
    narrow: hybridwb.Workbench, sql: str, said: str, unsaid: str
) -> None:
    with pytest.raises(QueryError) as denied:
        narrow.source.sql(sql)
    message = str(denied.value)
    assert said in message and unsaid not in message, message
    assert "read-only, as it should be" not in message
    assert "\n" not in message and "hwb_deny" not in message
    assert denied.value.fields.get("code") in (1142, 1143)
