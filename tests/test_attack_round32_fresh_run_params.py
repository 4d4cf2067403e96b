# ruff: noqa: F811  (the fixtures imported from round 2 are test parameters here)
"""Round 32: a new run's `-p dry_run` and `-p limit` are not ignored.

Round 31 refused a resume whose `-p dry_run` or `-p limit` differed from its run's. A new
run was not checked: `hybridwb run dry -p dry_run true` (without `--dry-run`) built the
notebook with the flag's `dry_run = False` over the parameter and messaged every target,
and `-p limit 2` was overwritten by the flag's `limit = None` before it was stored.
Now a new run whose `-p dry_run` or `-p limit` is another value than its flag is refused
in one line before anything runs; the same value as the flag runs as before.

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
    any_store,
    oracle,
    pg_store,
    source,
    source_url,
)
from tests.test_attack_round31_resume_dry_run import _setup

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


@pytest.mark.parametrize(
    "asked",
    [
        {"parameters": {"dry_run": True}},
        {"parameters": {"dry_run": "true"}},
        {"parameters": {"limit": 2}},
        {"parameters": {"dry_run": False}, "dry_run": True},
        {"parameters": {"limit": None}, "limit": 1},
    ],
    ids=[
        "-p dry_run true",
        "-p dry_run text",
        "-p limit 2",
        "-p false --dry-run",
        "-p null --limit",
    ],
)
def test_a_new_runs_parameter_unlike_its_flag_is_refused(
    source: Callable[..., str], any_store: str, tmp_path: Path, asked: dict[str, Any]
) -> None:
    """BREAK: `hybridwb run dry -p dry_run true` sent a record to each of the 4 members;
    `-p limit 2` sent 4."""
    db, _ = _setup(source, any_store, tmp_path)

    with hybridwb.connect(source=source_url(db), store=any_store, cwd=tmp_path) as wb:
        with pytest.raises(ValidationError) as refused:
            wb.workflows.run(
                "dry",
                asked["parameters"],
                dry_run=asked.get("dry_run", False),
                limit=asked.get("limit"),
                progress=False,
            )
        text = str(refused.value)
        assert "\n" not in text and "-p" in text and "Nothing was run" in text, text
    assert oracle(any_store, "SELECT count(*) FROM send_records") == [(0,)]
    assert oracle(any_store, "SELECT count(*) FROM workflow_runs") == [(0,)]
    assert oracle(any_store, "SELECT count(*) FROM run_locks") == [(0,)]


@pytest.mark.parametrize(
    ("parameters", "flags", "sent"),
    [
        ({"dry_run": True}, {"dry_run": True}, 0),
        ({"dry_run": False}, {}, 4),
        ({"limit": 2}, {"limit": 2}, 2),
        ({"limit": None}, {}, 4),
    ],
    ids=["dry both", "send both", "limit both", "no limit both"],
)
def test_a_new_runs_parameter_like_its_flag_runs(
    source: Callable[..., str],
    any_store: str,
    tmp_path: Path,
    parameters: dict[str, Any],
    flags: dict[str, Any],
    sent: int,
) -> None:
    """The control: the same value as the flag runs as asked."""
    db, _ = _setup(source, any_store, tmp_path)

    with hybridwb.connect(source=source_url(db), store=any_store, cwd=tmp_path) as wb:
        final = wb.workflows.run("dry", parameters, progress=False, **flags)
        assert final["status"] == "succeeded", final.get("error")
    assert oracle(any_store, "SELECT count(*) FROM send_records") == [(sent,)]


def test_a_workflows_trigger_parameters_unlike_the_flags_are_refused(
    source: Callable[..., str], any_store: str, tmp_path: Path
) -> None:
    """BREAK: a workflow whose trigger_config parameters say `dry_run: true`, run as the
    scheduler runs it (no flag), messaged its 4 members."""
    db, wf = _setup(source, any_store, tmp_path)
    with hybridwb.connect(source=source_url(db), store=any_store, cwd=tmp_path) as wb:
        wb.workflows.update(wf["id"], trigger_config={"parameters": {"dry_run": True}})
        with pytest.raises(ValidationError) as refused:
            wb.workflows.run("dry", progress=False)
        assert "trigger_config" in str(refused.value)
        final = wb.workflows.run("dry", dry_run=True, progress=False)
        assert final["status"] == "succeeded" and final["dry_run"], final.get("error")
    assert oracle(any_store, "SELECT count(*) FROM send_records") == [(0,)]
    assert oracle(any_store, "SELECT count(*) FROM workflow_runs") == [(1,)]
