"""A throwaway MariaDB database for tests that count what the server sees (shared by the
round-trip, parked-connection and parked-attack tests)."""

from __future__ import annotations

import contextlib
import secrets
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pymysql

from tests.conftest import MYSQL_HOST, MYSQL_PORT


def root() -> pymysql.Connection:
    """A root connection to the shared server, autocommit on."""
    return pymysql.connect(
        ssl_disabled=True, host=MYSQL_HOST, port=MYSQL_PORT, user="root", autocommit=True
    )


def plain_root(
    database: str,
    *,
    host: str = MYSQL_HOST,
    port: int = MYSQL_PORT,
    charset: str = "utf8mb4",
    **options: object,
) -> pymysql.Connection:
    """A plain PyMySQL connection as root to `database` on the shared server, utf8mb4,
    without TLS (the server offers none; PyMySQL's PREFERRED default reads the system's
    CA bundle for every connection, 23 ms of CPU): an oracle's, never hybridwb's."""
    return pymysql.connect(
        ssl_disabled=True,
        host=host,
        port=port,
        user="root",
        database=database,
        charset=charset,
        **options,  # type: ignore[arg-type]
    )


def as_root(*statements: str) -> None:
    """Run `statements` on a root connection (autocommit on), then close it."""
    conn = root()
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


