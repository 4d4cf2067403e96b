"""No password, key or customer value in the store backends' attributes, reprs, errors,
tracebacks with locals (what `%xmode Verbose` or an error reporter prints) or SQL logs."""

from __future__ import annotations

import glob
import logging
import shutil
import socket
import subprocess
import tempfile
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy.engine import URL

from hybridwb.config import load_settings
from hybridwb.errors import AuthError, HybridwbError, StoreError, ValidationError
from hybridwb.platform.backend import Op, SqlBackend
from hybridwb.platform.rest import RestBackend
from hybridwb.platform.store import Store, open_store
from tests._stores import _empty_pg, migrated_sqlite

PASSWORD = "pw-Canary-4417"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.Q2FuYXJ5S2V5"
PHONE = "010-7777-4417"


def with_locals(exc: BaseException) -> str:
    """What a reporter that captures locals shows: every frame of hybridwb's own code and
    every frame of any exception chained to it (the test's own frame is left out: it holds
    the canary on purpose)."""
    te = traceback.TracebackException.from_exception(exc, capture_locals=True)
    ours = [f for f in te.stack if "/hybridwb/" in f.filename and "/tests/" not in f.filename]
    text = "".join(te.format_exception_only())
    text += "".join(repr(f.locals) for f in ours)
    chained = te.__cause__ or (None if te.__suppress_context__ else te.__context__)
    while chained is not None:
        text += "".join(chained.format())
        chained = chained.__cause__ or (
            None if chained.__suppress_context__ else chained.__context__
        )
    return text


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
        url = migrated_sqlite(tmp_path / "platform.db")  # init below seeds it
    else:
        url = request.getfixturevalue("pg_db")
        _empty_pg(url)  # at head, no rows: init below seeds it
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
    """An httpx error raised inside postgrest-py does not travel with ours: not as the
    cause, and not as the context either (reporters walk `__context__` too)."""
    backend = RestBackend("https://proj.supabase.co", KEY, "SUPABASE_ANON_KEY", base_delay=0)
    with respx.mock(assert_all_called=False) as api:
        api.get(url__regex=r".*/workflows.*").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(StoreError) as info:
            Store(backend).workflows.list()
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert KEY not in with_locals(info.value)


# -- password authentication really on: a private PostgreSQL with scram-sha-256 ----------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def scram_pg() -> Iterator[int]:
    """A private PostgreSQL (own data directory and port) that checks passwords; the
    shared server (trust authentication) is never touched."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins or shutil.which("runuser") is None:
        pytest.skip("initdb/runuser not available for a private PostgreSQL")
    bindir = Path(bins[-1]).parent
    home = Path(tempfile.mkdtemp(prefix="hybridwb_scram_"))
    (home / "pw").write_text("admin-pw-123\n")
    shutil.chown(home, "postgres")
    shutil.chown(home / "pw", "postgres")
    port = _free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_pg, str(bindir / "initdb"), "-D", str(home / "data"), "-U", "postgres",
         "-A", "scram-sha-256", f"--pwfile={home / 'pw'}"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*as_pg, str(bindir / "pg_ctl"), "-D", str(home / "data"), "-w", "-l",
         str(home / "log"), "-o", f"-p {port} -k {home} -c listen_addresses=127.0.0.1", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres password=admin-pw-123 dbname=postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f"CREATE ROLE canary LOGIN PASSWORD '{PASSWORD}'")
            for role in ("anon", "authenticated"):  # Supabase's roles exist already there
                conn.execute(f"CREATE ROLE {role} NOLOGIN")
            conn.execute("CREATE ROLE service_role NOLOGIN BYPASSRLS")
            conn.execute("CREATE DATABASE canary OWNER canary")
        yield port
    finally:
        subprocess.run(
            [*as_pg, str(bindir / "pg_ctl"), "-D", str(home / "data"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.postgres
@pytest.mark.parametrize("route", ["HYBRIDWB_STORE_URL", "SUPABASE_DB_URL"])
def test_a_wrong_password_is_an_auth_error_that_shows_no_password(
    scram_pg: int, route: str
) -> None:
    wrong = PASSWORD[::-1]
    env = {route: f"postgresql://canary:{wrong}@127.0.0.1:{scram_pg}/canary"}
    store = open_store(load_settings(env=env))
    with pytest.raises(AuthError, match="refused the login") as info:
        store.workflows.list()
    text = str(info.value) + with_locals(info.value) + repr(store.backend)
    assert wrong not in text and PASSWORD not in text
    assert "\n" not in str(info.value)


@pytest.mark.postgres
def test_the_right_password_works_and_stays_out_of_every_repr(scram_pg: int) -> None:
    env = {
        "HYBRIDWB_STORE_URL": f"postgresql+psycopg://canary:{PASSWORD}@127.0.0.1:{scram_pg}/canary"
    }
    store = open_store(load_settings(env=env))
    store.init()
    store.workflows.create(name="w")
    assert [w["name"] for w in store.workflows.list()] == ["w"]
    assert PASSWORD not in everything_about(store.backend) + repr(store)
    with pytest.raises(StoreError) as info:
        store.sql("SELECT * FROM no_such_table")
    assert PASSWORD not in with_locals(info.value)
    store.close()
