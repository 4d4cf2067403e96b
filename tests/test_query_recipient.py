"""`workflows.query_recipient.source_of`: where a saved query's recipient comes from in the
audience table (round 56), as plain data, no database."""

from __future__ import annotations

import pytest

from hybridwb.workflows.query_recipient import Column, Joined, Text, source_of

COLUMNS = {"member_id", "name", "mobile1", "mobile2", "mobile3", "hp", "sms_agree"}
WS = Joined(("mobile1", "mobile2", "mobile3"), "-")


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT member_id, hp FROM shop_member", Column("hp")),
        ("SELECT member_id, mobile2 AS hp FROM shop_member", Column("mobile2")),
        ("SELECT * FROM shop_member WHERE sms_agree = 'T'", Column("hp")),
        ("SELECT m.member_id, m.mobile3 AS hp FROM shop_member m JOIN x ON 1", Column("mobile3")),
        ("SELECT member_id, CONCAT_WS('-', mobile1, mobile2, mobile3) AS hp FROM shop_member", WS),
        ("SELECT m.member_id, CONCAT_WS('-', m.mobile1, m.mobile2, m.mobile3) AS HP "
         "FROM shop_member AS m JOIN x ON x.id = m.member_id", WS),
        ("SELECT member_id, CONCAT(mobile1, '-', mobile2) AS hp FROM shop_member",
         Joined(("mobile1", Text("-"), "mobile2"), None)),
        ("SELECT member_id, REPLACE(hp, '-', '') AS hp FROM shop_member", None),
        ("SELECT member_id, (SELECT MAX(hp) FROM other) AS hp FROM shop_member", None),
        ("SELECT m.member_id, x.hp FROM shop_member m JOIN other x ON 1", None),
        ("SELECT member_id, hp FROM shop_member m JOIN other x ON 1", None),  # unqualified
        ("SELECT * FROM (SELECT member_id, hp FROM shop_member) t", None),
        ("SELECT member_id, hp FROM shop_member UNION SELECT member_id, hp FROM shop_member", None),
        ("SELECT member_id, CONCAT_WS(sep, mobile1) AS hp FROM shop_member", None),
        ("SELECT member_id, nothing AS hp FROM shop_member", None),
        ("SELECT member_id FROM shop_member", None),
        ("SELEC nonsense", None),
    ],
    ids=["column", "aliased-column", "star", "qualified", "concat-ws", "concat-ws-qualified",
         "concat", "expression", "subquery", "another-table", "unqualified-in-join",
         "derived-table", "union", "column-separator", "unknown-column", "not-returned",
         "unparsable"],
)  # fmt: skip
def test_where_a_saved_query_s_recipient_comes_from(
    sql: str, expected: Column | Joined | None
) -> None:
    assert source_of(sql, "hp", "shop_member", COLUMNS) == expected


@pytest.mark.parametrize(
    "row, ws, concat",
    [({"mobile1": "010", "mobile2": "3004", "mobile3": "0004"}, "010-3004-0004", "0103004"),
     ({"mobile1": None, "mobile2": "3004", "mobile3": "0004"}, "3004-0004", None),
     ({"mobile1": "010", "mobile2": None, "mobile3": None}, "010", None)],
    ids=["whole", "null-first", "null-rest"],
)  # fmt: skip
def test_parts_are_joined_as_the_server_joins_them(
    row: dict[str, str | None], ws: str, concat: str | None
) -> None:
    """CONCAT_WS skips a NULL part; CONCAT of one is NULL (MariaDB)."""
    assert WS.value(row) == ws
    assert Joined(("mobile1", "mobile2"), None).value(row) == concat
