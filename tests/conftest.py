"""Shared fixtures: a clean environment, the sample shop on SQLite and on real MariaDB."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import realshop  # tests/realshop.py (pytest puts tests/ on sys.path: no __init__.py)
from _browser_gate import (  # noqa: F401  (hooks: pytest finds them by name in a conftest)
    pytest_runtest_logreport,
)
from _browser_gate import pytest_sessionfinish as _browser_gate_sessionfinish
from sqlalchemy.engine import URL

from hybridwb.source.sample import build_sqlite, load

MYSQL_HOST = os.environ.get("HYBRIDWB_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("HYBRIDWB_TEST_MYSQL_PORT", "3306"))
RO_USER = os.environ.get("HYBRIDWB_TEST_MYSQL_RO_USER", "hybridwb_ro")
RO_PASSWORD = os.environ.get("HYBRIDWB_TEST_MYSQL_RO_PASSWORD", "hybridwb_ro_pw")
# SELECT and nothing else (no SHOW VIEW): what a production read account really has
SEL_USER = os.environ.get("HYBRIDWB_TEST_MYSQL_SEL_USER", "hybridwb_sel")
SEL_PASSWORD = os.environ.get("HYBRIDWB_TEST_MYSQL_SEL_PASSWORD", "hybridwb_sel_pw")
REALSHOP_CUSTOMERS = 2000
PG_URL = os.environ.get("HYBRIDWB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/")
CLEARED_PREFIXES = ("MYSQL_", "SUPABASE_", "HYBRIDWB_", "NEXT_PUBLIC_SUPABASE_")
SAMPLE_CUSTOMERS = 2000


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's configuration; each works in its own directory."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) and not name.startswith("HYBRIDWB_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def store_templates_dropped() -> Iterator[None]:
    """The migrated store templates a worker made (`_stores.pg_template`), dropped at its end
    (the helpers are imported both as `_stores` and as `tests._stores`: two modules)."""
    yield
    import sys

    for name in ("_stores", "tests._stores"):
        if name in sys.modules:
            sys.modules[name].drop_templates()


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "sample.db"
    build_sqlite(path, SAMPLE_CUSTOMERS)
    return path


def _admin() -> pymysql.Connection:
    try:
        return pymysql.connect(
            ssl_disabled=True,
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user="root",
            password="",
            charset="utf8mb4",
            autocommit=True,
        )
    except pymysql.err.OperationalError as exc:  # pragma: no cover - the set-up script prevents it
        pytest.fail(
            f"MariaDB is not reachable at {MYSQL_HOST}:{MYSQL_PORT} ({exc}); run `make services`."
        )


def account_url(database: str, user: str = "root", password: str | None = None) -> URL:
    """A PyMySQL URL of the shared MariaDB for `user` (utf8mb4)."""
    return URL.create(
        "mysql+pymysql",
        username=user,
        password=password,
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        database=database,
        query={"charset": "utf8mb4"},
    )


def admin_url(database: str) -> URL:
    return account_url(database)


def ro_url(database: str) -> URL:
    return account_url(database, RO_USER, RO_PASSWORD)


def sel_url(database: str) -> URL:
    """The SELECT-only account (GRANT SELECT ON `hybridwb\\_%`.* and nothing else)."""
    return account_url(database, SEL_USER, SEL_PASSWORD)


def ensure_select_only_account(conn: pymysql.Connection) -> None:
    """Create the SELECT-only test account when scripts/services.sh has not (idempotent)."""
    with conn.cursor() as cur:
        for host in ("%", "localhost"):
            cur.execute(
                "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (SEL_USER, host, SEL_PASSWORD)
            )
            cur.execute("GRANT SELECT ON `hybridwb\\_%%`.* TO %s@%s", (SEL_USER, host))


@pytest.fixture(scope="session")
def realshop_db() -> Iterator[str]:
    """A MariaDB database with the Sakila-like realshop (tests/realshop.py), read through
    `sel_url(name)`; created for this test session and dropped after."""
    name = f"hybridwb_r_{uuid.uuid4().hex[:8]}"
    conn = _admin()
    ensure_select_only_account(conn)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        realshop.build(conn, name, REALSHOP_CUSTOMERS)
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture(scope="session")
def mysql_db() -> Iterator[str]:
    """A MariaDB database with the sample shop, created for this test session and dropped after.
    Files on one worker share it: a test that needs the shop exactly as built (nothing another
    file added) takes `fresh_mysql_db`."""
    yield from sample_database()


@pytest.fixture
def fresh_mysql_db() -> Iterator[str]:
    """A MariaDB database with the sample shop for this one test, dropped after."""
    yield from sample_database()


def sample_database() -> Iterator[str]:
    name = f"hybridwb_t_{uuid.uuid4().hex[:8]}"
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        load(admin_url(name), SAMPLE_CUSTOMERS)
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def mysql_admin() -> Iterator[pymysql.Connection]:
    conn = _admin()
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def pg_db() -> Iterator[URL]:
    """A PostgreSQL database for this test session, dropped after."""
    import psycopg

    name = f"hybridwb_t_{uuid.uuid4().hex[:8]}"
    base = URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=5432)
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name)
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def shop(sample_db: Path, tmp_path: Path) -> Iterator[object]:
    """A workbench on the SQLite sample with the shipped mapping file, in a fresh directory."""
    import shutil

    import hybridwb

    (tmp_path / ".hybridwb").mkdir(exist_ok=True)
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    (tmp_path / "mappings").mkdir(exist_ok=True)
    shutil.copy(
        REPO / "mappings" / "table-mappings.json", tmp_path / "mappings" / "table-mappings.json"
    )
    wb = hybridwb.connect()
    yield wb
    wb.close()


# -- private servers (fault and secrets tiers) -----------------------------------------------
# Canary secrets: distinctive, URL-safe strings that must never appear in any output.
MYSQL_CANARY = "myCanary7Q2xZ9pw"
PG_CANARY = "pgCanary4K8wV1pw"
PRIVATE_RO_USER = "hwb_canary_ro"
PRIVATE_STORE_ROLE = "hwb_canary_store"


@pytest.fixture(scope="session")
def private_mariadb() -> Iterator[object]:
    """A private MariaDB with the sample shop in `shop` and a password-only read account.

    Tests may stop, kill and restart it; it is destroyed at the end of the session.
    """
    from tests._servers import PrivateMariaDB, private_servers_available

    reason = private_servers_available()
    if reason:
        pytest.fail(f"cannot start private servers: {reason}")
    server = PrivateMariaDB()
    try:
        server.install()
        server.start()
        server.execute(
            "CREATE DATABASE shop CHARACTER SET utf8mb4",
            "CREATE USER 'hwb_admin'@'127.0.0.1'",
            "GRANT ALL ON *.* TO 'hwb_admin'@'127.0.0.1'",
            f"CREATE USER '{PRIVATE_RO_USER}'@'127.0.0.1' IDENTIFIED BY '{MYSQL_CANARY}'",
            f"GRANT SELECT, SHOW VIEW ON shop.* TO '{PRIVATE_RO_USER}'@'127.0.0.1'",
        )
        load(server.url("hwb_admin", None, "shop"), SAMPLE_CUSTOMERS)
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def private_pg() -> Iterator[object]:
    """A private PostgreSQL: `postgres` trusted, every other role scram-sha-256."""
    from tests._servers import PrivatePostgres, private_servers_available

    reason = private_servers_available()
    if reason:
        pytest.fail(f"cannot start private servers: {reason}")
    server = PrivatePostgres()
    try:
        server.install()
        server.start()
        server.execute(
            f"CREATE ROLE {PRIVATE_STORE_ROLE} LOGIN PASSWORD '{PG_CANARY}'",
            "CREATE ROLE anon NOLOGIN",
            "CREATE ROLE authenticated NOLOGIN",
            "CREATE ROLE service_role NOLOGIN BYPASSRLS",
        )
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_store(private_pg) -> Iterator[URL]:  # type: ignore[no-untyped-def]
    """A fresh store database on the private PostgreSQL, owned by the password role."""
    name = f"store_{uuid.uuid4().hex[:8]}"
    private_pg.start()  # a previous test may have left it stopped
    private_pg.execute(f'CREATE DATABASE "{name}" OWNER {PRIVATE_STORE_ROLE}')
    try:
        yield private_pg.url(PRIVATE_STORE_ROLE, PG_CANARY, name)
    finally:
        private_pg.start()
        private_pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def install_sample_mappings(root: Path, source_url: URL | None = None) -> Path:
    """The repository's sample-shop mappings, installed for the sample or — for the sample
    shop loaded into MariaDB — stamped as that database's (mappings belong to one source)."""
    import json

    from hybridwb.mapping.model import SOURCE_KEY
    from hybridwb.mapping.service import SAMPLE, source_identity
    from hybridwb.source import Source

    data = json.loads((REPO / "mappings" / "table-mappings.json").read_text(encoding="utf-8"))
    identity = SAMPLE
    if source_url is not None:
        source = Source(source_url)
        try:
            identity = source_identity(source)
        finally:
            source.close()  # an unclosed pool is a ResourceWarning (an error in this suite)
    if identity != SAMPLE:
        data = {SOURCE_KEY: identity, **data}
    path = root / "mappings" / "table-mappings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def mariadb_db(
    prefix: str, *ddl: str, rows: dict[str, list[tuple[Any, ...]]] | None = None
) -> Iterator[str]:
    """A fixture body for one database (`mariadb_maker`'s): `yield from mariadb_db(prefix,
    *DDL, rows=ROWS)` -> its name; dropped after."""
    maker = mariadb_maker(prefix)
    make = next(maker)
    try:
        yield make(*ddl, rows=rows)
    finally:
        maker.close()


