"""Bad input, round 3: wrong types, out-of-range numbers and odd text at every public door.

The guarantee: anything a user can type or store is answered with a `HybridwbError` whose
message is one line (no traceback), never a raw Python exception, a hang or unbounded work.
Round 3 found the inputs in `FINDINGS` (each was a raw exception before the fix, named in its
id); `HELD` are the inputs that already held, kept as guards. All run on the SQLite sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

import hybridwb
from hybridwb.cli import main

HUGE = 10**400  # beyond float, beyond 64 bits, beyond a C int
GOOD = {"table": "customers", "where": {"field": "grade", "op": "eq", "value": "VIP"}}


def assert_clean(exc: BaseException) -> None:
    assert isinstance(exc, hybridwb.HybridwbError), f"{type(exc).__name__}: {str(exc)[:200]}"
    text = str(exc)
    assert text.strip() and "\n" not in text and "Traceback" not in text
    assert len(text) < 400, f"a {len(text):,}-character message: {text[:120]}"


def refused(call: Callable[[], Any]) -> hybridwb.HybridwbError:
    with pytest.raises(Exception) as info:
        call()
    assert_clean(info.value)
    return info.value  # type: ignore[return-value]


# -- findings: each was a raw exception (named in the id) before its fix -----------------------
FINDINGS: list[tuple[str, Callable[[Any], Any]]] = [
    # OverflowError (source.py fetchmany: a C int)
    ("sql-limit-huge-OverflowError", lambda wb: wb.sql("SELECT 1", limit=HUGE)),
    ("sql-limit-1e30-OverflowError", lambda wb: wb.sql("SELECT 1", limit=10**30)),
    # OverflowError (binds.seconds_arg: math.isfinite of a huge int)
    ("sql-timeout-huge-OverflowError", lambda wb: wb.sql("SELECT 1", timeout=HUGE)),
    ("preview-cache-ttl-huge-OverflowError", lambda wb: wb.targets.preview(GOOD, cache_ttl=HUGE)),
    # OverflowError (sqlite3 cannot bind beyond 64 bits)
    ("sql-bind-huge-OverflowError", lambda wb: wb.sql("SELECT :a", {"a": HUGE})),
    ("sql-bind-2**63-OverflowError", lambda wb: wb.sql("SELECT :a", {"a": 2**63})),
    # TypeError unhashable (MappingService.resolve)
    ("search-table-dict-TypeError", lambda wb: wb.search({"a": 1}, "김")),
    ("search-table-list-TypeError", lambda wb: wb.search(["customers"], "김")),
    ("mappings-delete-dict-TypeError", lambda wb: wb.mappings.delete({"a": 1})),
    ("mappings-activate-list-TypeError", lambda wb: wb.mappings.activate(["a"])),
    ("automap-table-dict-TypeError", lambda wb: wb.templates.automap("#{고객명}", {"a": 1})),
    # wb.table presentation arguments (render.py)
    ("table-columns-int-TypeError", lambda wb: wb.table([{"a": 1}], "customers", columns=5)),
    ("table-columns-1MB-str-hang", lambda wb: wb.table([{"a": 1}], columns="x" * 1_000_000)),
    (
        "table-columns-surrogate-UnicodeEncodeError",
        lambda wb: wb.table([{"a": 1}], columns="\ud800"),
    ),
    ("table-labels-list-ValueError", lambda wb: wb.table([{"a": 1}], labels=["a"])),
    ("table-labels-str-ValueError", lambda wb: wb.table([{"a": 1}], labels="abc")),
    ("table-labels-float-TypeError", lambda wb: wb.table([{"a": 1}], labels=float("nan"))),
    ("table-caption-int-TypeError", lambda wb: wb.table([{"a": 1}], caption=5)),
    ("table-caption-dict-TypeError", lambda wb: wb.table([{"a": 1}], caption={"a": 1})),
    ("table-rows-list-of-str-ValueError", lambda wb: wb.table(["a"], "customers")),
    # targets.preview
    ("preview-sample-dict-TypeError", lambda wb: wb.targets.preview(GOOD, sample={"a": 1})),
    ("preview-sample-nan-TypeError", lambda wb: wb.targets.preview(GOOD, sample=float("nan"))),
    ("preview-sample-str-TypeError", lambda wb: wb.targets.preview(GOOD, sample="")),
    ("preview-now-int-AttributeError", lambda wb: wb.targets.preview(GOOD, now=5)),
    ("preview-now-str-AttributeError", lambda wb: wb.targets.preview(GOOD, now="2026-01-01")),
    (
        "target-between-inf-OverflowError",
        lambda wb: wb.targets.preview(
            {
                "table": "customers",
                "where": {"field": "customer_id", "op": "between", "value": [float("inf"), 1]},
            }
        ),
    ),
    (
        "target-between-huge-OverflowError",
        lambda wb: wb.targets.preview(
            {
                "table": "customers",
                "where": {"field": "customer_id", "op": "between", "value": [HUGE, HUGE]},
            }
        ),
    ),
    # templates / workflows / store
    ("template-content-int-TypeError", lambda wb: wb.templates.create("t-int", 5)),
    ("template-content-bytes-TypeError", lambda wb: wb.templates.create("t-bytes", b"hi")),
    (
        "template-update-content-list-TypeError",
        lambda wb: wb.templates.update("nope", content=["x"]),
    ),
    (
        "workflow-trigger-int-AttributeError",
        lambda wb: wb.workflows.create("w-int", trigger_config=5),
    ),
    (
        "workflow-trigger-str-AttributeError",
        lambda wb: wb.workflows.create("w-str", trigger_config="x"),
    ),
    ("workflow-get-surrogate-UnicodeEncodeError", lambda wb: wb.workflows.get("\ud800")),
    ("workflow-delete-surrogate-UnicodeEncodeError", lambda wb: wb.workflows.delete("\udcff")),
    ("template-get-surrogate-UnicodeEncodeError", lambda wb: wb.templates.get("a\ud800")),
    ("variable-get-surrogate-UnicodeEncodeError", lambda wb: wb.variables.get("\ud800")),
    ("workflow-list-surrogate-UnicodeEncodeError", lambda wb: wb.workflows.list(name="\ud800")),
    ("workflow-list-huge-OverflowError", lambda wb: wb.workflows.list(name=HUGE)),
    ("workflow-list-misspelt-KeyError", lambda wb: wb.workflows.list(nmae="x")),
]


@pytest.mark.parametrize(("case", "call"), FINDINGS, ids=[c for c, _ in FINDINGS])
def test_finding_is_refused_with_one_line(shop: Any, case: str, call: Callable[[Any], Any]) -> None:
    refused(lambda: call(shop))


def test_a_huge_key_is_cut_in_the_not_found_message(shop: Any) -> None:
    """Before: the 1 MB name was echoed whole into NotFound's message."""
    exc = refused(lambda: shop.workflows.get("x" * 1_000_000))
    assert isinstance(exc, hybridwb.NotFound)


