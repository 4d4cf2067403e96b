"""Rows COPied into the store as one text (`idempotent.copy_text`) read back as the very
values, exactly as psycopg's row-by-row COPY gives them, on a real PostgreSQL.

The text format escapes a backslash, newline, carriage return and tab, and spells NULL
`\\N`; a text `\\N`, an empty text and a NULL must stay three different things. Values of
other types (a bool, a time) are left to psycopg (`copy_text` gives None), and a NUL byte,
which no Postgres text can hold, fails as it failed before.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from hybridwb.platform.idempotent import (
    Same,
    _rows_of,
    copy_columns,
    copy_columns_text,
    copy_text,
    copy_tuples,
)
from tests._stores import fresh_pg_database

pytestmark = pytest.mark.postgres

AWKWARD = [
    "",
    "\\N",
    "\\",
    "\\\\N",
    "a\tb",
    "line one\nline two",
    "crlf\r\n",
    "\\.",
    "end\\",
    "NULL",
    '"quoted", {braces}',
    "(광고) 하이브리드몰\n{{ 이름 }}님",
    "😀 emoji",
    "tab\\tliteral",
    " ",
]


@pytest.fixture
def pg() -> Iterator[tuple[sa.Engine, str]]:
    for url in fresh_pg_database("hybridwb_copy"):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (n int, a text, b text, m bigint)")
            conn.exec_driver_sql("CREATE TABLE u (n int, a text, b text, m bigint)")
        try:
            yield engine, url.render_as_string(hide_password=False)
        finally:
            engine.dispose()


def _table(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("n", sa.Integer),
        sa.Column("a", sa.Text),
        sa.Column("b", sa.Text),
        sa.Column("m", sa.BigInteger),
    )


def _read(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        return conn.execute(f"SELECT n, a, b, m FROM {table} ORDER BY n").fetchall()


def _by_psycopg(url: str, rows: list[tuple[Any, ...]]) -> None:
    """The reference: psycopg formats each row itself."""
    with (
        psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn,
        conn.cursor().copy("COPY u (n, a, b, m) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def test_awkward_texts_read_back_as_written_and_as_psycopg_writes_them(
    pg: tuple[sa.Engine, str],
) -> None:
    engine, url = pg
    rows: list[tuple[Any, ...]] = []
    for i, text in enumerate(AWKWARD):
        rows.append((i, text, None if i % 3 == 0 else text[::-1], -(2**62) + i))
    rows.append((len(rows), None, None, None))
    assert copy_text(rows) is not None  # the one-text path is the one under test
    with engine.begin() as conn:
        copy_tuples(conn, _table("t"), ["n", "a", "b", "m"], rows)
    _by_psycopg(url, rows)
    got = _read(url, "t")
    assert got == rows
    assert got == _read(url, "u")


def test_many_random_rows_match_psycopgs_copy(pg: tuple[sa.Engine, str]) -> None:
    """Random texts over the characters that matter (escapes, quotes, NULL's spelling,
    non-ASCII), some NULL: the one-text COPY and psycopg's row-by-row COPY agree."""
    engine, url = pg
    alphabet = ["\\", "N", "\t", "\n", "\r", ".", '"', ",", "a", "한", "😀", " ", "0"]
    rnd = random.Random(17)

    def text() -> str | None:
        if rnd.random() < 0.1:
            return None
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 9)))

    rows = [
        (i, text(), text(), rnd.choice([None, rnd.randrange(-(2**63), 2**63)])) for i in range(3000)
    ]
    assert copy_text(rows) is not None
    with engine.begin() as conn:
        copy_tuples(conn, _table("t"), ["n", "a", "b", "m"], rows)
    _by_psycopg(url, rows)
    assert _read(url, "t") == _read(url, "u") == rows


def test_values_of_other_types_are_left_to_psycopg() -> None:
    assert copy_text([(1, True)]) is None  # a bool is not the int 1 in a text column
    assert copy_text([(1, 2.5)]) is None
    assert copy_text([(1, b"x")]) is None