@contextlib.contextmanager
def root_cursor(db: str) -> Iterator[pymysql.cursors.Cursor]:
    """A cursor of a root connection in `db`, autocommit on; closed after."""
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE `{db}`")
            yield cur
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_db(prefix: str, rows: int) -> Iterator[str]:
    """A database `hybridwb_<prefix>_<random>` with a table `t (a INT)` holding 1..rows,
    dropped after."""
    name = f"hybridwb_{prefix}_{secrets.token_hex(4)}"
    conn = root()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.t (a INT) ENGINE=InnoDB")
        values = ", ".join(f"({i})" for i in range(1, rows + 1))
        cur.execute(f"INSERT INTO `{name}`.t VALUES {values}")
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            # connections a test left in its database (a relay's, a killed read's driver
            # objects not yet collected) go with it: tests of a worker share the
            # server's connection limit
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                (name,),
            )
            for (thread,) in cur.fetchall():
                with contextlib.suppress(pymysql.err.OperationalError):  # ended meanwhile
                    cur.execute(f"KILL CONNECTION {int(thread)}")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def row_count(db: str) -> int:
    """How many rows `db`.t holds, as root sees them (the oracle for a write that got
    through)."""
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{db}`.t")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


@contextlib.contextmanager
def no_streamed_result_left_active() -> Iterator[None]:
    """Every PyMySQL result made inside is left inactive at the end. Plain PyMySQL leaves a
    streamed result active after a killed or damaged connection, and its `__del__` then
    reads from the closed socket wherever the collector next runs, in another file's test
    (a full run failed an unrelated test so). The results made here are tracked as they are
    made (weakly), not found by scanning the heap: `gc.collect()` and `gc.get_objects()`
    after each test cost a worker holding every test module about 0.3 s a test."""
    made: weakref.WeakSet[pymysql.connections.MySQLResult] = weakref.WeakSet()
    cls = pymysql.connections.MySQLResult
    init = cls.__init__

    def tracked(self: pymysql.connections.MySQLResult, connection: object) -> None:
        init(self, connection)  # type: ignore[arg-type]
        made.add(self)

    cls.__init__ = tracked  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls.__init__ = init  # type: ignore[method-assign]
        for result in list(made):
            if result.unbuffered_active:
                result.unbuffered_active = False


def scratch_fixtures(prefix: str, rows: int) -> tuple[Any, Any]:
    """The `db` (a module's `scratch_db`) and `source` (a read-only `Source` on it per test)
    fixtures, for a test module to take as `db, source = scratch_fixtures(...)`."""
    import pytest

    from hybridwb.source.source import Source
    from tests.conftest import ro_url

    @pytest.fixture(scope="module")
    def db() -> Iterator[str]:
        with scratch_db(prefix, rows) as name:
            yield name

    @pytest.fixture
    def source(db: str) -> Iterator[Source]:
        src = Source(ro_url(db))
        yield src
        src.close()

    return db, source


@contextlib.contextmanager
def select_only_url(db: str, tag: str) -> Iterator[str]:
    """The URL of an account made here holding SELECT on `db` and nothing else (checked
    with SHOW GRANTS), dropped after: what a real-schema attack reads through."""
    import uuid

    from tests.conftest import account_url

    user, password = f"hwb_{tag}_{uuid.uuid4().hex[:6]}", secrets.token_hex(8)
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT SELECT ON `{db}`.* TO '{user}'@'%'")
            cur.execute(f"SHOW GRANTS FOR '{user}'@'%'")
            grants = [g for (g,) in cur.fetchall()]
        assert len(grants) == 2 and "GRANT SELECT ON" in grants[1], grants
        yield account_url(db, user, password).render_as_string(hide_password=False)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        conn.close()


class GeneralLog:
    """The server's general_log, on for the `with` block: `.entries` then holds
    (thread, command, text) of every statement the server logged meanwhile, but for
    this admin connection's own (the log's own read is never in it)."""

    def __init__(self, admin: pymysql.Connection) -> None:
        self.admin = admin
        self.entries: list[tuple[int, str, str]] = []

    def __enter__(self) -> GeneralLog:
        with self.admin.cursor() as cur:
            # one user of the server's global log at a time (another xdist worker's exit
            # would switch it off under this block)
            cur.execute("SELECT GET_LOCK('hybridwb_tests_general_log', 120)")
            assert cur.fetchone()[0] == 1, "another test held the general log for 120 s"
            cur.execute("SELECT @@general_log, @@log_output, NOW(6), CONNECTION_ID()")
            *self.saved, self.own = cur.fetchone()
            cur.execute("SET GLOBAL log_output = 'TABLE', general_log = 1")
        return self

    def __exit__(self, *exc: object) -> None:
        on, output, since = self.saved
        with self.admin.cursor() as cur:
            cur.execute("SET GLOBAL general_log = %s, log_output = %s", (on, output))
            cur.execute(
                "SELECT thread_id, command_type, CONVERT(argument USING utf8mb4) "
                "FROM mysql.general_log WHERE event_time >= %s AND thread_id <> %s "
                "ORDER BY event_time",
                (since, self.own),
            )
            self.entries = [(int(t), str(c), str(a)) for t, c, a in cur.fetchall()]
            cur.execute("DO RELEASE_LOCK('hybridwb_tests_general_log')")

    def with_marker(self, marker: str) -> list[tuple[str, str]]:
        return [(c, a) for _, c, a in self.entries if marker in a]

    def thread_of(self, marker: str) -> list[tuple[str, str]]:
        """Everything logged on the connection(s) that sent `marker`."""
        threads = {t for t, _, a in self.entries if marker in a}
        return [(c, a) for t, c, a in self.entries if t in threads]


def read_while_still(
    direct: Callable[[], list[tuple[Any, ...]]],
    through: Callable[[], list[tuple[Any, ...]]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(want, got): the oracle's rows and the code under test's rows, taken while the server's
    answer held still. `SHOW GRANTS` as root lists the roles other xdist workers create
    meanwhile (a role is granted to its creator), so the oracle reads before and after, and a
    pair that differs is read again after a growing pause (up to 10 s in all)."""
    for attempt in range(20):
        want, got, again = direct(), through(), direct()
        if want == again:
            return want, got
        time.sleep(0.05 * attempt)
    raise AssertionError("the server's answer changed on every one of 20 tries")


def threads_left(thread_id: int, within: float = 5.0) -> int:
    """How many server threads have `thread_id` once it is gone or `within` seconds have
    passed (root's processlist). A client's close only shuts its socket: the server's
    thread notices and ends a moment later, later still on a loaded machine."""
    deadline = time.monotonic() + within
    conn = root()
    try:
        with conn.cursor() as cur:
            while True:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
                    (int(thread_id),),
                )
                left = int(cur.fetchone()[0])
                if not left or time.monotonic() > deadline:
                    return left
                time.sleep(0.02)
    finally:
        conn.close()
