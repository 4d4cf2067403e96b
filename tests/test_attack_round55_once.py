"""Round 55 attack on "hybridwb messages exactly the intended customers, once".

Source: a fresh MariaDB database read through the SELECT-only account; stores: a SQLite
file or the session's PostgreSQL database (emptied per test). `hybridwb run` is the real
`Runner.run` (lock, periods, `_finish`, report) with papermill's `execute_notebook` stood
in by the notebook's own call in this process (`wb.workflows.process(..., owner=...)`), so
a fault put on a module here reaches the kernel's work; the scheduler is the real
`wb.workflows.run_due`. Oracles: `send_records`, `workflow_runs`, `schedule_locks` read
with sqlite3 or psycopg (`tests._stores.Oracle`).

BREAKS
------
Break 1 (fixed): a scheduled slot whose run sent every member and then raised an error
naming no run (a bug in the runner's report after the run's end was written: since
2a48b2e it leaves `wb.workflows.run` as `InternalError`, which carries no `run_id`) was
released and run again by the next check when a run of the workflow had been made on a
host whose clock is ahead (a laptop's dry run, `created_at` tomorrow): `run_due` told
whether the run started by the workflow's newest run by `created_at`, which was the
skewed one before and after. Every member messaged twice for one slot (SQLite and
PostgreSQL stores). Now `WorkflowService.run_due` finds the slot's run by what it was made
for (`parameters.as_of`, `slot_run`); the newest-run comparison stays as a second sign.
`slot_run` not passed -> 4 of 8 fail.

Break 2 (fixed): the same bug, and the store's read that tells whether the run started
failed (a connection reset for the rest of that check): "cannot tell" was taken as "did not
start", the slot released, and the next check messaged every member again. Now the slot
is kept and the problem says the store could not say (a lost slot is reported; a slot
sent twice cannot be taken back). A failed `slot_run` read taken as "no run" -> 2 of 8
fail.

HELD
----
- Nothing in the run, resume, runner or scheduler path decided what to do from the type
  of an exception that 2a48b2e now converts: the nested public calls inside a run
  (`targets.iter`/`plan_for_run`, `templates.automap`/`related`/`renderer`,
  `mappings.tables`, `store.claim_schedule`, `variables.record_use`) are caught only as
  `HybridwbError`, `ValidationError` or `Exception` where caught at all; the runner reads
  papermill's `ename` (`InternalError`, a `HybridwbError`: its first line, no text of the
  original) and `type(exc).__name__` of unwrapped calls; CLI exit codes are 1 either way;
  `run_due`'s `claim` failing unexpectedly is now one problem line instead of the
  scheduler stopping (no slot lost that was not lost before).
- a kernel whose `process` met a bug (a KeyError quoting a phone) at its second batch's
  write: the run `failed` with "InternalError: wb.workflows.process() stopped on an
  unexpected KeyError at ..." (no phone), the first batch's records kept, and
  `hybridwb run --resume` ends with every frozen target one record, none twice, no lock
  left (SQLite and PostgreSQL stores, MariaDB source).
- an unexpected error inside `wb.targets.iter` (a public iteration, `_quiet`) at its
  second page mid-freeze, by hand, in the prefetch thread on PostgreSQL: `InternalError`
  leaves `process`, nothing frozen or sent, and the call again freezes the set once and
  sends each member one message.

Noted, not changed (not this guarantee): a call of `wb.workflows.process` by hand stopped
by a bug writes the original's text into `workflow_runs.error` (`outcome.ended`:
`type: server_text(str(exc))`), which masks quoted values only: a `ValueError('... 홍길동
at 010-5003-5503')` is stored and shown as it is, where the call itself raised
`InternalError` without it; the runner's `except Exception` around papermill does the same
for an error papermill raises. `slot_run` reads every run of the workflow (the REST store
pages through them all), on the failure path only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _stores import Oracle, _empty_pg, migrated_sqlite

import hybridwb
from hybridwb.errors import InternalError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import runner as runner_module
from tests.conftest import mariadb_maker, sel_url

pytestmark = [pytest.mark.mysql]

N = 6
SEOUL_NINE = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 09:00 in Seoul: the slot
DAY = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # 12:00 in Seoul: the run's clock
TEXT = "{{ 이름 }}님, 이번 달 정기 안내입니다."
PHONES = [f"010-5{i:03d}-55{i:02d}" for i in range(N)]
MAPPING = {
    "displayName": "회원",
    "key": "code",
    "recipient": "mobile",
    "channel": "sms",
    "audience": True,
    "fields": {
        "code": {"displayName": "번호", "type": "string", "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name"},
        "mobile": {"displayName": "휴대폰", "type": "string", "role": "phone"},
    },
}


class Shop:
    def __init__(self, wb: Any, wf: dict[str, Any], oracle: Oracle, tmp: Path) -> None:
        self.wb, self.wf, self.oracle, self.tmp = wb, wf, oracle, tmp

    def per_phone(self) -> dict[str, int]:
        rows = self.oracle.rows("SELECT recipient, count(*) FROM send_records GROUP BY recipient")
        return {str(r): int(n) for r, n in rows}

    def count(self, table: str) -> int:
        return int(self.oracle.one(f"SELECT count(*) FROM {table}"))

    def unsettled(self) -> list[str]:
        """Frozen targets of every run with neither a record nor an exclusion, or both."""
        bad = self.oracle.rows(
            "SELECT t.target_key FROM run_targets t "
            "LEFT JOIN send_records r ON r.run_id = t.run_id AND r.target_key = t.target_key "
            "LEFT JOIN run_skips s ON s.run_id = t.run_id AND s.target_key = t.target_key "
            "WHERE (r.target_key IS NULL) = (s.target_key IS NULL)"
        )
        return [str(k) for (k,) in bad]


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_r55")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(
    request: pytest.FixtureRequest, tmp_path: Path, source: Callable[..., str]
) -> Iterator[Shop]:
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"members": [(f"m{i:02d}", f"회원{i}", PHONES[i]) for i in range(N)]},
    )
    if request.param == "sqlite":
        url = migrated_sqlite(tmp_path / "store.db")
    else:
        url = request.getfixturevalue("pg_db")
        _empty_pg(url)
    wb = hybridwb.connect(
        source=sel_url(db).render_as_string(hide_password=False),
        store=url.render_as_string(hide_password=False),
        cwd=tmp_path,
    )
    try:
        wb.mappings.save("members", MAPPING)
        wf = wb.workflows.create(
            f"r55-{uuid.uuid4().hex[:6]}",
            target_config={"table": "members"},
            message_config={"content": TEXT},
        )
        yield Shop(wb, wf, Oracle(url), tmp_path)
    finally:
        wb.close()


def kernel(monkeypatch: pytest.MonkeyPatch, shop: Shop, **process: Any) -> None:
    """papermill's `execute_notebook` as the notebook's own call, in this process."""
    import papermill

    def execute(*a: Any, parameters: dict[str, Any], **kw: Any) -> None:
        shop.wb.workflows.process(
            parameters["workflow"],
            parameters["run_id"],
            owner=parameters["owner"],
            progress=False,
            now=DAY,
            **process,
        )

    monkeypatch.setattr(papermill, "execute_notebook", execute)


def scheduled(shop: Shop) -> None:
    shop.wb.workflows.update(
        shop.wf["id"],
        trigger_type="schedule",
        schedule_config={"cron": "0 9 * * *", "timezone": "Asia/Seoul"},
        status="active",
    )


def report_bug_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The runner's report, as its run ends (the records written, the end written), meets
    a bug once: a KeyError quoting a phone (`render_html` on an odd stats row)."""
    real, calls = runner_module.render_html, [0]

    def render_html(*a: Any, **kw: Any) -> str:
        calls[0] += 1
        if calls[0] == 1:
            raise KeyError(PHONES[0])
        return str(real(*a, **kw))

    monkeypatch.setattr(runner_module, "render_html", render_html)
    return calls


