# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Send history in one spelling per phone (migration 0006), and runs that still never miss
history written in an older spelling.

Before 0006 every batch probed the history by the canonical phone and four legacy
spellings per recipient. 0006 rewrites stored legacy spellings to the canonical phone, and
a run probes the canonical spelling alone while the store holds no digit-only recipient
(asked per batch). The oracle is direct SQL on the store (psycopg / sqlite3) and the
MariaDB source; runs are the notebook's own call (`wb.workflows.process`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from hybridwb.platform import migrate, schema
from hybridwb.workflows import policies, spelling
from tests._stores import store_sql
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, pg_store, any_store)
    DAY,
    INFO,
    any_store,
    oracle,
    people,
    pg_store,
    records,
    skips,
    source,
    start,
    workbench,
)

#: (the phone as the source holds it, the spelling an earlier version stored, canonical)
LEGACY = [
    ("010-5555-0001", "01055550001", "+821055550001"),  # national digits (and +82 -> 0)
    ("010-5555-0002", "821055550002", "+821055550002"),  # the canonical's digits
    ("010-5555-0003", "00821055550003", "+821055550003"),  # 00 + country code
    ("010-5555-0004", "001055550004", "+821055550004"),  # 00 + national number
    ("02-1234-5678", "0212345678", "+82212345678"),  # a Seoul line's national digits
    ("02-1234-5679", "00212345679", "+82212345679"),  # ... with a second 0
    ("+1 201-555-0123", "12015550123", "+12015550123"),  # a US number's digits
    ("+1 201-555-0124", "0012015550124", "+12015550124"),  # ... dialled from Korea
]


# -- pure: which phone a stored spelling is rewritten to ---------------------------------
@pytest.mark.parametrize(("text", "stored", "canonical"), LEGACY, ids=[s for _, s, _ in LEGACY])
def test_a_legacy_spelling_is_rewritten_to_the_phone_it_was_stored_for(
    text: str, stored: str, canonical: str
) -> None:
    assert policies.normalize("sms", text) == canonical
    assert spelling.stored_spellings("sms", [canonical])[stored] == canonical
    assert spelling.legacy_canonical(stored) == canonical


@pytest.mark.parametrize(
    "stored",
    ["+821055550001", "kim@example.com", "", "12", "0", "010-5555-0001", "00390933366"],
    ids=["canonical", "email", "empty", "too-short", "zero", "not-digits", "claimed-by-two"],
)
def test_what_no_phone_or_several_claim_is_left_as_it_is(stored: str) -> None:
    """`00390933366` is both Italy's +39 0933 366 dialled with 00 and the Korean
    +82 390933366 with two zeros: rewritten to either, it would stop blocking the other."""
    assert spelling.legacy_canonical(stored) is None
    if stored == "00390933366":
        claims = {
            c
            for c in ("+390933366", "+82390933366")
            if policies.normalize("sms", c) == c
            and spelling.stored_spellings("sms", [c])[stored] is not None
        }
        assert len(claims) == 2


def test_a_rewrite_is_always_a_near_form_so_a_digit_id_finds_its_rows_again() -> None:
    """A digit-only recipient of another channel (an id, not a phone) is looked up by its
    near forms too: whatever 0006 rewrote it to must be one of them."""
    rnd = random.Random(7)
    spellings = [
        "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(6, 15))) for _ in range(400)
    ]
    spellings += [s for _, s, _ in LEGACY]
    rewritten = 0
    for s in spellings:
        got = spelling.legacy_canonical(s)
        if got is not None:
            rewritten += 1
            assert got in spelling.history_spellings("other", [s], legacy_rows=False), s
            assert spelling.history_spellings("other", [s], legacy_rows=False)[got] == s
    assert rewritten > 50  # the sample does reach the rewrite


def test_sms_history_is_probed_by_every_spelling_only_while_legacy_rows_exist() -> None:
    phones = [c for _, _, c in LEGACY]
    assert spelling.history_spellings("sms", phones, legacy_rows=False) == {p: p for p in phones}
    assert spelling.history_spellings("sms", phones, legacy_rows=True) == spelling.stored_spellings(
        "sms", phones
    )
    assert spelling.history_spellings("email", ["a@b.kr"], legacy_rows=False) == {
        "a@b.kr": "a@b.kr"
    }


# -- end to end on MariaDB with a PostgreSQL or SQLite store -------------------------------
def _members(source: Callable[..., str], phones: list[str]) -> str:
    return source(
        "CREATE TABLE members (member_no INT PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(30))",
        rows={"members": [(i, f"회원{i}", p) for i, p in enumerate(phones, 1)]},
    )


def _workflow(wb: Any) -> dict[str, Any]:
    return wb.workflows.create(
        f"once-{uuid.uuid4().hex[:6]}",
        target_config={"table": "members"},
        message_config={"content": INFO, "policy": {"once_per_recipient": True}},
    )


