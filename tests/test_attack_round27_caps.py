# ruff: noqa: F811  (the fixture imported from the round-27 reconnect tests is a parameter here)
"""Attack round 27 on the row cap of `wb.engine` (pandas, jupysql): a whole result is read
into memory there, so the server's `sql_select_limit` (the cap + 1) must bound it, and an
explicit LIMIT above the cap, which overrides it, is refused (`engine.refuse_large_limit`).

The refusal looked at the statement's own LIMIT only. A SELECT in parentheses —
`(SELECT a FROM big LIMIT 1000000)` — parses as a subquery with no LIMIT of its own, and the
server neither applies `sql_select_limit` to it nor is asked to stop: with a cap of 10,
pandas read all 1,000 rows (a million as easily). Now the LIMIT inside the parentheses counts
when none stands outside them.

Oracle: the rows the server sent (what the driver handed pandas), against the cap + 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import ReadOnlyViolation
from hybridwb.source import Source
from tests._mysql import root
from tests.conftest import MYSQL_HOST, MYSQL_PORT
from tests.test_attack_round27_reconnect import writer  # noqa: F401 (fixture)

pytestmark = pytest.mark.mysql

CAP = 10


@pytest.fixture
def big(writer: tuple[str, str, str]) -> Iterator[Source]:
    """A source capped at 10 rows over a table of 1,000."""
    db = writer[0]
    conn = root()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE `{db}`.big (a INT)")
            cur.execute(f"INSERT INTO `{db}`.big SELECT seq FROM `{db}`.seq_1_to_1000")
    finally:
        conn.close()
    user, password = writer[1], writer[2]
    url = URL.create(
        "mysql+pymysql", username=user, password=password, host=MYSQL_HOST, port=MYSQL_PORT
    )
    src = Source(url.set(database=db), row_cap=CAP, pool_size=2, max_overflow=0)
    try:
        yield src
    finally:
        src.close()


#: a SELECT whose LIMIT above the cap stands inside parentheses
_PARENTHESIZED = [
    "(SELECT a FROM big LIMIT 1000)",
    "((SELECT a FROM big LIMIT 1000))",
    "(SELECT a FROM big ORDER BY a LIMIT 1000)",
    "(((SELECT a FROM big LIMIT 5 OFFSET 0) UNION ALL (SELECT a FROM big) LIMIT 1000))",
]


@pytest.mark.parametrize("query", _PARENTHESIZED)
def test_a_limit_above_the_cap_inside_parentheses_is_refused_on_the_engine(
    big: Source, query: str
) -> None:
    """Before: 1,000 rows (a million as easily) read whole into memory past a cap of 10.
    Mutation: drop the walk into parentheses in engine.refuse_large_limit -> 4 of 4 fail."""
    got: int | None = None
    try:
        got = len(pd.read_sql(query, big.engine))
    except ReadOnlyViolation as exc:
        assert "row cap" in str(exc)
    assert got is None or got <= CAP + 1, f"{got} rows past a cap of {CAP}"


@pytest.mark.parametrize(
    "query, rows",
    [
        ("(SELECT a FROM big LIMIT 5)", 5),
        ("(SELECT a FROM big LIMIT 1000) LIMIT 5", 5),
        ("(SELECT a FROM big)", CAP + 1),
        ("(SELECT a FROM big LIMIT 1000) UNION ALL (SELECT a FROM big LIMIT 1)", CAP + 1),
        ("SELECT * FROM ((SELECT a FROM big LIMIT 1000)) z", CAP + 1),
    ],
)
def test_parenthesized_selects_the_server_caps_still_run_on_the_engine(
    big: Source, query: str, rows: int
) -> None:
    """What the server bounds (a LIMIT within the cap outside or inside, `sql_select_limit`
    on a union or an outer SELECT) is not refused."""
    assert len(pd.read_sql(query, big.engine)) == rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(big.records(query)) == min(rows, CAP)
