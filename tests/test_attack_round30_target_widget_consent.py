# ruff: noqa: F811  (the fixtures imported are test parameters here)
"""Round 30 residue: the target preview widget's opt-out count for a saved query.

Round 29 made a saved-query target (`{"sql": ...}`) honour `exclude_opt_out` (on by
default): its preview and its run leave out the members whose consent is not yes. The
widget's "exclusions by reason" still skipped saved queries, so it said `opt-out 0` while
the run left members out for exactly that. Now the widget counts them as for a table
target: what the query returns less what a run would send.

Source: a fresh MariaDB database; store: SQLite and PostgreSQL. Oracle: direct SQL counts
on the source (members whose consent is not 1); the run's `send_records` by direct SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb.widgets as widgets
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import DAY, any_store, pg_store, src, start  # noqa: F401
from tests.test_attack_round29_saved_query_consent import ROWS
from tests.test_consent_altered_mid_run import TABLES, _workbench
from tests.test_consent_fail_closed import sent_keys

pytestmark = [pytest.mark.mysql]

OPT_OUT = "opt-out (수신 거부)"
QUERY = "SELECT code, name, mobile, ok, night FROM members"


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_twc")


@pytest.mark.parametrize(
    "target",
    [{"table": "members"}, {"sql": QUERY}, {"sql": QUERY, "exclude_opt_out": True}],
    ids=["table", "saved-query", "saved-query-explicit"],
)
def test_the_widget_counts_a_saved_querys_opt_outs_as_a_run_leaves_them_out(
    source: Callable[..., str], any_store: str, target: dict[str, Any]
) -> None:
    """BREAK (saved-query*): the widget said 0 opt-outs; the run left out m2 (0) and m3
    (NULL). The table target is the control."""
    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, any_store, {"template": "안내"}, target)
    try:
        widget = widgets.target_preview(wb, target)
        widget.run()
        shown, opt_out = widget.panel.preview.count, widget.panel.excluded[OPT_OUT]
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    [(said_no,)] = src(db, "SELECT COUNT(*) FROM members WHERE NOT COALESCE(ok = 1, 0)")
    [(said_yes,)] = src(db, "SELECT COUNT(*) FROM members WHERE ok = 1")
    assert (shown, opt_out) == (said_yes, said_no) == (2, 2)
    assert len(sent_keys(any_store, run_id)) == shown  # what the widget says a run sends
    assert "opt-out" in widget.panel.exclusions.value


def test_a_saved_query_with_the_filter_off_counts_no_opt_out(
    source: Callable[..., str], any_store: str
) -> None:
    """Control: with `exclude_opt_out: false` the run sends to everyone, and the widget
    counts no opt-out."""
    db = source(*TABLES, rows=ROWS)
    target = {"sql": QUERY, "exclude_opt_out": False}
    wb, wf = _workbench(db, any_store, {"template": "안내"}, target)
    try:
        widget = widgets.target_preview(wb, target)
        widget.run()
        shown, opt_out = widget.panel.preview.count, widget.panel.excluded[OPT_OUT]
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    [(everyone,)] = src(db, "SELECT COUNT(*) FROM members")
    assert (shown, opt_out) == (everyone, 0)
    assert len(sent_keys(any_store, run_id)) == everyone
