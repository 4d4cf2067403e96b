"""A target whose condition compares text of two collations the server will not compare
(`members.addr_code` utf8mb4_unicode_ci, `addrs.code` utf8mb4_general_ci: error 1267).

The preview asks the server to EXPLAIN the target first. Any error of that EXPLAIN was
reported as "the read-only account may not ask the server how it would read this target
... pass allow_scan=True", and with allow_scan=True the preview then failed with the
server's text alone. Only a refusal to explain (a view the account may not SHOW: 1345)
means that; another error is the target's own, and 1267 now says what to do.

Source: MariaDB databases made for the test, read with the SELECT-only account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hybridwb.errors import HybridwbError, QueryError, ScanRefused
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import people, workbench

pytestmark = pytest.mark.mysql

PHONE = "010-5556-0001"
TABLES = (
    "CREATE TABLE members (code VARCHAR(10) COLLATE utf8mb4_unicode_ci PRIMARY KEY, "
    "name VARCHAR(20), mobile VARCHAR(20), ok TINYINT(1), "
    "addr_code VARCHAR(10) COLLATE utf8mb4_unicode_ci, KEY (addr_code))",
    "CREATE TABLE addrs (code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, "
    "phone VARCHAR(20), KEY (phone))",
    "CREATE VIEW addrs_v AS SELECT code, phone FROM addrs",
)
ROWS = {
    "members": [(f"m{i}", "회원", f"010-4937-{i:04d}", 1, f"a{i}") for i in range(4)],
    "addrs": [(f"a{i}", f"010-5556-{i:04d}") for i in range(4)],
}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_cmix")


def _mappings(related: str) -> dict[str, dict[str, Any]]:
    fields = {
        "ok": {"displayName": "동의", "type": "boolean"},
        "addr_code": {"displayName": "주소", "type": "string"},
    }
    relation = {"table": related, "localField": "addr_code", "foreignField": "code",
                "kind": "many-to-one", "name": "addr"}  # fmt: skip
    return {
        related: {
            "displayName": "주소",
            "key": "code",
            "fields": {
                "code": {"displayName": "코드", "type": "string"},
                "phone": {"displayName": "전화", "type": "string"},
            },
        },
        "members": {
            **people(fields=fields),
            "audience": True,
            "consent": "ok",
            "relations": [relation],
        },
    }


TARGET = {"table": "members", "where": {"field": "addr.phone", "op": "eq", "value": PHONE}}


@pytest.mark.parametrize("allow_scan", [False, True])
def test_a_mix_of_collations_is_the_targets_error_and_says_what_to_do(
    source: Callable[..., str], tmp_path: Path, allow_scan: bool
) -> None:
    db = source(*TABLES, rows=ROWS)
    wb = workbench(db, f"sqlite:///{tmp_path / 's.db'}", _mappings("addrs"))
    try:
        with pytest.raises(HybridwbError) as caught:
            wb.targets.preview(TARGET, allow_scan=allow_scan)
    finally:
        wb.close()
    exc, text = caught.value, str(caught.value)
    assert type(exc) is QueryError and exc.fields.get("code") == 1267, (type(exc), text)
    assert "\n" not in text and "allow_scan" not in text, text
    assert "collation" in text.lower() and "COLLATE" in text, text
    assert PHONE not in text and "5556" not in text, text


def test_a_view_the_account_may_not_explain_still_asks_for_allow_scan(
    source: Callable[..., str], tmp_path: Path
) -> None:
    """The control: EXPLAIN of a saved query that reads a view needs SHOW VIEW, which the
    account lacks (1345): a scan cannot be ruled out, and the preview says so."""
    db = source(*TABLES, rows=ROWS)
    wb = workbench(db, f"sqlite:///{tmp_path / 's.db'}", _mappings("addrs"))
    target = {
        "sql": "SELECT code, name, mobile, ok FROM members WHERE EXISTS (SELECT 1 FROM addrs_v)"
    }
    try:
        with pytest.raises(ScanRefused, match="allow_scan=True") as caught:
            wb.targets.preview(target)
        assert wb.targets.preview(target, allow_scan=True).count == 4
    finally:
        wb.close()
    assert caught.value.__cause__ is None or caught.value.fields.get("code") in (None, 1345)
