"""Layer three: the account's grants against the allowlist.

Pure, table-driven over real `SHOW GRANTS` lines (MariaDB 10.11 and MySQL 8 spellings), then
on real MariaDB with throwaway accounts and roles (unique names, dropped after): the
guard and the read-only session are irrelevant here, only what the account holds counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy.engine import URL

from hybridwb.observability.doctor import Report, _source
from hybridwb.source import Source, grants
from tests.conftest import MYSQL_HOST, MYSQL_PORT

U = "`u`@`%`"
CASES = {
    # line -> the REVOKE statements it needs ([] = safe)
    "usage": ("GRANT USAGE ON *.* TO `u`@`%`", []),
    "usage-password": (
        "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*12FB720E00C0031647E1'",
        [],
    ),
    "select-schema": ("GRANT SELECT ON `shop`.* TO `u`@`%`", []),
    "select-show-view": ("GRANT SELECT, SHOW VIEW ON `hybridwb\\_%`.* TO `u`@`%`", []),
    "select-table": ("GRANT SELECT ON `shop`.`customers` TO `u`@`%`", []),
    "select-columns": ("GRANT SELECT (`name`, `grade`) ON `shop`.`customers` TO `u`@`%`", []),
    "update-two-columns": (
        "GRANT SELECT, UPDATE (`a`, `b`) ON `shop`.`t` TO `u`@`%`",
        ["REVOKE UPDATE (`a`, `b`) ON `shop`.`t` FROM `u`@`%`"],
    ),
    "insert-one-column": (
        "GRANT INSERT (`a`) ON `shop`.`t` TO `u`@`%`",
        ["REVOKE INSERT (`a`) ON `shop`.`t` FROM `u`@`%`"],
    ),
    "all": (
        "GRANT ALL PRIVILEGES ON `shop`.* TO `u`@`%`",
        ["REVOKE ALL PRIVILEGES ON `shop`.* FROM `u`@`%`"],
    ),
    "root": (
        "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        [
            "REVOKE ALL PRIVILEGES ON *.* FROM `root`@`localhost`",
            "REVOKE GRANT OPTION ON *.* FROM `root`@`localhost`",
        ],
    ),
    "grant-option": (
        "GRANT SELECT ON `shop`.* TO `u`@`%` WITH GRANT OPTION",
        ["REVOKE GRANT OPTION ON `shop`.* FROM `u`@`%`"],
    ),
    "create-user": (
        "GRANT CREATE USER ON *.* TO `u`@`%`",
        ["REVOKE CREATE USER ON *.* FROM `u`@`%`"],
    ),
    "reload-shutdown": (
        "GRANT RELOAD, SHUTDOWN ON *.* TO `u`@`%`",
        ["REVOKE RELOAD ON *.* FROM `u`@`%`", "REVOKE SHUTDOWN ON *.* FROM `u`@`%`"],
    ),
    "binlog-admin": (
        "GRANT BINLOG ADMIN ON *.* TO `u`@`%`",
        ["REVOKE BINLOG ADMIN ON *.* FROM `u`@`%`"],
    ),
    "process": ("GRANT PROCESS ON *.* TO `u`@`%`", ["REVOKE PROCESS ON *.* FROM `u`@`%`"]),
    "file": ("GRANT FILE ON *.* TO `u`@`%`", ["REVOKE FILE ON *.* FROM `u`@`%`"]),
    "super": ("GRANT SUPER ON *.* TO `u`@`%`", ["REVOKE SUPER ON *.* FROM `u`@`%`"]),
    "global-select": ("GRANT SELECT ON *.* TO `u`@`%`", ["REVOKE SELECT ON *.* FROM `u`@`%`"]),
    "mysql-schema": (
        "GRANT SELECT ON `mysql`.* TO `u`@`%`",
        ["REVOKE SELECT ON `mysql`.* FROM `u`@`%`"],
    ),
    "mysql-user-table": (
        "GRANT SELECT ON `mysql`.`user` TO `u`@`%`",
        ["REVOKE SELECT ON `mysql`.`user` FROM `u`@`%`"],
    ),
    "execute-schema": (
        "GRANT EXECUTE ON `shop`.* TO `u`@`%`",
        ["REVOKE EXECUTE ON `shop`.* FROM `u`@`%`"],
    ),
    "execute-allowlisted-function": (
        "GRANT EXECUTE ON FUNCTION `shop`.`mask_phone` TO `u`@`%`",
        [],
    ),
    "execute-other-function": (
        "GRANT EXECUTE ON FUNCTION `shop`.`wipe` TO `u`@`%`",
        ["REVOKE EXECUTE ON FUNCTION `shop`.`wipe` FROM `u`@`%`"],
    ),
    "execute-procedure": (
        "GRANT EXECUTE ON PROCEDURE `shop`.`mask_phone` TO `u`@`%`",
        ["REVOKE EXECUTE ON PROCEDURE `shop`.`mask_phone` FROM `u`@`%`"],
    ),
    "proxy": (
        "GRANT PROXY ON ''@'%' TO 'u'@'%' WITH GRANT OPTION",
        ["REVOKE PROXY ON ''@'%' FROM 'u'@'%'", "REVOKE GRANT OPTION ON ''@'%' FROM 'u'@'%'"],
    ),
    "delete-history": (
        "GRANT DELETE HISTORY ON `shop`.* TO `u`@`%`",
        ["REVOKE DELETE HISTORY ON `shop`.* FROM `u`@`%`"],
    ),
    "mysql8-dynamic": (
        "GRANT BINLOG_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `u`@`%`",
        [
            "REVOKE BINLOG_ADMIN ON *.* FROM `u`@`%`",
            "REVOKE SYSTEM_VARIABLES_ADMIN ON *.* FROM `u`@`%`",
        ],
    ),
    "role-grant": ("GRANT `r1` TO `u`@`%`", []),
    "default-role": ("SET DEFAULT ROLE `r1` FOR `u`@`%`", []),
}


@pytest.mark.parametrize(("line", "revokes"), CASES.values(), ids=CASES.keys())
def test_grant_line_needs_exactly_these_revokes(line: str, revokes: list[str]) -> None:
    found = grants.review({None: [line]}, allowed_functions=["shop.mask_phone"])
    assert [f.revoke for f in found] == revokes


def test_password_hash_never_reaches_a_finding() -> None:
    line = "GRANT ALL ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*12FB720E00C0031647E1'"
    found = grants.review({None: [line]})
    assert found and all("12FB" not in f.revoke + f.describe() for f in found)


def test_privileges_held_through_nested_roles_are_found() -> None:
    server = {
        None: ["GRANT USAGE ON *.* TO `u`@`%`", "GRANT `outer` TO `u`@`%`"],
        "`outer`": ["GRANT `inner` TO `outer`", "GRANT SELECT ON `shop`.* TO `outer`"],
        "`inner`": ["GRANT DELETE ON `shop`.* TO `inner`"],
    }
    asked: list[str | None] = []

    def fetch(role: str | None) -> list[str]:
        asked.append(role)
        return server[role]

    found = grants.review(grants.expand(fetch))
    assert asked == [None, "`outer`", "`inner`"]
    assert [(f.revoke, f.via_role) for f in found] == [
        ("REVOKE DELETE ON `shop`.* FROM `inner`", "`inner`")
    ]


def test_a_role_whose_grants_cannot_be_read_is_a_finding() -> None:
    class Denied(Exception):
        pass

    def fetch(role: str | None) -> list[str]:
        if role is None:
            return ["GRANT `r` TO `u`@`%`", "GRANT USAGE ON *.* TO `u`@`%`"]
        raise Denied(role)

    found = grants.review(grants.expand(fetch, (Denied,)))
    assert [f.revoke for f in found] == ["REVOKE `r` FROM `u`@`%`"]


def test_role_names_are_only_used_as_the_server_quoted_them() -> None:
    assert grants.show_grants_for("`r``x`") == "SHOW GRANTS FOR `r``x`"
    with pytest.raises(ValueError):
        grants.show_grants_for("r; DROP TABLE t")


# -- on real MariaDB ------------------------------------------------------------------------
def _root() -> pymysql.Connection:
    return pymysql.connect(
        ssl_disabled=True, host=MYSQL_HOST, port=MYSQL_PORT, user="root", autocommit=True
    )


@pytest.fixture
def account(mysql_db: str) -> Iterator[tuple[str, str, pymysql.cursors.Cursor]]:
    """A throwaway account (and role names) with SELECT on the test database; dropped after."""
    tag = uuid.uuid4().hex[:8]
    user, password = f"hb_g_{tag}", f"pw_{tag}"
    conn = _root()
    cur = conn.cursor()
    cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    cur.execute(f"GRANT SELECT, SHOW VIEW ON `{mysql_db}`.* TO '{user}'@'%'")
    yield user, password, cur
    cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    for role in (f"hb_r1_{tag}", f"hb_r2_{tag}"):
        cur.execute(f"DROP ROLE IF EXISTS {role}")
    conn.close()


def _info(user: str, password: str, db: str):  # type: ignore[no-untyped-def]
    url = URL.create(
        "mysql+pymysql",
        username=user,
        password=password,
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        database=db,
    )
    source = Source(url, pool_size=1, use_guard=False, read_only_session=False)  # grants alone
    try:
        return source.test_connection()
    finally:
        source.close()


BAD = {
    "update-columns": "GRANT UPDATE (`name`, `grade`) ON `{db}`.`customers` TO '{user}'@'%'",
    "create-user": "GRANT CREATE USER ON *.* TO '{user}'@'%'",
    "grant-option": "GRANT SELECT ON `{db}`.* TO '{user}'@'%' WITH GRANT OPTION",
    "reload": "GRANT RELOAD ON *.* TO '{user}'@'%'",
    "shutdown": "GRANT SHUTDOWN ON *.* TO '{user}'@'%'",
    "binlog-admin": "GRANT BINLOG ADMIN ON *.* TO '{user}'@'%'",
    "process": "GRANT PROCESS ON *.* TO '{user}'@'%'",
    "file": "GRANT FILE ON *.* TO '{user}'@'%'",
    "super": "GRANT SUPER ON *.* TO '{user}'@'%'",
    "mysql-schema": "GRANT SELECT ON mysql.* TO '{user}'@'%'",
    "global-select": "GRANT SELECT ON *.* TO '{user}'@'%'",
}


@pytest.mark.mysql
@pytest.mark.parametrize("grant", BAD.values(), ids=BAD.keys())
def test_bad_account_fails_with_the_revoke_that_fixes_it(
    grant: str, account: tuple[str, str, pymysql.cursors.Cursor], mysql_db: str
) -> None:
    user, password, cur = account
    assert not _info(user, password, mysql_db).can_write  # the clean account is OK
    cur.execute(grant.format(db=mysql_db, user=user))
    info = _info(user, password, mysql_db)
    assert info.can_write and info.revokes
    report = Report()
    _report_grants(report, info)
    assert report.failed
    for revoke in info.revokes:  # the advice works: running it makes the account clean
        cur.execute(revoke.replace(f"`{user}`@`%`", f"'{user}'@'%'"))
    assert not _info(user, password, mysql_db).can_write


@pytest.mark.mysql
def test_privilege_through_a_default_role_two_levels_deep_fails(
    account: tuple[str, str, pymysql.cursors.Cursor], mysql_db: str
) -> None:
    user, password, cur = account
    tag = user.rsplit("_", 1)[-1]
    outer, inner = f"hb_r1_{tag}", f"hb_r2_{tag}"
    cur.execute(f"CREATE ROLE {outer}")
    cur.execute(f"CREATE ROLE {inner}")
    cur.execute(f"GRANT DELETE ON `{mysql_db}`.* TO {inner}")
    cur.execute(f"GRANT {inner} TO {outer}")
    cur.execute(f"GRANT {outer} TO '{user}'@'%'")
    cur.execute(f"SET DEFAULT ROLE {outer} FOR '{user}'@'%'")
    info = _info(user, password, mysql_db)
    assert info.revokes == [f"REVOKE DELETE ON `{mysql_db}`.* FROM `{inner}`"]
    assert any(f"through role `{inner}`" in w for w in info.write_privileges)


def _report_grants(report: Report, info) -> None:  # type: ignore[no-untyped-def]
    """The grants item of `doctor` for this connection info."""

    class _WB:
        class source:
            class url:
                host = "127.0.0.1"

        @staticmethod
        def test_connection():  # type: ignore[no-untyped-def]
            return info

    _source(_WB, report)  # type: ignore[arg-type]
    grants_item = [c for c in report.checks if c.name == "account grants"]
    assert grants_item and all("run: REVOKE" in c.fix for c in grants_item if c.status == "FAIL")


@pytest.mark.mysql
def test_privilege_of_a_granted_but_inactive_role_fails(
    account: tuple[str, str, pymysql.cursors.Cursor], mysql_db: str
) -> None:
    """Not a default role: SHOW GRANTS lists only `GRANT role TO user`, yet the user may
    `SET ROLE` it from any client — the role's grants must be fetched and reviewed."""
    user, password, cur = account
    role = f"hb_r1_{user.rsplit('_', 1)[-1]}"
    cur.execute(f"CREATE ROLE {role}")
    cur.execute(f"GRANT INSERT ON `{mysql_db}`.* TO {role}")
    cur.execute(f"GRANT {role} TO '{user}'@'%'")
    info = _info(user, password, mysql_db)
    assert info.revokes == [f"REVOKE `{role}` FROM `{user}`@`%`"]
    cur.execute(f"SET DEFAULT ROLE {role} FOR '{user}'@'%'")  # active: its grants are read
    info = _info(user, password, mysql_db)
    assert info.revokes == [f"REVOKE INSERT ON `{mysql_db}`.* FROM `{role}`"]
