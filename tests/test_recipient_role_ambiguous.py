"""The recipient a preview shows is the one a run sends to: the mapping's `recipient`, else
the one field whose role is the channel's (`phone` for SMS, `email` for email).

1. Two fields carry the channel's role and no path names one. The target plan took the
   first field with a phone *or* email role, so a preview showed that field's values as
   the recipients, while `audience_of` (workflow save, run) refused with "has no recipient
   mapped", naming neither field. Plan, preview, workflow save and run now refuse alike,
   in one line naming the fields and what to do (as `TableMapping.consent_path` does for
   consent).
2. An SMS audience whose email field comes before its phone field (no path): the plan
   took the email column, the run froze and read it as the SMS recipient (every target
   excluded as undeliverable), and the preview counted every member as having a recipient
   though none had a phone. Both now read the phone field.

Sources are fresh MariaDB databases, stores SQLite files and PostgreSQL databases; the
oracle is direct SQL on the store (`send_records`, `run_targets`, `workflows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    DAY,
    INFO,
    any_store,  # noqa: F401  (a fixture: pytest finds it by name)
    oracle,
    pg_store,  # noqa: F401
    source_url,
    start,
)
from tests.test_consent_fail_closed import edit_by_hand, refused_everywhere
from tests.test_consent_temporal import written

pytestmark = [pytest.mark.mysql]

TABLES = (
    "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
    "mail VARCHAR(60) NULL, mobile VARCHAR(20) NULL, mobile2 VARCHAR(20) NULL, "
    "mail2 VARCHAR(60) NULL)",
)
#: m0..m2: a mobile each, a second number (a guardian's) each, a mail only for m0
ROWS = {
    "members": [
        (
            f"m{i}",
            "회원",
            "m0@example.com" if i == 0 else None,
            f"010-4936-{i:04d}",
            f"010-4937-{i:04d}",
            None,
        )
        for i in range(3)
    ]
}


def members(roles: dict[str, str], **extra: Any) -> dict[str, Any]:
    """The members mapping with these field roles (`{"mobile": "phone"}`), no recipient
    path."""
    fields: dict[str, Any] = {
        "code": {"displayName": "번호", "type": "string", "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name"},
        "mail": {"displayName": "메일", "type": "string"},
        "mobile": {"displayName": "휴대폰", "type": "string"},
        "mobile2": {"displayName": "보호자휴대폰", "type": "string"},
        "mail2": {"displayName": "메일2", "type": "string"},
    }
    # the fields with a role first, in the order given (the plan took the first of them)
    given = {name: {**fields.pop(name), "role": role} for name, role in roles.items()}
    fields = {"code": fields.pop("code"), "name": fields.pop("name"), **given, **fields}
    return {"displayName": "회원", "key": "code", "channel": "sms", "fields": fields, **extra}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_rra")


def _workbench(db: str, store: str, safe: dict[str, Any]) -> tuple[Any, Any]:
    wb = hybridwb.connect(source=source_url(db), store=store)
    wb.store.init()
    wb.templates.create("안내", INFO, advertising=False)
    wb.mappings.save("members", safe)
    wf = wb.workflows.create(
        "roles", target_config={"table": "members"}, message_config={"template": "안내"}
    )
    return wb, wf


#: (id, the hand-edited mapping, the path attribute's role, both fields)
AMBIGUOUS = [
    (
        "two-phones",
        members({"mobile": "phone", "mobile2": "phone"}, audience=True),
        "phone",
        ("mobile", "mobile2"),
    ),
    (
        "two-phones-not-the-audience",
        members({"mobile": "phone", "mobile2": "phone"}),
        "phone",
        ("mobile", "mobile2"),
    ),
    (
        "two-emails",
        members({"mail": "email", "mail2": "email"}, audience=True, channel="email"),
        "email",
        ("mail", "mail2"),
    ),
]


@pytest.mark.parametrize(
    ("edited", "role", "both"), [c[1:] for c in AMBIGUOUS], ids=[c[0] for c in AMBIGUOUS]
)
def test_two_fields_with_the_recipient_role_and_no_path_are_refused_alike(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    edited: dict[str, Any],
    role: str,
    both: tuple[str, str],
) -> None:
    """The workflow was saved while the mapping named its recipient; the mapping file is
    then edited by hand to drop the path and give the channel's role to two fields. The
    plan, the preview, a new workflow's save and the run are refused in one line naming
    both fields and what to do; the run froze and sent nothing. Before: the preview showed
    the first field's numbers as the recipients, and the save and the run said only "no
    recipient mapped"."""
    db = source(*TABLES, rows=ROWS)
    safe = {**members({"mobile": "phone"}), "audience": True, "recipient": "mobile"}
    wb, wf = _workbench(db, any_store, safe)
    target = {"table": "members"}
    try:
        edit_by_hand(wb, "members", edited)
        refusals, run_id = refused_everywhere(wb, wf, target, DAY, plan=True)
    finally:
        wb.close()
    assert written(any_store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}
    assert oracle(any_store, "SELECT count(*) FROM send_records") == [(0,)]
    assert oracle(any_store, "SELECT count(*) FROM workflows WHERE name = 'again'") == [(0,)]
    first, second = both
    for exc in refusals:
        text = str(exc)
        assert "\n" not in text, text
        assert text.startswith("members.recipient: "), text
        assert f"{first!r} and {second!r} both have the role {role!r}" in text, text
        assert "set the mapping's 'recipient'" in text and "one field" in text, text
        assert "010-" not in text and "@" not in text, text


