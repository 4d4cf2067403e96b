"""The leaner read path of a search (issue 17: CPU per search) keeps every guarantee.

What was made cheaper, and what each test holds it to:

* bind names are checked once when they are exactly the statement's own; the values are
  still checked, each (`check_params`);
* the final-text guard reads each statement's bind layout made once (`Prepared.layout`):
  a final text that is not the approved text with a literal in place of each bind is
  still tokenized and refused;
* a search reads the mapping file once (`one_graph` serves the table's name too), and
  works out its page's columns once per mapping: an edited mapping is still seen by the
  next search;
* query log rows are written on SQLite by one executemany with the types' own bind
  processors: the file holds exactly what SQLAlchemy Core wrote (the oracle: the file,
  read with sqlite3), with time-ordered UUIDv7 ids.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import BindError, HybridwbError
from hybridwb.platform.backend import SqlBackend
from hybridwb.platform.store import Store, log_id
from hybridwb.source import Source
from hybridwb.source.binds import check_params
from hybridwb.source.engine import SessionPolicy, guard_final_text
from hybridwb.source.verdicts import Verdicts


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a\ud800b", id="lone-surrogate"),
        pytest.param(2**63, id="int-beyond-64-bits"),
        pytest.param(-(2**63) - 1, id="int-below-64-bits"),
        pytest.param(object(), id="unsupported-type"),
        pytest.param(float("nan"), id="nan"),
        pytest.param([], id="empty-list"),
    ],
)
def test_the_values_of_a_statements_own_binds_are_still_checked(value: object) -> None:
    """The keys are exactly the statement's binds (the fast path): each value is checked."""
    with pytest.raises(BindError):
        check_params(frozenset({"a"}), {"a": value})


def test_ascii_text_and_64_bit_ints_pass_and_lists_become_lists() -> None:
    bound = check_params(frozenset({"a", "b", "c"}), {"a": "x'", "b": -(2**63), "c": ("k", 1)})
    assert bound == {"a": "x'", "b": -(2**63), "c": ["k", 1]}
    assert check_params(frozenset({"a"}), {"a": "김지훈"}) == {"a": "김지훈"}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"a": 1, "zz": 2}, id="unused"),
        pytest.param({}, id="missing"),
        pytest.param({"a": 1, 3: 2}, id="not-a-name"),
    ],
)
def test_other_keys_still_take_the_full_check(params: dict[object, object]) -> None:
    with pytest.raises(BindError):
        check_params(frozenset({"a"}), params)


def _prepared(tmp_path: Path) -> object:
    source = Source(URL.create("sqlite", database=str(tmp_path / "none.db")))
    return source.prepare("SELECT name FROM customers WHERE grade = :grade AND id > :n LIMIT 21")


@pytest.mark.parametrize(
    "final",
    [
        pytest.param(
            "SELECT name FROM customers WHERE grade = 'x' AND id > 1 LIMIT 21; DELETE FROM customers",
            id="appended-statement",
        ),
        pytest.param(
            "SELECT name FROM customers WHERE grade = 'x' AND id > 1 LIMIT 21 INTO OUTFILE '/tmp/x'",
            id="appended-clause",
        ),
        pytest.param(
            "SELECT name FROM customers WHERE grade = 'x' AND id > GET_LOCK('k', 9) LIMIT 21",
            id="a-function-in-place-of-a-value",
        ),
        pytest.param(
            "SELECT name FROM customers WHERE grade = 'x' AND id > 1 LIMIT 21 FOR UPDATE",
            id="a-locking-read",
        ),
    ],
)
def test_a_forged_final_text_is_refused_with_the_layout_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, final: str
) -> None:
    monkeypatch.setattr("hybridwb.source.finaltext.VERDICTS", Verdicts())
    prepared = _prepared(tmp_path)
    params = {"grade": "x", "n": 1}
    sent = "SELECT name FROM customers WHERE grade = 'x' AND id > 1 LIMIT 21"
    guard_final_text(sent, SessionPolicy(), approved=prepared, params=params, whole_result=False)
    assert prepared.layout is not None  # type: ignore[attr-defined]
    with pytest.raises(HybridwbError):
        guard_final_text(
            final, SessionPolicy(), approved=prepared, params=params, whole_result=False
        )


def test_log_ids_are_uuid7_in_time_order() -> None:
    at = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    ids = [log_id(at + timedelta(milliseconds=i)) for i in range(50)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [i.int >> 80 for i in ids] == [int(at.timestamp() * 1000) + i for i in range(50)]
    assert ids == sorted(ids)
    assert len({log_id(at) for _ in range(1000)}) == 1000  # the rest is random


def test_rows_without_every_column_still_get_their_defaults(tmp_path: Path) -> None:
    """A batch that leaves a column out is written by Core, which fills in its default."""
    db = tmp_path / "platform.db"
    backend = SqlBackend(URL.create("sqlite", database=str(db)))
    Store(backend, actor="tester").init()
    row = {"timestamp": datetime.now(UTC), "query": "SELECT 1", "execution_time": 1.0}
    row |= {"status": "success", "database": "shop"}
    assert backend.insert_ignore("query_logs", [row], ["id"]) == 1
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT id, result_count, kind FROM query_logs").fetchall()
    assert len(found) == 1 and found[0][1:] == (0, "mysql") and len(str(found[0][0])) == 32


def test_a_search_reads_the_mapping_file_once(shop, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shop.search("customers", "이", limit=5)  # the first search reads the schema facts
    loads: list[int] = []
    real = type(shop.mappings).load

    def counted(self: object) -> object:
        loads.append(1)
        return real(self)

    monkeypatch.setattr(type(shop.mappings), "load", counted)
    shop.search("customers", "김", limit=5)
    assert len(loads) == 1
    shown_as = shop.mappings.tables()["customers"].displayName
    loads.clear()
    assert shop.search(shown_as, "김", limit=5).table == "customers"  # by its display name
    assert len(loads) == 1


def test_an_edited_mapping_is_seen_by_the_next_search(shop) -> None:  # type: ignore[no-untyped-def]
    first = shop.search("customers", "김", limit=5)
    mapping = shop.mappings.tables()["customers"]
    shown = next(
        name
        for name, field in mapping.fields.items()
        if name != mapping.key and not field.searchable and name in first.raw_rows[0]
    )
    path = shop.mappings.path
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["customers"]["fields"][shown]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    again = shop.search("customers", "김", limit=5)
    assert again.raw_rows and shown not in again.raw_rows[0]


def test_a_failed_reads_values_still_reach_the_error_redaction(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values are flattened only when there is an error message to take them out of:
    the driver error's translation and the message's redaction both still get them."""
    from hybridwb.source import catalogue

    seen: list[list[object]] = []
    translate, redact = catalogue.translate, catalogue.redact

    def translating(exc: BaseException, ctx: object, values: object = (), *rest: object) -> object:
        seen.append(list(values))  # type: ignore[call-overload]
        return translate(exc, ctx, values, *rest)  # type: ignore[arg-type]

    def redacting(message: str, values: object) -> str:
        seen.append(list(values))  # type: ignore[call-overload]
        return redact(message, values)  # type: ignore[arg-type]

    monkeypatch.setattr(catalogue, "translate", translating)
    monkeypatch.setattr(catalogue, "redact", redacting)
    src = Source(URL.create("sqlite", database=str(sample_db)))
    try:
        with pytest.raises(HybridwbError):
            src.sql("SELECT no_such FROM customers WHERE name IN :n", {"n": ["kim.secret", 7]})
    finally:
        src.close()
    assert seen == [["kim.secret", 7], ["kim.secret", 7]]