def mariadb_maker(prefix: str) -> Iterator[Callable[..., str]]:
    """A fixture body: `make(*statements, rows={table: [tuple, ...]})` -> the name of a fresh
    MariaDB database built with those statements and rows; every one is dropped after.
    The SELECT-only account production has is made sure of first."""
    made: list[str] = []
    conn = _admin()
    ensure_select_only_account(conn)

    def make(*ddl: str, rows: dict[str, list[tuple[Any, ...]]] | None = None) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        made.append(name)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{name}`")
            for stmt in ddl:
                cur.execute(stmt)
            for table, values in (rows or {}).items():
                marks = ", ".join(["%s"] * len(values[0]))
                cur.executemany(f"INSERT INTO `{table}` VALUES ({marks})", values)
        conn.commit()
        return name

    try:
        yield make
    finally:
        with conn.cursor() as cur:
            for name in made:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def sigint_interrupts() -> Iterator[None]:
    """A SIGINT raises KeyboardInterrupt during the test (what Ctrl-C does in a kernel or
    a shell), whatever handler an earlier test's library left in this process: a test of
    what an interrupt does must not pass or fail by the order tests ran in."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


#: the test files that keep one worker longest (seconds in `--junitxml`'s times, 4 workers,
#: 2026-12-06: 196, 174, 153, 129, 118, 81, 78, 70, 63, 57), handed out first: `make test`
#: runs them with `--dist loadfile --no-loadscope-reorder`, so the files that start last are
#: short ones and the workers end together (xdist's own order, most tests first, left the
#: fault, canary and browser files, few tests each, for the end)
SLOWEST_FIRST = (
    "faults/test_run_faults.py",
    "test_secrets_canary.py",
    "test_attack_stream_round18.py",
    "test_campaign_runs.py",
    "test_attack_described_round17.py",
    "test_attack_store_steps.py",
    "test_guides.py",
    "test_browser_analyst.py",
    "test_attack_search_pages.py",
    "test_workflows.py",
)
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first, each file's tests in their own order (a stable sort)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}

    def key(item: pytest.Item) -> int:
        try:
            return rank.get(item.path.relative_to(_TESTS).as_posix(), len(rank))
        except ValueError:  # a file outside tests/ (a test that runs pytest on its own)
            return len(rank)

    items.sort(key=key)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _browser_gate_sessionfinish(session, exitstatus)
    _drop_shell_exit_hooks()


def _drop_shell_exit_hooks() -> None:
    """Each IPython shell the tests made registered `atexit_operations`, whose `reset` ends
    in `gc.collect()`: one full collection of this worker's heap per shell as the process
    exits (seconds each, and the run waits for its workers to exit). The shells' user
    namespaces die with the process anyway; their history is in memory."""
    import atexit
    import gc
    import sys

    shells = sys.modules.get("IPython.core.interactiveshell")
    if shells is None:
        return
    for obj in gc.get_objects():
        if isinstance(obj, shells.InteractiveShell):
            atexit.unregister(obj.atexit_operations)
