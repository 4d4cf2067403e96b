"""A canary password never shows: not in reprs, vars, messages, tracebacks with locals.

A real MariaDB account with a password full of URL-special characters is created for the
session (and dropped after); it reaches hybridwb through each configuration layer.
"""

from __future__ import annotations

import re
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pymysql
import pytest

import hybridwb
from hybridwb.config import load_settings
from hybridwb.errors import ConfigError, ConnectionFailed, HybridwbError
from hybridwb.observability import run_doctor
from tests.conftest import MYSQL_HOST, MYSQL_PORT, _admin

pytestmark = pytest.mark.mysql

#: unencoded @ and # on purpose: a naive parser puts the tail of the password in the host
CANARY = f"cAn@ry#{uuid.uuid4().hex[:10]}"
USER = f"hwb_canary_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def canary_account(mysql_db: str) -> Iterator[str]:
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (USER, CANARY))
        cur.execute(f"GRANT SELECT ON `{mysql_db}`.* TO %s@'%%'", (USER,))
    try:
        yield mysql_db
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (USER,))
        conn.close()


def raw_url(database: str, password: str = CANARY, port: int = MYSQL_PORT) -> str:
    return f"mysql+pymysql://{USER}:{password}@{MYSQL_HOST}:{port}/{database}"


def plain_strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Every plain string reachable through containers (namedtuples and mappings too)."""
    if depth > 6:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from plain_strings(key, depth + 1)
            yield from plain_strings(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from plain_strings(item, depth + 1)
    else:
        yield repr(value)


def assert_no_canary(obj: Any, what: str) -> None:
    for text in plain_strings(vars(obj)):
        assert CANARY not in text, f"{what} holds the canary"
        assert CANARY.split("#")[1] not in text, f"{what} holds the canary's tail"


def all_renderings(exc: BaseException) -> str:
    """str, the plain traceback and the `%xmode Verbose`-style one with every frame's locals."""
    verbose = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return "\n".join(
        [str(exc), repr(exc), "".join(traceback.format_exception(exc)), "".join(verbose.format())]
    )


def raised(call: Callable[[], Any]) -> HybridwbError:
    """The error `call` raises (caught here, so no frame holding the canary is in it)."""
    try:
        call()
    except HybridwbError as exc:
        return exc
    raise AssertionError("expected a HybridwbError")


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


LAYERS = ["argument", "env-pieces", "env-url", "dotenv", "pyproject"]


def connect_through(layer: str, database: str, tmp_path: Path, password: str = CANARY) -> Any:
    url = raw_url(database, password)
    if layer == "argument":
        return hybridwb.connect(url, cwd=tmp_path, env={})
    if layer == "env-pieces":
        env = {
            "MYSQL_HOST": MYSQL_HOST,
            "MYSQL_PORT": str(MYSQL_PORT),
            "MYSQL_READ_USER": USER,
            "MYSQL_READ_PASSWORD": password,
            "MYSQL_DATABASE": database,
        }
        return hybridwb.connect(cwd=tmp_path, env=env)
    if layer == "env-url":
        return hybridwb.connect(cwd=tmp_path, env={"HYBRIDWB_SOURCE_URL": url})
    if layer == "dotenv":
        write(tmp_path / ".env", f"HYBRIDWB_SOURCE_URL='{url}'\n")
        return hybridwb.connect(cwd=tmp_path, env={})
    write(tmp_path / "pyproject.toml", f"[tool.hybridwb]\nsource_url = '{url}'\n")
    return hybridwb.connect(cwd=tmp_path, env={})


@pytest.mark.parametrize("layer", LAYERS)
def test_canary_password_works_and_never_shows(
    canary_account: str, tmp_path: Path, layer: str
) -> None:
    with connect_through(layer, canary_account, tmp_path) as wb:
        # the unencoded @ and # reached the server intact: the login worked
        assert wb.sql("SELECT CURRENT_USER() AS u")["u"][0].startswith(USER)
        shown = [repr(wb), repr(wb.source), repr(wb.settings), wb.status_line()]
        shown += [str(wb.settings.describe()), run_doctor(wb).render()]
        for text in shown:
            assert CANARY not in text and CANARY.split("#")[1] not in text
        assert_no_canary(wb.source, "vars(wb.source)")
        assert_no_canary(wb.settings, "vars(wb.settings)")
        assert_no_canary(wb, "vars(wb)")


