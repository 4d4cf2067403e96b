"""Round 24: a consent value the target definition's SQL filter and the run read alike.

The filter compared `LOWER(TRIM(CAST(flag AS CHAR)))` with the no spellings in the
connection's collation (MariaDB's utf8mb4_general_ci, whatever the column's own), which
folds accents: 'ñ', 'Ñ', 'nó', 'fálse' were equal to 'n', 'no', 'false' and left out of the
frozen set unseen, while the run reads them as unclear and counts each under its own
reason. Source: a fresh MariaDB database; oracle: direct SQL on the SQLite store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hybridwb
from hybridwb.targets.consent import consent_of
from hybridwb.workflows import policies
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import AD, DAY, people, records, run_once, skips, source_url

#: customer -> the consent value kept in a utf8mb4_bin VARCHAR
VALUES = {"y": "Y", "n": "N", "e": "ñ", "E": "Ñ", "o": "nó", "f": "fálse", "k": "미동의"}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_cr24")


def test_an_accented_no_is_unclear_to_the_filter_as_to_the_run(
    source: Callable[..., str], tmp_path: Any
) -> None:
    db = source(
        "CREATE TABLE members (code VARCHAR(10) COLLATE utf8mb4_bin PRIMARY KEY, "
        "name VARCHAR(20), mobile VARCHAR(20), ok VARCHAR(8) COLLATE utf8mb4_bin NULL)",
        rows={
            "members": [
                (k, "회원", f"010-4924-{i:04d}", v) for i, (k, v) in enumerate(VALUES.items())
            ]
        },
    )
    store = f"sqlite:///{tmp_path / 'store.db'}"
    wb = hybridwb.connect(source=source_url(db), store=store)
    try:
        wf = text_consent_workflow(wb, "accents")
        run_id = run_once(wb, wf, now=DAY)
    finally:
        wb.close()
    unclear = [k for k, v in VALUES.items() if consent_of(v) is None]
    assert sorted(unclear) == ["E", "e", "f", "o"]
    assert {k for k, _ in records(store, run_id)} == {"y"}
    assert skips(store, run_id) == {policies.UNCLEAR_CONSENT: len(unclear)}


def text_consent_workflow(wb: Any, name: str) -> dict[str, Any]:
    """A new store with the ad template, `members` mapped with its text column `ok` as
    consent, and an advertising workflow `name` over it."""
    wb.store.init()
    wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
    base = people()
    fields = {**base["fields"], "ok": {"displayName": "광고동의", "type": "string"}}
    wb.mappings.save("members", {**base, "audience": True, "consent": "ok", "fields": fields})
    return dict(
        wb.workflows.create(
            name, target_config={"table": "members"}, message_config={"template": "세일"}
        )
    )
