# ruff: noqa: F811  (the fixtures imported are test parameters here)
"""Attack round 29 on the target definition's consent filter with a saved query (fixed).

`exclude_opt_out` (on by default: "only recipients whose consent field is truthy") filters a
table target by the consent the run reads, and then an informational run decides on consent
too (round 26, GUARANTEES). A saved-query target (`{"sql": ...}`) of the same audience
mapping ignores it without a word: its plan carries no consent, the run does not decide on
it, and an informational workflow messaged the members whose flag was 0, even when the
query returns the consent column under its mapped name. Now a saved query's plan filters
on the consent column it returns (named as the mapping's path, what the run reads), as a
table target's does, and the run decides on it; a query that does not return it while
`exclude_opt_out` is on is refused in one line (before: ignored), so the filter is never
dropped without a word.

Source: a fresh MariaDB database; oracle: the store's `send_records`, read with direct SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hybridwb.errors import ValidationError
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import DAY, any_store, pg_store, start  # noqa: F401
from tests.test_consent_altered_mid_run import MAPPING, TABLES, _workbench
from tests.test_consent_fail_closed import sent_keys

pytestmark = [pytest.mark.mysql]

#: m0 and m1 consent; m2 said no, m3 never answered
ROWS = {
    "members": [
        ("m0", "회원", "010-4936-0000", 1, 1),
        ("m1", "회원", "010-4936-0001", 1, 1),
        ("m2", "회원", "010-4936-0002", 0, 0),
        ("m3", "회원", "010-4936-0003", None, None),
    ]
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_sqc")


@pytest.mark.parametrize(
    "target",
    [
        {"table": "members"},
        {"sql": "SELECT code, name, mobile, ok, night FROM members"},
    ],
    ids=["table", "saved-query"],
)
def test_an_informational_saved_query_target_honours_exclude_opt_out(
    source: Callable[..., str], any_store: str, target: dict[str, Any]
) -> None:
    """BREAK (saved-query): m2 (0) and m3 (NULL) were messaged. The table target is the
    control."""
    db = source(*TABLES, rows=ROWS)
    wb, wf = _workbench(db, any_store, {"template": "안내"}, {**target, "exclude_opt_out": True})
    try:
        count = wb.targets.preview({**target, "exclude_opt_out": True}).count
        run_id = start(wb, wf)
        wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
    finally:
        wb.close()
    assert MAPPING["consent"] == "ok"
    assert count == 2  # what the preview promises is what the run sends
    assert sent_keys(any_store, run_id) == ["m0", "m1"]


def test_a_saved_query_without_the_consent_column_is_refused_while_the_filter_is_on(
    source: Callable[..., str], any_store: str
) -> None:
    """Preview, workflow save and run each refuse it in one line naming the column and what
    to do; nothing is frozen or sent. With `exclude_opt_out: false` it runs, unfiltered."""
    db = source(*TABLES, rows=ROWS)
    sql = {"sql": "SELECT code, name, mobile FROM members"}
    wb, wf = _workbench(db, any_store, {"template": "안내"}, {**sql, "exclude_opt_out": False})
    try:
        for refused in (
            lambda: wb.targets.preview(sql),
            lambda: wb.workflows.create(
                "sq", target_config=sql, message_config={"template": "안내"}
            ),
        ):
            with pytest.raises(ValidationError) as caught:
                refused()
            text = str(caught.value)
            assert text.startswith(
                "target.sql: exclude_opt_out is on, so the query must "
                "return the consent column 'ok'"
            ), text
            assert "\n" not in text and "010-" not in text
        # saved before this check (an older hybridwb), as the store holds it
        wb.store.workflows.update(wf["id"], target_config=sql)
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match="exclude_opt_out is on"):
            wb.workflows.process(wf["id"], run_id, progress=False, now=DAY)
        assert sent_keys(any_store, run_id) == []
        wb.workflows.update(wf["id"], target_config={**sql, "exclude_opt_out": False})
        unfiltered = start(wb, wf)
        wb.workflows.process(wf["id"], unfiltered, progress=False, now=DAY)
    finally:
        wb.close()
    assert sent_keys(any_store, unfiltered) == ["m0", "m1", "m2", "m3"]
