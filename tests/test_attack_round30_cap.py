# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Round 30: a frequency cap holds against a workflow that has none.

A workflow with a global frequency cap ("at most 1 message per recipient in 7 days, from
any workflow") checks a batch's recipients' history and writes its records under the
cap's lock, so two capped workflows cannot both message someone at the cap. A workflow
without a cap took no lock at all: its batch could commit between the capped workflow's
check and its write, and the capped workflow then messaged each of those recipients as
their second message of the window, past its cap.

Real runs on a MariaDB source and a SQLite or PostgreSQL store, in two threads; the
capped run's history check is held open (`Campaigns.seen` waits after it returns) while
the uncapped run works. The oracle is direct SQL on `send_records`: no record of the
capped workflow is later than another workflow's record to the same recipient.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import hybridwb
from hybridwb.platform.campaigns import Campaigns
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, any_store, pg_store)
    DAY,
    INFO,
    any_store,
    oracle,
    people,
    pg_store,
    phone,
    source,
    source_url,
    start,
    workbench,
)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


def test_a_capped_workflow_never_messages_past_its_cap_beside_an_uncapped_one(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK: the uncapped workflow's batch committed while the capped one's check was
    in hand; the capped workflow then messaged all 10 members again within its window."""
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"members": [(f"m{i:03d}", f"회원{i}", phone(i)) for i in range(10)]},
    )
    never_past_the_cap(
        db, any_store, monkeypatch, {"members": {**people(), "audience": True}}, "members"
    )


def never_past_the_cap(
    db: str,
    any_store: str,
    monkeypatch: pytest.MonkeyPatch,
    mappings: dict[str, dict[str, Any]],
    free_table: str,
) -> None:
    """A workflow capped at 1 message in 7 days (on `members`) and an uncapped one (on
    `free_table`), 10 members each, the same people: the uncapped run works while the
    capped one's history check is in hand. No recipient of the capped run may have a
    record of the other workflow before its own (oracle: `send_records`); all 20 sent."""
    wb = workbench(db, any_store, mappings)
    capped = wb.workflows.create(
        "capped",
        target_config={"table": "members"},
        message_config={
            "content": INFO,
            "policy": {"frequency_cap": {"messages": 1, "days": 7}},
        },
    )
    free = wb.workflows.create(
        "uncapped", target_config={"table": free_table}, message_config={"content": INFO}
    )
    runs = {capped["id"]: start(wb, capped), free["id"]: start(wb, free)}
    wb.close()

    checked, free_done = threading.Event(), threading.Event()
    real_seen = Campaigns.seen

    def seen(self: Campaigns, *a: Any, **kw: Any) -> Any:
        out = real_seen(self, *a, **kw)
        if str(a[1]) == str(capped["id"]):  # (recipients, workflow, run, ...)
            checked.set()
            free_done.wait(timeout=5)  # the uncapped run works while this check is in hand
        return out

    monkeypatch.setattr(Campaigns, "seen", seen)
    errors: list[BaseException] = []

    def go(wf: dict[str, Any], done: threading.Event | None) -> None:
        w = hybridwb.connect(source=source_url(db), store=any_store)
        try:
            w.workflows.process(wf["id"], runs[wf["id"]], progress=False, batch_size=10, now=DAY)
        except BaseException as exc:
            errors.append(exc)
        finally:
            w.close()
            if done is not None:
                done.set()

    first = threading.Thread(target=go, args=(capped, None))
    first.start()
    assert checked.wait(timeout=60), "the capped run never checked its history"
    second = threading.Thread(target=go, args=(free, free_done))
    second.start()
    for t in (first, second):
        t.join(timeout=120)
    assert not errors, errors
    past_cap = oracle(
        any_store,
        "SELECT count(*) FROM send_records c JOIN send_records o "
        "ON o.recipient = c.recipient AND o.workflow_id <> c.workflow_id "
        "WHERE c.run_id = %s AND o.created_at < c.created_at",
        (_stored_id(any_store, runs[capped["id"]]),),
    )[0][0]
    assert past_cap == 0, f"{past_cap} recipients messaged past the capped workflow's cap"
    assert oracle(any_store, "SELECT count(*) FROM send_records")[0][0] == 20


def _stored_id(store: str, run_id: Any) -> str:
    """A run id as the store keeps it (SQLite: 32 hex digits)."""
    import uuid

    u = uuid.UUID(str(run_id))
    return u.hex if store.startswith("sqlite") else str(u)
