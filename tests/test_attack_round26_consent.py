"""Round 26: attacks on today's consent guarantees (a date or time column is never read as
consent; an unclear night consent is no night consent everywhere it is read).

Sources are fresh MariaDB databases, stores SQLite files; the oracle is direct SQL on the
store's send_records and run_skips after a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import ValidationError
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import AD, DAY, NIGHT, oracle, people, source_url, start
from tests.test_consent_temporal import written

TABLES = (
    "CREATE TABLE members (code VARCHAR(10) PRIMARY KEY, name VARCHAR(20), "
    "mobile VARCHAR(20), ok TINYINT(1) NULL, night TINYINT(1) NULL, since YEAR NULL, "
    "d DATE NULL)",
)
#: nobody consents (ok = 0, night = 0); everyone signed up in 2021
ROWS = {
    "members": [(f"m{i}", "회원", f"010-4930-{i:04d}", 0, 0, 2021, "2021-03-01") for i in range(3)]
}
FIELDS = {
    "ok": {"displayName": "동의", "type": "boolean"},
    "night": {"displayName": "야간동의", "type": "boolean"},
    "since": {"displayName": "가입연도", "type": "string"},
    "d": {"displayName": "가입일", "type": "date"},
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_a26")


@pytest.fixture
def store(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.mark.parametrize(
    ("select", "named", "now"),
    [
        ("since AS ok, night", ("consent", "YEAR"), DAY),
        ("CAST(d AS DATE) AS ok, night", ("consent", "DATE"), DAY),
        ("1 AS ok, since AS night", ("nightConsent", "YEAR"), NIGHT),
        ("1 AS ok, TIMESTAMP(d) AS night", ("nightConsent", "DATETIME"), NIGHT),
    ],
    ids=["year-as-consent", "cast-date-as-consent", "year-as-night", "timestamp-as-night"],
)
def test_a_saved_query_returning_a_date_as_a_consent_column_is_refused(
    source: Callable[..., str], store: str, select: str, named: tuple[str, str], now: Any
) -> None:
    """The mapping's consent and night consent are yes/no columns (`ok`, `night`: no for
    everyone); a saved query returns a YEAR (2021, read as yes: everyone was messaged) or
    a DATE under one of those names. The run reads the query's column, so the plan checks
    the type of the query's column, not the table's: the run, the preview and a new
    workflow are refused in one line; nothing is written, nobody is messaged."""
    db = source(*TABLES, rows=ROWS)
    wb = hybridwb.connect(source=source_url(db), store=store)
    sql = f"SELECT code, name, mobile, {select} FROM members"
    attr, kind = named
    try:
        wb.store.init()
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        mapping = {
            **people(fields=FIELDS),
            "audience": True,
            "consent": "ok",
            "nightConsent": "night",
        }
        wb.mappings.save("members", mapping)
        plain = {"sql": "SELECT code, name, mobile, ok, night FROM members"}
        wf = wb.workflows.create(
            "saved",
            target_config=plain,
            message_config={"template": "세일", "quiet_hours": "exclude"},
        )
        # the definition is edited behind the workbench (as an older version saved it)
        wb.store.workflows.update(wf["id"], target_config={"sql": sql})
        wf = wb.store.workflows.get(wf["id"])
        run_id = start(wb, wf)
        with pytest.raises(ValidationError, match=f"as a {kind} column") as run:
            wb.workflows.process(wf["id"], run_id, progress=False, now=now)
        refusals = [run.value]
        for attempt in (
            lambda: wb.targets.preview({"sql": sql}),
            lambda: wb.workflows.create(
                "again", target_config={"sql": sql}, message_config={"template": "세일"}
            ),
        ):
            with pytest.raises(ValidationError, match=f"as a {kind} column") as refused:
                attempt()
            refusals.append(refused.value)
    finally:
        wb.close()
    assert written(store, run_id) == {"run_targets": 0, "send_records": 0, "run_skips": 0}
    assert oracle(store, "SELECT count(*) FROM send_records") == [(0,)]
    assert oracle(store, "SELECT count(*) FROM workflows WHERE name = 'again'") == [(0,)]
    for exc in refusals:
        assert "\n" not in str(exc) and f"members.{attr} " in str(exc), exc
