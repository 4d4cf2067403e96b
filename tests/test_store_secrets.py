"""No password, key or customer value in the store backends' attributes, reprs, errors,
tracebacks with locals (what `%xmode Verbose` or an error reporter prints) or SQL logs."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy.engine import URL

from hybridwb.errors import HybridwbError, StoreError, ValidationError
from hybridwb.platform.backend import Op, SqlBackend
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store
from tests.test_store import _reset_pg

PASSWORD = "pw-Canary-4417"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.Q2FuYXJ5S2V5"
PHONE = "010-7777-4417"


def with_locals(exc: BaseException) -> str:
    """The traceback as a reporter that captures locals renders it (chain included)."""
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def everything_about(obj: object) -> str:
    return repr(obj) + repr(vars(obj)) + str(obj)


@pytest.mark.parametrize(
    "url",
    [
        URL.create("postgresql+psycopg", "u", PASSWORD, "127.0.0.1", 1, "db"),
        URL.create("sqlite", database="x.db"),
    ],
    ids=["postgres", "sqlite"],
)
def test_sql_backend_keeps_no_secret_in_plain_attributes(url: URL) -> None:
    backend = SqlBackend(url, [PASSWORD, KEY])
    assert PASSWORD not in everything_about(backend) and KEY not in everything_about(backend)
    assert not [v for v in vars(backend).values() if isinstance(v, str) and PASSWORD in v]
    assert backend.url.password is None


@pytest.mark.postgres
def test_an_unreachable_store_leaves_no_password_in_a_traceback_with_locals() -> None:
    url = URL.create("postgresql+psycopg", "u", PASSWORD, "127.0.0.1", 1, "db")
    store = Store(SqlBackend(url, base_delay=0))
    with pytest.raises(StoreError) as info:
        store.workflows.list()
    assert PASSWORD not in with_locals(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert info.value.cause == "OperationalError"  # type: ignore[attr-defined]


def test_rest_backend_keeps_the_key_and_userinfo_out_of_attributes_and_errors() -> None:
    backend = RestBackend(
        f"https://admin:{PASSWORD}@proj.supabase.co", KEY, "SUPABASE_SERVICE_ROLE_KEY",
        base_delay=0,
    )  # fmt: skip
    assert KEY not in everything_about(backend)
    assert PASSWORD not in repr(backend) and "admin" not in repr(backend)
    with respx.mock(assert_all_called=False) as api:
        api.get(url__regex=r".*/rest/v1/workflows.*").respond(
            400, json={"code": "22P02", "message": f"bad value near {KEY}"}
        )
        with pytest.raises(HybridwbError) as info:
            Store(backend).workflows.list()
    assert KEY not in str(info.value)
    assert KEY not in with_locals(info.value)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = URL.create("sqlite", database=str(tmp_path / "platform.db"))
    else:
        url = request.getfixturevalue("pg_db")
        _reset_pg(url)
    st = Store(SqlBackend(url), actor="tester")
    st.init()
    yield st
    st.close()


def test_a_failed_write_shows_no_customer_value_in_the_error_or_the_sql_log(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    wf = store.workflows.create(name="w")
    run = store.runs.create(wf["id"])
    record = {
        "id": uuid.uuid4(),
        "run_id": run["id"],
        "workflow_id": wf["id"],
        "target_key": "1",
        "recipient": PHONE,
        "channel": None,  # NOT NULL: Postgres's detail would list the whole failing row
        "status": "queued",
    }
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    with pytest.raises(ValidationError) as info:
        store.backend.apply([Op("insert", "send_records", record)])
    assert PHONE not in str(info.value)
    assert PHONE not in caplog.text
    assert "INSERT INTO send_records" in caplog.text  # the log was on: parameters hidden


@pytest.mark.postgres
def test_a_failed_read_echoes_no_literal_from_the_statement(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    with pytest.raises(StoreError) as info:
        store.sql("SELECT * FROM workflows WHERE name = :p::int", {"p": PHONE})
    assert PHONE not in str(info.value) and PHONE not in caplog.text


def test_a_rest_error_never_holds_the_client(tmp_path: Path) -> None:
    """An httpx error raised inside supabase-py does not travel with ours."""
    backend = RestBackend("https://proj.supabase.co", KEY, "SUPABASE_ANON_KEY", base_delay=0)
    with respx.mock(assert_all_called=False) as api:
        api.get(url__regex=r".*/workflows.*").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(StoreError) as info:
            Store(backend).workflows.list()
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert KEY not in with_locals(info.value)