def _old_history(wb: Any, wf: dict[str, Any], stored: list[str]) -> Any:
    """Records of an earlier run of `wf`, one per member, in the given spellings."""
    old_run = start(wb, wf)
    wb.store.runs.add_records(
        [
            {"run_id": old_run, "workflow_id": wf["id"], "target_key": str(i), "recipient": s}
            for i, s in enumerate(stored, 1)
        ]
    )
    return old_run


def _recipients(store: str, run_id: Any) -> list[str]:
    return sorted(
        str(r)
        for (r,) in oracle(
            store,
            "SELECT recipient FROM send_records WHERE CAST(run_id AS TEXT) IN (%s, %s)",
            (str(run_id), uuid.UUID(str(run_id)).hex),
        )
    )


def _as_before_0006(store: str) -> None:
    """The store as 0005 left it: no partial index, the schema version one back."""
    statements = [
        f"DROP INDEX {schema.LEGACY_RECIPIENT_INDEX}",
        "UPDATE alembic_version SET version_num = '0005'",
    ]
    for sql in statements:
        store_sql(store, sql)


@pytest.mark.mysql
@pytest.mark.postgres
def test_history_in_every_legacy_spelling_still_blocks_a_second_message_after_0006(
    source: Callable[..., str], any_store: str
) -> None:
    db = _members(source, [t for t, _, _ in LEGACY])
    wb = workbench(db, any_store, {"members": {**people("number", "member_no"), "audience": True}})
    try:
        wf = _workflow(wb)
        old_run = _old_history(wb, wf, [s for _, s, _ in LEGACY])
        _as_before_0006(any_store)
        assert _recipients(any_store, old_run) == sorted(s for _, s, _ in LEGACY)
        wb.store.init()  # 0005 -> head, through 0006
        assert oracle(any_store, "SELECT version_num FROM alembic_version") == [
            (migrate.head_revision(),)
        ]
        assert _recipients(any_store, old_run) == sorted(c for _, _, c in LEGACY)
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert records(any_store, run_id) == []
    assert skips(any_store, run_id) == {policies.ONCE: len(LEGACY)}


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_legacy_row_written_after_0006_still_blocks_the_second_message(
    source: Callable[..., str], any_store: str
) -> None:
    """Something older than 0006 (a run that began before the migration, another program)
    writes a digit-only spelling afterwards: the batch's check sees it and probes every
    spelling again."""
    db = _members(source, ["010-7777-0001", "010-7777-0002"])
    wb = workbench(db, any_store, {"members": {**people("number", "member_no"), "audience": True}})
    try:
        wf = _workflow(wb)
        _old_history(wb, wf, ["01077770001", "+821077770002"])
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    legacy = oracle(
        any_store,
        "SELECT count(*) FROM send_records WHERE "
        + schema.LEGACY_RECIPIENT["sqlite" if any_store.startswith("sqlite") else "postgresql"],
    )
    assert legacy == [(1,)]
    assert records(any_store, run_id) == []
    assert skips(any_store, run_id) == {policies.ONCE: 2}


@pytest.mark.mysql
@pytest.mark.postgres
def test_without_legacy_rows_a_batch_probes_the_canonical_spelling_alone(
    source: Callable[..., str], any_store: str
) -> None:
    """What makes 0006 worth it: no legacy spelling is sent to the store."""
    db = _members(source, ["010-7777-0011", "010-7777-0012"])
    wb = workbench(db, any_store, {"members": {**people("number", "member_no"), "audience": True}})
    sent: list[Any] = []

    def watch(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        if "FROM send_records" in statement and "sum(" in statement:  # the history sums
            sent.append(params)

    engine = wb.store.backend.engine
    event.listen(engine, "before_cursor_execute", watch)
    try:
        wf = _workflow(wb)
        _old_history(wb, wf, ["+821077770011"])
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        event.remove(engine, "before_cursor_execute", watch)
        wb.close()
    assert sent, "the history was not read"

    def values(value: Any) -> list[Any]:
        if isinstance(value, list):
            return value
        if isinstance(value, str) and value.startswith(
            "{"
        ):  # a text[] literal: the server reads it
            [(array,)] = oracle(any_store, "SELECT %s::text[]", (value,))
            return list(array)
        return [value]

    probed = {
        v
        for params in sent
        for value in (params.values() if isinstance(params, dict) else params)
        for v in values(value)
        if isinstance(v, str) and (v.startswith("+") or v.isdigit())
    }
    assert probed == {"+821077770011", "+821077770012"}
    assert records(any_store, run_id) == [("2", "+821077770012")]
    assert skips(any_store, run_id) == {policies.ONCE: 1}
