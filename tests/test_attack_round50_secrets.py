"""Attack round 50 on "secrets and customer values never appear in output, logs, reports,
notebooks, exceptions, tracebacks with locals, or reprs", on the code added since rounds
2, 3, 29 and 30: the Supabase REST store's error paths, the mysqlclient driver and its
checkin reset (COM_RESET_CONNECTION, `mysql_reset_connection`), the Arrow path
(`wb.sql(..., arrow=True)`), the run's clock pin (`SET STATEMENT timestamp = ... FOR`), the
preview's night-hold count and the saved query's determinism refusal.

Oracles are independent of the code under test: the customers' phones and e-mails read as
root with pymysql (or put in the source by the test), a canary password set on a scratch
MariaDB account, the store read with sqlite3 / psycopg, the log records a handler took,
the text a CLI printed, and every frame's locals of an error's traceback as
`traceback.TracebackException(capture_locals=True)` renders them (what IPython's
`%xmode Verbose` and rich's `show_locals` print).

BREAK 1 (fixed): an answer of the Supabase REST store that httpx could not read (a body
whose `Content-Encoding` lies, a proxy's truncated gzip: `httpx.DecodingError`; a redirect
loop: `TooManyRedirects`) is no `TransportError`, so it escaped `RestBackend._execute` as
httpx's own error. A public call drops the frames of a hybridwb error only: out of
`wb.workflows.process` came the raw `DecodingError` with every frame of the run, whose
locals held the batch's rows, phones and names, for a traceback printed with its locals.
Now every httpx error is a one-line `StoreError` (its type named, the request not kept).

BREAK 2 (fixed): Ctrl-C in a run (or in `wb.sql`, or between two pages of
`wb.targets.iter`) left the public call with every frame below it: the batch's phones and
names in a traceback printed with its locals. An interrupt now leaves a public call as an
expected error does (`validation.checked_call`, `_quiet`).

BREAK 3 (fixed): with SQLAlchemy's engine logging on (INFO, `echo=True`), a read on
`wb.source.engine` (pandas, jupysql) logged the statement with the bound phone pasted in:
the engine sends the final text the guard approved, which `hide_parameters` does not hide.
The engine logger now shows a statement with its literals as `?` (`masking._NoRows`).

BREAK 4 (fixed): `execution_options(skip_user_error_events=True)` made the engine raise the
driver's error raw for any statement: SQLAlchemy's `[SQL: ...]` showed the bound phone, or
the server's `Duplicate entry` a customer's phone. Raw now for SQLAlchemy's probes only.

Held (no break): mysqlclient with a canary password through connections killed in the pool
(the checkin reset read at checkout), the Arrow path's displays and errors, the clock pin's
query log, the CLI preview and the widget with their night-hold count, the determinism
refusal, REST runs keyed by the phone under each policy, the error-based read on every
read path, and `hybridwb run` on mysqlclient (notebook, report, every file).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx
from _postgrest import PostgrestBridge, migrated_database

import hybridwb
from hybridwb.errors import StoreError
from hybridwb.platform.rest_campaigns import RestCampaigns

BASE = "https://proj.supabase.co"
REST = f"{BASE}/rest/v1"
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.cjUwS2V5Q2FuYXJ5"
DAY = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 in Seoul
N = 12
MEMBERS_ROWS = [(f"m{i:03d}", f"회원오십{i}", f"010-5{i:03d}-{7000 + i:04d}") for i in range(N)]
MEMBERS = {
    "displayName": "회원",
    "key": "code",
    "recipient": "mobile",
    "channel": "sms",
    "audience": True,
    "fields": {
        "code": {"displayName": "번호", "type": "string", "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name", "pii": True},
        "mobile": {"displayName": "휴대폰", "type": "string", "role": "phone", "pii": True},
    },
}


def member_values() -> list[str]:
    """The members' names and phones, in every spelling a message or a record may hold."""
    out = []
    for _, name, phone in MEMBERS_ROWS:
        digits = phone.replace("-", "")
        out += [name, phone, digits, "+82" + digits[1:]]
    return out


def frames_shown(exc: BaseException, own: str = __file__) -> str:
    """What a traceback printed with every frame's locals shows of `exc` and its chain,
    the frames of the test module `own` left out (they hold the oracle's values)."""
    shown = traceback.TracebackException.from_exception(exc, capture_locals=True)
    out: list[str] = [str(exc), repr(exc)]
    seen: set[int] = set()
    todo = [shown]
    while todo:
        te = todo.pop()
        if id(te) in seen:
            continue
        seen.add(id(te))
        out += [str(te)]
        for frame in te.stack:
            if frame.filename != own:
                out.append(f"{frame.filename}:{frame.name} {frame.locals}")
        todo += [t for t in (te.__cause__, te.__context__) if t is not None]
    return "\n".join(out)


