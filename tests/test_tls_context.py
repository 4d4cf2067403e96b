"""A new source connection reads no CA bundle: PyMySQL's PREFERRED-mode TLS context (no TLS
option given: TLS if the server offers it, unverified) is made once and shared by every
connection (`rawguard.GuardedPyMySQL._create_ssl_ctx`), with the settings PyMySQL gives its
own; a TLS option given still gets PyMySQL's context. A new context read the system's CA
bundle: 23 ms of CPU a connection, 2.6 ms a connection with it shared.

Oracle: plain PyMySQL's own context for the same (no) options, and object identity."""

from __future__ import annotations

import ssl

import pymysql
import pytest
from sqlalchemy.engine import URL

from hybridwb.source import Source
from hybridwb.source.engine import mysql_connect_args
from tests.conftest import MYSQL_HOST, MYSQL_PORT, ro_url

pytestmark = pytest.mark.mysql


def _raw_connections(url: URL, n: int) -> list[pymysql.connections.Connection]:
    """`n` new DB-API connections of one source (each one a new login)."""
    src = Source(url, use_guard=True, pool_size=1, max_overflow=0)
    out = []
    try:
        for _ in range(n):
            raw = src.engine.raw_connection()
            out.append(raw.dbapi_connection)
            raw.invalidate()
    finally:
        src.close()
    return out


def test_new_source_connections_share_one_preferred_tls_context(mysql_db: str) -> None:
    first, second = _raw_connections(ro_url(mysql_db), 2)
    [other_source] = _raw_connections(ro_url(mysql_db), 1)
    assert first.ctx is second.ctx is other_source.ctx
    plain = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root")
    try:
        # PREFERRED as PyMySQL makes it: TLS not required, the same verification
        assert plain.ctx is not first.ctx
        assert (first._ssl_required, plain._ssl_required) == (False, False)
        for attr in ("verify_mode", "check_hostname", "options", "verify_flags", "protocol"):
            assert getattr(first.ctx, attr) == getattr(plain.ctx, attr), attr
    finally:
        plain.close()


def test_the_side_connections_share_it_too(mysql_db: str) -> None:
    """The unpooled side connections that end a statement past the row cap (`KILL QUERY`)
    are plain, unguarded PyMySQL ones: the same shared context, TLS still not required."""
    first, *_ = _raw_connections(ro_url(mysql_db), 1)
    src = Source(ro_url(mysql_db), use_guard=True, pool_size=1, max_overflow=0)
    try:
        src.engine  # noqa: B018  (makes the side engine too)
        assert src._side_engine is not None
        raw = src._side_engine.raw_connection()
        try:
            side = raw.dbapi_connection
            assert not hasattr(side, "_hybridwb")  # unguarded, as before
            assert side.ctx is first.ctx and side._ssl_required is False
        finally:
            raw.invalidate()
    finally:
        src.close()


def test_a_tls_option_given_gets_pymysqls_own_context() -> None:
    """`ssl_ca`/`ssl_mode` give hybridwb's own context (`mysql_connect_args`), which PyMySQL
    uses as it is; an option dict gets a new context from PyMySQL, not the shared one."""
    from hybridwb.source.rawguard import GuardedPyMySQL

    args = mysql_connect_args(5, 5, None, "REQUIRED")
    given = args["ssl"]
    assert isinstance(given, ssl.SSLContext)
    conn = GuardedPyMySQL.__new__(GuardedPyMySQL)
    assert conn._create_ssl_ctx(given) is given
    shared = conn._create_ssl_ctx({})
    made = conn._create_ssl_ctx({"check_hostname": False, "verify_mode": "optional"})
    assert made is not shared and made.verify_mode == ssl.CERT_OPTIONAL