@pytest.mark.parametrize("layer", LAYERS)
def test_wrong_password_error_has_no_canary_even_with_locals(
    canary_account: str, tmp_path: Path, layer: str
) -> None:
    wb = connect_through(layer, canary_account, tmp_path, password=CANARY + "x")
    exc = raised(lambda: wb.sql("SELECT 1"))
    assert isinstance(exc, ConnectionFailed)
    # the cause's type stays as a field (`cause_type` from from_cause, `cause` from the
    # engine's own translation), its code too
    cause = getattr(exc, "cause_type", None) or getattr(exc, "cause", "")
    assert exc.code == 1045 and "OperationalError" in cause
    assert exc.__suppress_context__ and exc.__cause__ is None
    text = all_renderings(exc)
    assert "pymysql/connections.py" not in text  # no driver frame travels with the error
    assert CANARY not in text and CANARY.split("#")[1] not in text
    info = wb.test_connection()
    assert info.status == "error" and CANARY not in str(info.as_dict())
    wb.close()


def test_wrong_password_error_chain_holds_no_frame_with_the_canary(
    canary_account: str, tmp_path: Path
) -> None:
    """A reporter that walks `__context__` regardless of `from None` (and renders every
    frame's locals) reaches no frame that held the password: the driver's exception may
    stay as the context, but without its frames."""
    wb = connect_through("argument", canary_account, tmp_path, password=CANARY + "x")
    exc = raised(lambda: wb.sql("SELECT 1"))
    wb.close()
    chain = whole_chain(exc)
    shown = "".join(
        "".join(
            traceback.TracebackException(
                type(e), e, e.__traceback__, capture_locals=True, compact=True
            ).format(chain=False)
        )
        for e in chain
    )
    assert CANARY not in shown and CANARY.split("#")[1] not in shown


@pytest.mark.parametrize(("driver", "code"), [("pymysql", 2003), ("mysqldb", 2002)])
def test_unreachable_server_error_has_no_canary(
    canary_account: str, tmp_path: Path, driver: str, code: int
) -> None:
    """Both drivers' "cannot connect" (PyMySQL's 2003, libmariadb's 2002) say where and
    what to check; before, mysqlclient's read "MySQL client error 2002: Can'?'.", the
    apostrophe of "Can't" taken for a quoted value (round 50's leftover)."""
    pytest.importorskip("MySQLdb" if driver == "mysqldb" else "pymysql")
    url = raw_url(canary_account, port=1).replace("mysql+pymysql", f"mysql+{driver}")
    wb = hybridwb.connect(url, cwd=tmp_path, env={})
    exc = raised(lambda: wb.sql("SELECT 1"))
    assert isinstance(exc, ConnectionFailed) and exc.code == code
    assert str(exc) == (
        f"Cannot reach MySQL at {MYSQL_HOST}:1; is the server running? "
        "Check MYSQL_HOST and MYSQL_PORT."
    )
    text = all_renderings(exc)
    assert CANARY not in text and CANARY.split("#")[1] not in text
    assert "pymysql/connections.py" not in text


def test_failed_queries_store_no_canary(canary_account: str, tmp_path: Path) -> None:
    url = raw_url(canary_account, CANARY + "x")
    with hybridwb.connect(url, cwd=tmp_path, env={}) as wb:
        raised(lambda: wb.sql("SELECT 1"))
    with hybridwb.connect(cwd=tmp_path, env={}) as wb2:
        stored = wb2.store.sql("SELECT error_message FROM query_logs")
    assert len(stored) == 1  # the one failed query, logged
    assert all(CANARY not in str(v) for v in stored["error_message"])


@pytest.mark.parametrize(
    "raw",
    [
        f"mysql+pymysql://u:{CANARY}@h:notaport/db",
        f"mysql+pymysql://u:{CANARY}@h:99999999999/db",
        f"mysql+pymysql//u:{CANARY}@h/db",
    ],
    ids=["bad-port-after-password", "port-out-of-range", "no-scheme-separator"],
)
def test_an_unreadable_url_is_refused_without_repeating_it(raw: str, tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={"HYBRIDWB_SOURCE_URL": raw})
    del raw  # nothing in this frame may hold the canary when the error is formatted
    exc = raised(settings.source_sqlalchemy_url)
    assert isinstance(exc, ConfigError)
    text = all_renderings(exc)
    assert CANARY not in text and CANARY.split("#")[1] not in text
    assert "\n" not in str(exc) and "HYBRIDWB_SOURCE_URL" in str(exc)


def test_supabase_url_userinfo_and_keys_never_show(tmp_path: Path) -> None:
    env = {
        "SUPABASE_URL": f"https://svc:{CANARY}@x.supabase.co",
        "SUPABASE_ANON_KEY": CANARY + "anon",
    }
    wb = hybridwb.connect(cwd=tmp_path, env=env)
    for text in (repr(wb), wb.store_description, str(wb.settings.describe())):
        assert CANARY not in text and CANARY.split("#")[1] not in text
    assert_no_canary(wb.settings, "vars(wb.settings)")
    assert wb.settings.supabase_url == "https://svc@x.supabase.co"


