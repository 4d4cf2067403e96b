"""A consent column altered to a date or time while a run is sending fails the run at the
next batch it reads, before anything of that batch is sent.

The run's plan types its consent columns by the server once (`plan_for_run`); a column
ALTERed after it (`MODIFY ok YEAR`, every value 2021) was still read by value by every
later batch, and 2021 reads as yes: customers who had said no were messaged. Each batch's
read already carries the server's type of each column it returns (the cursor's
description), so the run checks the consent columns there, with no statement of its own.

Sources are fresh MariaDB databases, stores SQLite files and PostgreSQL databases. The
ALTER is made at a batch boundary: by a hook on the batch read (`audience.fetch`) for
`wb.workflows.process`, and during `batch_pause` (the store polled for the first batch's
records) for `wb.workflows.run`, whose kernel is another process. The oracle is direct SQL
on `send_records`, `run_targets`, `run_skips` and `workflow_runs`, and the source's
statement stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from hybridwb.workflows import audience
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import (
    AD,
    DAY,
    INFO,
    NIGHT,
    any_store,  # noqa: F401  (a fixture: pytest finds it by name)
    oracle,
    people,
    pg_store,  # noqa: F401
    source_url,
    src,
    start,
)
from tests.test_attack_round26_consent import CHAIN, chained
from tests.test_consent_fail_closed import sent_keys, statements
from tests.test_consent_temporal import written

pytestmark = [pytest.mark.mysql]

TABLES = (
    "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
    "mobile VARCHAR(20), ok TINYINT(1) NULL, night TINYINT(1) NULL)",
)
#: six members, every one consenting by day and at night
ROWS = {"members": [(f"m{i}", "회원", f"010-4935-{i:04d}", 1, 1) for i in range(6)]}
MAPPING = {
    **people(
        fields={
            "ok": {"displayName": "광고동의", "type": "boolean"},
            "night": {"displayName": "야간동의", "type": "boolean"},
        }
    ),
    "audience": True,
    "consent": "ok",
    "nightConsent": "night",
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_cam")


def _workbench(db: str, store: str, message: dict[str, Any], target: dict[str, Any]) -> Any:
    wb = hybridwb.connect(source=source_url(db), store=store)
    wb.store.init()
    wb.templates.create("안내", INFO, advertising=False)
    wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    wb.mappings.save("members", MAPPING)
    wf = wb.workflows.create("altered", target_config=target, message_config=message)
    return wb, wf


def alters_before_batch(
    monkeypatch: pytest.MonkeyPatch,
    db: str,
    column: str,
    ddl: str = "YEAR",
    value: str = "2021",
    n: int = 2,
) -> dict[str, int]:
    """`audience.fetch` (a run's read of a batch's rows) that first alters `column` to `ddl`
    and sets every value to `value` (each reads as yes; YEAR and 2021 unless given) when
    the run reads its `n`-th batch."""
    real = audience.fetch
    calls = {"n": 0}

    def fetch(*a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == n:
            src(db, f"ALTER TABLE members MODIFY {column} {ddl} NULL")
            src(db, f"UPDATE members SET {column} = {value}")
        return real(*a, **kw)

    monkeypatch.setattr(audience, "fetch", fetch)
    return calls


def restore(db: str, column: str) -> None:
    """The column put back as it was: a yes/no flag, every member consenting."""
    src(db, f"UPDATE members SET {column} = NULL")
    src(db, f"ALTER TABLE members MODIFY {column} TINYINT(1) NULL")
    src(db, f"UPDATE members SET {column} = 1")


#: (id, column altered, message, target, hour, the error's start)
CASES = [
    (
        "consent-advertising",
        "ok",
        {"template": "세일"},
        {"table": "members"},
        DAY,
        "members.consent: 'ok' is now a YEAR column",
    ),
    (
        "consent-informational-filtered",
        "ok",
        {"template": "안내"},
        {"table": "members"},
        DAY,
        "members.consent: 'ok' is now a YEAR column",
    ),
    (
        "night-consent",
        "night",
        {"template": "세일", "quiet_hours": "exclude"},
        {"table": "members"},
        NIGHT,
        "members.nightConsent: 'night' is now a YEAR column",
    ),
    (
        "saved-query",
        "ok",
        {"template": "세일"},
        {"sql": "SELECT code, name, mobile, ok, night FROM members"},
        DAY,
        "members.consent: 'ok' is now a YEAR column",
    ),
]


@pytest.mark.parametrize(
    ("column", "message", "target", "now", "named"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_a_consent_column_altered_between_batches_fails_the_run_at_the_next_batch(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    column: str,
    message: dict[str, Any],
    target: dict[str, Any],
    now: Any,
    named: str,
) -> None:
    """Batches of two; the column is altered to YEAR (2021 for everyone) just before the
    second batch is read. The run fails there in one line: the first batch's two records
    are all that was sent, the other four stay pending (no record, no exclusion). Put
    back, a resume sends exactly those four, each customer once. Before: all six were sent
    on values of 2021."""
    fails_at_the_second_batch_then_resumes(
        source, any_store, monkeypatch, column, message, target, now, named
    )


def fails_at_the_second_batch_then_resumes(
    source: Callable[..., str],
    store: str,
    monkeypatch: pytest.MonkeyPatch,
    column: str,
    message: dict[str, Any],
    target: dict[str, Any],
    now: Any,
    named: str,
    ddl: str = "YEAR",
    value: str = "2021",
) -> None:
    """Six members, batches of two; `column` altered to `ddl` (everyone `value`) just before
    the second batch is read. The run fails there in one line starting `named` (no phone,
    no value in it): the first batch's two records are all that was sent, the other four
    stay pending (no record, no exclusion). Put back, a resume sends exactly those four,
    each customer once."""
    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, store, message, target)
    try:
        alters_before_batch(monkeypatch, db, column, ddl, value)
        run_id = start(wb, wf)
        with pytest.raises(ValidationError) as failed:
            wb.workflows.process(wf["id"], run_id, progress=False, now=now, batch_size=2)
        after_failure = written(store, run_id)
        first = sent_keys(store, run_id)
        [(status, error, finished)] = oracle(
            store, "SELECT status, error, finished_at FROM workflow_runs"
        )
        monkeypatch.undo()
        restore(db, column)
        wb.workflows.process(wf["id"], run_id, progress=False, now=now, batch_size=2)
    finally:
        wb.close()
    text = str(failed.value)
    assert text.startswith(named) and "\n" not in text, text
    assert "010-" not in text and value.strip("'") not in text, text
    assert after_failure == {"run_targets": 6, "send_records": 2, "run_skips": 0}
    assert first == ["m0", "m1"]
    # processed by hand (no runner to write its end): the run row says it failed, and why
    assert (status, error) == ("failed", f"ValidationError: {text}") and finished is not None
    assert sent_keys(store, run_id) == [f"m{i}" for i in range(6)]
    assert written(store, run_id) == {"run_targets": 6, "send_records": 6, "run_skips": 0}
    rows = oracle(store, "SELECT status, sent_count, skipped_count FROM workflow_runs")
    assert rows == [("succeeded", 6, 0)]


def test_a_run_whose_consent_column_is_altered_mid_run_is_failed_with_its_error(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """`wb.workflows.run` (its kernel another process): batches of one, three seconds
    apart; the column is altered as soon as the first record is in the store. The run is
    marked failed with the one-line reason in `workflow_runs.error` and its counters from
    the rows (one sent, two pending); a resume after the column is put back completes it."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows={"members": ROWS["members"][:3]})
    wb, wf = _workbench(db, store, {"template": "세일"}, {"table": "members"})
    altered = threading.Event()

    def alter_after_the_first_record() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if oracle(store, "SELECT count(*) FROM send_records") != [(0,)]:
                src(db, "ALTER TABLE members MODIFY ok YEAR NULL")
                src(db, "UPDATE members SET ok = 2021")
                altered.set()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=alter_after_the_first_record, daemon=True)
    try:
        watcher.start()
        params = {"batch_size": 1, "batch_pause": 3.0}
        final = wb.workflows.run(wf["id"], params, now=DAY, progress=False)
        watcher.join()
        failed = oracle(
            store,
            "SELECT status, error, sent_count, skipped_count, target_count FROM workflow_runs",
        )
        first = sent_keys(store, final["id"])
        restore(db, "ok")
        resumed = wb.workflows.run(
            None, {"batch_pause": 0.0}, resume=final["id"], now=DAY, progress=False
        )
    finally:
        wb.close()
    assert altered.is_set()
    [(status, error, sent, skipped, targets)] = failed
    assert status == "failed", error
    assert "members.consent: 'ok' is now a YEAR column" in str(error), error
    assert "\n" not in str(error), error
    assert (sent, skipped, targets) == (1, 0, 3)
    assert first == ["m0"]
    assert resumed["status"] == "succeeded", resumed.get("error")
    assert sent_keys(store, final["id"]) == ["m0", "m1", "m2"]


