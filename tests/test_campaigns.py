"""Campaign rules as pure functions: policies, advertising, quiet hours, parameters, schedules,
the run context, final statuses and masking. No kernel, no server: milliseconds each."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hybridwb.config import Settings, load_settings
from hybridwb.errors import ConfigError, ValidationError
from hybridwb.workflows import advertising, context, policies, spelling
from hybridwb.workflows.config import FrequencyCap, SendPolicy
from hybridwb.workflows.params import check_parameters
from hybridwb.workflows.report import mask_text
from hybridwb.workflows.runner import final_status
from hybridwb.workflows.scheduler import check_schedule, due

WF, OTHER_WF, RUN, OLD_RUN = (uuid.uuid4() for _ in range(4))
NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 KST
NIGHT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 23:00 KST


def rec(recipient: str, wf: uuid.UUID = WF, run: uuid.UUID = OLD_RUN, days_ago: float = 1) -> dict:
    return {
        "recipient": recipient,
        "workflow_id": wf,
        "run_id": run,
        "created_at": NOW - timedelta(days=days_ago),
    }


def cand(
    recipient: str | None = "01012345678", consent: object = 1, night: object = 0
) -> policies.Candidate:
    return policies.Candidate("k", recipient, consent, night)


@pytest.mark.parametrize(
    ("policy", "advertising_", "at", "quiet", "candidate", "history", "expected"),
    [
        (SendPolicy(), False, NOW, "wait", cand(), [], None),
        (SendPolicy(), False, NOW, "wait", cand(None), [], policies.NO_RECIPIENT),
        (
            SendPolicy(once_per_recipient=True),
            False,
            NOW,
            "wait",
            cand(),
            [rec("01012345678")],
            policies.ONCE,
        ),
        (
            SendPolicy(once_per_recipient=True),
            False,
            NOW,
            "wait",
            cand(),
            [rec("01012345678", OTHER_WF)],
            None,
        ),
        (SendPolicy(), False, NOW, "wait", cand(), [rec("01012345678")], None),
        (
            SendPolicy(cooldown_days=7),
            False,
            NOW,
            "wait",
            cand(),
            [rec("01012345678", days_ago=3)],
            policies.COOLDOWN,
        ),
        (
            SendPolicy(cooldown_days=7),
            False,
            NOW,
            "wait",
            cand(),
            [rec("01012345678", days_ago=8)],
            None,
        ),
        (
            SendPolicy(frequency_cap=FrequencyCap(messages=2, days=7)),
            False,
            NOW,
            "wait",
            cand(),
            [rec("01012345678", OTHER_WF), rec("01012345678", OTHER_WF)],
            policies.CAP,
        ),
        (
            SendPolicy(frequency_cap=FrequencyCap(messages=2, days=7)),
            False,
            NOW,
            "wait",
            cand(),
            [rec("01012345678", OTHER_WF)],
            None,
        ),
        (
            SendPolicy(frequency_cap=FrequencyCap(messages=1, days=7)),
            False,
            NOW,
            "wait",
            cand(),
            [rec("01012345678", OTHER_WF, days_ago=9)],
            None,
        ),
        (
            SendPolicy(),
            False,
            NOW,
            "wait",
            cand(),
            [rec("01012345678", run=RUN)],
            policies.DUPLICATE,
        ),
        (SendPolicy(), True, NOW, "wait", cand(consent=0), [], policies.NO_CONSENT),
        (SendPolicy(), True, NOW, "wait", cand(consent="Y"), [], None),
        (SendPolicy(), False, NOW, "wait", cand(consent=0), [], None),
        (SendPolicy(), True, NIGHT, "wait", cand(night=0), [], policies.WAIT),
        (SendPolicy(), True, NIGHT, "exclude", cand(night=0), [], policies.QUIET),
        (SendPolicy(), True, NIGHT, "exclude", cand(night=1), [], None),
        (SendPolicy(), False, NIGHT, "exclude", cand(night=0), [], None),
    ],
    ids=[
        "plain-send",
        "no-recipient",
        "once-excludes-earlier-run",
        "once-ignores-other-workflows",
        "no-policy-sends-again",
        "cooldown-within",
        "cooldown-past",
        "cap-reached",
        "cap-not-reached",
        "cap-outside-window",
        "duplicate-in-run",
        "ad-without-consent",
        "ad-consent-Y",
        "informational-needs-no-consent",
        "ad-night-waits",
        "ad-night-excluded",
        "ad-night-with-night-consent",
        "informational-at-night",
    ],
)
def test_decide(policy, advertising_, at, quiet, candidate, history, expected) -> None:  # type: ignore[no-untyped-def]
    rules = policies.Rules(WF, RUN, at, policy, advertising_, quiet)
    assert policies.decide([candidate], history, rules) == [expected]


def test_a_recipient_twice_in_one_batch_is_sent_once_and_counts_against_the_cap() -> None:
    rules = policies.Rules(
        WF, RUN, NOW, SendPolicy(frequency_cap=FrequencyCap(messages=2, days=1)), False
    )
    out = policies.decide([cand("01012345678"), cand("01012345678")], [], rules)
    assert out == [None, policies.DUPLICATE]


@pytest.mark.parametrize(
    ("channel", "raw", "expected"),
    [
        ("sms", "010-1234-5678", "+821012345678"),
        ("sms", "+82 10-1234-5678", "+821012345678"),
        ("sms", "+82 (0)10-1234-5678", "+821012345678"),
        ("sms", "0082-10-1234-5678", "+821012345678"),
        ("sms", "821012345678", "+821012345678"),
        ("sms", "+821012345678", "+821012345678"),
        ("sms", "+1 415 555 0100", "+14155550100"),
        ("sms", "#1", None),
        ("sms", "  ", None),
        ("email", " Kim@Example.COM ", "kim@example.com"),
        ("other", None, None),
    ],
    ids=[
        "dashes",
        "country-code",
        "trunk-zero-in-brackets",
        "00-international-prefix",
        "country-code-digits",
        "already-canonical",
        "foreign",
        "no-readable-number",
        "blank",
        "email-case",
        "none",
    ],
)
def test_recipients_are_normalized_so_history_matches(
    channel: str, raw: object, expected: object
) -> None:
    assert policies.normalize(channel, raw) == expected


GOOD_AD = "(광고) 하이브리드몰\n봄 세일 20% 할인!\n무료수신거부 080-123-4567"


@pytest.mark.parametrize(
    ("text", "sender", "words"),
    [
        (GOOD_AD, "하이브리드몰", None),
        ("봄 세일 하이브리드몰\n무료수신거부 080-123-4567", "하이브리드몰", r"start with \(광고\)"),
        ("(광고) 봄 세일\n무료수신거부 080-123-4567", "하이브리드몰", "name the sender"),
        ("(광고) 하이브리드몰 봄 세일\n무료수신거부 080-123-4567", None, "must name its sender"),
        ("(광고) 하이브리드몰 봄 세일", "하이브리드몰", "free opt-out"),
        (
            "(광고) 하이브리드몰\n무료수신거부 080-123-4567\n감사합니다",
            "하이브리드몰",
            "free opt-out",
        ),
        ("(광고) 하이브리드몰\n수신거부 02-123-4567", "하이브리드몰", "free opt-out"),
    ],
    ids=[
        "compliant",
        "no-prefix",
        "sender-not-named",
        "no-sender",
        "no-opt-out",
        "opt-out-not-last",
        "paid-opt-out",
    ],
)
def test_advertising_rules(text: str, sender: str | None, words: str | None) -> None:
    if words is None:
        advertising.check(text, sender)
    else:
        with pytest.raises(ValidationError, match=words):
            advertising.check(text, sender)


@pytest.mark.parametrize(
    ("utc_hour", "night"),
    [(11, False), (12, True), (13, True), (22, True), (22.99, True), (23, False), (3, False)],
    ids=["20h-kst", "21h-kst", "22h-kst", "07h-kst", "07h59-kst", "08h-kst", "noon-kst"],
)
def test_quiet_hours_are_21_to_08_in_seoul(utc_hour: float, night: bool) -> None:
    at = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=utc_hour)
    assert advertising.is_night(at) is night


@pytest.mark.parametrize(
    "params",
    [
        {"x = 1\nopen('pwned', 'w').write('x')\n#": 1},
        {"class": 1},
        {"1abc": 1},
        {"ok": object()},
        {"ok": float("nan")},
        {"ok": {"nested": {1: 2}}},
        {"ok": b"bytes"},
    ],
    ids=["code-in-key", "keyword", "digit-first", "object", "nan", "non-text-key", "bytes"],
)
def test_bad_papermill_parameters_are_refused(params: dict) -> None:
    with pytest.raises(ValidationError):
        check_parameters(params)


def test_json_parameters_pass() -> None:
    good = {"batch_size": 5, "as_of": "2026-01-01", "ids": [1, 2], "opts": {"a": None}, "x": 1.5}
    assert check_parameters(good) == good


@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "time zone"),
        ({"cron": "sometimes"}, "cron expression"),
    ],
    ids=["february-30", "unknown-zone", "not-cron"],
)
def test_bad_schedules_are_refused(cfg: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        check_schedule(cfg)


def test_a_bad_schedule_row_is_reported_and_the_others_still_run() -> None:
    now = datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)
    rows = [
        {
            "name": "bad",
            "trigger_type": "schedule",
            "status": "active",
            "schedule_config": {"cron": "0 0 30 2 *"},
        },
        {
            "name": "zone",
            "trigger_type": "schedule",
            "status": "active",
            "schedule_config": {"cron": "* * * * *", "timezone": "Nowhere/Land"},
        },
        {
            "name": "good",
            "trigger_type": "schedule",
            "status": "active",
            "schedule_config": {"cron": "* * * * *", "timezone": "UTC"},
        },
    ]
    check = due(rows, now)
    assert [d.workflow["name"] for d in check.due] == ["good"]
    assert (
        len(check.problems) == 2 and "'bad'" in check.problems[0] and "'zone'" in check.problems[1]
    )


def test_run_context_carries_every_setting_and_secret(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path,
        {},
        source_url="mysql+pymysql://u:canary-src@db/shop",
        supabase_url="https://x.supabase.co",
        supabase_service_role_key="canary-key",
        supabase_anon_key="canary-anon",
        row_cap=123,
        statement_timeout=7.5,
        reports_dir="out",
        sample_customers=77,
    )
    env = context.kernel_env(
        settings, {"PATH": "/bin", "MYSQL_HOST": "elsewhere", "HYBRIDWB_ROW_CAP": "9"}
    )
    assert "MYSQL_HOST" not in env and "HYBRIDWB_ROW_CAP" not in env and env["PATH"] == "/bin"
    rebuilt = context.settings_from_payload(env[context.ENV_VAR])
    for name in Settings.model_fields:
        mine, theirs = getattr(settings, name), getattr(rebuilt, name)
        if hasattr(mine, "get_secret_value"):
            mine, theirs = mine.get_secret_value(), theirs.get_secret_value()
        if isinstance(mine, Path) and not mine.is_absolute():
            mine = Path.cwd() / mine  # the kernel gets absolute paths
        assert mine == theirs, name
    assert json.loads(env[context.ENV_VAR])["reports_dir"] == str(tmp_path / "out")


def test_a_malformed_run_context_is_one_configuration_error() -> None:
    with pytest.raises(ConfigError, match="hybridwb run"):
        context.settings_from_payload("{not json")


def _counts(targets: int, records: int, skipped: int, **reasons: int) -> dict:
    return {
        "targets": targets,
        "records": records,
        "skipped": skipped,
        "skipped_by_reason": reasons or ({"cooldown": skipped} if skipped else {}),
        "pending": targets - records - skipped,
    }


@pytest.mark.parametrize(
    ("counts", "error", "dry", "stats", "status"),
    [
        (_counts(10, 10, 0), None, False, {}, "succeeded"),
        (_counts(10, 0, 10), None, False, {}, "empty"),
        (_counts(0, 0, 0), None, False, {}, "empty"),
        (_counts(10, 4, 0), None, False, {}, "failed"),
        (_counts(10, 4, 0), None, False, {"waiting": 6}, "waiting"),
        (_counts(10, 10, 0), "DeadKernelError: x", False, {}, "failed"),
        (_counts(10, 0, 0), None, True, {}, "succeeded"),
    ],
    ids=["all-sent", "all-excluded", "no-targets", "unfinished", "quiet-hours", "error", "dry-run"],
)
def test_final_status_is_the_truth_of_the_rows(counts, error, dry, stats, status) -> None:  # type: ignore[no-untyped-def]
    got, reason = final_status(counts, error, dry, {"id": "r", "stats": stats})
    assert got == status
    assert (reason is None) == (status == "succeeded")


def test_samples_are_masked() -> None:
    text = "김민준님, 010-1234-5678 / kim@example.com 으로 안내드립니다."
    masked = mask_text(text, {"고객명": "김민준"})
    for secret in ("김민준", "1234", "5678", "kim@"):
        assert secret not in masked
    assert "님," in masked and "example.com" in masked


def test_run_due_gives_back_the_slot_of_a_run_that_raises_and_runs_the_rest() -> None:
    from hybridwb.workflows.scheduler import run_due

    now = datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)
    rows = [
        {
            "id": n,
            "name": n,
            "trigger_type": "schedule",
            "status": "active",
            "schedule_config": {"cron": "* * * * *", "timezone": "UTC"},
        }
        for n in ("boom", "fine")
    ]
    claimed, released = [], []

    def run(wf_id: str, params: dict, **kw: object) -> dict:
        if wf_id == "boom":
            raise RuntimeError("kernel exploded")
        return {"id": wf_id, "status": "succeeded"}

    runs, problems = run_due(
        rows,
        lambda w, t, o: claimed.append(w) or True,
        lambda w, t: released.append(w),
        run,
        "me",
        now,
    )
    assert [r["id"] for r in runs] == ["fine"] and claimed == ["boom", "fine"]
    assert released == ["boom"] and "slot released" in problems[0]


@pytest.mark.parametrize(
    "stored",
    ["01012345678", "00821012345678", "001012345678", "+821012345678"],
    ids=["old-national-digits", "old-00-prefix", "old-trunk-zero", "canonical"],
)
def test_history_stored_in_an_earlier_spelling_still_matches_the_canonical_phone(
    stored: str,
) -> None:
    """Rows written before phones were E.164 are found and count as the same phone."""
    spellings = spelling.stored_spellings("sms", ["+821012345678"])
    assert spellings[stored] == "+821012345678"
    history = [rec(spellings[stored])]
    rules = policies.Rules(WF, RUN, NOW, SendPolicy(once_per_recipient=True), False)
    assert policies.decide([cand("+821012345678")], history, rules) == [policies.ONCE]


@pytest.mark.parametrize(
    ("hours_ago", "naive", "expected"),
    [
        (20, True, policies.CAP),
        (20, False, policies.CAP),
        (30, True, None),
        (30, False, None),
    ],
    ids=["naive-20h-inside", "aware-20h-inside", "naive-30h-outside", "aware-30h-outside"],
)
def test_the_cap_window_is_one_instant_whatever_the_offset_of_now(
    hours_ago: int, naive: bool, expected: str | None
) -> None:
    """SQLite hands back naive UTC timestamps; `now` may carry +09:00 (`--now`)."""
    from zoneinfo import ZoneInfo

    sent = NOW - timedelta(hours=hours_ago)
    history = [{**rec("+821012345678"), "created_at": sent.replace(tzinfo=None) if naive else sent}]
    seoul_now = NOW.astimezone(ZoneInfo("Asia/Seoul"))
    policy = SendPolicy(frequency_cap=FrequencyCap(messages=1, days=1))
    rules = policies.Rules(WF, RUN, seoul_now, policy, False)
    assert policies.decide([cand("+821012345678")], history, rules) == [expected]


@pytest.mark.parametrize(
    ("mode", "said"), [("wait", "left waiting for 08:00 KST"), ("exclude", "excluded")]
)
def test_a_night_reports_what_became_of_recipients_without_night_consent(
    mode: str, said: str
) -> None:
    """The report's night row says what the run did with them (it printed the mode's
    name: "recipients without night consent: wait")."""
    from hybridwb.workflows.report import render_html

    run = {"id": "r", "stats": {"advertising": True, "night": True, "quiet_hours": mode}}
    html = render_html({"name": "wf"}, run)
    assert f"recipients without night consent: {said}</td>" in html
