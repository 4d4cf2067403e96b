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

from collections.abc import Callable

import pytest

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
from tests.test_attack_round30_cap import never_past_the_cap

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
    never_past_the_cap(
        db,
        any_store,
        monkeypatch,
        {
            "members": {**people(), "audience": True},
            "friends": {**people(), "channel": "other", "audience": True},
        },
        "friends",
    )
