"""The guard's list of built-in functions, checked on the real server.

The guard admits a call `name(...)` without an allowlist only when `name` is built in. If the
server routed such a call to a stored function of the same name, the guard would admit server
code it cannot see. For every name the guard admits (and every syntax word it lets stand
before "("), a stored function of that name is created with 0 to 4 parameters, each in its
own throwaway database, and the call must never reach it.
"""

from __future__ import annotations

import uuid

import pymysql
import pytest
from pymysql.constants import CLIENT

from hybridwb.errors import HybridwbError
from hybridwb.source import builtins, guard
from tests.conftest import MYSQL_HOST, MYSQL_PORT

pytestmark = pytest.mark.mysql
MARK = 424242


def _calls(arity: int) -> list[tuple[str, str]]:
    args = ", ".join("1" for _ in range(arity))
    out = []
    for name in sorted(builtins.BUILTINS | builtins.SYNTAX):
        sql = f"SELECT {name}({args})"
        try:
            guard.check(sql)
        except HybridwbError:
            continue  # refused (dangerous, or the wrong number of arguments): nothing to prove
        out.append((name, sql))
    return out


@pytest.mark.parametrize("arity", [0, 1, 2, 3, 4])
def test_no_admitted_call_reaches_a_stored_function_of_the_same_name(arity: int) -> None:
    db = f"hb_bi_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(
        ssl_disabled=True,
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user="root",
        autocommit=True,
        client_flag=CLIENT.MULTI_STATEMENTS,
    )
    calls = _calls(arity)
    params = ", ".join(f"p{i} INT" for i in range(arity))
    reached: list[str] = []
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"USE `{db}`")
            create = ";".join(
                f"CREATE FUNCTION `{name.lower()}`({params}) RETURNS INT RETURN {MARK}"
                for name, _ in calls
            )
            cur.execute(create)
            while cur.nextset():
                pass
            for name, sql in calls:
                try:
                    cur.execute(sql)
                    rows = cur.fetchall()
                except pymysql.err.Error:
                    continue  # the server's built-in refused the arguments: no stored code ran
                if any(MARK in row for row in rows):
                    reached.append(name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()
    assert calls, "the guard admitted no call at all"
    assert reached == []
