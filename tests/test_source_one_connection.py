"""`Source.one_connection()`: several reads on one checkout (a search's probe and its page).

The read-only session is set once when the connection is checked out; every statement
inside is still guarded and bounded on its own, and a statement's own lower cap does not
leak into the next one. The oracle is the server's own per-session counter of SET
statements (since the connection's last reset: every checkin sends one) and a direct count
by pymysql.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pymysql
import pytest

from hybridwb.errors import ReadOnlyViolation
from hybridwb.source import Source
from tests.conftest import ro_url

pytestmark = pytest.mark.mysql

SETS = (
    "SELECT VARIABLE_VALUE AS n FROM information_schema.SESSION_STATUS "
    "WHERE VARIABLE_NAME = 'COM_SET_OPTION'"
)


@pytest.fixture
def source(mysql_db: str) -> Iterator[Source]:
    src = Source(ro_url(mysql_db), statement_timeout=10, pool_size=1)
    yield src
    src.close()


def _sets(src: Source) -> int:
    return int(src.records(SETS)[0]["n"])


def test_reads_inside_share_one_checkout_and_one_session_set(source: Source) -> None:
    _sets(source)
    outside = [_sets(source), _sets(source)]
    # each checkout sets the session again, once, after the reset the checkin sent (which
    # restarts the session's counters), with the login's role before it (round 52)
    assert outside == [2, 2]
    with source.one_connection():
        inside = [_sets(source), _sets(source), _sets(source)]
    assert inside[0] == inside[1] == inside[2]
    assert int(source.records("SELECT @@tx_read_only AS ro")[0]["ro"]) == 1


def test_a_lower_cap_inside_does_not_leak_into_the_next_read(
    source: Source, mysql_db: str, mysql_admin: pymysql.Connection
) -> None:
    with mysql_admin.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{mysql_db}`.customers WHERE customer_id <= 50")
        want = cur.fetchone()[0]
    assert want == 50
    with source.one_connection():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RowsCut: the cap of 1 was meant
            assert len(source.records("SELECT customer_id FROM customers", limit=1)) == 1
        rows = source.records("SELECT customer_id FROM customers WHERE customer_id <= 50")
        assert len(rows) == want
        assert int(source.records("SELECT @@tx_read_only AS ro")[0]["ro"]) == 1


def test_the_session_inside_is_still_read_only_and_guarded(source: Source) -> None:
    with source.one_connection(), pytest.raises(ReadOnlyViolation):
        source.records("DELETE FROM customers WHERE customer_id = 1")
    with source.one_connection():
        assert int(source.records("SELECT @@tx_read_only AS ro")[0]["ro"]) == 1