# -- BREAK 1: the REST store's answer that httpx cannot read -----------------------------------
@pytest.fixture
def rest_dsn() -> Iterator[str]:
    yield from migrated_database("hybridwb_r50rest")


@pytest.fixture
def members_source(tmp_path: Path) -> str:
    path = tmp_path / "members.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE members (code TEXT PRIMARY KEY, name TEXT, mobile TEXT)")
        conn.executemany("INSERT INTO members VALUES (?, ?, ?)", MEMBERS_ROWS)
    return f"sqlite:///{path}"


def _unreadable(request: httpx.Request) -> httpx.Response:
    """An answer whose body is not what its Content-Encoding says (a proxy's cut gzip)."""
    return httpx.Response(
        200,
        headers={"content-encoding": "gzip", "content-type": "application/json"},
        stream=httpx.ByteStream(b"\x1f\x8b not really gzip"),
    )


def _too_many_redirects(request: httpx.Request) -> httpx.Response:
    raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)


#: a member's phone as a request may carry it, never inside a hex id: `b"010-5" in body`
#: also matched a run row whose UUID held "…a010-5…" (a flake seen once in a full run)
_PHONE_IN_BODY = re.compile(rb"(?<![0-9A-Za-z])(?:010-5\d{3}-\d{4}|\+82105\d{7})(?![0-9])")


def _carries_a_phone(request: httpx.Request) -> bool:
    return _PHONE_IN_BODY.search(request.content or b"") is not None


@pytest.mark.postgres
@pytest.mark.parametrize(
    "answer", [_unreadable, _too_many_redirects], ids=["decoding", "redirects"]
)
def test_an_unreadable_rest_answer_in_a_run_is_one_line_with_no_phone_in_its_frames(
    rest_dsn: str, members_source: str, tmp_path: Path, answer: Callable[..., httpx.Response]
) -> None:
    """BREAK 1 (fixed): the run's first write that carries the members' phones to the REST
    store is answered with a body httpx cannot read (or a redirect loop). Before: the raw
    `httpx.DecodingError` / `TooManyRedirects` left `wb.workflows.process` with every frame
    of the run, whose locals held the members' phones and names."""
    bridge = PostgrestBridge(rest_dsn)
    broken: list[str] = []

    def post(request: httpx.Request) -> httpx.Response:
        if _carries_a_phone(request):
            broken.append(request.url.path)
            return answer(request)
        path = request.url.path.removeprefix("/rest/v1/")
        if path.startswith("rpc/"):
            return bridge.rpc(request, path.removeprefix("rpc/"))
        return bridge.table(request, path)

    with respx.mock(base_url=REST, assert_all_called=False) as router:
        router.post(url__regex=r"/rest/v1/").mock(side_effect=post)
        bridge.mount(router)
        wb = hybridwb.connect(
            source=members_source,
            cwd=tmp_path,
            env={"SUPABASE_URL": BASE, "SUPABASE_SERVICE_ROLE_KEY": KEY},
        )
        try:
            wb.mappings.save("members", MEMBERS)
            wf = wb.workflows.create(
                "r50-rest",
                target_config={"table": "members"},
                message_config={"content": "{{ 이름 }}님, 안내입니다."},
            )
            run = wb.store.runs.create(wf["id"], {})
            RestCampaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
            with pytest.raises(BaseException) as failed:
                wb.workflows.process(wf["id"], run["id"], progress=False, batch_size=5, now=DAY)
        finally:
            wb.close()
    assert broken, "no write carried a phone: the attack did not happen"
    error = failed.value
    shown = frames_shown(error)
    leaked = [v for v in member_values() if v in shown]
    assert not leaked, (type(error).__name__, leaked[:4])
    assert isinstance(error, StoreError), f"{type(error).__module__}.{type(error).__name__}"
    assert "could not be read" in str(error)
    assert KEY not in shown and "\n" not in str(error)


