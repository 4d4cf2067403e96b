"""A freeze cut short and redone leaves none of the exclusions its first attempt recorded.

A freeze records the targets another row refused marketing for (`run_skips`) page by
page, before it stores each page, and marks the set frozen after the last one. When the
source read fails on a later page the next attempt freezes the set again whole; the
exclusions of the first attempt stayed (round 45, noticed): the run counted a target of a
set never frozen, and a target the first attempt excluded but the second did not (its
sharer consents now) kept a stale exclusion, which the batches take for done: it was never
messaged. The clear that starts a freeze now empties the run's exclusions too (SQL stores:
`Campaigns.freeze`; REST: `hybridwb_freeze_clear`, migration 0011).

Oracle: send_records, run_skips and run_targets by direct SQL (psycopg / sqlite3), the
source's rows by pymysql as root.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hybridwb.errors import InternalError
from hybridwb.targets.service import TargetService
from tests._stores import store_sql
from tests.test_attack_once_round2 import DAY, records, src, start
from tests.test_rest_campaigns import _fz, _hold_lock, db, rows, run  # noqa: F401
from tests.test_shared_recipient_consent import (
    SHARED,
    ad_workflow,
    any_store,  # noqa: F401  (fixtures)
    mapping,
    members_source,
    pg_store,  # noqa: F401
    reasons_by_key,
    workbench,
)
from tests.test_shared_recipient_consent import source as source

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

#: what changes in the source between the cut-short freeze and the next: a2 (who refused,
#: sharing a1's phone) now consents, or a1 leaves the audience
CHANGES = {
    "sharer-consents": "UPDATE members SET ok = 'Y' WHERE code = 'a2'",
    "target-gone": "DELETE FROM members WHERE code = 'a1'",
}


def _frozen_keys(store: str, run_id: Any) -> set[str]:
    found = store_sql(
        store,
        "SELECT target_key FROM run_targets WHERE CAST(run_id AS TEXT) IN (%s, %s)",
        (str(run_id), uuid.UUID(str(run_id)).hex),
    )
    return {str(k) for (k,) in found}


def _cut_after_first_page(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]
) -> dict[str, int]:
    """The freeze's read gives its first page, then (the source changed) fails; once."""
    real, calls = TargetService.iter, {"n": 0}

    def cut(self: Any, *a: Any, **kw: Any) -> Iterator[Any]:
        calls["n"] += 1
        pages = real(self, *a, **kw)
        if calls["n"] > 1:
            yield from pages
            return
        yield next(pages)
        change()
        raise RuntimeError("the source went away mid-freeze")

    monkeypatch.setattr(TargetService, "iter", cut)
    return calls


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_freeze_redone_keeps_no_exclusion_of_the_attempt_cut_short(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    """Batches of two: the first page (a1, a2) excludes a1 (a2 refused their phone), then
    the read fails. The next call freezes again: a1 is not excluded as refused by another
    (its sharer consents now, or it is no longer in the audience), every exclusion names
    a frozen target, and every frozen target has one record or one exclusion."""
    members = members_source(source)
    wb = workbench(members, any_store, mapping())
    calls = _cut_after_first_page(monkeypatch, lambda: src(members, CHANGES[change]) and None)
    try:
        wf = ad_workflow(wb, f"redo-{change}")
        run_id = start(wb, wf)
        with pytest.raises(InternalError, match="unexpected RuntimeError"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
        cut_short = reasons_by_key(any_store, run_id)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    assert calls["n"] == 2
    assert cut_short.get("a1") == SHARED  # what the first attempt had recorded
    frozen, sent = _frozen_keys(any_store, run_id), records(any_store, run_id)
    reasons = reasons_by_key(any_store, run_id)
    assert set(reasons) <= frozen
    assert reasons.get("a1") != SHARED
    assert len(frozen) == len(sent) + len(reasons)
    assert {k for k, _ in sent}.isdisjoint(reasons)
    if change == "sharer-consents":
        # a1 and a2 both consent and share a phone: one message, the other a duplicate
        assert len([k for k, _ in sent if k in ("a1", "a2")]) == 1
    else:
        assert "a1" not in frozen


def test_the_rest_freeze_clear_empties_the_runs_exclusions(db: str, run: tuple[str, str]) -> None:  # noqa: F811
    """`hybridwb_freeze_clear` (PostgREST's freeze) deletes the run's frozen pages and its
    exclusions in the transaction that beats the lock; another run's stay; a caller
    whose lock was taken over clears nothing."""
    wf, rid = run
    other = str(uuid.uuid4())
    rows(
        db,
        "INSERT INTO workflow_runs (id, workflow_id, status, parameters, dry_run, target_count,"
        " rendered_count, skipped_count, failed_count, sent_count, missing_variables, stats,"
        " created_at) SELECT %s, workflow_id, status, parameters, dry_run, target_count,"
        " rendered_count, skipped_count, failed_count, sent_count, missing_variables, stats,"
        " created_at FROM workflow_runs WHERE id = %s RETURNING id",
        other,
        rid,
    )
    for r in (rid, other):
        rows(
            db,
            "INSERT INTO run_skips (run_id, target_key, reason, created_at) VALUES "
            "(%s, 'a1', 'shared_no_consent', now()) RETURNING run_id",
            r,
        )
    _hold_lock(db, wf, rid, "me:1")
    assert _fz(db, "hybridwb_freeze_clear", wf, rid, "thief:1") is False
    assert rows(db, "SELECT count(*) FROM run_skips WHERE run_id = %s", rid) == [(1,)]
    assert _fz(db, "hybridwb_freeze_clear", wf, rid, "me:1") is True
    assert rows(db, "SELECT count(*) FROM run_skips WHERE run_id = %s", rid) == [(0,)]
    assert rows(db, "SELECT count(*) FROM run_skips WHERE run_id = %s", other) == [(1,)]
