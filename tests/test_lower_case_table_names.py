"""A source server with `lower_case_table_names = 1` (Windows and macOS installs, and Linux
ones that migrated from them): tables are stored and listed in lower case, and
information_schema answers `TABLE_NAME = 'Members'` with the row of `members`.

The consent checks type their columns by the server: a run's plan reads information_schema
now (`discovery.column_types`, keyed by the table name it asked with), each batch reads the
type its cursor describes. Keyed by another spelling than the server's, the first would
find no type and refuse nothing. A mapping names a table as the server lists it (another
case is refused), so the names agree: these tests hold that on a private mariadbd started
with the option (the shared server cannot be restarted with it).

Oracle: `send_records` read with sqlite3 from the store file.
"""

from __future__ import annotations

import secrets
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import NotFound, ValidationError
from hybridwb.workflows import audience
from tests.test_attack_once_round2 import AD, DAY, people, start

pytestmark = pytest.mark.mysql

USER, PASSWORD = "lcn_reader", "lcn-pw-7f3a"
MAPPING = {
    **people(fields={"ok": {"displayName": "광고동의", "type": "boolean"}}),
    "audience": True,
    "consent": "ok",
}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    from tests._servers import PrivateMariaDB, private_servers_available

    reason = private_servers_available()
    if reason:
        pytest.fail(f"cannot start a private MariaDB: {reason}")
    server = PrivateMariaDB(
        datadir=Path(tempfile.mkdtemp(prefix="hwb-lcn-")),
        options=("--lower-case-table-names=1",),
    )
    try:
        server.install()
        server.start()
        assert server.execute("SELECT @@lower_case_table_names") == [(1,)]
        server.execute(
            f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'",
        )
        yield server
    finally:
        server.destroy()


@pytest.fixture
def shop(server: Any) -> Iterator[str]:
    """A database with `Members` (listed as `members`): six members, every one consenting,
    read through a SELECT-only account."""
    db = f"shop_{secrets.token_hex(4)}"
    server.execute(
        f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4",
        f"GRANT SELECT ON `{db}`.* TO '{USER}'@'127.0.0.1'",
        f"CREATE TABLE `{db}`.Members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), ok TINYINT(1) NULL)",
        f"INSERT INTO `{db}`.MEMBERS VALUES "
        + ", ".join(f"('m{i}', '회원', '010-4936-{i:04d}', 1)" for i in range(6)),
    )
    try:
        yield db
    finally:
        server.execute(f"DROP DATABASE `{db}`")


def _workbench(server: Any, db: str, tmp_path: Path) -> tuple[Any, str]:
    store = tmp_path / "store.db"
    url = server.url(USER, PASSWORD, db).render_as_string(hide_password=False)
    wb = hybridwb.connect(source=url, store=f"sqlite:///{store}", cwd=tmp_path)
    wb.store.init()
    wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    return wb, str(store)


def _sent(store: str) -> int:
    with sqlite3.connect(store) as conn:
        return int(conn.execute("SELECT count(*) FROM send_records").fetchone()[0])


def test_a_table_is_mapped_by_the_name_the_server_lists(
    server: Any, shop: str, tmp_path: Path
) -> None:
    wb, _ = _workbench(server, shop, tmp_path)
    try:
        assert [t.name for t in wb.mappings.discover()] == ["members"]
        with pytest.raises(NotFound):
            wb.mappings.save("Members", MAPPING)
        wb.mappings.save("members", MAPPING)
    finally:
        wb.close()


def test_a_consent_column_altered_before_a_run_is_refused_by_its_fresh_type(
    server: Any, shop: str, tmp_path: Path
) -> None:
    """The preview reads the schema (the minute's cache holds TINYINT); the column is then
    made a YEAR, 2021 for everyone. The run's plan types it by the server now, under the
    name the mapping gives, and refuses: nothing is sent. Before it could match, a type
    keyed by another spelling than the server's would have been missed, and six sent."""
    wb, store = _workbench(server, shop, tmp_path)
    try:
        wb.mappings.save("members", MAPPING)
        wf = wb.workflows.create(
            "lcn", target_config={"table": "members"}, message_config={"template": "세일"}
        )
        assert wb.targets.preview({"table": "members"}).count == 6
        server.execute(
            f"ALTER TABLE `{shop}`.MEMBERS MODIFY ok YEAR NULL",
            f"UPDATE `{shop}`.Members SET ok = 2021",
        )
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match="'ok' is a YEAR column"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    assert _sent(store) == 0


def test_a_consent_column_retyped_mid_run_stops_the_run_at_the_next_batch(
    server: Any, shop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of two; before the second is read the flag becomes a VARCHAR, '1' for
    everyone. The plan typed it TINYINT by the server under the mapping's name; the batch's
    cursor says text: the run stops with the first two sent."""
    wb, store = _workbench(server, shop, tmp_path)
    real, calls = audience.fetch, {"n": 0}

    def fetch(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            server.execute(
                f"ALTER TABLE `{shop}`.Members MODIFY ok VARCHAR(10) NULL",
                f"UPDATE `{shop}`.members SET ok = '1'",
            )
        return real(*a, **kw)

    try:
        wb.mappings.save("members", MAPPING)
        wf = wb.workflows.create(
            "lcn", target_config={"table": "members"}, message_config={"template": "세일"}
        )
        monkeypatch.setattr(audience, "fetch", fetch)
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match="'ok' is now a text column"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    assert calls["n"] == 2
    assert _sent(store) == 2
