"""The target pager checks its own progress on real MariaDB: a page that does not start
after the batch before it is a one-line error at once, never a loop until a timeout and
never a target read twice.

The keys that made it loop or repeat: a FLOAT key (MariaDB prints 0.1 for the stored
0.100000001, and `key > 0.1` is true of that row again), and a NULL key once its own
refusal is out of the way (`key > NULL` is no condition, so the next page starts over).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.targets import service
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import people, workbench

pytestmark = pytest.mark.mysql
QUICK = 20  # seconds: the old pager looped until pytest-timeout (300 s)


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_pg")


@pytest.fixture
def wb_of(tmp_path: Any) -> Iterator[Callable[[str, str], hybridwb.Workbench]]:
    made: list[hybridwb.Workbench] = []

    def make(db: str, table: str) -> hybridwb.Workbench:
        made.append(workbench(db, f"sqlite:///{tmp_path / 'store.db'}", {table: people()}))
        return made[-1]

    yield make
    for wb in made:
        wb.close()


def batches(wb: hybridwb.Workbench, table: str, size: int) -> list[list[Any]]:
    return [[r["code"] for r in b] for b in wb.targets.iter({"table": table}, size)]


@pytest.mark.timeout(QUICK * 3)
@pytest.mark.parametrize("size", [1, 2, 3], ids=["batch-1-looped", "batch-2", "batch-3"])
def test_a_float_key_over_several_pages_is_an_error_not_a_repeat(
    source: Callable[..., str], wb_of: Callable[[str, str], hybridwb.Workbench], size: int
) -> None:
    db = source(
        "CREATE TABLE f (code FLOAT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={
            "f": [(k, f"회원{i}", f"010-2000-000{i}") for i, k in enumerate([0.1, 0.2, 0.3, 0.7])]
        },
    )
    wb = wb_of(db, "f")
    began = time.monotonic()
    with pytest.raises(ValidationError, match="does not advance") as stuck:
        batches(wb, "f", size)
    assert time.monotonic() - began < QUICK
    message = str(stuck.value)
    assert "\n" not in message and "'f'" in message and "'code'" in message
    assert "0.1" not in message  # key values are customer values: never in a message


def test_a_float_key_read_in_one_page_is_each_target_once(
    source: Callable[..., str], wb_of: Callable[[str, str], hybridwb.Workbench]
) -> None:
    db = source(
        "CREATE TABLE f (code FLOAT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"f": [(k, "회원", "010-2000-0001") for k in [0.1, 0.2, 0.3, 0.7]]},
    )
    assert batches(wb_of(db, "f"), "f", 10) == [[0.1, 0.2, 0.3, 0.7]]


@pytest.mark.timeout(QUICK * 3)
def test_a_null_key_past_its_refusal_stops_the_pager_instead_of_starting_over(
    source: Callable[..., str],
    wb_of: Callable[[str, str], hybridwb.Workbench],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The NULL-key refusal is one layer; the pager's progress check is another that holds
    on its own (with the refusal gone, a NULL ending a batch used to restart the walk)."""
    monkeypatch.setattr(service, "_refuse_null_key", lambda key, keys: None)
    db = source(
        "CREATE TABLE a (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE TABLE b (code VARCHAR(10), name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE VIEW everyone AS SELECT * FROM a UNION ALL SELECT * FROM b",
        rows={
            "a": [("k1", "회원1", "010-2000-0001"), ("k2", "회원2", "010-2000-0002")],
            "b": [(None, "회원3", "010-2000-0003")],
        },
    )
    wb = wb_of(db, "everyone")
    began = time.monotonic()
    with pytest.raises(ValidationError, match="does not advance"):
        batches(wb, "everyone", 1)
    assert time.monotonic() - began < QUICK
