"""Attack round 4 (exploration)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    AD,
    CONSENTING,
    DAY,
    INFO,
    SEOUL,
    _consenting,
    oracle,
    pg_store,  # noqa: F401  (a fixture)
    people,
    records,
    run_once,
    skips,
    src,
    workbench,
)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_a14")


@pytest.fixture
def store(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


KEYS = {
    "decimal": ("DECIMAL(10,2)", "number", ["0.10", "1.50", "2.25", "-3.30"]),
    "time": ("TIME", "string", ["-01:00:00", "10:00:00", "25:30:00", "00:00:01"]),
    "time6": ("TIME(6)", "string", ["10:00:00.5", "10:00:00", "11:00:00.000001", "00:00:01"]),
    "datetime3": ("DATETIME(3)", "datetime", ["2026-01-01 00:00:00.500", "2026-01-01 00:00:00", "2026-01-02 00:00:00.001", "2026-01-03"]),
    "date": ("DATE", "date", ["2026-01-01", "2026-01-02", "1999-12-31", "2026-02-28"]),
    "year": ("YEAR", "number", [2001, 2002, 1999, 2155]),
    "bit": ("BIT(8)", "number", [1, 2, 0, 255]),
    "binary4": ("BINARY(4)", "string", [b"\x00\x00\x00\x01", b"ab\x00\x00", b"\xff\xfe\x00\x01", b"\\x00"]),
    "enum": ("ENUM('a','b','c','d')", "string", ["a", "b", "c", "d"]),
    "bigu": ("BIGINT UNSIGNED", "number", [18446744073709551615, 0, 9007199254740993, 1]),
    "neg": ("INT", "number", [-5, -1, 0, 3]),
    "varbin": ("VARBINARY(8)", "string", [b"a", b"A", b"a ", b"\\"]),
    "bool": ("TINYINT(1)", "boolean", [0, 1, 2, -1]),
}


@pytest.mark.parametrize("kind", list(KEYS))
def test_keys_of_every_type(source: Callable[..., str], store: str, kind: str) -> None:
    sql_type, field_type, keys = KEYS[kind]
    rows = [(k, f"회원{i}", f"010-4100-{i:04d}") for i, k in enumerate(keys)]
    db = source(
        f"CREATE TABLE members (code {sql_type} PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"members": rows},
    )
    wb = workbench(db, store, {"members": {**people(field_type), "audience": True}})
    try:
        wf = wb.workflows.create(
            "keys", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, batch_size=2, now=DAY)
    finally:
        wb.close()
    sent = records(store, run_id)
    assert len(sent) == len(keys), (sent, skips(store, run_id))
    assert sorted(r for _, r in sent) == sorted(f"+82104100{i:04d}" for i in range(len(keys)))


BIG = [1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_bigint_unsigned_keys_past_two_to_the_63_are_each_messaged_once(
    source: Callable[..., str], store: str, batch_size: int
) -> None:
    """BREAK (F1): a `BIGINT UNSIGNED` key (MySQL's `SERIAL`) above 2**63-1, a legal key the
    driver reads as a Python int, was bound as such by the run's own statements (the
    freeze's page start, the send's key range and look-up) and refused by the bind check
    ("a whole number beyond 64 bits"): with the big keys in the second batch the first
    batch was sent and the rest never could be (every resume failed the same way); as a
    page's last key the freeze itself failed. Oracle: one record per source row."""
    rows = [(k, f"회원{i}", f"010-4200-{i:04d}") for i, k in enumerate(BIG)]
    db = source(
        "CREATE TABLE members (code BIGINT UNSIGNED PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20))",
        rows={"members": rows},
    )
    wb = workbench(db, store, {"members": {**people("number"), "audience": True}})
    try:
        wf = wb.workflows.create(
            "big", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, batch_size=batch_size, now=DAY)
    finally:
        wb.close()
    want = {str(k): f"+82104200{i:04d}" for i, k in enumerate(BIG)}
    assert dict(records(store, run_id)) == want
    assert {str(k) for (k,) in src(db, "SELECT code FROM members")} == set(want)


@pytest.mark.parametrize("batch_size", [1, 10])
def test_varchar_keys_python_reads_as_numbers_are_not_lost(
    source: Callable[..., str], store: str, batch_size: int
) -> None:
    """BREAK (F2): a VARCHAR key declared a number in the mapping (as round 3's '007'/'7'):
    `coerce_key` bound any text Python's `int()` accepts as that int, and Python accepts
    '2024_0001' (2024001), full-width '１２' and Arabic-Indic '٣' (12, 3), which MariaDB reads
    as 2024, 0 and 0: the send's key range and exact look-up found no row, and each such
    customer, present and unchanged, was excluded as "gone from source". Oracle: every row
    of the source table has one record, at its own phone."""
    keys = ["2024_0001", "１２", "٣", "12", "3", "2024", " 7", "+8"]
    db = source(
        "CREATE TABLE members (code VARCHAR(20) COLLATE utf8mb4_bin PRIMARY KEY, "
        "name VARCHAR(20), mobile VARCHAR(20))",
        rows={"members": [(k, f"회원{i}", f"010-4300-{i:04d}") for i, k in enumerate(keys)]},
    )
    wb = workbench(db, store, {"members": {**people("number"), "audience": True}})
    try:
        wf = wb.workflows.create(
            "numeric", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run_id = run_once(wb, wf, batch_size=batch_size, now=DAY)
    finally:
        wb.close()
    want = {k: f"+82104300{i:04d}" for i, k in enumerate(keys)}
    assert {k for (k,) in src(db, "SELECT code FROM members")} == set(want)
    assert dict(records(store, run_id)) == want, skips(store, run_id)


def test_the_first_batch_is_decided_at_the_time_after_the_freeze(
    source: Callable[..., str], pg_store: str
) -> None:
    """BREAK (F3): the quiet hours of a run's first batch were judged at the time the run
    started, before the freeze, however long the freeze took (a million targets: minutes).
    A run started at 20:59:50 KST whose freeze ends after 21:00 wrote its first batch of
    advertising records for recipients without night consent. Here the run's clock runs
    a thousand times faster than the wall clock (the freeze's few milliseconds are some
    seconds on it), starting 2 s before 21:00: every decision is made after 21:00, so no
    record may be written (all wait). Oracle: send_records on the store is empty."""
    import time

    db = _consenting(source, 4)
    wb = workbench(db, pg_store, {"members": CONSENTING})
    start_at = datetime(2026, 3, 2, 20, 59, 58, tzinfo=SEOUL)
    t0: list[float] = []  # the run's first read of its clock

    def clock() -> datetime:
        t0.append(time.perf_counter())
        return start_at + timedelta(seconds=1000 * (t0[-1] - t0[0]))

    try:
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "after freeze",
            target_config={"table": "members"},
            message_config={"template": "세일", "quiet_hours": "wait"},
        )
        run_id = run_once(wb, wf, batch_size=100, clock=clock)
        assert clock() > start_at + timedelta(seconds=2)  # the freeze ended after 21:00
    finally:
        wb.close()
    assert records(pg_store, run_id) == []
    assert oracle(pg_store, "SELECT count(*) FROM run_targets")[0][0] == 4
