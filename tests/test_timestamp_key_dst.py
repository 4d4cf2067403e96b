"""A TIMESTAMP key read in a time zone with daylight saving time, on a real MariaDB.

hybridwb never sets the session `time_zone`, so a TIMESTAMP comes back as the local time of
the server's zone. When the clocks go back (Europe/Berlin, 2026-10-25 03:00 CEST -> 02:00
CET) two different instants read as the same text, 02:15 and 02:15: keys frozen as that
text, pages continued at `key > last` and look-ups by it no longer tell the two customers
apart (the pager skipped the second 02:15 and 02:45; a run messaged one of them with the
other's row or not at all). Such a key is refused in one line unless the session's zone is
a fixed offset, where a TIMESTAMP is as exact as a DATETIME.

The source is a private mariadbd whose own zone is Europe/Berlin (`TZ`), so the session
hybridwb opens has that zone by default: the shared server's global setting is not touched.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.source import zones
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import DAY, INFO, people, records, run_once, workbench

pytestmark = pytest.mark.mysql

USER, PASSWORD = "hwb_dst_ro", "dst_ro_pw"
#: instants (UTC) around the fall-back hour, and the customer each one is
FALL_BACK = [
    ("2026-10-25 00:15:00", "김a0"),  # 02:15 CEST
    ("2026-10-25 00:45:00", "김b0"),  # 02:45 CEST
    ("2026-10-25 01:15:00", "김a1"),  # 02:15 CET: the same text as a0
    ("2026-10-25 01:45:00", "김b1"),  # 02:45 CET: the same text as b0
    ("2026-10-25 02:15:00", "김c"),  # 03:15 CET
]
TABLE = (
    "CREATE TABLE `{t}` (code TIMESTAMP NOT NULL PRIMARY KEY, name VARCHAR(20), "
    "mobile VARCHAR(20), KEY (name))"
)
SEARCHABLE = {"name": {"displayName": "이름", "type": "string", "role": "name", "searchable": True}}
PEOPLE = {**people(key_type="date", fields=SEARCHABLE), "audience": True}


@pytest.fixture(scope="module")
def berlin() -> Iterator[Any]:
    """A private MariaDB in Europe/Berlin with the fall-back hour in `dst.people` and the
    same instants in `dst.fixed` (read under a fixed offset by the tests that need one)."""
    from tests._servers import PrivateMariaDB, private_servers_available

    reason = private_servers_available()
    if reason:
        pytest.fail(f"cannot start a private MariaDB: {reason}")
    server = PrivateMariaDB(datadir=Path(tempfile.mkdtemp(prefix="hwb-dst-")), zone="Europe/Berlin")
    try:
        server.install()
        server.start()
        server.execute(
            "CREATE DATABASE dst CHARACTER SET utf8mb4",
            f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT SELECT ON dst.* TO '{USER}'@'127.0.0.1'",
            "USE dst",
            "SET time_zone = '+00:00'",
            TABLE.format(t="people"),
        )
        conn = server.admin("dst")
        try:
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
                cur.executemany(
                    "INSERT INTO people VALUES (%s, %s, %s)",
                    [(at, name, f"010-2000-{i:04d}") for i, (at, name) in enumerate(FALL_BACK)],
                )
        finally:
            conn.close()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def wb(berlin: Any, tmp_path: Path) -> Iterator[hybridwb.Workbench]:
    url = berlin.url(USER, PASSWORD, "dst").render_as_string(hide_password=False)
    made = hybridwb.connect(source=url, store=f"sqlite:///{tmp_path / 'store.db'}")
    made.store.init()
    made.mappings.save("people", PEOPLE)
    yield made
    made.close()


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_dst")


def names(batches: Iterator[list[dict[str, Any]]]) -> list[list[str]]:
    return [[r["name"] for r in b] for b in batches]


def test_the_session_reads_the_fall_back_hour_twice(berlin: Any) -> None:
    """The premise: in the server's zone two customers' keys read as one text."""
    rows = berlin.execute("SELECT CAST(code AS CHAR) FROM dst.people ORDER BY code")
    assert [r[0][11:16] for r in rows] == ["02:15", "02:45", "02:15", "02:45", "03:15"]


@pytest.mark.parametrize("size", [1, 2, 5], ids=lambda n: f"batch-{n}")
def test_a_timestamp_key_in_a_dst_zone_is_refused_not_paged(
    wb: hybridwb.Workbench, size: int
) -> None:
    """BREAK: batches of 1 were a0, b1, c (`key > '02:15'` compared as local text skipped
    b0 and a1); larger batches held two equal keys ('repeats in the results': GROUP BY)."""
    with pytest.raises(ValidationError, match="TIMESTAMP") as refused:
        names(wb.targets.iter({"table": "people"}, size))
    message = str(refused.value)
    assert "\n" not in message and "'code'" in message and "daylight saving" in message


def test_a_run_keyed_by_a_timestamp_in_a_dst_zone_is_refused(wb: hybridwb.Workbench) -> None:
    """BREAK: a run in batches of 1 froze a0, b1, c, then looked a0's '02:15' up as a1's row
    (skipped: 'recipient changed'): 2 of 5 customers messaged, none of it said."""
    with pytest.raises(ValidationError, match="TIMESTAMP"):
        wb.workflows.create(
            "dst", target_config={"table": "people"}, message_config={"content": INFO}
        )


def test_search_pages_by_a_timestamp_key_in_a_dst_zone_are_refused(
    wb: hybridwb.Workbench,
) -> None:
    """BREAK: search pages of 1 showed a0, b1, c: `key > last` skipped b0 and a1."""
    seen: list[str] = []
    page = None
    with pytest.raises(ValidationError, match="TIMESTAMP") as refused:
        for _ in range(len(FALL_BACK) + 1):
            result = wb.search("people", "김", limit=1, page=page)
            seen += [r["name"] for r in result.raw_rows]
            if (page := result.next_page) is None:
                break
    assert "\n" not in str(refused.value), seen


def test_a_timestamp_key_in_a_fixed_zone_is_paged_and_messaged_once(
    source: Callable[..., str], tmp_path: Path
) -> None:
    """The shared server's sessions are UTC (time_zone SYSTEM, the machine's UTC): there a
    TIMESTAMP is as exact as a DATETIME, and every customer is read and messaged once."""
    db = source(
        TABLE.format(t="people"),
        rows={"people": [(at, n, f"010-2000-{i:04d}") for i, (at, n) in enumerate(FALL_BACK)]},
    )
    wb = workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {"people": {**PEOPLE}})
    try:
        assert names(wb.targets.iter({"table": "people"}, 1)) == [[n] for _, n in FALL_BACK]
        seen, page = [], None
        while True:
            result = wb.search("people", "김", limit=2, page=page)
            seen += [r["name"] for r in result.raw_rows]
            if (page := result.next_page) is None:
                break
        assert seen == [n for _, n in FALL_BACK]
        wf = wb.workflows.create(
            "utc", target_config={"table": "people"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, batch_size=2, now=DAY)
        sent = sorted(r for _, r in records(f"sqlite:///{tmp_path / 'store.db'}", run_id))
    finally:
        wb.close()
    assert sent == [f"+82102000{i:04d}" for i in range(len(FALL_BACK))]


@pytest.mark.parametrize(
    ("time_zone", "system", "fixed"),
    [
        ("+09:00", "CET", True),
        ("-05:30", None, True),
        ("SYSTEM", "UTC", True),
        ("system", "GMT", True),
        ("Etc/UTC", None, True),
        ("UTC", None, True),
        ("Europe/Berlin", "UTC", False),
        ("SYSTEM", "CET", False),
        ("SYSTEM", "KST", False),
        ("Asia/Seoul", None, False),
        ("SYSTEM", None, False),
    ],
    ids=lambda v: str(v),
)
def test_only_a_zone_of_one_offset_is_fixed(
    time_zone: str, system: str | None, fixed: bool
) -> None:
    assert zones.fixed_offset(time_zone, system) is fixed
