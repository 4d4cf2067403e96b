# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Round 31: a resume asked for a dry run of a run that sends is refused.

Round 30 refused a resume asked for another limit than the run's (`refuse_another_limit`).
A resume asked for a dry run (`hybridwb run --resume X --dry-run`, or `-p dry_run true`)
of a run started to send was not: the runner took the run's own `dry_run` over what was
asked, without a word, and the resume the user ran "to see what would be sent" messaged
every pending target. Now it is refused in one line before anything runs, as the limit
is; a dry run resumed without asking, or asking for a dry run, goes on as before. Likewise
a resume naming another workflow than its run's (`hybridwb run B --resume <a run of A>`,
which resumed A without a word) is refused.

Real runs through the runner (papermill) on a MariaDB source and a SQLite or PostgreSQL
store; the oracle is direct SQL on the store (`send_records`, `workflow_runs`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from tests.test_attack_once_round2 import (  # noqa: F401  (fixtures: source, any_store, pg_store)
    INFO,
    any_store,
    oracle,
    people,
    pg_store,
    phone,
    source,
    source_url,
)

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


def _setup(source: Callable[..., str], store: str, tmp_path: Path) -> tuple[str, Any]:
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), mobile VARCHAR(20))",
        rows={"members": [(f"m{i:03d}", f"회원{i}", phone(i)) for i in range(4)]},
    )
    with hybridwb.connect(source=source_url(db), store=store, cwd=tmp_path) as wb:
        wb.store.init()
        wb.mappings.save("members", {**people(), "audience": True})
        wf = wb.workflows.create(
            "dry", target_config={"table": "members"}, message_config={"content": INFO}
        )
    return db, wf


@pytest.mark.parametrize(
    "asked",
    [{"dry_run": True}, {"parameters": {"dry_run": True}}],
    ids=["--dry-run", "-p dry_run true"],
)
def test_a_resume_asked_for_a_dry_run_of_a_sending_run_is_refused(
    source: Callable[..., str], any_store: str, tmp_path: Path, asked: dict[str, Any]
) -> None:
    """BREAK: the resume asked for a dry run sent a record to each of the 4 members."""
    db, wf = _setup(source, any_store, tmp_path)
    with hybridwb.connect(source=source_url(db), store=any_store, cwd=tmp_path) as wb:
        run = wb.store.runs.create(wf["id"], {"limit": None}, dry_run=False)
        wb.store.runs.update(run["id"], status="failed", error="the kernel died")
        before = oracle(any_store, "SELECT status, error FROM workflow_runs")
        with pytest.raises(ValidationError) as refused:
            wb.workflows.run(
                None,
                asked.get("parameters"),
                resume=run["id"],
                dry_run=asked.get("dry_run", False),
                progress=False,
            )
        text = str(refused.value)
        assert "\n" not in text and "dry run" in text and f"--resume {run['id']}" in text, text
        assert oracle(any_store, "SELECT count(*) FROM send_records") == [(0,)]
        assert oracle(any_store, "SELECT status, error FROM workflow_runs") == before
        assert oracle(any_store, "SELECT count(*) FROM run_locks") == [(0,)]


def test_a_dry_run_resumed_asking_for_a_dry_run_stays_one(
    source: Callable[..., str], any_store: str, tmp_path: Path
) -> None:
    """The control: a dry run's resume, asked with --dry-run or without, sends nothing."""
    db, wf = _setup(source, any_store, tmp_path)
    with hybridwb.connect(source=source_url(db), store=any_store, cwd=tmp_path) as wb:
        run = wb.store.runs.create(wf["id"], {"limit": None}, dry_run=True)
        wb.store.runs.update(run["id"], status="failed", error="the kernel died")
        for dry_run in (True, False):
            final = wb.workflows.run(None, resume=run["id"], dry_run=dry_run, progress=False)
            assert final["id"] == run["id"]
            wb.store.runs.update(run["id"], status="failed")
    assert oracle(any_store, "SELECT count(*) FROM send_records") == [(0,)]


def test_a_resume_of_another_workflows_run_is_refused(
    source: Callable[..., str], any_store: str, tmp_path: Path
) -> None:
    """BREAK: `hybridwb run other --resume <a run of dry>` resumed the run of `dry` and
    messaged its 4 members, though another workflow was named."""
    db, wf = _setup(source, any_store, tmp_path)
    with hybridwb.connect(source=source_url(db), store=any_store, cwd=tmp_path) as wb:
        wb.workflows.create(
            "other", target_config={"table": "members"}, message_config={"content": INFO}
        )
        run = wb.store.runs.create(wf["id"], {"limit": None}, dry_run=False)
        wb.store.runs.update(run["id"], status="failed", error="the kernel died")
        before = oracle(any_store, "SELECT status, error FROM workflow_runs")
        with pytest.raises(ValidationError) as refused:
            wb.workflows.run("other", resume=run["id"], progress=False)
        text = str(refused.value)
        assert "\n" not in text and f"--resume {run['id']}" in text, text
        assert oracle(any_store, "SELECT count(*) FROM send_records") == [(0,)]
        assert oracle(any_store, "SELECT status, error FROM workflow_runs") == before
        # the run's own workflow named, or none, resumes it
        final = wb.workflows.run("dry", resume=run["id"], progress=False)
        assert final["id"] == run["id"] and final["status"] == "succeeded", final.get("error")
    assert oracle(any_store, "SELECT count(*) FROM send_records") == [(4,)]
