"""A read whose connection the server drops mid-query is sent again on a new connection, up
to `READ_ATTEMPTS` tries; one more drop fails it with one line. Real MariaDB: a root thread
kills the read's connection each time the query shows in the processlist (the oracle of
what happened is the kill count and the root's own COUNT, not what the source reports)."""

from __future__ import annotations

import threading
import time
import uuid

import pymysql
import pytest

from hybridwb.errors import ConnectionFailed
from hybridwb.source import Source
from hybridwb.source.source import READ_ATTEMPTS
from tests.conftest import RO_USER, _admin, ro_url

pytestmark = pytest.mark.mysql


class Killer(threading.Thread):
    """Kills the connection running a query that holds `marker`, up to `times` times."""

    def __init__(self, database: str, marker: str, times: int) -> None:
        super().__init__(daemon=True)
        self.database, self.marker, self.times = database, marker, times
        self.killed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn = _admin()
        try:
            with conn.cursor() as cur:
                while self.killed < self.times and not self.stop.is_set():
                    cur.execute(
                        "SELECT id FROM information_schema.PROCESSLIST WHERE user = %s "
                        "AND db = %s AND command = 'Query' AND info LIKE %s",
                        (RO_USER, self.database, f"%{self.marker}%"),
                    )
                    for (conn_id,) in cur.fetchall():
                        try:
                            cur.execute(f"KILL {int(conn_id)}")
                            self.killed += 1
                        except pymysql.err.OperationalError:  # it had ended already
                            pass
                    time.sleep(0.01)
        finally:
            conn.close()


def slow_count(mysql_db: str, kills: int) -> tuple[Killer, object]:
    marker = f"n_{uuid.uuid4().hex[:8]}"
    killer = Killer(mysql_db, marker, kills)
    source = Source(ro_url(mysql_db), statement_timeout=30)
    killer.start()
    try:
        # a cross join of 2,000 customers: long enough (~0.5 s) to be seen and killed
        sql = f"SELECT COUNT(*) AS {marker} FROM customers a JOIN customers b ON a.grade = b.grade"
        try:
            result: object = int(source.sql(sql).iloc[0, 0])
        except ConnectionFailed as exc:
            result = exc
    finally:
        killer.stop.set()
        killer.join()
        source.close()
    return killer, result


def _expected(mysql_db: str) -> int:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT COUNT(*) FROM `{mysql_db}`.customers a "
                f"JOIN `{mysql_db}`.customers b ON a.grade = b.grade"
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_a_read_survives_one_fewer_dropped_connections_than_its_tries(mysql_db: str) -> None:
    killer, result = slow_count(mysql_db, READ_ATTEMPTS - 1)
    assert killer.killed == READ_ATTEMPTS - 1
    assert result == _expected(mysql_db)


def test_a_read_dropped_on_every_try_fails_with_one_line(mysql_db: str) -> None:
    killer, result = slow_count(mysql_db, READ_ATTEMPTS)
    assert killer.killed == READ_ATTEMPTS
    assert isinstance(result, ConnectionFailed), result
    assert "\n" not in str(result) and "run it again" in str(result), str(result)


def test_a_read_ended_by_the_sockets_own_timeout_is_not_sent_again(mysql_db: str) -> None:
    """The client's read timeout also looks like a lost connection; sending the read again
    would only wait that long once more, READ_ATTEMPTS times over."""
    source = Source(ro_url(mysql_db), statement_timeout=4, read_timeout=1)
    marker = f"n_{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionFailed) as info:
            source.sql(f"SELECT COUNT(*) AS {marker} FROM customers a, customers b, customers c")
    finally:
        source.close()
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, f"{elapsed:.1f} s: the read was sent again after its timeout"
    assert "\n" not in str(info.value)
