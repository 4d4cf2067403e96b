# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Round 31: a frequency cap holds against an uncapped workflow of another channel.

Round 30 wrote an uncapped workflow's batch under the cap's lock, named by the channel
(`policies.cap_space`: `hybridwb:recipients:sms`, `...:other`). The cap counts a
recipient's history whatever channel wrote it (`Campaigns.seen`: by the recipient's
spelling), so a workflow on an `other` channel whose addresses are E.164 phones (an
Alimtalk table, say) writes records the SMS cap counts, under another lock: its batch
committed between the capped SMS workflow's check and its write, and the capped workflow
messaged each member past its cap.

Round 30's cap test (`test_attack_round30_cap.py`) with the uncapped workflow on a
second table mapped with `channel: other`; the oracle is direct SQL on `send_records`.
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
from tests.test_attack_round30_cap import _stored_id

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


def e164(i: int) -> str:
    """`phone(i)` as an `other` channel's source keeps it (no normalization there)."""
    return "+8210" + phone(i)[4:].replace("-", "")


def test_a_capped_sms_workflow_never_messages_past_its_cap_beside_an_uncapped_other_one(
    source: Callable[..., str], any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK: the uncapped `other` workflow's batch (its own lock space) committed while the
    capped SMS one's check was in hand; the capped workflow then messaged all 10 members
    again within its window."""
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        "CREATE TABLE friends (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={
            "members": [(f"m{i:03d}", f"회원{i}", phone(i)) for i in range(10)],
            "friends": [(f"f{i:03d}", f"회원{i}", e164(i)) for i in range(10)],
        },
    )
    wb = workbench(
        db,
        any_store,
        {
            "members": {**people(), "audience": True},
            "friends": {**people(), "channel": "other", "audience": True},
        },
    )
    capped = wb.workflows.create(
        "capped",
        target_config={"table": "members"},
        message_config={
            "content": INFO,
            "policy": {"frequency_cap": {"messages": 1, "days": 7}},
        },
    )
    free = wb.workflows.create(
        "uncapped", target_config={"table": "friends"}, message_config={"content": INFO}
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
