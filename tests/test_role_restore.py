# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""The login's role comes back after every reset (round 48's break 1, fixed).

MariaDB's COM_RESET_CONNECTION keeps the security context: a role an INVOKER function set
(`SET ROLE r`, or `SET ROLE NONE` dropping the login's default role) outlived the reset,
and the pool's next reads on the connection ran with other privileges than the login's.
For an account with roles, the statement that puts the login's role back follows every
reset (`drivers.remember_role`): in the checkin's write, after the reset a checkout makes
itself (`reset_now`), and after the reset of a connection kept checked out (the engine's
`reset_session`).

Oracle: what root granted. The login's default role `d` reads a database of its own, the
other granted role `o` another one; the next read after the function must read `d`'s
table and be refused `o`'s, exactly as a fresh login.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pytest

from hybridwb.errors import HybridwbError
from hybridwb.source import Source, drivers
from tests._mysql import as_root, root
from tests.test_attack_round27_reconnect import (  # noqa: F401
    source_url,
    writer,
)
from tests.test_attack_round47_readonly import DRIVERS
from tests.test_fastpath import GeneralLog

pytestmark = pytest.mark.mysql

#: and mysqlclient on a compressed connection: not a plain socket, so the C library's
#: `mysql_reset_connection` resets, waiting, and the role's statement follows it
ROLE_DRIVERS = [*DRIVERS, "mysqldb-compressed"]


def _source(db: str, user: str, password: str, driver: str) -> Source:
    url = source_url(db, user, password, driver.removesuffix("-compressed"))
    if driver.endswith("-compressed"):
        url = url.update_query_dict({"compress": "true"})
    return Source(url, pool_size=2, max_overflow=0)


#: role names the restore must quote: plain, a backtick, Hangul (utf-8 in the packet)
NAMES = ["plain", "tick`name", "역할"]


@pytest.fixture(params=NAMES)
def roles(request: pytest.FixtureRequest, writer: tuple[str, str, str]) -> Iterator[dict]:
    """The account's default role `d` (SELECT on `<db>_d`) and another granted role `o`
    (SELECT on `<db>_o`); the account itself reads neither database."""
    db, user, _ = writer
    tag = secrets.token_hex(3)
    d, o = f"{request.param}_d{tag}", f"r_o{tag}"
    qd, qo = "`" + d.replace("`", "``") + "`", f"`{o}`"
    as_root(
        f"CREATE DATABASE `{db}_d`",
        f"CREATE TABLE `{db}_d`.s (v INT)",
        f"INSERT INTO `{db}_d`.s VALUES (7)",
        f"CREATE DATABASE `{db}_o`",
        f"CREATE TABLE `{db}_o`.s (v INT)",
        f"INSERT INTO `{db}_o`.s VALUES (42)",
        f"CREATE ROLE {qd}",
        f"CREATE ROLE {qo}",
        f"GRANT SELECT ON `{db}_d`.* TO {qd}",
        f"GRANT SELECT ON `{db}_o`.* TO {qo}",
        f"GRANT {qd} TO '{user}'@'%'",
        f"GRANT {qo} TO '{user}'@'%'",
        f"SET DEFAULT ROLE {qd} FOR '{user}'@'%'",
    )
    try:
        yield {"d": qd, "o": qo, "d_db": f"{db}_d", "o_db": f"{db}_o"}
    finally:
        as_root(
            f"DROP ROLE IF EXISTS {qd}",
            f"DROP ROLE IF EXISTS {qo}",
            f"DROP DATABASE IF EXISTS `{db}_d`",
            f"DROP DATABASE IF EXISTS `{db}_o`",
        )


def _readable(src: Source, database: str) -> bool:
    try:
        return src.records(f"SELECT v FROM `{database}`.s") != []
    except HybridwbError:
        return False


def _first_reads(src: Source, roles: dict) -> tuple[bool, bool]:
    """Whether d's table, then o's, can be read as the first statements of one checkout
    (a DB-API cursor: no catalogue read, no reset of the engine's between them)."""
    raw = src.engine.raw_connection()
    seen = []
    try:
        for database in (roles["d_db"], roles["o_db"]):
            cursor = raw.cursor()
            try:
                cursor.execute(f"SELECT v FROM `{database}`.s")
                seen.append(bool(cursor.fetchall()))
            except Exception:
                seen.append(False)
            finally:
                cursor.close()
    finally:
        raw.close()
    return seen[0], seen[1]


def _view(db: str, body: str) -> None:
    as_root(
        f"CREATE FUNCTION `{db}`.meddle() RETURNS INT SQL SECURITY INVOKER "
        f"BEGIN {body}; RETURN 1; END",
        f"CREATE SQL SECURITY INVOKER VIEW `{db}`.t2 AS SELECT `{db}`.meddle() AS x",
    )


def _replaced(db: str, src: Source, body: str) -> None:
    """`t2` read once as a base table, then replaced by root with the function's view:
    only the checkin's reset stands between the function and the next read."""
    as_root(f"CREATE TABLE `{db}`.t2 (x INT)", f"INSERT INTO `{db}`.t2 VALUES (1)")
    assert src.records("SELECT x FROM t2") == [{"x": 1}]
    as_root(f"DROP TABLE `{db}`.t2")
    _view(db, body)


@pytest.mark.parametrize("driver", ROLE_DRIVERS)
@pytest.mark.parametrize("set_to", ["other", "none"])
@pytest.mark.parametrize("path", ["checkin", "checkout", "kept"])
def test_the_next_read_has_the_logins_role(
    writer: tuple[str, str, str], roles: dict, driver: str, set_to: str, path: str
) -> None:
    """The function sets another granted role, or none; the next read on the same pool has
    the login's default role and no other. `checkin`: the reset sent at checkin; `checkout`:
    the checkin could send nothing, the checkout resets, waiting (`reset_now`); `kept`: one
    engine connection kept checked out across the statements (jupysql)."""
    db = writer[0]
    body = f"SET ROLE {roles['o']}" if set_to == "other" else "SET ROLE NONE"
    fresh = _source(*writer, driver=driver)
    if driver.endswith("-compressed"):  # the path this case is for
        raw = fresh.engine.raw_connection()
        try:
            assert not drivers._plain_socket(raw.dbapi_connection)
        finally:
            raw.close()
    try:  # the oracle: a fresh login reads d's table and not o's
        assert (_readable(fresh, roles["d_db"]), _readable(fresh, roles["o_db"])) == (True, False)
    finally:
        fresh.close()
    src = _source(*writer, driver=driver)
    seen: list[tuple[bool, bool]] = []
    try:
        src._parking.clear()
        src._parking.enabled = False
        if path == "kept":
            _view(db, body)
            with src.engine.connect() as conn:
                with contextlib.suppress(HybridwbError):
                    conn.exec_driver_sql("SELECT x FROM t2").all()
                for database in (roles["d_db"], roles["o_db"]):
                    try:
                        conn.exec_driver_sql(f"SELECT v FROM `{database}`.s").all()
                        seen.append((database == roles["d_db"], True))
                    except HybridwbError:
                        seen.append((database == roles["d_db"], False))
            assert seen == [(True, True), (False, False)]
            return
        _replaced(db, src, body)
        if path == "checkout":
            sent = drivers.send_only

            def nothing_at_checkin(raw: object, sql: str, *, reset: bool = False) -> bool:
                return False if reset else sent(raw, sql, reset=reset)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(drivers, "send_only", nothing_at_checkin)
                with contextlib.suppress(HybridwbError):
                    src.records("SELECT x FROM t2")
        else:
            with contextlib.suppress(HybridwbError):
                src.records("SELECT x FROM t2")
        for _ in range(3):  # every pooled connection the next reads may take
            seen.append(_first_reads(src, roles))
    finally:
        src.close()
    assert seen == [(True, False)] * 3


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_account_with_no_role_sends_no_role_statement(
    writer: tuple[str, str, str], driver: str
) -> None:
    """The restore costs nothing on an account that has no role (it can set none): the
    general log of the connection's thread shows no `SET ROLE` across checkins."""
    src = _source(*writer, driver=driver)
    try:
        src._parking.clear()
        src._parking.enabled = False
        with src.engine.connect() as conn:
            thread = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        admin = root()
        try:
            with GeneralLog(admin) as log:
                for _ in range(3):
                    assert src.records("SELECT a FROM t ORDER BY a") == [{"a": 1}, {"a": 2}]
        finally:
            admin.close()
    finally:
        src.close()
    lines = [text for t, _, text in log.entries if t == thread]
    assert len([line for line in lines if "SELECT a FROM t" in line]) == 3
    assert not [line for line in lines if "SET ROLE" in line.upper()]