# -- BREAK 2: Ctrl-C in a run or a read --------------------------------------------------------
class _InterruptedPause:
    """`time` for the run's module, whose pause between batches is where Ctrl-C lands."""

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_in_a_run_leaves_no_phone_in_the_frames_it_shows(
    members_source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK 2 (fixed): Ctrl-C in a run (here in the pause after its first batch) raised
    KeyboardInterrupt out of `wb.workflows.process` with every frame of the run: a notebook
    with `%xmode Verbose` (or rich's `show_locals`) printed the locals of the batch loop,
    the batch's rows with their phones and names. An interrupt now leaves a public call as
    an expected error does: the frames below the call dropped."""
    from hybridwb.workflows import process as process_module

    with hybridwb.connect(
        source=members_source, store=f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path, env={}
    ) as wb:
        wb.store.init()
        wb.mappings.save("members", MEMBERS)
        wf = wb.workflows.create(
            "r50-ctrl-c",
            target_config={"table": "members"},
            message_config={"content": "{{ 이름 }}님, 안내입니다."},
        )
        run = wb.store.runs.create(wf["id"], {})
        from hybridwb.platform.campaigns import Campaigns

        Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
        monkeypatch.setattr(process_module, "time", _InterruptedPause())
        with pytest.raises(KeyboardInterrupt) as interrupted:
            wb.workflows.process(
                wf["id"], run["id"], progress=False, batch_size=5, batch_pause=0.5, now=DAY
            )
        monkeypatch.undo()
    with sqlite3.connect(tmp_path / "s.db") as conn:  # the interrupt came after a batch
        (sent,) = conn.execute("SELECT count(*) FROM send_records").fetchone()
    assert sent == 5
    shown = frames_shown(interrupted.value)
    leaked = [v for v in member_values() if v in shown]
    assert not leaked, leaked[:4]


# -- what held: the mysqlclient driver, its checkin reset, the Arrow path, the clock pin -------
from tests.conftest import _admin, install_sample_mappings, mariadb_maker  # noqa: E402

#: URL-special characters on purpose (`@`, `#`, `%`): the URL carries it percent-encoded
CANARY = f"r50C@n#ry%{uuid.uuid4().hex[:8]}"
CANARY_USER = f"hwb_r50_{uuid.uuid4().hex[:6]}"
SHOP_PEOPLE = [
    (i, f"고객오십{i:02d}", f"010-6{i:03d}-{8000 + i:04d}", f"r50.customer{i}@example.kr", i % 2, 1)
    for i in range(1, 13)
]
SHOP = {
    "displayName": "고객",
    "key": "customer_id",
    "audience": True,
    "recipient": "phone",
    "consent": "marketing_opt_in",
    "nightConsent": "night_opt_in",
    "fields": {
        "customer_id": {"displayName": "번호", "type": "number", "role": "id"},
        "name": {"displayName": "이름", "type": "string", "role": "name", "pii": True},
        "phone": {"displayName": "휴대폰", "type": "string", "role": "phone", "pii": True},
        "email": {"displayName": "메일", "type": "string", "role": "email", "pii": True},
        "marketing_opt_in": {"displayName": "수신", "type": "number", "role": "consent"},
        "night_opt_in": {"displayName": "야간", "type": "number", "role": "consent"},
    },
}


@pytest.fixture(scope="module")
def shop_db() -> Iterator[str]:
    """A MariaDB database of 13 customers (two share a phone: one of them refused) read by
    an account whose password is the canary; both dropped after the module."""
    made = mariadb_maker("hybridwb_r50")
    make = next(made)
    # customer 13 shares customer 5's phone and refused night-time ads: both are held
    people = [*SHOP_PEOPLE, (13, "고객오십13", SHOP_PEOPLE[4][2], "r50.shared@example.kr", 1, 0)]
    db = make(
        "CREATE TABLE customers (customer_id INT PRIMARY KEY, name VARCHAR(40), "
        "phone VARCHAR(20), email VARCHAR(80), marketing_opt_in TINYINT(1), "
        "night_opt_in TINYINT(1))",
        rows={"customers": people},
    )
    admin = _admin()
    with admin.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (CANARY_USER, CANARY))
        cur.execute(f"GRANT SELECT, SHOW VIEW ON `{db}`.* TO %s@'%%'", (CANARY_USER,))
    try:
        yield db
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (CANARY_USER,))
        admin.close()
        made.close()


def shop_values(db: str) -> list[str]:
    """The oracle: every phone, digits-only phone, e-mail and name, read as root."""
    conn = _admin()
    try:
        conn.select_db(db)
        with conn.cursor() as cur:
            cur.execute("SELECT phone, email, name FROM customers")
            rows = cur.fetchall()
    finally:
        conn.close()
    out = set()
    for phone, email, name in rows:
        out |= {phone, phone.replace("-", ""), "+82" + phone.replace("-", "")[1:], email, name}
    return sorted(out)


def secrets_in(text: str) -> list[str]:
    from urllib.parse import quote

    return [s for s in (CANARY, quote(CANARY, safe=""), CANARY.split("%")[1]) if s in text]


def shop_url(db: str, driver: str, password: str = CANARY, port: int = 3306) -> str:
    from urllib.parse import quote

    return f"mysql+{driver}://{CANARY_USER}:{quote(password, safe='')}@127.0.0.1:{port}/{db}"


def shop_wb(db: str, driver: str, root: Path) -> hybridwb.Workbench:
    from sqlalchemy.engine import make_url

    install_sample_mappings(root, make_url(shop_url(db, "pymysql")))  # stamps the source
    wb = hybridwb.connect(
        shop_url(db, driver), store=f"sqlite:///{root / 'store.db'}", cwd=root, env={}
    )
    wb.mappings.save("customers", SHOP)
    return wb


def kill_the_accounts_connections() -> int:
    """KILL, as root, every connection the canary account holds (idle in the pool, a SET
    sent at checkin waiting to be read)."""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE user = %s", (CANARY_USER,)
            )
            ids = [row[0] for row in cur.fetchall()]
            for pid in ids:
                cur.execute(f"KILL CONNECTION {int(pid)}")
    finally:
        conn.close()
    return len(ids)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with the traceback of exc_info, if any


@pytest.fixture
def debug_records() -> Iterator[_Records]:
    """Every log record of every logger at DEBUG, formatted as a handler prints it."""
    handler = _Records()
    root = logging.getLogger()
    was = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    names = ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "hybridwb", "httpx")
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(was)
        for name in names:
            logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_connections_killed_in_the_pool_are_replaced_and_logged_without_a_secret(
    shop_db: str, tmp_path: Path, driver: str, debug_records: _Records
) -> None:
    """Held: the checkin's reset and SET (sent ahead, read at the next checkout) on a
    connection the server killed meanwhile: the checkout reads the failure
    (`DisconnectionError`), the pool replaces the connection, the read succeeds; on both
    drivers, at DEBUG (SQLAlchemy's pool logs the disconnection, with its reason), no
    record holds the password or a customer value, and no repr or `vars` does."""
    values = shop_values(shop_db)
    phone = SHOP_PEOPLE[0][2]
    with shop_wb(shop_db, driver, tmp_path) as wb:
        for arrow in (False, True):
            shown = repr(wb.sql("SELECT name, phone, email FROM customers", arrow=arrow))
            assert not [v for v in values if v in shown]
        assert kill_the_accounts_connections() >= 1
        again = wb.sql("SELECT customer_id FROM customers WHERE phone = :p", {"p": phone})
        assert list(again["customer_id"]) == [1]
        assert kill_the_accounts_connections() >= 1
        import pandas as pd
        from sqlalchemy import text

        # the engine path (pandas, jupysql): reset after every statement on its connection
        with wb.source.engine.connect() as conn:
            got = pd.read_sql(
                text("SELECT customer_id FROM customers WHERE phone = :p"),
                conn,
                params={"p": phone},
            )
        assert list(got["customer_id"]) == [1]
        assert wb.source.clock() is not None  # the run's clock read, once more
        kept = [
            repr(wb),
            repr(wb.source),
            repr(wb.settings),
            str(vars(wb.source)),
            repr(wb.source.engine),
            str(wb.source.engine.url),
            wb.status_line(),
        ]
    logged = "\n".join(debug_records.lines)
    assert "checked out from pool" in logged or "Connection" in logged  # DEBUG was on
    assert not secrets_in(logged + "\n".join(kept))
    assert not [v for v in values if v in logged]


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_the_engines_statement_log_holds_no_bound_or_typed_value(
    shop_db: str, tmp_path: Path, driver: str, debug_records: _Records
) -> None:
    """BREAK 3 (fixed): a read on `wb.source.engine` (pandas, jupysql) with SQLAlchemy's
    engine logging on (`logging.basicConfig(level=logging.INFO)`, `echo=True`) logged the
    statement with the customer's phone in it: the engine sends the final text with the
    bound values pasted in (the guard checks what is sent), and `hide_parameters` hides
    only the parameters, of which there are then none. The statement is logged with its
    literals as `?` now, as the query log keeps it."""
    import pandas as pd
    from sqlalchemy import text

    phone, email = SHOP_PEOPLE[0][2], SHOP_PEOPLE[0][3]
    with shop_wb(shop_db, driver, tmp_path) as wb:
        got = pd.read_sql(
            text("SELECT customer_id FROM customers WHERE phone = :p"),
            wb.source.engine,
            params={"p": phone},
        )
        with wb.source.engine.connect() as conn:
            typed = conn.execute(
                text(f"SELECT customer_id FROM customers WHERE email = '{email}'")
            ).all()
    assert list(got["customer_id"]) == [1] and [tuple(r) for r in typed] == [(1,)]
    statements = [line for line in debug_records.lines if "FROM customers WHERE" in line]
    assert len(statements) >= 2, debug_records.lines[-10:]  # the statements were logged
    assert all("= ?" in line for line in statements), statements
    logged = "\n".join(debug_records.lines)
    assert not [v for v in shop_values(shop_db) if v in logged]


def shop_project(db: str, driver: str, root: Path) -> str:
    """The project's mapping file holding the shop's one table, stamped as its source's;
    returns the source URL (with the canary password) for the CLI's environment."""
    from sqlalchemy.engine import make_url

    from hybridwb.mapping.model import SOURCE_KEY

    path = install_sample_mappings(root, make_url(shop_url(db, "pymysql")))
    stamped = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(
        json.dumps({SOURCE_KEY: stamped[SOURCE_KEY], "customers": SHOP}, ensure_ascii=False),
        encoding="utf-8",
    )
    return shop_url(db, driver)


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_the_arrow_paths_frames_and_errors_show_no_customer_value(
    shop_db: str, tmp_path: Path, driver: str
) -> None:
    """Held: `wb.sql(..., arrow=True)` on both drivers (mysqlclient keeps numbers as the
    server's text, parsed by Arrow): every display of the frame (repr, str, the notebook's
    bundle, head) masks the phones, e-mails and names, under an alias and inside a JSON
    value too; a column Arrow cannot keep in one type is a one-line error whose frames
    (with their locals: the rows read) hold none of them, nor the password."""
    from IPython.core.interactiveshell import InteractiveShell

    values = shop_values(shop_db)
    with hybridwb.connect(shop_project(shop_db, driver, tmp_path), cwd=tmp_path, env={}) as wb:
        df = wb.sql(
            "SELECT customer_id, phone AS tel, email AS m, name AS n, "
            "JSON_OBJECT('p', phone) AS j FROM customers",
            arrow=True,
        )
        assert str(df["tel"].dtype) == "string[pyarrow]"
        assert set(df["tel"]) & set(values)  # the values are there, to be read explicitly
        shell = InteractiveShell()
        try:
            bundle = shell.display_formatter.format(df)[0]
        finally:
            InteractiveShell.clear_instance()
        shown = "\n".join([repr(df), str(df), repr(df.head()), *map(str, bundle.values())])
        assert not [v for v in values if v in shown]
        failed = None
        try:  # a DECIMAL past 38 digits in one row only: no one Arrow type for the column
            wb.sql(
                "SELECT phone, email, IF(customer_id = 1, CAST(1e60 AS DECIMAL(65,0)), "
                "CAST(1.5 AS DECIMAL(65,30))) AS d FROM customers",
                arrow=True,
            )
        except hybridwb.QueryError as exc:
            failed = exc
    assert failed is not None and "arrow=False" in str(failed)
    frames = frames_shown(failed)
    assert not [v for v in values if v in frames] and not secrets_in(frames)


@pytest.mark.mysql
def test_the_run_clocks_statements_keep_no_value_in_the_query_log(
    shop_db: str, tmp_path: Path
) -> None:
    """Held: a read as of the run's clock (`SET STATEMENT timestamp = ... FOR <text>` on
    MariaDB) of a statement holding a phone typed as a literal and an e-mail bound, and a
    failing one, are logged with their values as `?` (the store's `query_logs`, read with
    sqlite3); the error names neither."""
    phone, email = SHOP_PEOPLE[2][2], SHOP_PEOPLE[3][3]
    with shop_wb(shop_db, "pymysql", tmp_path) as wb:
        clock = wb.source.clock()
        assert clock is not None
        rows = wb.source.records(
            f"SELECT customer_id FROM customers WHERE phone = '{phone}' OR email = :e "
            "ORDER BY customer_id",
            {"e": email},
            as_of=clock,
        )
        assert [r["customer_id"] for r in rows] == [3, 4]
        with pytest.raises(hybridwb.QueryError) as failed:
            wb.source.records(
                f"SELECT nosuch FROM customers WHERE phone = '{phone}' OR email = :e",
                {"e": email},
                as_of=clock,
            )
    assert phone not in str(failed.value) and email not in str(failed.value)
    with sqlite3.connect(tmp_path / "store.db") as conn:
        logged = conn.execute("SELECT query, error_message FROM query_logs").fetchall()
    text = "\n".join(str(v) for row in logged for v in row)
    assert "customers WHERE phone = ?" in text  # the reads were logged
    assert not [v for v in shop_values(shop_db) if v in text]


@pytest.mark.mysql
@pytest.mark.parametrize("informational", [False, True], ids=["advertising", "informational"])
def test_the_cli_preview_with_its_night_hold_shows_no_customer_value(
    shop_db: str, tmp_path: Path, informational: bool
) -> None:
    """Held: `hybridwb targets preview` (the night-hold count of an advertisement, or why
    an informational message has none) on the shop read with the canary password: the
    output holds no phone, e-mail, name or the password; `--reveal` shows the sample."""
    from click.testing import CliRunner

    from hybridwb import cli

    url = shop_project(shop_db, "mysqldb", tmp_path)
    (tmp_path / "target.json").write_text(json.dumps({"table": "customers"}), encoding="utf-8")
    args = ["targets", "preview", "target.json"] + (["--informational"] if informational else [])
    runner = CliRunner()
    env = {"HYBRIDWB_SOURCE_URL": url}
    masked = runner.invoke(cli.main, args, env=env)
    revealed = runner.invoke(cli.main, [*args, "--reveal"], env=env)
    assert masked.exit_code == revealed.exit_code == 0, masked.output
    night = re.search(r"^night_hold\s+(\S+)", masked.output, re.M)
    assert night is not None, masked.output
    assert night.group(1) == ("None" if informational else "2")
    values = shop_values(shop_db)
    assert [v for v in values if v in revealed.output]  # the sample holds them
    assert not [v for v in values if v in masked.output]
    assert not secrets_in(masked.output + revealed.output)


@pytest.mark.mysql
def test_a_saved_query_refused_for_sampling_at_random_names_no_value(
    shop_db: str, tmp_path: Path
) -> None:
    """Held: the determinism refusal of a saved query (`ORDER BY RAND()`) holding a phone
    and an e-mail as literals names the call, not the query; nothing is saved."""
    phone, email = SHOP_PEOPLE[4][2], SHOP_PEOPLE[4][3]
    query = {
        "sql": f"SELECT customer_id, phone FROM customers WHERE phone <> '{phone}' "
        f"AND email <> '{email}' ORDER BY RAND() LIMIT 3"
    }
    with shop_wb(shop_db, "pymysql", tmp_path) as wb:
        for attempt in (
            lambda: wb.workflows.create(
                "r50-random", target_config=query, message_config={"content": "안내"}
            ),
            lambda: wb.targets.preview(query),
        ):
            with pytest.raises(hybridwb.HybridwbError) as refused:
                attempt()
            assert "RAND()" in str(refused.value)
            shown = frames_shown(refused.value)
            assert phone not in shown and email not in shown
    with sqlite3.connect(tmp_path / "store.db") as conn:
        assert conn.execute("SELECT count(*) FROM workflows").fetchone() == (0,)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "policy",
    [
        {"once_per_recipient": True},
        {"cooldown_days": 7},
        {"frequency_cap": {"messages": 1, "days": 30}},
    ],
    ids=["once", "cooldown", "cap"],
)
def test_a_rest_run_keyed_by_the_phone_logs_no_phone_in_its_requests(
    rest_dsn: str, tmp_path: Path, debug_records: _Records, policy: dict[str, Any]
) -> None:
    """Held: a whole run on the Supabase REST store of an audience keyed by the phone
    itself (the target key is the phone), run twice under each send policy (the second
    run reads the first's history): httpx logs every request's URL at INFO, and none holds
    a phone (in any spelling, percent-encoded too) or the key; the first run's records
    were written, the second run's excluded by the policy (read with psycopg)."""
    path = tmp_path / "by_phone.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE members (code TEXT, name TEXT, mobile TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO members VALUES (?, ?, ?)", MEMBERS_ROWS)
    bridge = PostgrestBridge(rest_dsn)
    with respx.mock(base_url=REST, assert_all_called=False) as router:
        bridge.mount(router)
        wb = hybridwb.connect(
            source=f"sqlite:///{path}",
            cwd=tmp_path,
            env={"SUPABASE_URL": BASE, "SUPABASE_SERVICE_ROLE_KEY": KEY},
        )
        try:
            wb.mappings.save("members", {**MEMBERS, "key": "mobile"})
            wf = wb.workflows.create(
                "r50-rest-by-phone",
                target_config={"table": "members"},
                message_config={"content": "{{ 이름 }}님, 안내입니다.", "policy": policy},
            )
            for _ in range(2):
                run = wb.store.runs.create(wf["id"], {})
                RestCampaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
                wb.workflows.process(wf["id"], run["id"], progress=False, batch_size=5, now=DAY)
        finally:
            wb.close()
    with psycopg.connect(rest_dsn, autocommit=True) as conn:
        (sent,) = conn.execute("SELECT count(*) FROM send_records").fetchone()  # type: ignore[misc]
        (held,) = conn.execute("SELECT count(*) FROM run_skips").fetchone()  # type: ignore[misc]
    assert (sent, held) == (N, N)
    requests = [line for line in debug_records.lines if "HTTP Request" in line]
    assert len(requests) > 10
    needles = [*member_values(), *(phone.replace("-", "")[1:] for *_, phone in MEMBERS_ROWS)]
    logged = "\n".join(debug_records.lines)
    assert not [v for v in needles if v in logged] and KEY not in logged


#: MariaDB's "Duplicate entry '<the first phone>1' for key 'group_key'": a server error that
#: quotes a value of the data (not of the statement)
DUPLICATE_ENTRY = (
    "SELECT COUNT(*), CONCAT((SELECT phone FROM customers ORDER BY customer_id LIMIT 1), "
    "FLOOR(RAND(0)*2)) AS x FROM customers GROUP BY x"
)


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize("path", ["wb.sql", "arrow", "as_of", "engine"])
def test_a_server_error_quoting_a_customer_value_is_redacted_on_every_read_path(
    shop_db: str, tmp_path: Path, driver: str, path: str, debug_records: _Records
) -> None:
    """Held: the error-based read (a duplicate group key quoting the first customer's
    phone) on each read path added since round 3 (Arrow, a read as of the run's clock,
    the engine that pandas uses) and on both drivers is one line without the phone, its
    frames and chain hold neither the phone nor the password, and no log record does."""
    import pandas as pd
    from sqlalchemy import text

    values = shop_values(shop_db)
    with shop_wb(shop_db, driver, tmp_path) as wb:
        reads: dict[str, Callable[[], Any]] = {
            "wb.sql": lambda: wb.sql(DUPLICATE_ENTRY),
            "arrow": lambda: wb.sql(DUPLICATE_ENTRY, arrow=True),
            "as_of": lambda: wb.source.records(DUPLICATE_ENTRY, as_of=wb.source.clock()),
            "engine": lambda: pd.read_sql(text(DUPLICATE_ENTRY), wb.source.engine),
        }
        with pytest.raises(hybridwb.HybridwbError) as failed:
            reads[path]()
        after = wb.sql("SELECT COUNT(*) AS n FROM customers")  # the connection still reads
    assert int(after["n"][0]) == 13
    assert "Duplicate entry" in str(failed.value) and "\n" not in str(failed.value)
    shown = frames_shown(failed.value) + "\n".join(debug_records.lines)
    assert not [v for v in values if v in shown] and not secrets_in(shown)


@pytest.mark.parametrize(
    ("statement", "shown"),
    [
        ("BEGIN (implicit)", "BEGIN (implicit)"),
        ("SELECT a FROM t WHERE b = :b", "SELECT a FROM t WHERE b = :b"),
        ("SELECT a FROM t WHERE p = '010-1234-5678'", "SELECT a FROM t WHERE p = ?"),
        ("SELECT `kim@example.com` FROM t", "SELECT ? FROM t"),
        ("SELECT a FROM t WHERE p = 1012345678", "SELECT a FROM t WHERE p = ?"),
        ("SELECT 'unclosed", "<a statement that cannot be read, not shown>"),
    ],
    ids=["no-literal", "bind", "text", "quoted-name", "number", "unreadable"],
)
def test_a_logged_statement_keeps_its_words_and_hides_its_values(
    statement: str, shown: str
) -> None:
    """The engine logger's rule (`querylog.literals_hidden`), on its own."""
    from hybridwb.source.querylog import literals_hidden

    assert literals_hidden(statement) == shown


@pytest.mark.mysql
@pytest.mark.slow
def test_a_cli_run_on_mysqlclient_leaves_no_secret_or_value_in_its_files(
    shop_db: str, tmp_path: Path
) -> None:
    """Held: `hybridwb run` (papermill, a kernel of its own given the settings through its
    environment) on the shop read by mysqlclient with the canary password, each read as of
    the run's clock: the executed notebook, its HTML report, every other file the run left
    and the command's output hold no password and no customer value; the store (read with
    sqlite3) holds no password, and its records were written."""
    import os
    import subprocess
    import sys

    url = shop_project(shop_db, "mysqldb", tmp_path)
    with hybridwb.connect(url, cwd=tmp_path, env={}) as wb:
        wb.store.init()
        wb.workflows.create(
            "r50-run",
            target_config={"table": "customers"},
            message_config={"content": "{{ 이름 }}님, {{ 휴대폰 }} 번호로 안내드립니다."},
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "HYBRIDWB_"))}
    env["HYBRIDWB_SOURCE_URL"] = url
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "hybridwb"),
            "run",
            "r50-run",
            "--now",
            "2026-03-02T12:00:00+09:00",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    values = shop_values(shop_db)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    reports = [p for p in files if p.suffix in (".ipynb", ".html")]
    assert len(reports) >= 2, files
    leaks: dict[str, list[str]] = {}
    for path in files:
        raw = path.read_bytes().decode("utf-8", "replace")
        found = secrets_in(raw)
        if path.suffix != ".db":  # the store keeps the recipients and messages it sent
            found += [v for v in values if v in raw]
        if found:
            leaks[str(path.relative_to(tmp_path))] = found[:3]
    assert not leaks
    shown = done.stdout + done.stderr
    assert not secrets_in(shown) and not [v for v in values if v in shown]
    with sqlite3.connect(tmp_path / ".hybridwb" / "platform.db") as conn:
        (sent,) = conn.execute("SELECT count(*) FROM send_records").fetchone()
    assert sent > 0  # (those who said no to marketing are left out by the target)