def test_a_recipient_path_settles_two_fields_with_the_role(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """With the path set, two phone fields are no ambiguity: the preview counts every
    member as having a recipient and the run messages each one's `mobile2` (oracle:
    send_records' recipients)."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    mapping = {
        **members({"mobile": "phone", "mobile2": "phone"}),
        "audience": True,
        "recipient": "mobile2",
    }
    wb, wf = _workbench(db, store, mapping)
    try:
        plan = wb.targets.plan({"table": "members"})
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert plan.recipient == "mobile2"
    sent = oracle(store, "SELECT recipient FROM send_records ORDER BY target_key")
    assert sent == [(f"+82104937{i:04d}",) for i in range(3)]


@pytest.mark.parametrize(
    ("channel", "roles", "recipient", "sent"),
    [
        (
            "sms",
            {"mail": "email", "mobile": "phone"},
            "mobile",
            [(f"+82104936{i:04d}",) for i in range(3)],
        ),
        ("email", {"mobile": "phone", "mail": "email"}, "mail", [("m0@example.com",)]),
    ],
    ids=["sms-after-an-email-field", "email-after-a-phone-field"],
)
def test_the_plan_reads_the_field_of_the_channels_role_as_the_run_does(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    channel: str,
    roles: dict[str, str],
    recipient: str,
    sent: list[tuple[str]],
) -> None:
    """An audience mapping edited by hand to drop its recipient path, with a field of the
    other channel's role before the channel's own: the plan, the preview and the run all
    read the channel's field, and the run messages its addresses (oracle: send_records).
    Before: the plan took the first of either role; an SMS run froze the mail column as
    its recipients and messaged nobody, and its preview counted the mails."""
    db = source(*TABLES, rows=ROWS)
    safe = {**members(roles), "audience": True, "recipient": recipient, "channel": channel}
    wb, wf = _workbench(db, any_store, safe)
    try:
        edit_by_hand(wb, "members", {**members(roles), "audience": True, "channel": channel})
        plan = wb.targets.plan({"table": "members"})
        preview = wb.targets.preview({"table": "members"}, allow_scan=True)
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert plan.recipient == recipient
    missing = 3 - len(sent)  # members without an address of the channel
    assert preview.quality["missing_recipient"] == missing
    rows = oracle(any_store, "SELECT recipient FROM send_records ORDER BY target_key")
    assert rows == sent


@pytest.mark.parametrize(
    "target",
    [
        {"sql": "SELECT code, name, mobile, mobile2 FROM members"},
        {"table": "members", "recipient": "mobile"},
    ],
    ids=["saved-query", "definition-names-its-recipient"],
)
def test_a_target_of_an_ambiguous_recipient_role_is_refused_by_preview_and_run_alike(
    source: Callable[..., str], tmp_path: Any, target: dict[str, Any]
) -> None:
    """A saved-query target reads the audience mapping's recipient the same way, and a
    definition naming its own recipient does not settle the mapping's (the run reads the
    mapping's audience, `audience_for`): the preview and the run are refused alike;
    nothing is frozen or sent."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    safe = {**members({"mobile": "phone"}), "audience": True, "recipient": "mobile"}
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wb.store.init()
        wb.templates.create("안내", INFO, advertising=False)
        wb.mappings.save("members", safe)
        wf = wb.workflows.create("q", target_config=target, message_config={"template": "안내"})
        edited = members({"mobile": "phone", "mobile2": "phone"}, audience=True)
        edit_by_hand(wb, "members", edited)
        expected = "'mobile' and 'mobile2' both have the role 'phone'"
        with pytest.raises(ValidationError, match=expected):
            wb.targets.preview(target, allow_scan=True)
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match=expected):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert written(store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}


def test_a_run_of_an_ambiguous_recipient_role_fails_with_its_reason(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """`wb.workflows.run` (run row, lock, notebook): failed, the row's error names the
    fields and what to do in one line, nothing frozen or sent, the lock released."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    safe = {**members({"mobile": "phone"}), "audience": True, "recipient": "mobile"}
    wb, wf = _workbench(db, store, safe)
    try:
        edit_by_hand(wb, "members", members({"mobile": "phone", "mobile2": "phone"}, audience=True))
        final = wb.workflows.run(wf["id"], progress=False, now=DAY)
    finally:
        wb.close()
    assert final["status"] == "failed"
    [(error,)] = oracle(store, "SELECT error FROM workflow_runs")
    assert "members.recipient: fields 'mobile' and 'mobile2' both have the role" in str(error)
    assert "\n" not in str(error) and "010-" not in str(error), error
    for table in ("run_targets", "run_locks", "send_records", "run_skips"):
        assert oracle(store, f"SELECT count(*) FROM {table}") == [(0,)], table