def test_a_whole_number_bind_within_64_bits_still_runs(shop: Any) -> None:
    """The range check refuses only what no driver can send: the oracle is the value back."""
    df = shop.sql("SELECT :a AS a, :b AS b", {"a": 2**63 - 1, "b": -(2**63)})
    assert (int(df["a"][0]), int(df["b"][0])) == (2**63 - 1, -(2**63))


def test_a_limit_beyond_a_c_int_runs_on_the_sample(shop: Any) -> None:
    """The bound is 64 bits (MySQL's sql_select_limit), not sqlite3's C int fetch size."""
    assert len(shop.sql("SELECT 1 AS a", limit=2**31)) == 1


@pytest.mark.parametrize(
    "value",
    [float("inf"), "9.9e999", 1e300, HUGE, -(2**63) - 1],
    ids=["inf", "9.9e999", "1e300", "huge", "below-min64"],
)
def test_a_number_condition_beyond_64_bits_is_refused_where_it_is_read(value: Any) -> None:
    """Pure: the condition value, not the driver, says what is wrong (inf raised OverflowError)."""
    from hybridwb.targets.sql import coerce

    with pytest.raises(hybridwb.ValidationError, match="is not a number"):
        coerce(value, "number", "target.where")


# -- magics ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    ["--limit \u00b2", "--limit " + "9" * 5000, "--limit 99999999999999999999", "-o class"],
    ids=["superscript-two-ValueError", "5000-digits-ValueError", "beyond-64-bits", "keyword-name"],
)
def test_magic_options_are_usage_errors(line: str) -> None:
    """Before: '²' passed str.isdigit and int() raised ValueError; 5000 digits raised
    ValueError (int max str digits); 10**20 and `-o class` were accepted."""
    from IPython.core.error import UsageError

    from hybridwb.magics import parse_args

    with pytest.raises(UsageError) as info:
        parse_args(line)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


