"""The source on the embedded SQLite sample: binds, caps, transpiling, bad input."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import (
    BindError,
    HybridwbError,
    QueryError,
    QueryTimeout,
    ReadOnlyViolation,
    TranspileError,
)
from hybridwb.source import RowsCut, Source
from hybridwb.source.binds import find_binds, only_values_differ, to_pyformat, tokenize
from tests.conftest import SAMPLE_CUSTOMERS


@pytest.fixture
def source(sample_db: Path) -> Source:
    return Source(URL.create("sqlite", database=str(sample_db)))


def test_bound_parameter_filters_rows(source: Source) -> None:
    df = source.sql(
        "SELECT customer_id, grade FROM customers WHERE grade = :grade", {"grade": "VIP"}
    )
    assert len(df) > 0
    assert set(df["grade"]) == {"VIP"}


def test_list_parameter_expands_into_in(source: Source) -> None:
    df = source.sql(
        "SELECT customer_id FROM customers WHERE customer_id IN :ids ORDER BY 1", {"ids": [3, 1, 2]}
    )
    assert df["customer_id"].tolist() == [1, 2, 3]


def test_mysql_functions_are_transpiled(source: Source) -> None:
    df = source.sql(
        "SELECT DATE_FORMAT(created_at, '%Y') AS y, IFNULL(email, 'none') e FROM customers LIMIT 3"
    )
    assert df["y"].str.match(r"^\d{4}$").all()


def test_show_tables_and_describe_work_on_the_sample(source: Source) -> None:
    assert set(source.sql("SHOW TABLES").iloc[:, 0]) == {"customers", "subscriptions", "payments"}
    fields = source.sql("DESCRIBE customers")
    assert "customer_id" in set(fields["Field"])


def test_untranspilable_show_gets_a_clear_error(source: Source) -> None:
    with pytest.raises(TranspileError, match="SHOW TABLES"):
        source.sql("SHOW PROCESSLIST")


def test_result_without_limit_is_capped_and_says_so(sample_db: Path) -> None:
    source = Source(URL.create("sqlite", database=str(sample_db)), row_cap=100)
    with pytest.warns(RowsCut, match="first 100 rows"):
        df = source.sql("SELECT * FROM customers")
    assert len(df) == 100
    assert df.attrs["hybridwb"]["truncated"] is True


def test_result_under_the_cap_is_not_cut(source: Source) -> None:
    df = source.sql("SELECT * FROM customers")
    assert len(df) == SAMPLE_CUSTOMERS
    assert df.attrs["hybridwb"]["truncated"] is False


def test_explicit_limit_is_respected(source: Source) -> None:
    assert len(source.sql("SELECT * FROM customers LIMIT 7")) == 7


def test_write_is_refused_before_it_reaches_the_database(source: Source) -> None:
    with pytest.raises(ReadOnlyViolation):
        source.sql("DELETE FROM customers")
    assert len(source.sql("SELECT customer_id FROM customers")) == SAMPLE_CUSTOMERS


def test_sample_is_read_only_even_without_the_guard(sample_db: Path) -> None:
    unguarded = Source(URL.create("sqlite", database=str(sample_db)), use_guard=False)
    with pytest.raises(ReadOnlyViolation):
        unguarded.sql("DELETE FROM customers")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, ":grade but no value"),
        ({"grade": "VIP", "extra": 1}, "'extra' is not used"),
        ({"grade": {"a": 1}}, "is a dict"),
        ({"grade": object()}, "is a object"),
        ({"grade": []}, "empty list"),
    ],
    ids=["missing", "unknown-name", "dict", "object", "empty-list"],
)
def test_bad_binds_get_a_clear_error(source: Source, params: dict, error: str) -> None:
    with pytest.raises(BindError, match=error):
        source.sql("SELECT * FROM customers WHERE grade = :grade", params)


def test_dates_and_numbers_bind(source: Source) -> None:
    df = source.sql(
        "SELECT COUNT(*) AS n FROM customers WHERE created_at >= :since AND customer_id > :n",
        {"since": dt.datetime(2020, 1, 1), "n": 10},
    )
    assert int(df["n"].iloc[0]) > 0


def test_unknown_table_names_it(source: Source) -> None:
    with pytest.raises(QueryError, match="nope"):
        source.sql("SELECT * FROM nope")


def test_timeout_stops_a_long_query(source: Source) -> None:
    with pytest.raises(QueryTimeout):
        source.sql(
            "WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n",
            timeout=0.2,
        )
    assert len(source.sql("SELECT 1 AS one")) == 1


def test_every_query_is_logged_without_literals(source: Source) -> None:
    source.sql("SELECT * FROM customers WHERE name = '홍길동'")
    with pytest.raises(QueryError):
        source.sql("SELECT * FROM missing_table WHERE phone = '010-1234-5678'")
    ok, failed = list(source.querylog.entries)[-2:]
    assert ok.status == "success" and ok.resultCount == 0 and "홍길동" not in ok.query
    assert failed.status == "error" and "010-1234-5678" not in failed.query
    assert failed.errorMessage and isinstance(failed.executionTime, float)


def test_missing_sample_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(HybridwbError, match="hybridwb demo"):
        Source(URL.create("sqlite", database=str(tmp_path / "none.db"))).sql("SELECT 1")


def test_result_is_a_dataframe_with_timing(source: Source) -> None:
    started = time.perf_counter()
    df = source.sql("SELECT 1 AS one")
    wall_ms = (time.perf_counter() - started) * 1000
    assert isinstance(df, pd.DataFrame)
    assert 0 < df.attrs["hybridwb"]["elapsed_ms"] <= wall_ms  # measured, and inside the call


# -- binds are found by the tokenizer ---------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT * FROM t WHERE a = :a AND b IN :ids", ["a", "ids"]),
        ("SELECT ' :c' AS x", []),
        ("""SELECT '{"a" :1}' AS x""", []),
        ("SELECT ':a/tmp/x-:b' AS x", []),
        ("SELECT `:c` FROM t", []),
        ("SELECT 1 -- :c\nFROM t", []),
        ("SELECT 1 # :c\nFROM t", []),
        ("SELECT 1 /* :c */ FROM t", []),
        ("SELECT @v := 1", []),
        ("SELECT x::int FROM t", []),
        ("SELECT 'it''s :no', :yes", ["yes"]),
        ("SELECT 'a\\' :no', :yes", ["yes"]),
        ("SELECT : spaced", []),
        ("SELECT :limit, :from_", ["limit", "from_"]),
    ],
    ids=[
        "plain",
        "in-string",
        "json-in-string",
        "issue-attack",
        "backticks",
        "dash-comment",
        "hash-comment",
        "block-comment",
        "assignment",
        "cast",
        "doubled-quote",
        "backslash-quote",
        "spaced-colon",
        "keyword-names",
    ],
)
def test_binds_are_bare_colon_names_outside_quotes_and_comments(sql: str, names: list[str]) -> None:
    assert [b.name for b in find_binds(sql)] == names


def test_pyformat_text_keeps_every_other_percent() -> None:
    sql = "SELECT DATE_FORMAT(d, '%Y') FROM t WHERE n LIKE '%:x%' AND a = :a"
    text_ = to_pyformat(sql, find_binds(sql))
    assert text_ == "SELECT DATE_FORMAT(d, '%%Y') FROM t WHERE n LIKE '%%:x%%' AND a = %(a)s"
    assert text_ % {"a": "'v'"} == sql.replace(":a", "'v'")


def test_colon_inside_a_string_is_compared_as_written(source: Source) -> None:
    df = source.sql("SELECT ' :c' AS a, '{\"a\" :1}' AS b")
    assert df.values.tolist() == [[" :c", '{"a" :1}']]


# -- bad input gets a one-line HybridwbError ---------------------------------------------------
@pytest.mark.parametrize(
    ("query", "kwargs", "error", "words"),
    [
        ("SELECT 1", {"params": [1, 2]}, BindError, "params must be a dict"),
        ("SELECT 1", {"params": "x"}, BindError, "params must be a dict"),
        ("SELECT :a", {"params": {1: 2}}, BindError, "not a name"),
        ("SELECT 1", {"limit": "abc"}, BindError, "limit must be a positive"),
        ("SELECT 1", {"limit": 0}, BindError, "limit must be a positive"),
        ("SELECT 1", {"limit": True}, BindError, "limit must be a positive"),
        ("SELECT 1", {"timeout": "5"}, BindError, "timeout must be a number"),
        ("SELECT 1", {"timeout": float("nan")}, BindError, "timeout must be a number"),
        ("SELECT 1", {"timeout": 10**9}, BindError, "above the configured limit"),
        ("SELECT :a", {"params": {"a": "x\ud800"}}, BindError, "lone surrogate"),
        ("SELECT :a", {"params": {"a": float("inf")}}, BindError, "finite"),
        ("SELECT :a", {"params": {"a": [1] * 20_000}}, BindError, "the limit is"),
        ("SELECT " + "(" * 3000 + "1" + ")" * 3000, {}, QueryError, "nested"),
        (None, {}, QueryError, "must be text"),
        (5, {}, QueryError, "must be text"),
        (b"\xff", {}, QueryError, "UTF-8"),
        ("SELECT 'x\ud800'", {}, QueryError, "surrogate"),
    ],
    ids=[
        "params-list",
        "params-str",
        "params-int-key",
        "limit-str",
        "limit-zero",
        "limit-bool",
        "timeout-str",
        "timeout-nan",
        "timeout-above-ceiling",
        "surrogate-value",
        "infinite-value",
        "huge-list",
        "3000-parentheses",
        "query-none",
        "query-int",
        "query-bad-bytes",
        "surrogate-query",
    ],
)
def test_bad_input_is_a_one_line_error(
    source: Source, query: object, kwargs: dict, error: type, words: str
) -> None:
    with pytest.raises(error, match=words) as info:
        source.sql(query, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert source.querylog.entries[-1].status == "error"


def test_cache_is_bounded_in_bytes_and_evicts(sample_db: Path) -> None:
    """The budget bounds memory, not rows: what the cache still holds after many distinct
    results, measured by tracemalloc (the oracle), stays within the budget."""
    import gc
    import tracemalloc

    budget = 1024 * 1024
    source = Source(URL.create("sqlite", database=str(sample_db)), result_cache_mb=1)
    source.sql("SELECT 1 AS warm", cache_ttl=60)  # engine and first-use caches before measuring
    source.clear_cache()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # ten results of ~475 kB (601 rows each): ~4.7 MB, nearly five budgets, which a
        # count-bound cache, an estimate without the values or a doubled budget (~1.9 MB
        # kept) each overrun; more results would only be evicted too (40 took 4x the time)
        for n in range(10):
            source.sql(
                f"SELECT * FROM customers WHERE customer_id BETWEEN {n} AND {n + 600}",
                cache_ttl=60,
            )
        gc.collect()
        with_cache = tracemalloc.get_traced_memory()[0]
        kept = len(source._cache)
        source.clear_cache()
        gc.collect()
        without = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    held = with_cache - without
    assert 1 <= kept < 10  # something is cached, and older results were evicted
    assert held <= budget * 1.25, f"the cache held {held:,} bytes for a {budget:,} budget"
    assert with_cache - before < 4 * budget


def test_a_zero_cache_budget_caches_nothing(sample_db: Path) -> None:
    source = Source(URL.create("sqlite", database=str(sample_db)), result_cache_mb=0)
    for _ in range(2):
        source.sql("SELECT COUNT(*) AS n FROM customers", cache_ttl=60)
    assert len(source.querylog.entries) == 2 and len(source._cache) == 0


def test_cache_repr_shows_sizes_never_statements(sample_db: Path) -> None:
    source = Source(URL.create("sqlite", database=str(sample_db)))
    source.sql("SELECT * FROM customers WHERE email = 'kim@example.com'", cache_ttl=60)
    assert "kim@example.com" not in repr(source._cache)


def test_cache_answers_within_its_ttl_only(sample_db: Path) -> None:
    source = Source(URL.create("sqlite", database=str(sample_db)))
    source.sql("SELECT COUNT(*) AS n FROM customers", cache_ttl=0.2)
    source.sql("SELECT COUNT(*) AS n FROM customers", cache_ttl=0.2)
    assert len(source.querylog.entries) == 1
    time.sleep(0.25)
    source.sql("SELECT COUNT(*) AS n FROM customers", cache_ttl=0.2)
    assert len(source.querylog.entries) == 2


@pytest.mark.parametrize(
    ("approved", "final", "same"),
    [
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = 'it\\'s'", True),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = -1.5e+10", True),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = NULL", True),
        ("SELECT a FROM t WHERE x IN :v", "SELECT a FROM t WHERE x IN ('a',-1,NULL)", True),
        ("SELECT a FROM t WHERE x = :v /* c */", "SELECT a FROM t WHERE x = X'00' /* c */", True),
        (
            "SELECT a FROM t WHERE x = ':a/x:b'",
            "SELECT a FROM t WHERE x = '' OR 1=1 INTO OUTFILE'/x'#''",
            False,
        ),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = 1 INTO OUTFILE '/x'", False),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = SLEEP(1)", False),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = (1, SLEEP(1))", False),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = 1 /*! SLEEP(1) */", False),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = @v", False),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = - - 1", False),
        ("SELECT a FROM t WHERE x = :v", "SELECT a FROM t WHERE x = 1 LIMIT 1", False),
    ],
    ids=[
        "string",
        "signed-number",
        "null",
        "list",
        "hex-and-comment",
        "bind-in-literal-attack",
        "into-outfile",
        "function",
        "function-in-list",
        "executable-comment",
        "variable",
        "double-sign",
        "extra-clause",
    ],
)
def test_final_text_matches_only_when_just_values_replaced_binds(
    approved: str, final: str, same: bool
) -> None:
    """The fast path of the final-text check: anything but literals in the bind places is
    checked in full."""
    assert only_values_differ(tokenize(approved), find_binds(approved), tokenize(final)) is same


def _dump(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def test_a_second_build_in_one_process_is_the_sample_a_fresh_process_builds(
    tmp_path: Path,
) -> None:
    """A build in a process that built the same size and seed before copies that file: it
    must hold what a process of its own builds (oracle: sqlite3's dump of each); another
    size or seed is built, not copied."""
    import subprocess
    import sys

    from hybridwb.source import sample

    sample.build_sqlite(tmp_path / "first.db", 300, seed=7)
    sample.build_sqlite(tmp_path / "copied.db", 300, seed=7)
    # one fresh process, its first build of each (a build copies only what it built before)
    code = (
        "import sys; from pathlib import Path; from hybridwb.source.sample import build_sqlite\n"
        "for name, size, seed in zip(*[iter(sys.argv[2:])] * 3):\n"
        "    build_sqlite(Path(sys.argv[1]) / name, int(size), seed=int(seed))"
    )
    builds = [("other-size.db", 301, 7), ("other-seed.db", 300, 8), ("fresh.db", 300, 7)]
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), *(str(x) for b in builds for x in b)],
        check=True,
    )
    assert _dump(tmp_path / "copied.db") == _dump(tmp_path / "fresh.db")
    counts = sample.build_sqlite(tmp_path / "seed8.db", 300, seed=8)
    assert _dump(tmp_path / "seed8.db") == _dump(tmp_path / "other-seed.db")
    assert counts["customers"] == 300
    sample.build_sqlite(tmp_path / "size301.db", 301, seed=7)
    assert _dump(tmp_path / "size301.db") == _dump(tmp_path / "other-size.db")
