"""A private mariadbd never touches the shared server's temporary tables.

At start mariadbd deletes every `#sql*` file in its tmpdir. With the default tmpdir (/tmp)
a private server started by one test deleted the shared server's live temporary tables
under another test's query (a CI run failed with "Error on delete of
'/tmp/#sql-temptable-….MAI' (Errcode: 2)"). Each private server has its own tmpdir.
"""

from __future__ import annotations

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