def test_pymysql_really_has_the_password_in_its_locals(canary_account: str) -> None:
    """The oracle for the tests above: unscrubbed, a verbose traceback shows the password."""
    try:
        pymysql.connect(
            ssl_disabled=True,
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user=USER,
            password=CANARY + "x",
            database="x",
        )
    except pymysql.err.OperationalError as exc:
        text = "".join(
            traceback.TracebackException.from_exception(exc, capture_locals=True).format()
        )
    assert CANARY in text


def test_ipython_xmode_verbose_shows_no_canary(
    canary_account: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report's case: IPython's Verbose traceback prints every frame's variables."""
    from IPython.core.interactiveshell import InteractiveShell

    class VerboseShell(InteractiveShell):
        pass

    shell = VerboseShell()
    shell.run_line_magic("xmode", "Verbose")
    shell.user_ns["wb"] = connect_through("argument", canary_account, tmp_path, CANARY + "x")
    result = shell.run_cell("df = wb.sql('SELECT 1')")
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert isinstance(result.error_in_exec, ConnectionFailed)
    # the verbose frames were printed: the caller's, with its variables (the frames below
    # a public call are dropped from an expected error: round 30, test_attack_round30_error_frames)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "ConnectionFailed" in plain and "wb = Workbench(" in plain
    assert CANARY not in text and CANARY.split("#")[1] not in text
    shell.user_ns["wb"].close()


@pytest.mark.slow
def test_failed_workflow_run_leaks_no_canary_into_run_report_or_notebook(
    canary_account: str, tmp_path: Path, sample_db: Path
) -> None:
    """The report's repro: a password with an unencoded @ and #, a run that fails on it."""
    import shutil
    import sqlite3

    from hybridwb.demo import DEMO_WORKFLOW, ensure_workflow
    from tests.conftest import REPO

    (tmp_path / ".hybridwb").mkdir()
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    (tmp_path / "mappings").mkdir()
    shutil.copy(REPO / "mappings" / "table-mappings.json", tmp_path / "mappings")
    with hybridwb.connect(cwd=tmp_path, env={}) as setup:
        setup.store.init()
        ensure_workflow(setup)
    wb = connect_through("env-url", canary_account, tmp_path, password=CANARY + "x")
    final = wb.workflows.run(DEMO_WORKFLOW, progress=False)
    wb.close()
    assert final["status"] == "failed"
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as conn:
        stored = [str(r[0]) for r in conn.execute("SELECT error FROM workflow_runs")]
    report = Path(str(final["report_path"]))
    texts = [str(final), *stored, report.read_text(encoding="utf-8")]
    texts.append(report.with_suffix(".ipynb").read_text(encoding="utf-8"))
    for text in texts:
        assert CANARY not in text and CANARY.split("#")[1] not in text


# -- the engine path: pandas / jupysql on wb.source.engine ----------------------------------
CUSTOMER = "kim.canary.4711@example.com"


def whole_chain(exc: BaseException) -> list[BaseException]:
    """The error and everything chained to it (__cause__ and __context__)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        err = todo.pop()
        if any(err is f for f in found):
            continue
        found.append(err)
        todo += [e for e in (err.__cause__, err.__context__) if e is not None]
    return found


def engine_error(call: Callable[[], Any]) -> HybridwbError:
    try:
        call()
    except HybridwbError as exc:
        return exc
    except Exception as exc:  # the test says what came instead
        raise AssertionError(f"expected a HybridwbError, got {type(exc).__name__}") from None
    raise AssertionError("expected a HybridwbError")


def assert_clean_engine_error(exc: HybridwbError, *, customer: bool, server: bool = True) -> None:
    assert "\n" not in str(exc)
    assert exc.__cause__ is None and exc.__context__ is None, "a driver error is chained"
    assert whole_chain(exc) == [exc]
    if server:  # the server's (or driver's) error code and type are kept as fields
        assert exc.code is not None and exc.cause_type.startswith("pymysql.err.")
    frames = [f.f_code.co_filename for f, _ in traceback.walk_tb(exc.__traceback__)]
    assert not [f for f in frames if "pymysql" in f], "driver frames travel with the error"
    text = all_renderings(exc)  # every frame's locals, of the whole chain
    assert CANARY not in text and CANARY.split("#")[1] not in text
    if customer:
        # the caller's own frames hold the statement it passed; the error itself must not
        shown = str(exc) + repr(exc) + repr(exc.fields) + repr(exc.args)
        assert CUSTOMER not in shown


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        ("SELECT * FROM no_such_table WHERE email = %(e)s", {"e": CUSTOMER}),
        (f"SELECT no_such_column FROM customers WHERE email = '{CUSTOMER}'", None),
        # the server echoes `near 'NULLS LAST, email = '<value>''`
        (f"SELECT email FROM customers ORDER BY 1 NULLS LAST, email = '{CUSTOMER}'", None),
        ("SELECT email FROM customers ORDER BY 1 NULLS LAST, email = %(e)s", {"e": CUSTOMER}),
        # refused by the guard on the final text before the server sees it
        (f"SELECT * FROM customers WHERE email = '{CUSTOMER}' AND AND", None),
        ("SELECT * FROM customers WHERE email = %(e)s AND AND", {"e": CUSTOMER}),
    ],
    ids=[
        "unknown-table-bound",
        "unknown-column-literal",
        "server-echo-literal",
        "server-echo-bound",
        "syntax-literal",
        "syntax-bound",
    ],
)
def test_engine_path_errors_are_one_line_hybridwb_errors_with_no_chain(
    canary_account: str, tmp_path: Path, statement: str, params: dict | None
) -> None:
    import pandas as pd

    with connect_through("argument", canary_account, tmp_path) as wb:
        exc = engine_error(lambda: pd.read_sql(statement, wb.source.engine, params=params))
        assert_clean_engine_error(exc, customer=True, server="AND AND" not in statement)
        # the pool is still good afterwards
        assert pd.read_sql("SELECT 1 AS one", wb.source.engine)["one"][0] == 1


def test_engine_path_wrong_password_leaks_nothing_even_with_locals(
    canary_account: str, tmp_path: Path
) -> None:
    import pandas as pd

    wb = connect_through("argument", canary_account, tmp_path, password=CANARY + "x")
    exc = engine_error(lambda: pd.read_sql("SELECT 1", wb.source.engine))
    assert isinstance(exc, ConnectionFailed) and exc.code == 1045
    assert_clean_engine_error(exc, customer=False)
    assert wb.source.engine.url.password is None  # the password is not in the engine's URL
    wb.close()


def test_engine_path_connection_lost_mid_statement_is_dropped_from_the_pool(
    canary_account: str, tmp_path: Path
) -> None:
    """A statement whose connection dies gives a one-line error, and the dead connection is
    not handed out again (the oracle: the server's own CONNECTION_ID of the next query)."""
    import pandas as pd
    from sqlalchemy import event

    with connect_through("argument", canary_account, tmp_path) as wb:
        engine = wb.source.engine
        killed: list[int] = []

        def kill_own_connection(conn, cursor, statement, params, context, many):  # type: ignore[no-untyped-def]
            if killed or not statement.startswith("SELECT COUNT"):
                return
            cid = conn.connection.dbapi_connection.thread_id()
            admin = _admin()
            with admin.cursor() as cur:
                cur.execute("KILL CONNECTION %s", (cid,))
            admin.close()
            killed.append(cid)

        event.listen(engine, "before_cursor_execute", kill_own_connection)
        exc = engine_error(lambda: pd.read_sql("SELECT COUNT(*) FROM customers", engine))
        event.remove(engine, "before_cursor_execute", kill_own_connection)
        assert isinstance(exc, ConnectionFailed)
        assert_clean_engine_error(exc, customer=False)
        after = pd.read_sql("SELECT CONNECTION_ID() AS id", engine)["id"][0]
        assert after != killed[0]


def test_jupysql_on_the_engine_shows_no_customer_value_beyond_the_cell_itself(
    canary_account: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    from IPython.core.interactiveshell import InteractiveShell

    from hybridwb import magics

    pytest.importorskip("sql")
    shell = InteractiveShell.instance()
    try:
        wb = connect_through("argument", canary_account, tmp_path)
        magics.load(shell, wb)
        shell.run_cell("%load_ext sql")
        shell.run_cell("%sql mysql")
        capsys.readouterr()
        result = shell.run_cell(
            f"%sql SELECT email FROM customers ORDER BY 1 NULLS LAST, email = '{CUSTOMER}'"
        )
        printed = re.sub(r"\x1b\[[0-9;]*m", "", "".join(capsys.readouterr()))
        exc = result.error_in_exec
        assert isinstance(exc, HybridwbError)
        assert_clean_engine_error(exc, customer=True)
        # the cell's own source line is the user's text; nothing else may repeat the value
        others = [line for line in printed.splitlines() if "run_line_magic" not in line]
        assert CUSTOMER not in "\n".join(others)
        assert CANARY not in printed
        wb.close()
    finally:
        InteractiveShell.clear_instance()
