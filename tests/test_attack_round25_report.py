# ruff: noqa: F811  (the fixtures imported are test parameters here)
"""Round 25: a run's HTML report counts its exclusions as the rows do, after a crash too.

The report read its exclusion reasons (consent, unclear consent, policy) and what is still
pending from the run's `stats`, which only a pass that reaches its end writes. A kernel
that crashed after some batches (the runner then finishes the run as failed, counts from
the rows) left the stats of the run's start: the report said "Excluded, by reason: none",
0 excluded for consent and 0 pending beside an `excluded` count of the rows. Source: a
fresh MariaDB database (consent values yes, no and unclear); oracle: direct SQL on the
store's `run_skips`, `send_records` and `run_targets`, and the report file on disk.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.config import load_settings
from hybridwb.errors import InternalError
from hybridwb.platform.campaigns import Campaigns
from hybridwb.workflows import policies
from hybridwb.workflows.runner import Runner
from tests._stores import dies_at_batch
from tests.conftest import mariadb_maker
from tests.test_attack_consent_round24 import text_consent_workflow
from tests.test_attack_once_round2 import (  # noqa: F401  (any_store's PostgreSQL store)
    AD,
    DAY,
    any_store,
    frozen,
    people,
    pg_store,
    records,
    skips,
    source_url,
    start,
)

pytestmark = [pytest.mark.mysql]
#: customer code -> consent value: yes, no, and values read as unclear
CONSENT = ["Y", "N", "maybe", "Y", "?", "N", "Y", "2", "Y", "N", "x", "Y"]
BATCH = 3


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_r25r")


def _report(path: Path) -> dict[str, Any]:
    """What the report file says: exclusions by reason, by consent, excluded, pending."""
    text = path.read_text(encoding="utf-8")

    def cell(name: str) -> int:
        found = re.search(rf'class="{name}">([\d,]+)<', text)
        assert found is not None, name
        return int(found.group(1).replace(",", ""))

    [table] = re.findall(r'<table class="reasons">(.*?)</table>', text, re.S)
    reasons = {
        html.unescape(r): int(n.replace(",", ""))
        for r, n in re.findall(r"<tr><td>([^<]*)</td><td>([\d,]+)</td></tr>", table)
    }
    return {
        "reasons": reasons,
        "by_consent": cell("by-consent"),
        "skipped": cell("skipped"),
        "pending": cell("pending"),
    }


def _rows(store: str, run_id: Any) -> dict[str, Any]:
    """The same, by direct SQL on the store."""
    by_reason = skips(store, run_id)
    done = len(records(store, run_id)) + sum(by_reason.values())
    return {
        "reasons": by_reason,
        "by_consent": sum(n for r, n in by_reason.items() if r in policies.CONSENT_REASONS),
        "skipped": sum(by_reason.values()),
        "pending": frozen(store, run_id) - done,
    }


def test_a_crashed_runs_report_counts_its_consent_exclusions_as_the_rows_do(
    source: Callable[..., str],
    any_store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BREAK: the kernel crashes at its second batch's write (after the first committed);
    the runner finishes the run as failed. Its report must count the first batch's
    exclusions (no and unclear consent) and the targets still pending as the rows do;
    so must the report of the resume that completes it."""
    store = any_store
    db = source(
        "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
        "mobile VARCHAR(20), ok VARCHAR(8) NULL)",
        rows={
            "members": [
                (f"m{i:02d}", "회원", f"010-5525-{i:04d}", v) for i, v in enumerate(CONSENT)
            ]
        },
    )
    wb = hybridwb.connect(source=source_url(db), store=store)
    real_write = Campaigns.write_batch
    write_batch = dies_at_batch(2)

    try:
        wf = text_consent_workflow(wb, "r25-report")
        run_id = start(wb, wf)
        runner = Runner(load_settings(tmp_path, {}), wb.store)
        report = tmp_path / "report.html"
        monkeypatch.setattr(Campaigns, "write_batch", write_batch)
        with pytest.raises(InternalError, match="unexpected RuntimeError"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=BATCH)
        monkeypatch.setattr(Campaigns, "write_batch", real_write)
        crashed = _rows(store, run_id)
        assert crashed["by_consent"] >= 1 and 0 < crashed["pending"] < len(CONSENT)
        final = runner._finish(wf, wb.store.runs.get(run_id), "RuntimeError: the kernel died "
                               "(cell 3)", report, "manual", False)  # fmt: skip
        assert final["status"] == "failed"
        assert _report(report) == crashed
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY, batch_size=BATCH)
        assert (
            runner._finish(wf, wb.store.runs.get(run_id), None, report, "manual", False)["status"]
            == "succeeded"
        )
    finally:
        wb.close()
    done = _rows(store, run_id)
    assert done["pending"] == 0 and done["reasons"][policies.UNCLEAR_CONSENT] == 4
    assert _report(report) == done
