"""Round 32: a malformed `Date` on a REST answer is no date, not a failed request.

Round 31 read the server's clock from every answer's `Date` header (an httpx response
hook, `rest._date_of`), catching the errors a bad date raises as ValueError or TypeError.
A date whose year is past what the platform holds (`Sun, 06 Dec 99999999999 12:00:00
GMT`, as a broken gateway may write) raises OverflowError, which the hook let out: every
request to the store failed with a bare OverflowError, a read of the runs as much as
`stale_runs`. Now such an answer has no date (`server_time` is None, and `stale_runs`
falls back to this host's clock, as for an answer without a Date).

The REST store is the PostgREST stand-in (`tests/_postgrest.py`) on a real PostgreSQL
database, its answers' Date rewritten as a gateway would; the oracle is plain SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import respx
from sqlalchemy.engine import URL

from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store
from hybridwb.workflows.runner import stale_runs
from tests._postgrest import PostgrestBridge
from tests.test_attack_round31_rest_clock import _running

pytestmark = [pytest.mark.postgres]

BASE = "https://proj.supabase.co"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"


@pytest.fixture
def dsn() -> Iterator[str]:
    name = f"hybridwb_restdate_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = URL.create(
            "postgresql+psycopg", username="postgres", host="127.0.0.1", port=5432, database=name
        )
        store = Store(SqlBackend(url), actor="owner")
        store.init()
        store.close()
        yield f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Gateway(PostgrestBridge):
    """The stand-in behind a gateway that writes its own Date over every answer."""

    def __init__(self, dsn: str, date: str) -> None:
        super().__init__(dsn)
        self.date = date

    def _answer(self, fn: Any) -> httpx.Response:
        response = super()._answer(fn)
        response.headers["date"] = self.date
        return response


@pytest.mark.parametrize(
    "date",
    [
        "Sun, 06 Dec 99999999999 12:00:00 GMT",
        "Sun, 06 Dec 2026 12:00:00 +9999",
        "not a date",
        "Sun, 06 Dec 2026 12:00:00 -0000",
    ],
    ids=["year overflows", "offset too large", "text", "no zone"],
)
def test_a_malformed_date_is_no_date(dsn: str, date: str) -> None:
    """BREAK: with the year past the platform's, every request raised OverflowError."""
    rid = _running(dsn, 1)  # beaten a second ago by the server's clock
    with respx.mock(base_url=BASE + "/rest/v1", assert_all_called=False) as router:
        _Gateway(dsn, date).mount(router)
        backend = RestBackend(BASE, KEY, "SUPABASE_SERVICE_ROLE_KEY", base_delay=0)
        store = Store(backend, actor="t")
        try:
            assert backend.server_time() is None
            assert [str(r["id"]) for r in store.backend.select("workflow_runs", {})] == [rid]
            assert stale_runs(store) == []  # beaten a second ago: live by this host's clock
        finally:
            store.close()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT status FROM workflow_runs").fetchall() == [("running",)]
