"""The target pager checks its own progress on real MariaDB: a page that does not start
after the batch before it is a one-line error at once, never a loop until a timeout and
never a target read twice.

The keys that made it loop or repeat, each once its own refusal is out of the way: a FLOAT
key (MariaDB prints 0.1 for the stored 0.100000001, and `key > 0.1` is true of that row
again) and a NULL key (`key > NULL` is no condition, so the next page starts over). A
floating-point key is refused outright: it also lost targets (`key IN (0.1)` finds none).
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


def floats(source: Callable[..., str], sql_type: str = "FLOAT") -> str:
    return source(
        f"CREATE TABLE f (code {sql_type} PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20), "
        "KEY (name))",
        rows={"f": [(k, f"회원{i}", f"010-2000-000{i}") for i, k in enumerate(FLOATS)]},
    )


FLOATS = [0.1, 0.2, 0.3, 0.7]  # none of them a FLOAT exactly: each reads back as another


@pytest.mark.timeout(QUICK * 3)
@pytest.mark.parametrize("size", [1, 2, 3], ids=["batch-1-looped", "batch-2", "batch-3"])
def test_a_float_key_past_its_refusal_is_an_error_not_a_repeat(
    source: Callable[..., str],
    wb_of: Callable[[str, str], hybridwb.Workbench],
    monkeypatch: pytest.MonkeyPatch,
    size: int,
) -> None:
    """The pager's progress check on its own: a FLOAT 0.1 is stored as 0.100000001, so
    `key > 0.1` is true of that row again; batch 1 read the first page forever, larger
    batches read rows twice."""
    monkeypatch.setattr(service, "_refuse_inexact_key", lambda key, keys: None)
    wb = wb_of(floats(source), "f")
    began = time.monotonic()
    with pytest.raises(ValidationError, match="does not advance") as stuck:
        batches(wb, "f", size)
    assert time.monotonic() - began < QUICK
    message = str(stuck.value)
    assert "\n" not in message and "'f'" in message and "'code'" in message
    assert "0.1" not in message  # key values are customer values: never in a message


@pytest.mark.timeout(QUICK * 3)
@pytest.mark.parametrize(
    ("sql_type", "target", "size"),
    [
        ("FLOAT", {"table": "f"}, 1),
        ("FLOAT", {"table": "f"}, 5000),
        ("DOUBLE", {"table": "f"}, 2),
        ("FLOAT", {"table": "f", "keyword": "회원"}, 10),
    ],
    ids=["float-batch-1", "float-one-page", "double", "float-keyword"],
)
def test_a_floating_point_key_is_refused_in_one_line(
    source: Callable[..., str],
    tmp_path: Any,
    sql_type: str,
    target: dict[str, Any],
    size: int,
) -> None:
    """Even read in one page a FLOAT key lost targets: a run looked one up as 'gone from
    source', and a keyword target's `key IN (0.1, ...)` found none of these rows (of 1,199
    it kept the 239 that are multiples of 0.5)."""
    name = {"displayName": "이름", "type": "string", "role": "name", "searchable": True}
    mapping = people(fields={"name": name})
    wb = workbench(floats(source, sql_type), f"sqlite:///{tmp_path / 's.db'}", {"f": mapping})
    try:
        with pytest.raises(ValidationError, match="floating-point") as refused:
            list(wb.targets.iter(target, size))
    finally:
        wb.close()
    assert "\n" not in str(refused.value) and "0.1" not in str(refused.value)


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


@pytest.mark.timeout(QUICK * 3)
@pytest.mark.parametrize("sql_type", ["ENUM('b','a','c')", "SET('b','a','c')"], ids=["enum", "set"])
@pytest.mark.parametrize(
    "definition",
    [{"table": "l"}, {"sql": "SELECT code, name, mobile FROM l"}],
    ids=["mapped", "saved-sql"],
)
def test_a_key_sorted_by_list_position_is_refused_not_skipped(
    source: Callable[..., str],
    wb_of: Callable[[str, str], hybridwb.Workbench],
    sql_type: str,
    definition: dict[str, Any],
) -> None:
    """ORDER BY an ENUM gives b, a, c; `key > 'b'` is false of 'a': at batch 1 the pager
    read b, then c, and 'a' was never a target. A saved query returning the mapped key
    column was not checked (the same loss)."""
    db = source(
        f"CREATE TABLE l (code {sql_type} PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"l": [(k, f"회원{k}", f"010-2000-000{i}") for i, k in enumerate("abc")]},
    )
    wb = wb_of(db, "l")
    with pytest.raises(ValidationError, match="ENUM or SET") as refused:
        [[r["code"] for r in b] for b in wb.targets.iter(definition, 1)]
    assert "\n" not in str(refused.value)
