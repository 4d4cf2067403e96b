"""Send decisions as the words the run, the store and the report use (pure).

tests/test_campaigns.py checks which rule decides; this file pins what each decision *says*,
written out rather than read from the module, so `make mutation` sees a changed or emptied
reason fail a test (an empty reason would read as "send").
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from hybridwb.workflows import policies, spelling
from hybridwb.workflows.config import FrequencyCap, SendPolicy

WF, RUN, OLD_RUN = (uuid.uuid4() for _ in range(3))
NOON = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 KST
NIGHT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 23:00 KST
PHONE = "+821012345678"


def _history(run: uuid.UUID = OLD_RUN, days_ago: float = 1) -> dict[str, object]:
    return {
        "recipient": PHONE,
        "workflow_id": WF,
        "run_id": run,
        "created_at": NOON - timedelta(days=days_ago),
    }


@pytest.mark.parametrize(
    ("candidate", "history", "rules", "word"),
    [
        (
            policies.Candidate("k", PHONE, present=False),
            [],
            {},
            "gone from source",
        ),
        (policies.Candidate("k", None), [], {}, "no recipient"),
        (policies.Candidate("k", ""), [], {}, "no recipient"),
        (
            policies.Candidate("k", PHONE, consent=0),
            [],
            {"advertising": True},
            "no marketing consent",
        ),
        (
            policies.Candidate("k", PHONE, consent=1, night_consent=0),
            [],
            {"advertising": True, "now": NIGHT},
            "wait",
        ),
        (
            policies.Candidate("k", PHONE, consent=1, night_consent=0),
            [],
            {"advertising": True, "now": NIGHT, "quiet_hours": "exclude"},
            "quiet hours (no night consent)",
        ),
        (
            policies.Candidate("k", PHONE),
            [_history()],
            {"policy": SendPolicy(once_per_recipient=True)},
            "already messaged (once per recipient)",
        ),
        (
            policies.Candidate("k", PHONE),
            [_history(days_ago=1)],
            {"policy": SendPolicy(cooldown_days=2)},
            "cooldown",
        ),
        (
            policies.Candidate("k", PHONE),
            [_history(run=RUN)],
            {},
            "duplicate recipient in this run",
        ),
        (
            policies.Candidate("k", PHONE),
            [_history(days_ago=1)],
            {"policy": SendPolicy(frequency_cap=FrequencyCap(messages=1, days=7))},
            "frequency cap",
        ),
        (policies.Candidate("k", PHONE), [], {}, None),
    ],
    ids=[
        "gone",
        "no-recipient",
        "empty-recipient",
        "no-consent",
        "night-waits",
        "night-excluded",
        "once",
        "cooldown",
        "duplicate",
        "cap",
        "send",
    ],
)
def test_each_decision_is_its_word(
    candidate: policies.Candidate,
    history: list[dict[str, object]],
    rules: dict[str, object],
    word: str | None,
) -> None:
    settings: dict[str, object] = {"policy": SendPolicy(), "advertising": False, "now": NOON}
    settings.update(rules)
    decided = policies.decide([candidate], history, policies.Rules(WF, RUN, **settings))  # type: ignore[arg-type]
    assert decided == [word]


def test_reasons_are_grouped_as_the_report_counts_them() -> None:
    assert set(policies.POLICY_REASONS) == {
        "already messaged (once per recipient)",
        "cooldown",
        "frequency cap",
        "duplicate recipient in this run",
    }
    assert set(policies.CONSENT_REASONS) == {
        "no marketing consent",
        "unclear consent value (neither yes nor no)",
        "quiet hours (no night consent)",
        "unclear night consent value (neither yes nor no)",
        "no marketing consent (another customer with this recipient has none)",
        "quiet hours (another customer with this recipient has no night consent)",
    }
    assert policies.BAD_ROW == "unreadable value (NUL byte)"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("+82 2 1234", "+8221234"), ("+44 7700 900000", "+447700900000")],
    ids=["possible-korean", "possible-uk"],
)
def test_a_possible_but_unassigned_number_is_still_e164(raw: str, normalized: str) -> None:
    assert policies.normalize("sms", raw) == normalized


def test_rules_are_a_value() -> None:
    rules = policies.Rules(WF, RUN, NOON, SendPolicy(), False)
    assert rules.quiet_hours == "wait"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.advertising = True  # type: ignore[misc]


def test_a_number_dialled_from_abroad_is_read_with_its_country_code() -> None:
    assert policies.normalize("sms", "0082-10-1234-5678") == "+821012345678"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("010-1234-5678 (집)", "+821012345678"),
        ("010-1234-5678 본인", "+821012345678"),
        ("010-1234-5678(엄마)", "+821012345678"),
        ("010-1234-5678 (mobile)", "+821012345678"),
        ("010-1234-5678 내선 12", "+821012345678"),
        ("0082-10-1234-5678 (집)", "+821012345678"),
        ("010-1234-5678, 010-9999-8888", None),
        ("010-1234-5678 / 010-9999-8888", None),
        ("전화 없음", None),
        (1012345678.0, "+821012345678"),
        (Decimal("1012345678.00"), "+821012345678"),
        (1012345678.5, None),
        (float("nan"), None),
    ],
    ids=[
        "note-home",
        "note-self",
        "note-mother-no-space",
        "note-latin-letters",
        "extension-in-korean",
        "dialled-from-abroad-with-note",
        "two-numbers-comma",
        "two-numbers-slash",
        "no-number",
        "double-column",
        "decimal-column",
        "fraction",
        "nan",
    ],
)
def test_a_phone_is_the_one_number_in_the_text(raw: Any, normalized: str | None) -> None:
    """A note beside a number is not part of it; several numbers are no one recipient."""
    assert policies.normalize("sms", raw) == normalized


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("김철수 <Kim@Example.com>", "kim@example.com"),
        ("kim@example.com (Kim)", "kim@example.com"),
        ("a@example.com, b@example.com", None),
        ("kim", None),
    ],
    ids=["display-name", "comment", "two-mailboxes", "no-mailbox"],
)
def test_an_email_is_the_one_mailbox_in_the_text(raw: str, normalized: str | None) -> None:
    assert policies.normalize("email", raw) == normalized


def test_old_spellings_of_every_phone_are_matched_whatever_comes_before() -> None:
    assert spelling.stored_spellings("sms", ["abc", "+821012345678"]) == {
        "abc": "abc",
        "+821012345678": "+821012345678",
        "821012345678": "+821012345678",
        "00821012345678": "+821012345678",
        "01012345678": "+821012345678",
        "001012345678": "+821012345678",
    }


@pytest.mark.parametrize(
    ("policy", "days_ago", "word"),
    [
        (SendPolicy(cooldown_days=2), 2, "cooldown"),
        (SendPolicy(cooldown_days=2), 2.001, None),
        (SendPolicy(frequency_cap=FrequencyCap(messages=1, days=7)), 7, "frequency cap"),
        (SendPolicy(frequency_cap=FrequencyCap(messages=1, days=7)), 7.001, None),
    ],
    ids=["cooldown-edge", "cooldown-past", "cap-edge", "cap-past"],
)
def test_windows_include_their_first_moment(
    policy: SendPolicy, days_ago: float, word: str | None
) -> None:
    rules = policies.Rules(WF, RUN, NOON, policy, False)
    decided = policies.decide(
        [policies.Candidate("k", PHONE)], [_history(days_ago=days_ago)], rules
    )
    assert decided == [word]


def test_a_candidate_is_a_value() -> None:
    candidate = policies.Candidate("k", PHONE)
    assert (candidate.consent, candidate.night_consent, candidate.present) == (None, None, True)
    with pytest.raises(AttributeError):
        candidate.present = False  # type: ignore[misc]


def test_a_possible_number_dialled_from_abroad_keeps_its_country_code() -> None:
    # no reading is a valid number: the one with the country code after `00` is kept,
    # not the Korean reading of the digits (`+8200447700900000`)
    assert policies.normalize("sms", "0044 7700 900000") == "+447700900000"


def test_a_recipient_changed_since_the_run_started_is_its_word() -> None:
    assert policies.RECIPIENT_CHANGED == "recipient changed since the run started"


def test_history_counts_are_summed_for_the_canonical_recipient() -> None:
    counts = [
        ("01012345678", 1, 0, 0, 1),  # a legacy spelling of PHONE
        (PHONE, 0, 1, 1, 2),
        ("+821099998888", 0, 0, 0, 0),  # counted nothing: seen nowhere
    ]
    seen = policies.Seen.of_counts(counts, {"01012345678": PHONE, PHONE: PHONE})
    assert seen.in_run == {PHONE}
    assert seen.earlier == {PHONE}
    assert seen.cooling == {PHONE}
    assert dict(seen.in_window) == {PHONE: 3}


def test_the_cap_a_rest_store_checks_again_is_the_policys() -> None:
    spellings = {PHONE: PHONE}
    capped = SendPolicy(frequency_cap=FrequencyCap(messages=2, days=7))
    check = policies.cap_check(policies.Rules(WF, RUN, NOON, capped, False), "sms", spellings)
    assert check is not None
    assert (check.space, check.messages, check.since, check.reason, check.spellings) == (
        "hybridwb:recipients",
        2,
        NOON - timedelta(days=7),
        "frequency cap",
        spellings,
    )
    assert policies.cap_check(policies.Rules(WF, RUN, NOON, SendPolicy(), False), "sms", {}) is None


@pytest.mark.parametrize(
    ("canonical", "national"),
    [("+8215881234", "15881234"), ("+8221234567", "021234567")],
    ids=["service-number-without-trunk-0", "seoul-landline"],
)
def test_stored_spellings_of_a_korean_number_that_is_no_mobile_are_its_national_digits(
    canonical: str, national: str
) -> None:
    # the mobile short cut (`0` + digits) is not taken: 1588 numbers have no trunk 0
    digits = canonical[1:]
    assert spelling.stored_spellings("sms", [canonical]) == {
        canonical: canonical,
        digits: canonical,
        "00" + digits: canonical,
        national: canonical,
        "0" + national: canonical,
    }


def test_a_digit_id_of_another_channel_is_probed_by_every_near_phone_form() -> None:
    # 0006 may have rewritten `0012345` to any of these: its digits with a `+`, after the
    # `00` international prefix (as is, or as Korean), after a trunk `0`
    assert spelling.history_spellings("push", ["0012345"], legacy_rows=False) == {
        "0012345": "0012345",
        "+0012345": "0012345",
        "+12345": "0012345",
        "+8212345": "0012345",
        "+82012345": "0012345",
    }


def test_a_00_text_without_a_country_code_after_it_is_read_as_written() -> None:
    # `+0 …` is no number (there is no country 0): the text itself is read next, as it
    # was before `00` was read as the international prefix
    assert policies.normalize("sms", "000 1234 5678") == "+8200012345678"