def test_the_batch_type_check_sends_no_statement_of_its_own(
    source: Callable[..., str], tmp_path: Any
) -> None:
    """The check reads the types the batch's own read brought back: a run of three batches
    sends its freeze's clock read (`Source.clock`, once a run) and its reads, one range read per batch and one type read for its plan
    (information_schema), and, an advertisement, the refusal read of the audience
    (`refusals.read`: one window, its end probe and its rows), and nothing else (oracle:
    the store's `query_logs` and the source engine's statement stream)."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, store, {"template": "세일"}, {"table": "members"})
    try:
        wb.querylog.flush()  # what the workflow's save read is in the store's log now
        before = len(oracle(store, "SELECT query FROM query_logs"))
        seen = statements(wb)
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    finally:
        wb.close()
    logged = [q for (q,) in oracle(store, "SELECT query FROM query_logs ORDER BY rowid")[before:]]
    batches = [q for q in logged if ") AS frozen WHERE" in q]
    refusal = [q for q in logged if "LIMIT : param_1 , ?" in q or "hex (" in q.lower()]
    freeze = [
        q for q in logged if q.endswith("ORDER BY members . code LIMIT ?") and q not in refusal
    ]
    clock = [q for q in logged if q.startswith("SELECT UNIX_TIMESTAMP ( NOW (")]
    assert len(batches) == 3, logged
    assert len(refusal) == 2, logged
    assert len(clock) == 1, logged
    assert sorted(batches + freeze + refusal + clock) == sorted(logged), logged
    typed = [s for s in seen if "column_type" in s.lower()]
    assert len(typed) == 1, typed
    assert sent_keys(store, run_id) == [f"m{i}" for i in range(6)]


def test_a_night_consent_two_relations_away_altered_between_batches_fails_the_run(
    source: Callable[..., str],
    any_store: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The night consent is `agree.policy.night` (members -> agreements -> policies, one
    policy for everyone); `policies.night` is altered to YEAR (2021) before the second
    batch of a night run is read. The batch's read returns the joined column under its
    path's name with the server's type: the run fails there, the first batch's two records
    are all that was sent."""
    db = source(
        *CHAIN,
        rows={
            "policies": [(0, 2021, 1)],
            "agreements": [(0, 0)],
            "members": [
                (f"m{i}", "회원", f"010-4938-{i:04d}", 1, "2021-03-01", 0) for i in range(6)
            ],
        },
    )
    wb = hybridwb.connect(source=source_url(db), store=any_store)
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        roles = {"consent": "ok", "nightConsent": "agree.policy.night"}
        for name, mapping in chained("members", roles).items():
            wb.mappings.save(name, mapping)
        wf = wb.workflows.create(
            "chain",
            target_config={"table": "members"},
            message_config={"template": "세일", "quiet_hours": "exclude"},
        )
        real, calls = audience.fetch, {"n": 0}

        def fetch(*a: Any, **kw: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:
                src(db, "ALTER TABLE policies MODIFY night YEAR NULL")
                src(db, "UPDATE policies SET night = 2021")
            return real(*a, **kw)

        monkeypatch.setattr(audience, "fetch", fetch)
        run_id = start(wb, wf)
        with pytest.raises(ValidationError) as failed:
            wb.workflows.process(wf["id"], run_id, progress=False, now=NIGHT, batch_size=2)
    finally:
        wb.close()
    text = str(failed.value)
    assert text.startswith("members.nightConsent: 'agree.policy.night' is now a YEAR column")
    assert "\n" not in text, text
    assert written(any_store, run_id) == {"run_targets": 6, "send_records": 2, "run_skips": 0}
    assert sent_keys(any_store, run_id) == ["m0", "m1"]
