"""Round 46 attack on "a workflow run messages exactly the intended customers, once".

Break (fixed): a resume went on with a frozen set decided for another message. The freeze
decides the targets another row refused (marketing: excluded; night: held) only for an
advertisement, by the consent fields mapped then; a run frozen informational whose first
batch failed, its workflow (or its template's flag) made advertising and resumed, sent the
ad to a1 and b1, whose phones a2 and b2/b3 had refused; one frozen with no night consent
mapped, resumed at 23:00 with it mapped, messaged n1 though n2 (same phone) refused night
consent; one frozen for an ad and resumed informational kept a1, b1, b2, b3 excluded (an
informational message is exempt). Now the freeze keeps what it decided for
(`audience.decided_for`, in `stats.frozen`) and a resume with pending targets for another
message or by other consent fields is refused (`audience.refuse_another_decision`).

Break (fixed): the preview's `marketing_opt_out` counted a target with an unclear consent
and no deliverable phone (NULL, '', '010-1234'), which the run excludes for its phone
before it reads its consent: 9 where a run and a dry run excluded 6 for consent. Now
`refusals.in_preview` marks such a row None and the count leaves it out.

Break (fixed after the round, by the lead): the preview's `invalid_phone` counted a number
with a note beside it ('01066660001 (집)') as invalid; the run reads the number and
messages it (`targets.quality.valid_phone` was a copy of the run's rules, a layer below
them). The recipient rules moved below both (`hybridwb.recipients`), and the preview calls
them.

Held (one line each):
- a freeze cut after its night hold (before the mark) and redone after the sharer's night
  consent changed holds n1 exactly when n2 refuses now (`_remember_freeze` starts anew).
- two workbenches calling `process` on one run at the same moment: one is refused, each
  frozen target one record or one exclusion, each phone one record (3 times × 2 stores).
- a run with nothing pending is settled, not refused, after its message changed.
- the run's normalizer gives one E.164 for 29 spellings of one number (0082, +82 (0),
  full-width digits, zero-width spaces, dashes of four kinds, 'tel:', a trailing note).
- `valid_phone` (the preview) and `deliverable(normalize(...))` (the run) agree on 26 of
  27 test values (the noted number above is the one that differs).
Noted, not changed: the preview's `duplicate_recipients` counts rows the run excludes
first for consent (MEMBERS: 4, the run's duplicates 2): a data-quality count of the set,
not the run's duplicate exclusions; a target whose consent is withdrawn after the freeze
is excluded as `gone from source` (the batch's read keeps the definition's consent filter,
as documented in `audience.fetch`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, InternalError, ValidationError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import audience, policies
from tests._stores import store_sql
from tests.test_attack_once_round2 import AD, DAY, NIGHT, frozen, records, source_url, src, start
from tests.test_shared_recipient_consent import (
    MEMBERS,
    SHARED,
    SHARED_NIGHT,
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


def _fail_first_batch(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The run's first batch read fails (after the freeze marked the set); once."""
    real, calls = audience.fetch, {"n": 0}

    def fetch(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the source went away mid-batch")
        return real(*a, **kw)

    monkeypatch.setattr(audience, "fetch", fetch)
    return calls


# -- what the freeze decided by, changed before the resume ----------------------------------
#: (message of the freeze, change made before the resume, when)
CHANGES: dict[str, tuple[str, Callable[[Any, dict[str, Any]], None], Any]] = {
    "workflow-now-advertising": (
        "안내",
        lambda wb, wf: wb.workflows.update(wf["id"], message_config={"template": "세일"}),
        DAY,
    ),
    "template-now-advertising": (
        "안내",
        lambda wb, wf: wb.templates.update(
            "안내", content=AD, advertising=True, sender="하이브리드몰"
        ),
        DAY,
    ),
    "night-consent-mapped-since": (
        "세일",
        lambda wb, wf: wb.mappings.save("members", mapping()),
        NIGHT,
    ),
    "workflow-now-informational": (
        "세일",
        lambda wb, wf: wb.workflows.update(wf["id"], message_config={"template": "안내"}),
        DAY,
    ),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_resume_whose_message_or_consent_mapping_changed_since_the_freeze_sends_nothing(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    """The freeze decides the targets another row refused (marketing: excluded; night:
    held) only for an advertisement, by the consent columns mapped then. A run frozen, its
    first batch failed, then its message made an advertisement (the workflow's template, or
    the template's flag), or night consent mapped, or the message made informational: the
    resume must not go on with a set decided for another message (a1 would get an ad its
    phone's holder a2 refused; n1 one at night n2 refused; a1 would stay excluded from an
    informational message, which is exempt). Oracle: send_records by direct SQL."""
    template, alter, now = CHANGES[change]
    members = members_source(source)
    first = mapping()
    if change == "night-consent-mapped-since":
        first.pop("nightConsent")
    wb = workbench(members, any_store, first)
    _fail_first_batch(monkeypatch)
    try:
        wf = wb.workflows.create(
            f"chg-{change}",
            target_config={"table": "members"},
            message_config={"template": template, "quiet_hours": "exclude"},
        )
        run_id = start(wb, wf)
        with pytest.raises(InternalError, match="unexpected RuntimeError"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=now)
        frozen_reasons = reasons_by_key(any_store, run_id)
        alter(wb, wf)
        with pytest.raises(ValidationError, match="froze its targets for"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=now)
    finally:
        wb.close()
    assert records(any_store, run_id) == []  # the resume sent nothing
    assert reasons_by_key(any_store, run_id) == frozen_reasons  # nor excluded anyone


def test_a_resume_refused_for_a_changed_message_goes_on_once_it_is_restored(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The informational run of the test above, its workflow made advertising and back:
    the resume then completes the set as frozen, every frozen target one record or one
    exclusion, a1 and b1 messaged (informational messages are exempt)."""
    members = members_source(source)
    wb = workbench(members, any_store, mapping())
    _fail_first_batch(monkeypatch)
    try:
        wf = wb.workflows.create(
            "restored", target_config={"table": "members"}, message_config={"template": "안내"}
        )
        run_id = start(wb, wf)
        with pytest.raises(InternalError, match="unexpected RuntimeError"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
        wb.workflows.update(wf["id"], message_config={"template": "세일"})
        with pytest.raises(ValidationError, match="froze its targets for"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
        wb.workflows.update(wf["id"], message_config={"template": "안내"})
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    sent = {k for k, _ in records(any_store, run_id)}
    reasons = reasons_by_key(any_store, run_id)
    assert {"a1", "b1", "c1"} <= sent and SHARED not in reasons.values()
    assert len(sent) + len(reasons) == frozen(any_store, run_id) == 10  # a2: left out
    assert reasons.get("d2") == policies.DUPLICATE or reasons.get("d1") == policies.DUPLICATE


# -- the preview counts the consent exclusions the run makes ---------------------------------
#: unclear consent, and no recipient (NULL, ''), a truncated number, a landline, a number
#: of no range: the run excludes the first three for their recipient before it reads their
#: consent, the last two for their consent (a landline and 010-0000-0000 are deliverable)
NO_PHONE = [
    ("x1", "하", None, "q1@x.com", "maybe", "Y"),
    ("x2", "하", "010-1234", "q2@x.com", "maybe", "Y"),
    ("x3", "하", "", "q3@x.com", "maybe", "Y"),
    ("x4", "하", "02-312-3456", "q4@x.com", "maybe", "Y"),
    ("x5", "하", "010-0000-0000", "q5@x.com", "maybe", "Y"),
]


def test_the_preview_counts_no_consent_exclusion_of_a_target_without_a_recipient(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """MEMBERS and NO_PHONE: the preview's `marketing_opt_out` is the consent exclusions
    (`policies.CONSENT_REASONS`) a run and a dry run record (run_skips by direct SQL): a
    target with an unclear consent and no deliverable phone is excluded for its phone.
    Before: the preview counted 9, the run excluded 6 for consent."""

    members = members_source(source, MEMBERS + NO_PHONE)
    wb = workbench(members, any_store, mapping())
    try:
        preview = wb.targets.preview({"table": "members"}, allow_scan=True)
        ids = []
        for dry_run in (True, False):
            wf = ad_workflow(wb, f"count-{dry_run}")
            run = wb.store.runs.create(wf["id"], {}, dry_run=dry_run)
            wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY, dry_run=dry_run)
            ids.append(run["id"])
    finally:
        wb.close()
    by_consent = []
    for run_id in ids:
        reasons = reasons_by_key(any_store, run_id)
        assert {reasons[k] for k in ("x1", "x3")} == {policies.NO_RECIPIENT}
        assert reasons["x2"] == policies.INVALID_PHONE
        by_consent.append(sum(1 for r in reasons.values() if r in policies.CONSENT_REASONS))
    assert by_consent == [6, 6]
    assert preview.quality["marketing_opt_out"] == 6


# -- a freeze cut short after its night hold, redone with the sharer's night consent changed --
@pytest.mark.parametrize("night", ["Y", "N"], ids=["sharer-now-consents", "sharer-now-refuses"])
def test_a_freeze_cut_after_its_night_hold_redone_holds_what_the_source_says_then(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    night: str,
) -> None:
    """The freeze stores every page, records its night hold (n1: n2 shares its phone), and
    fails before the mark (at the statistics step after the last page); meanwhile n2's night
    consent becomes `night` (MEMBERS: 'N'; made 'Y' first for the second case). At night
    ("exclude") the redone freeze holds n1 only when n2 refuses now: the phone gets one
    message when both consent, none when n2 refuses."""

    members = members_source(source)
    if night == "N":
        src(members, "UPDATE members SET night = 'Y' WHERE code = 'n2'")
    wb = workbench(members, any_store, mapping())
    real, calls = Campaigns._analyze, {"n": 0}

    def analyze(self: Any, table: Any, columns: Any) -> None:
        if table.name == "run_targets":
            calls["n"] += 1
            if calls["n"] == 1:
                src(members, f"UPDATE members SET night = '{night}' WHERE code = 'n2'")
                raise RuntimeError("the store went away before the mark")
        real(self, table, columns)

    monkeypatch.setattr(Campaigns, "_analyze", analyze)
    try:
        wf = ad_workflow(wb, f"night-redo-{night}", quiet_hours="exclude")
        run_id = start(wb, wf)
        with pytest.raises(InternalError, match="unexpected RuntimeError"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=NIGHT)
        cut = wb.store.runs.get(run_id)["stats"]["frozen"].get("night_held")
        wb.workflows.process(wf["id"], run_id, progress=False, now=NIGHT)
    finally:
        wb.close()
    assert calls["n"] == 2
    assert bool(cut) is (night == "Y")  # the first attempt held n1 (n2 refused then)
    sent = {k for k, _ in records(any_store, run_id)}
    reasons = reasons_by_key(any_store, run_id)
    if night == "Y":
        assert len({"n1", "n2"} & sent) == 1 and SHARED_NIGHT not in reasons.values()
    else:
        assert not {"n1", "n2"} & sent
        assert reasons["n1"] == SHARED_NIGHT and reasons["n2"] == policies.QUIET
    assert len(sent) + len(reasons) == frozen(any_store, run_id)


def test_the_previews_invalid_phones_are_the_runs(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """MEMBERS and y1, whose phone has a note beside it: the run messages y1 (no
    `not a valid phone number` exclusion, send_records by direct SQL); the preview counts
    as many invalid phones as the run excludes."""

    noted = ("y1", "하", "01066660001 (집)", "y1@x.com", "Y", "Y")
    members = members_source(source, [*MEMBERS, noted])
    wb = workbench(members, any_store, mapping())
    try:
        preview = wb.targets.preview({"table": "members"}, allow_scan=True)
        wf = ad_workflow(wb, "noted")
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert "y1" in {k for k, _ in records(any_store, run_id)}
    invalid = list(reasons_by_key(any_store, run_id).values()).count(policies.INVALID_PHONE)
    assert preview.quality["invalid_phone"] == invalid == 0


# -- two processes on one run, at once -------------------------------------------------------
def process_at_once(wbs: list[Any], workflow_id: Any, run_id: Any) -> list[str]:
    """Each workbench calls `process` on the run at the same moment (a barrier), by day, in
    batches of two: what each call ended with ("done", or the HybridwbError's class name)."""
    outcomes: list[str] = []
    gate = threading.Barrier(len(wbs))

    def go(wb: Any) -> None:
        gate.wait()
        try:
            wb.workflows.process(workflow_id, run_id, progress=False, now=DAY, batch_size=2)
            outcomes.append("done")
        except HybridwbError as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=go, args=(wb,)) for wb in wbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


@pytest.mark.parametrize("attempt", range(3))
def test_two_calls_on_one_run_at_once_message_each_phone_once(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    attempt: int,
) -> None:
    """Two workbenches (connections of their own) call `process` on one advertising run at
    the same moment, by hand, in batches of two: one is refused or finds the run done; each
    frozen target ends with one record or one exclusion, each phone one record, a1 and b1
    (refused by another) none."""

    members = members_source(source)
    wbs = [workbench(members, any_store, mapping())]
    wbs.append(hybridwb.connect(source=source_url(members), store=any_store))
    outcomes: list[str] = []
    try:
        wf = ad_workflow(wbs[0], f"two-{attempt}")
        run_id = start(wbs[0], wf)
        outcomes = process_at_once(wbs, wf["id"], run_id)
    finally:
        for wb in wbs:
            wb.close()
    assert len(outcomes) == 2 and "done" in outcomes, outcomes
    sent = records(any_store, run_id)
    reasons = reasons_by_key(any_store, run_id)
    assert len(sent) + len(reasons) == frozen(any_store, run_id) == 10
    assert len({r for _, r in sent}) == len(sent)
    assert reasons["a1"] == SHARED and reasons["b1"] == SHARED


def test_a_run_with_nothing_pending_is_not_refused_for_a_changed_message(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
) -> None:
    """The refusal is for pending targets only: a run whose every target has its record
    or exclusion (its end written `failed` by another, as a lost end is) processed again
    after its workflow was made advertising writes nothing and is not refused."""

    members = members_source(source)
    wb = workbench(members, any_store, mapping())
    try:
        wf = wb.workflows.create(
            "all-done", target_config={"table": "members"}, message_config={"template": "안내"}
        )
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
        before = (records(any_store, run_id), reasons_by_key(any_store, run_id))
        store_sql(
            any_store,
            "UPDATE workflow_runs SET status = 'failed' WHERE CAST(id AS TEXT) IN (%s, %s)",
            (str(run_id), uuid.UUID(str(run_id)).hex),
        )
        wb.workflows.update(wf["id"], message_config={"template": "세일"})
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert (records(any_store, run_id), reasons_by_key(any_store, run_id)) == before