def test_a_nul_byte_fails_the_copy_as_it_did(pg: tuple[sa.Engine, str]) -> None:
    engine, url = pg
    rows = [(1, "ok", "x", 1), (2, "bad\x00byte", "y", 2)]
    assert copy_text(rows) is None
    with pytest.raises(Exception), engine.begin() as conn:  # noqa: B017  (the driver's own)
        copy_tuples(conn, _table("t"), ["n", "a", "b", "m"], rows)
    assert _read(url, "t") == []


@pytest.mark.parametrize("special", ["\\", "\n", "\r", "\t"])
def test_a_column_whose_one_special_character_is_this_one_reads_back(
    pg: tuple[sa.Engine, str], special: str
) -> None:
    """Each character to escape on its own in a column (a column is escaped when any of
    its values holds one): none may slip through unescaped."""
    engine, url = pg
    rows = [(1, f"a{special}b", "plain", 1), (2, "c", "plain", 2), (3, special, None, None)]
    with engine.begin() as conn:
        copy_tuples(conn, _table("t"), ["n", "a", "b", "m"], rows)
    assert _read(url, "t") == rows


# -- columns whose value every row shares (`Same`: a batch's run, workflow, time) -------------
@pytest.mark.parametrize("shared", [*AWKWARD, None, 7, -(2**62)], ids=repr)
def test_a_column_every_row_shares_reads_back_as_psycopg_writes_it(
    pg: tuple[sa.Engine, str], shared: Any
) -> None:
    """A `Same` column (escaped once, written between the other columns' values), in
    each position (first, inner, last, two in a row), with every awkward text, NULL and
    ints: the rows read back are those psycopg's row-by-row COPY writes, and the text is
    what `copy_text` makes of the rows spelled out.
    Mutations: the shared value not escaped; a shared NULL written as an empty text; the
    tab before a shared column left out; the shared texts not merged in order."""
    engine, url = pg
    rnd = random.Random(5)
    texts = [rnd.choice(AWKWARD) for _ in range(40)]
    n = list(range(40))
    text_shared = shared if not isinstance(shared, int) else str(shared)
    int_shared = shared if isinstance(shared, int) or shared is None else len(shared)
    layouts = [
        ([n, Same(text_shared), texts, Same(int_shared)], "first varies"),
        ([n, texts, Same(text_shared), Same(int_shared)], "two shared at the end"),
    ]
    for i, (columns, _) in enumerate(layouts):
        rows = _rows_of(columns)
        assert copy_columns_text(columns) == copy_text(rows) is not None
        table = f"s{i}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {table} (n int, a text, b text, m bigint)")
            conn.exec_driver_sql("TRUNCATE u")
            copy_columns(conn, _table(table), ["n", "a", "b", "m"], columns)
        _by_psycopg(url, rows)
        assert _read(url, table) == _read(url, "u") == rows


def test_shared_columns_of_other_types_or_a_nul_go_row_by_row(pg: tuple[sa.Engine, str]) -> None:
    """A shared value of another type (a bool, a time) or holding a NUL is not written as
    text: psycopg writes the rows (or the server refuses the NUL, as before)."""
    engine, url = pg
    assert copy_columns_text([[1, 2], Same(True)]) is None
    assert copy_columns_text([[1, 2], Same("a\x00b")]) is None
    columns = [[1, 2], Same("x"), Same(None), Same(True)]
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE v (n int, a text, b text, c boolean)")
        copy_columns(conn, sa.table("v", *map(sa.column, "nabc")), ["n", "a", "b", "c"], columns)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        got = conn.execute("SELECT n, a, b, c FROM v ORDER BY n").fetchall()
    assert got == [(1, "x", None, True), (2, "x", None, True)]


def test_columns_of_unequal_lengths_or_none_varying_are_refused() -> None:
    """Rows cannot be made from varying columns of different lengths, nor from shared
    columns alone (how many rows?): a ValueError, not rows cut short."""
    with pytest.raises(ValueError, match="one at least must vary"):
        copy_columns_text([[1, 2], ["a"], Same("x")])
    with pytest.raises(ValueError, match="one at least must vary"):
        copy_columns_text([Same(1), Same("x")])
    with pytest.raises(ValueError, match="one at least must vary"):
        _rows_of([[1, 2], ["a"]])
    assert copy_text([]) == ""
