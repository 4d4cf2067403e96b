"""`inspect(wb.source.engine).has_table(...)` answers as SQLAlchemy documents it.

SQLAlchemy's MySQL dialect sends `DESCRIBE t` with `skip_user_error_events` and reads the
server's 1146 as "no such table", but it asks only the connection's options whether to
skip the engine's `handle_error` events, so hybridwb's translation turned the answer into a
`QueryError` (round 50's leftover). Other statements' errors are still translated.

Source: a MariaDB database read by the SELECT-only account, both drivers. Oracle: root's
`information_schema.TABLES`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import hybridwb
from hybridwb.errors import QueryError
from tests.conftest import _admin, mariadb_db, sel_url

pytestmark = [pytest.mark.mysql]


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db(
        "hybridwb_has_table", "CREATE TABLE t (a INT)", "CREATE VIEW v AS SELECT a FROM t"
    )


def _root_tables(db: str) -> set[str]:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s", db
            )
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_has_table_says_false_for_a_missing_table_and_true_for_a_real_one(
    db: str, driver: str
) -> None:
    pytest.importorskip("MySQLdb" if driver == "mysqldb" else "pymysql")
    url = sel_url(db).set(drivername=f"mysql+{driver}")
    with hybridwb.connect(source=url.render_as_string(hide_password=False)) as wb:
        inspector = sa.inspect(wb.source.engine)
        asked = {name: inspector.has_table(name) for name in ("t", "v", "missing")}
        with pytest.raises(QueryError, match="doesn't exist"), wb.source.engine.connect() as c:
            c.exec_driver_sql("SELECT a FROM missing")
    truth = _root_tables(db)
    assert asked == {name: name in truth for name in ("t", "v", "missing")}
    assert asked == {"t": True, "v": True, "missing": False}