# == the scheduler: a slot whose run sent and then met an unexpected error ==================
def test_a_slot_whose_run_sent_then_met_a_bug_is_not_run_again_after_a_run_stamped_ahead(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of the workflow made earlier on a host whose clock is a day ahead (its
    `created_at` tomorrow: a laptop's dry run). The 09:00 slot's run sends every member,
    then its report meets a bug: `wb.workflows.run` raises `InternalError`, which names
    no run. `run_due` tells whether the run started by the workflow's newest run by
    `created_at`, the same before and after (the skewed one): 'did not start', the slot
    released, and the next check runs the slot again: every member messaged twice."""
    scheduled(shop)
    ahead = shop.wb.store.runs.create(shop.wf["id"], {}, dry_run=True)["id"]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    shop.oracle.execute(
        "UPDATE workflow_runs SET created_at = ?, status = 'succeeded' WHERE id = ?",
        tomorrow.strftime("%Y-%m-%d %H:%M:%S.%f") + ("+00" if shop.oracle.postgres else ""),
        shop.oracle.uid(ahead),
    )
    kernel(monkeypatch, shop)
    calls = report_bug_once(monkeypatch)
    first = shop.wb.workflows.run_due("sched:1", now=SEOUL_NINE + timedelta(seconds=30))
    problems = list(shop.wb.workflows.last_problems)
    assert calls[0] == 1 and first == []
    assert len(problems) == 1 and "InternalError" in problems[0], problems
    assert PHONES[0] not in problems[0]
    assert set(shop.per_phone().values()) == {1} and len(shop.per_phone()) == N
    second = shop.wb.workflows.run_due("sched:2", now=SEOUL_NINE + timedelta(seconds=120))
    assert set(shop.per_phone().values()) == {1}, "one scheduled slot messaged its members twice"
    assert len(shop.per_phone()) == N and second == []
    assert shop.count("schedule_locks") == 1  # the slot is kept
    assert "started and failed" in problems[0], problems


def test_a_slot_whose_run_sent_then_met_a_bug_as_the_store_blinked_is_not_run_again(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bug at the report, and the store's one read that tells whether the run
    started (`runs.list`) fails for the rest of that check (a connection reset): the
    scheduler could not tell, and released the slot: the next check ran it again, every
    member messaged twice. Now the slot is kept and the problem says so."""
    from hybridwb.errors import StoreError
    from hybridwb.platform.repos import Runs

    scheduled(shop)
    kernel(monkeypatch, shop)
    calls = report_bug_once(monkeypatch)
    real_list, lists, blinking = Runs.list, [0], [True]

    def list_(self: Runs, *a: Any, **kw: Any) -> Any:
        if calls[0] == 1 and blinking[0]:  # the reads right after the bug
            lists[0] += 1
            raise StoreError("The store is unreachable (connection reset); try again.")
        return real_list(self, *a, **kw)

    monkeypatch.setattr(Runs, "list", list_)
    shop.wb.workflows.run_due("sched:1", now=SEOUL_NINE + timedelta(seconds=30))
    blinking[0] = False
    problems = list(shop.wb.workflows.last_problems)
    assert lists[0] >= 1 and len(problems) == 1, problems
    assert "slot is kept" in problems[0] and PHONES[0] not in problems[0], problems
    shop.wb.workflows.run_due("sched:2", now=SEOUL_NINE + timedelta(seconds=120))
    assert set(shop.per_phone().values()) == {1}, "one scheduled slot messaged its members twice"
    assert len(shop.per_phone()) == N
    assert shop.count("schedule_locks") == 1


# == held: the runner's kernel stopped by an unexpected error mid-batch, then resumed ========
def test_a_run_whose_kernel_met_a_bug_mid_batch_resumes_once_and_says_internal_error(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's `process` meets a bug (a KeyError quoting a phone) at its second
    batch's write: the run is `failed` with `InternalError` named (its type and line, not
    the phone), the first batch's records kept; `hybridwb run --resume` (the runner again)
    ends with every frozen target one record, none twice, and the run `succeeded`."""
    real, writes = Campaigns.write_batch, [0]

    def write_batch(*a: Any, **kw: Any) -> Any:
        writes[0] += 1
        if writes[0] == 2:
            raise KeyError(PHONES[3])
        return real(*a, **kw)

    monkeypatch.setattr(Campaigns, "write_batch", write_batch)
    kernel(monkeypatch, shop, batch_size=2)
    final = shop.wb.workflows.run(shop.wf["id"], progress=False)
    assert final["status"] == "failed"
    assert final["error"].startswith(
        "InternalError: wb.workflows.process() stopped on an unexpected KeyError"
    ), final["error"]
    assert PHONES[3] not in final["error"] and "55" + "03" not in final["error"]
    assert shop.count("send_records") == 2
    again = shop.wb.workflows.run(None, resume=final["id"], progress=False)
    assert again["status"] == "succeeded", again
    assert set(shop.per_phone().values()) == {1} and len(shop.per_phone()) == N
    assert shop.unsettled() == []
    assert shop.count("run_locks") == 0


def test_a_bug_in_the_targets_page_read_mid_freeze_is_internal_error_and_the_resume_freezes_once(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error inside `wb.targets.iter` (a public iteration, `_quiet`) at its
    second page, mid-freeze, by hand: `InternalError` leaves `process`; the freeze is
    whole or none (no target frozen), and the call again freezes the set once and sends
    each member one message."""
    from hybridwb.targets import service as targets_service

    real, pages = targets_service.TargetService._page, [0]

    def _page(self: Any, *a: Any, **kw: Any) -> Any:
        pages[0] += 1
        if pages[0] == 2:
            raise ValueError(PHONES[2])
        return real(self, *a, **kw)

    monkeypatch.setattr(targets_service.TargetService, "_page", _page)
    run_id = shop.wb.store.runs.create(shop.wf["id"], {})["id"]
    with pytest.raises(InternalError, match="unexpected ValueError"):
        shop.wb.workflows.process(shop.wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    assert shop.count("run_targets") == 0 and shop.count("send_records") == 0
    shop.wb.workflows.process(shop.wf["id"], run_id, progress=False, now=DAY, batch_size=2)
    assert set(shop.per_phone().values()) == {1} and len(shop.per_phone()) == N
    assert shop.count("run_targets") == N and shop.unsettled() == []