@pytest.mark.mysql
def test_the_target_preview_widgets_night_row_shows_no_customer_value(
    shop_db: str, tmp_path: Path
) -> None:
    """Held: the target preview widget's exclusions with their night-hold row, its quality
    table, sample, count and SQL, on the shop read by mysqlclient: no phone, e-mail or name
    is drawn."""
    from hybridwb import widgets
    from hybridwb.widgets._targets import NIGHT_AT_SEND

    with hybridwb.connect(shop_project(shop_db, "mysqldb", tmp_path), cwd=tmp_path, env={}) as wb:
        widget = widgets.target_preview(wb, {"table": "customers"})
        widget.run_button.click()
        parts = ("sample", "quality", "exclusions", "count", "sql")
        shown = {part: getattr(widget.panel, part).value for part in parts}
    assert "<td" in shown["sample"] and NIGHT_AT_SEND.split(",")[0] in shown["exclusions"]
    assert widget.panel.excluded[NIGHT_AT_SEND] == 2  # customers 5 and 13 (their one phone)
    text = "\n".join(shown.values())
    assert not [v for v in shop_values(shop_db) if v in text] and not secrets_in(text)


@pytest.mark.mysql
@pytest.mark.parametrize("where", ["wb.sql", "wb.targets.iter"])
def test_ctrl_c_in_a_read_or_an_iteration_leaves_no_value_in_the_frames_it_shows(
    shop_db: str, tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAK 2 (fixed), on the reads: Ctrl-C once `wb.sql` has the rows (while its frame
    is built), and between two pages of `wb.targets.iter` (the first page in the
    iteration's locals), leaves no customer value in the frames it shows."""
    from hybridwb.source import source as source_module
    from hybridwb.targets.service import TargetService

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    pages = TargetService._page
    calls: list[int] = []

    def second_page_interrupted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return pages(self, *args, **kwargs)

    with shop_wb(shop_db, "pymysql", tmp_path) as wb:
        if where == "wb.sql":
            monkeypatch.setattr(source_module, "frame_of", interrupted)
            with pytest.raises(KeyboardInterrupt) as stopped:
                wb.sql("SELECT name, phone, email FROM customers")
        else:
            monkeypatch.setattr(TargetService, "_page", second_page_interrupted)
            seen = 0
            with pytest.raises(KeyboardInterrupt) as stopped:
                for batch in wb.targets.iter({"table": "customers"}, 3):
                    seen += len(batch)
            del batch  # this caller's own local: the page it was given
            assert seen == 3
        monkeypatch.undo()
    shown = frames_shown(stopped.value)
    assert not [v for v in shop_values(shop_db) if v in shown]


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
@pytest.mark.parametrize("statement", ["bound", "duplicate-entry"])
def test_skip_user_error_events_leaves_no_value_in_the_engines_error(
    shop_db: str, tmp_path: Path, driver: str, statement: str
) -> None:
    """BREAK 4 (fixed): SQLAlchemy's execution option `skip_user_error_events` (its own
    probes' way to read a driver error: DESCRIBE, SHOW CREATE TABLE) made the engine raise
    the driver's error as it was, which SQLAlchemy wraps with `[SQL: <the text sent>]`:
    the bound phone pasted into it (`hide_parameters` hides only parameters), or the
    server's `Duplicate entry '<the first customer's phone>1'`. The driver's error is now
    left raw for SQLAlchemy's probes only; SQLAlchemy's own reflection still works.
    (`inspect(wb.source.engine).has_table('no_such_table')` raises a QueryError instead
    of answering False, on `main` too: not a secret, left as found.)"""
    from sqlalchemy import inspect, text

    phone = SHOP_PEOPLE[0][2]
    sql, params = {
        "bound": (
            "SELECT customer_id FROM customers WHERE phone = :p AND nosuch = 1",
            {"p": phone},
        ),
        "duplicate-entry": (DUPLICATE_ENTRY, {}),
    }[statement]
    with shop_wb(shop_db, driver, tmp_path) as wb:
        with wb.source.engine.connect() as conn:
            probe = conn.execution_options(skip_user_error_events=True)
            with pytest.raises(Exception) as failed:
                probe.execute(text(sql), params)
        inspector = inspect(wb.source.engine)
        assert [c["name"] for c in inspector.get_columns("customers")][:2] == [
            "customer_id",
            "name",
        ]
    error = failed.value
    assert isinstance(error, hybridwb.HybridwbError) and "\n" not in str(error)
    chain = [error, error.__cause__, error.__context__]
    said = "\n".join(f"{e!s} {e!r}" for e in chain if e is not None)
    # the frames' locals hold the caller's own parameters (SQLAlchemy's and pandas' frames
    # are no call of hybridwb's); a value of the data must not be in them either
    shown = said if statement == "bound" else frames_shown(error)
    assert not [v for v in shop_values(shop_db) if v in shown] and not secrets_in(shown)
