"""A private mariadbd never touches the shared server's temporary tables.

At start mariadbd deletes every `#sql*` file in its tmpdir. With the default tmpdir (/tmp)
a private server started by one test deleted the shared server's live temporary tables
under another test's query (a CI run failed with "Error on delete of
'/tmp/#sql-temptable-….MAI' (Errcode: 2)"). Each private server has its own tmpdir.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path


def test_a_private_mariadb_start_leaves_sql_files_in_the_shared_tmpdir(
    private_mariadb: object,
) -> None:
    probe = Path(tempfile.gettempdir()) / f"#sql-hwb-probe-{uuid.uuid4().hex}.MAI"
    probe.write_bytes(b"")
    try:
        private_mariadb.restart()  # type: ignore[attr-defined]
        assert probe.exists(), "a private mariadbd deleted a #sql file in the shared tmpdir"
        assert Path(private_mariadb.tmpdir).parent == Path(private_mariadb.datadir)  # type: ignore[attr-defined]
    finally:
        probe.unlink(missing_ok=True)


def test_installing_a_private_mariadb_leaves_sql_files_in_the_shared_tmpdir() -> None:
    """`mariadb-install-db` runs a bootstrap mariadbd, which clears `#sql*` files in its
    tmpdir as a server does at start (a second CI run failed like the first after the
    server's own start was given a tmpdir)."""
    from tests._servers import PrivateMariaDB

    probe = Path(tempfile.gettempdir()) / f"#sql-hwb-probe-{uuid.uuid4().hex}.MAI"
    probe.write_bytes(b"")
    server = PrivateMariaDB()
    try:
        server.install()
        assert probe.exists(), "mariadb-install-db deleted a #sql file in the shared tmpdir"
    finally:
        server.destroy()
        probe.unlink(missing_ok=True)


def test_a_store_template_left_by_a_killed_session_is_dropped() -> None:
    """A session killed before its end leaves its migrated PostgreSQL template (a template
    cannot be dropped as it is); the next session's first template drops every one whose
    maker (the pid in its name) is gone, and leaves a living session's."""
    import subprocess

    import psycopg

    from tests._stores import PG_ADMIN, TEMPLATE_PREFIX, _drop_orphan_templates

    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan = f"{TEMPLATE_PREFIX}{gone.pid}_{uuid.uuid4().hex[:8]}"
    living = f"{TEMPLATE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for name in (orphan, living):
            conn.execute(f'CREATE DATABASE "{name}"')
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        try:
            _drop_orphan_templates(conn)
            left = {
                r[0]
                for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname = ANY(%s)", ([orphan, living],)
                )
            }
            assert left == {living}
        finally:
            for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)", ([orphan, living],)
            ).fetchall():
                conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