# -- settings, connect and a closed workbench ---------------------------------------------------
@pytest.mark.parametrize(
    "toml",
    [
        "mysql_port = 99999999",
        "mysql_port = -1",
        "connect_timeout = 99999999999999",
        "read_timeout = 99999999999999999",
        "statement_timeout = 1e300",
        "row_cap = 99999999999999999999",
        "sample_customers = 10000000000000",
    ],
    ids=lambda t: t.split(" ")[0],
)
def test_out_of_range_settings_are_config_errors(tmp_path: Any, toml: str) -> None:
    """Before: accepted; a huge connect/read timeout then failed at connect as 'check the user
    name and password' (pymysql's ValueError/OverflowError), a huge sample_customers would
    build a sample without end."""
    (tmp_path / "pyproject.toml").write_text(f"[tool.hybridwb]\n{toml}\n", encoding="utf-8")
    exc = refused(lambda: hybridwb.connect(cwd=tmp_path))
    assert isinstance(exc, hybridwb.ConfigError)
    assert toml.split(" ")[0] in str(exc)


@pytest.mark.parametrize("cwd", [5, "/etc/passwd", ["a"]], ids=["int", "a-file", "list"])
def test_connect_cwd_that_is_not_a_folder(cwd: Any) -> None:
    """Before: TypeError (int), NotADirectoryError (a file)."""
    assert isinstance(refused(lambda: hybridwb.connect(cwd=cwd)), hybridwb.ConfigError)


@pytest.mark.parametrize("customers", [10**7, HUGE, 0, True], ids=["10M", "huge", "zero", "bool"])
def test_sample_size_is_bounded(shop: Any, customers: Any) -> None:
    refused(lambda: shop.ensure_sample(customers))


def test_demo_customers_is_bounded() -> None:
    result = CliRunner().invoke(main, ["demo", "--customers", "10000000000"])
    assert result.exit_code == 2 and "Traceback" not in result.output


USES = {
    "sql": lambda wb: wb.sql("SELECT 1"),
    "search": lambda wb: wb.search("customers", "김"),
    "store": lambda wb: wb.store.sql("SELECT 1"),
    "workflows": lambda wb: wb.workflows.list(),
    "templates": lambda wb: wb.templates.list(),
    "mappings": lambda wb: wb.mappings.tables(),
    "table": lambda wb: wb.table([{"a": 1}]),
    "test_connection": lambda wb: wb.test_connection(),
}


@pytest.mark.parametrize("use", list(USES.values()), ids=list(USES))
def test_a_closed_workbench_refuses_to_be_used(shop: Any, tmp_path: Any, use: Any) -> None:
    """Before: each call silently reopened a pool or the store that nothing closed again
    (atexit skips a closed workbench) and its query log was never saved."""
    import sqlite3

    shop.sql("SELECT 1")
    shop.workflows.list()  # services cached before the close
    shop.close()
    exc = refused(lambda: use(shop))
    assert isinstance(exc, hybridwb.ConnectionFailed) and "hybridwb.connect()" in str(exc)
    assert "store" not in shop.__dict__
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as conn:  # the oracle
        assert conn.execute("SELECT COUNT(*) FROM query_logs").fetchone()[0] == 1


# -- the CLI ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["nan", "-1", "0", "inf", "1e309"], ids=["nan", "negative", "zero", "inf", "1e309"]
)
def test_schedule_interval_out_of_range_is_a_usage_error(value: str) -> None:
    """Before: exit 0 with `--once`; without it time.sleep(nan/-1) raised ValueError and 0
    was a busy loop."""
    result = CliRunner().invoke(main, ["schedule", "--interval", value, "--once"])
    assert result.exit_code == 2, result.output
    assert "0.1 to 86400" in result.output and "Traceback" not in result.output


def test_run_parameter_with_a_5000_digit_number_is_text_not_a_crash(shop: Any) -> None:
    """Before: json.loads raised ValueError (int max str digits), the CLI died with it."""
    result = CliRunner().invoke(main, ["run", "nope", "-p", "a", "1" * 5000])
    assert result.exit_code == 1
    assert not isinstance(result.exception, ValueError)
    assert "No workflow 'nope'" in result.output


# -- what held: kept as guards ---------------------------------------------------------------
ODD = {
    "None": None,
    "int": 5,
    "dict": {"a": 1},
    "nan": float("nan"),
    "inf": float("inf"),
    "true": True,
    "empty": "",
    "space": "   ",
    "nul": "a\x00b",
    "surrogate": "\ud800",
    "rtl": "\u202ecustomers",
    "1MB": "x" * 1_000_000,
}
HELD: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("sql-text", lambda wb, v: wb.sql(v)),
    ("search-limit", lambda wb, v: wb.search("customers", "김", limit=v)),
    ("search-page", lambda wb, v: wb.search("customers", "김", page=v or 5)),
    ("mappings-get", lambda wb, v: wb.mappings.get(v if v is not None else {"a": 1})),
    ("targets-validate", lambda wb, v: wb.targets.validate(v)),
    ("targets-iter-batch", lambda wb, v: next(wb.targets.iter(GOOD, v if v is not None else -1))),
    (
        "templates-render",
        lambda wb, v: wb.templates.render(v if not isinstance(v, str) else "{{", {}),
    ),
    ("store-sql", lambda wb, v: wb.store.sql(v if not isinstance(v, str) else "")),
    ("workflow-resume", lambda wb, v: wb.workflows.run(None, resume=v)),
]


@pytest.mark.parametrize("value", list(ODD.values()), ids=list(ODD))
@pytest.mark.parametrize(("case", "call"), HELD, ids=[c for c, _ in HELD])
def test_held_odd_values_are_refused_with_one_line(
    shop: Any, case: str, call: Callable[[Any, Any], Any], value: Any
) -> None:
    try:
        call(shop, value)
    except BaseException as exc:
        assert_clean(exc)


@pytest.mark.parametrize(
    "value", [-1, 0, 1e309, float("nan"), "abc", True, 2**63], ids=lambda v: repr(v)[:12]
)
def test_sql_limit_bad_values_are_bind_errors(shop: Any, value: Any) -> None:
    assert isinstance(refused(lambda: shop.sql("SELECT 1", limit=value)), hybridwb.BindError)


@pytest.mark.parametrize("value", [-1, 0, 1e309, float("nan"), "abc", True], ids=repr)
def test_sql_timeout_bad_values_are_bind_errors(shop: Any, value: Any) -> None:
    assert isinstance(refused(lambda: shop.sql("SELECT 1", timeout=value)), hybridwb.BindError)


LONG = "q" * 200_000  # a pasted blob where a short word was expected
LONG_DOORS: list[tuple[str, Callable[[Any], Any]]] = [
    ("store-listing", lambda wb: wb.store.listing(LONG)),
    ("render-many-mode", lambda wb: wb.templates.renderer("안녕 {{ name }}", mode=LONG)),
    ("mapping-sample-rows", lambda wb: wb.mappings.sample("customers", rows=LONG)),
    ("render-max-rows", lambda wb: hybridwb.render.table([{"a": 1}], max_rows=LONG)),
    ("sql-timeout", lambda wb: wb.sql("SELECT 1", timeout=LONG)),
    ("search-allow-scan", lambda wb: wb.search("customers", "김", allow_scan=LONG)),
    (
        "workflow-schedule",
        lambda wb: wb.workflows.create(
            name="w", notebook="n.ipynb", trigger_type="schedule", schedule_config={"cron": LONG}
        ),
    ),
]


@pytest.mark.parametrize(("case", "call"), LONG_DOORS, ids=[c for c, _ in LONG_DOORS])
def test_a_long_bad_value_is_cut_in_its_one_line_message(
    shop: Any, case: str, call: Callable[[Any], Any]
) -> None:
    exc = refused(lambda: call(shop))
    assert len(str(exc)) < 400, f"{case}: a {len(str(exc)):,}-character message"
