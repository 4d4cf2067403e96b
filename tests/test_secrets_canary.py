"""Canary secrets with password authentication really on.

A private MariaDB account and a private PostgreSQL role (scram-sha-256) carry canary
passwords; canary Supabase keys ride along. The canaries are set through every
configuration route, every CLI command runs (the command list comes from `--help`, so a
new command fails here until it is covered; the commands that read or hand on the settings run
in every route, each other command in one route), error paths run with wrong passwords and
unreachable servers, a workflow runs, DEBUG logging is captured — and every output, every
file under the project and every store table is searched for the canaries and for
customer phone numbers and e-mail addresses. A hit is a leak.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

import hybridwb
from tests._servers import free_port
from tests.conftest import MYSQL_CANARY, PG_CANARY, PRIVATE_RO_USER, install_sample_mappings

pytestmark = [pytest.mark.secrets, pytest.mark.slow]

HYBRIDWB = str(Path(sys.executable).parent / "hybridwb")
KEY_CANARY = "sbServiceKeyCanary3J7mQ"
ANON_CANARY = "sbAnonKeyCanary8N2rT"
WRONG_CANARY = "wrongPwCanary5H1kL"
CANARIES = (MYSQL_CANARY, PG_CANARY, KEY_CANARY, ANON_CANARY, WRONG_CANARY)
WORKFLOW = "canary-campaign"
TEMPLATE = "카나리 안내"

#: every CLI command (as `--help` names it), with arguments that make it do real work
CLI_CASES: list[tuple[str, list[str]]] = [
    ("demo", ["demo", "--customers", "200"]),
    ("doctor", ["doctor"]),
    ("init", ["init"]),
    ("mappings check", ["mappings", "check"]),
    ("mappings discover", ["mappings", "discover"]),
    ("mappings schema", ["mappings", "schema"]),
    ("mappings show", ["mappings", "show"]),
    ("mappings suggest", ["mappings", "suggest", "customers"]),
    ("run", ["run", WORKFLOW, "--limit", "20"]),
    ("run", ["run", "--resume", "00000000-0000-0000-0000-000000000000"]),
    ("schedule", ["schedule", "--once"]),
    ("search", ["search", "customers", "{phone}"]),
    ("search", ["search", "customers", "{email}"]),
    ("stats", ["stats"]),
    ("targets preview", ["targets", "preview", "target.json"]),
    ("test-connection", ["test-connection"]),
    ("lab", ["lab", "--help"]),  # starts a JupyterLab server: only its help runs here
    ("mappings delete", ["mappings", "delete", "customers"]),  # last: the others need it
]


def _cli_commands() -> set[str]:
    """Every command and sub-command the CLI lists in its --help."""
    from hybridwb.cli import main

    names: set[str] = set()
    for name, cmd in main.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        if subs:
            names.update(f"{name} {sub}" for sub in subs)
        else:
            names.add(name)
    return names


def test_every_cli_command_is_covered_by_the_canary_run() -> None:
    missing = _cli_commands() - {name for name, _ in CLI_CASES}
    assert not missing, f"add these commands to CLI_CASES: {sorted(missing)}"


# -- the search ------------------------------------------------------------------------------
@dataclass
class Needles:
    """What must never appear: the canaries and customer phone/e-mail values."""

    secrets: tuple[str, ...] = CANARIES
    customers: set[str] = field(default_factory=set)

    def hits(self, text: str, *, customers: bool = True) -> list[str]:
        found = [f"secret {s[:6]}…" for s in self.secrets if s in text]
        if customers and self.customers:
            found += [f"customer value {v[:4]}…" for v in self.customers if v in text]
        return found


def _customer_values(mariadb) -> set[str]:  # type: ignore[no-untyped-def]
    conn = mariadb.admin("shop")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT phone, email FROM customers")
            values: set[str] = set()
            for phone, email in cur.fetchall():
                if phone:
                    values.add(phone)
                    values.add(re.sub(r"\D", "", phone))
                if email:
                    values.add(email)
    finally:
        conn.close()
    return {v for v in values if len(v) >= 8}


def _project_files(root: Path, config_files: set[Path]) -> Iterator[tuple[Path, str]]:
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path in config_files:
            continue
        if path.suffix in (".db", ".sqlite") or "sample" in path.name:
            continue  # the embedded sample shop holds customer values by design
        yield path, path.read_text(encoding="utf-8", errors="replace")


def _store_dump(server, database: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every row of every store table as JSON; send_records' recipient/content are the
    message itself and hold customer values by design, so only they are left out."""
    out: dict[str, str] = {}
    with psycopg.connect(
        host="127.0.0.1", port=server.port, user="postgres", dbname=database, autocommit=True
    ) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        for table in tables:
            rows = conn.execute(
                sql.SQL("SELECT to_jsonb(t) - 'recipient' - 'content' FROM {} t").format(
                    sql.Identifier(table)
                )
            ).fetchall()
            out[table] = json.dumps([r[0] for r in rows], ensure_ascii=False, default=str)
    return out


# -- the project ------------------------------------------------------------------------------
@dataclass
class CanaryProject:
    root: Path
    env: dict[str, str]
    config_files: set[Path]
    source_url: str
    store_url: str
    store_db: str


def _write_route(
    root: Path, route: str, values: dict[str, str]
) -> tuple[dict[str, str], set[Path]]:
    """Configuration through one route; returns the extra environment and config files."""
    if route == "env":
        return values, set()
    if route == "dotenv":
        (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        return {}, {root / ".env"}
    if route == "pyproject":
        names = {
            "HYBRIDWB_SOURCE_URL": "source_url",
            "HYBRIDWB_STORE_URL": "store_url",
            "SUPABASE_SERVICE_ROLE_KEY": "supabase_service_role_key",
            "SUPABASE_ANON_KEY": "supabase_anon_key",
            "MYSQL_HOST": "mysql_host",
            "MYSQL_PORT": "mysql_port",
            "MYSQL_READ_USER": "mysql_user",
            "MYSQL_READ_PASSWORD": "mysql_password",
            "MYSQL_DATABASE": "mysql_database",
        }
        body = "".join(f"{names[k]} = {json.dumps(v)}\n" for k, v in values.items())
        (root / "pyproject.toml").write_text(f"[tool.hybridwb]\n{body}")
        return {}, {root / "pyproject.toml"}
    raise AssertionError(route)


def _prepare(root: Path, mariadb=None) -> None:  # type: ignore[no-untyped-def]
    """The sample mappings stamped for the private MariaDB's `shop` (a source's mappings
    belong to that source)."""
    url = mariadb.url(PRIVATE_RO_USER, MYSQL_CANARY, "shop") if mariadb is not None else None
    install_sample_mappings(root, url)
    (root / "target.json").write_text(
        json.dumps(
            {"table": "customers", "where": {"field": "grade", "op": "in", "value": ["VIP"]}}
        )
    )


@pytest.fixture
def needles(private_mariadb) -> Needles:  # type: ignore[no-untyped-def]
    private_mariadb.start()
    return Needles(customers=_customer_values(private_mariadb))


def _project(
    tmp_path: Path, route: str, mariadb, store: URL, *, fields: bool = False
) -> CanaryProject:  # type: ignore[no-untyped-def]
    _prepare(tmp_path, mariadb)
    source = mariadb.url(PRIVATE_RO_USER, MYSQL_CANARY, "shop").render_as_string(
        hide_password=False
    )
    store_url = store.render_as_string(hide_password=False)
    values = {
        "HYBRIDWB_STORE_URL": store_url,
        "SUPABASE_SERVICE_ROLE_KEY": KEY_CANARY,
        "SUPABASE_ANON_KEY": ANON_CANARY,
    }
    if fields:
        values |= {
            "MYSQL_HOST": "127.0.0.1",
            "MYSQL_PORT": str(mariadb.port),
            "MYSQL_READ_USER": PRIVATE_RO_USER,
            "MYSQL_READ_PASSWORD": MYSQL_CANARY,
            "MYSQL_DATABASE": "shop",
        }
    else:
        values["HYBRIDWB_SOURCE_URL"] = source
    extra, files = _write_route(tmp_path, route, values)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRIDWB_", "MYSQL_", "SUPABASE_"))
    }
    env.update(extra)
    return CanaryProject(tmp_path, env, files, source, store_url, str(store.database))


def _cli(project: CanaryProject, argv: list[str], timeout: float = 300) -> str:
    done = subprocess.run(
        [HYBRIDWB, *argv],
        capture_output=True,
        text=True,
        env=project.env,
        cwd=project.root,
        timeout=timeout,
    )
    return f"$ hybridwb {' '.join(argv)} (exit {done.returncode})\n{done.stdout}{done.stderr}"


def _seed_workflow(project: CanaryProject) -> None:
    wb = hybridwb.connect(source=project.source_url, store=project.store_url, cwd=project.root)
    try:
        wb.templates.create(TEMPLATE, "#{고객명}님 안녕하세요.", message_type="SMS")
        wb.workflows.create(
            WORKFLOW,
            target_config={
                "table": "customers",
                "where": {"field": "grade", "op": "in", "value": ["VIP"]},
            },
            message_config={"template": TEMPLATE, "mode": "strict"},
        )
    finally:
        wb.close()


def _report(leaks: dict[str, list[str]]) -> str:
    return "\n".join(f"{where}: {', '.join(sorted(set(hits)))}" for where, hits in leaks.items())


#: the configuration routes the canaries travel by (`_write_route`), with the MySQL settings
#: as one URL or as separate fields
ROUTES = [("env", False), ("dotenv", False), ("pyproject", False), ("env", True)]
#: commands that read the settings or hand them on (the run's kernel gets them through its
#: environment): these run in every route; each other command runs in one route, in turn
EVERY_ROUTE = frozenset({"init", "doctor", "test-connection", "run"})


def _cases_for(route_index: int) -> list[tuple[str, list[str]]]:
    """The CLI cases one route runs: the settings readers, and every ROUTES-th other command."""
    return [
        (name, argv)
        for position, (name, argv) in enumerate(CLI_CASES)
        if name in EVERY_ROUTE or position % len(ROUTES) == route_index
    ]


def test_every_cli_command_runs_in_some_route_and_settings_readers_in_all() -> None:
    covered = [name for index in range(len(ROUTES)) for name, _ in _cases_for(index)]
    assert {name for name, _ in CLI_CASES} == set(covered)
    for reader in EVERY_ROUTE:
        assert covered.count(reader) >= len(ROUTES)


@pytest.mark.parametrize(
    ("route", "fields"),
    ROUTES,
    ids=["env-urls", "dotenv-urls", "pyproject-urls", "env-mysql-fields"],
)
@pytest.mark.timeout(1200)  # every CLI command in a subprocess: ~200 s on a loaded 2-core box
def test_no_cli_command_leaks_a_canary_or_a_customer_value(
    tmp_path: Path,
    private_mariadb,
    private_pg,
    private_store: URL,
    needles: Needles,
    route: str,
    fields: bool,
) -> None:  # type: ignore[no-untyped-def]
    project = _project(tmp_path, route, private_mariadb, private_store, fields=fields)
    init = _cli(project, ["init"])
    assert "(exit 0)" in init, init
    _seed_workflow(project)
    phone, email = _one_customer(private_mariadb)
    leaks: dict[str, list[str]] = {}
    for name, template in _cases_for(ROUTES.index((route, fields))):
        argv = [a.format(phone=phone, email=email) for a in template]
        out = _cli(project, argv)
        if name == "search":  # the command line itself shows what the user typed
            out = out.replace(" ".join(argv), "")
        if hits := needles.hits(out):
            leaks[f"`hybridwb {' '.join(argv)}` output"] = hits
    for path, text in _project_files(project.root, project.config_files):
        hits = needles.hits(text)
        if hits:
            leaks[str(path.relative_to(project.root))] = hits
    for table, text in _store_dump(private_pg, project.store_db).items():
        hits = needles.hits(text)
        if hits:
            leaks[f"store table {table}"] = hits
    assert not leaks, "leaks:\n" + _report(leaks)


def _one_customer(mariadb) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    conn = mariadb.admin("shop")
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT phone, email FROM customers WHERE phone LIKE '010-%%' AND email IS NOT NULL "
                "ORDER BY customer_id LIMIT 1"
            )
            phone, email = cur.fetchone()
    finally:
        conn.close()
    return str(phone), str(email)


# -- error paths -----------------------------------------------------------------------------
def _bad_sources(mariadb) -> dict[str, str]:  # type: ignore[no-untyped-def]
    closed = free_port()
    return {
        "wrong-password": mariadb.url(PRIVATE_RO_USER, WRONG_CANARY, "shop").render_as_string(
            hide_password=False
        ),
        "unreachable": URL.create(
            "mysql+pymysql",
            username=PRIVATE_RO_USER,
            password=MYSQL_CANARY,
            host="127.0.0.1",
            port=closed,
            database="shop",
        ).render_as_string(hide_password=False),
        "special-chars": f"mysql+pymysql://{PRIVATE_RO_USER}:{WRONG_CANARY}@x#y@127.0.0.1:{mariadb.port}/shop",
        # the password pasted as the database name too: every place that names the
        # database (reprs, doctor, test-connection, the query log) must scrub it
        "password-as-database": mariadb.url(
            PRIVATE_RO_USER, MYSQL_CANARY, MYSQL_CANARY
        ).render_as_string(hide_password=False),
    }


def _bad_stores(pg) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "store-wrong-password": pg.url(
            "hwb_canary_store", WRONG_CANARY, "postgres"
        ).render_as_string(hide_password=False),
        # the password pasted as the database name too: the server's refusal names it
        "store-password-as-database": pg.url(
            "hwb_canary_store", WRONG_CANARY, WRONG_CANARY
        ).render_as_string(hide_password=False),
        "store-unreachable": URL.create(
            "postgresql+psycopg",
            username="hwb_canary_store",
            password=PG_CANARY,
            host="127.0.0.1",
            port=free_port(),
            database="x",
        ).render_as_string(hide_password=False),
    }


def _frame_leaks(exc: BaseException, needles: Needles) -> dict[str, list[str]]:
    """What a Sentry-style reporter or `%xmode Verbose` prints: every frame's locals, of the
    error and of every chained cause, except the test's own frame (it holds the canaries)."""
    leaks: dict[str, list[str]] = {}
    seen: set[int] = set()
    todo: list[tuple[BaseException, bool]] = [(exc, True)]
    while todo:
        err, own = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        tb = err.__traceback__.tb_next if own and err.__traceback__ else err.__traceback__
        for frame, line in traceback.walk_tb(tb):
            for name, value in frame.f_locals.items():
                try:
                    text = repr(value)
                except Exception:
                    continue
                # a value the caller passed in sits in the caller-facing frames by nature;
                # customer values count only in chained (driver) frames, secrets everywhere
                if hits := needles.hits(text, customers=not own):
                    where = f"{type(err).__name__} frame {frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{line}) local {name!r}"
                    leaks[where] = hits
        hits = needles.hits(str(err)) + needles.hits(repr(err))
        if hits:
            leaks[f"message of {type(err).__name__}"] = hits
        for chained in (err.__cause__, err.__context__):
            if chained is not None:
                todo.append((chained, False))
    return leaks


@pytest.mark.parametrize(
    "case", ["wrong-password", "unreachable", "special-chars", "password-as-database"]
)
def test_source_errors_leak_no_password_anywhere(
    tmp_path: Path, private_mariadb, private_store: URL, case: str
) -> None:  # type: ignore[no-untyped-def]
    _prepare(tmp_path, private_mariadb)
    source = _bad_sources(private_mariadb)[case]
    store = private_store.render_as_string(hide_password=False)
    leaks: dict[str, list[str]] = {}
    needles = Needles()
    try:
        wb = hybridwb.connect(source=source, store=store)
        try:
            wb.sql("SELECT 1")
        finally:
            wb.close()
    except hybridwb.HybridwbError as exc:
        leaks |= _frame_leaks(exc, needles)
    else:
        pytest.fail("a bad source did not raise a HybridwbError")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRIDWB_", "MYSQL_", "SUPABASE_"))
    }
    env |= {"HYBRIDWB_SOURCE_URL": source, "HYBRIDWB_STORE_URL": store}
    for argv in (
        ["doctor"],
        ["test-connection"],
        ["search", "customers", "x"],
        ["mappings", "discover"],
    ):
        done = subprocess.run(
            [HYBRIDWB, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )
        assert done.returncode != 0, f"`hybridwb {argv[0]}` exits 0 on a {case} source"
        if hits := needles.hits(done.stdout + done.stderr):
            leaks[f"`hybridwb {' '.join(argv)}`"] = hits
    assert not leaks, "leaks:\n" + _report(leaks)


def test_a_password_pasted_as_the_database_name_is_scrubbed_from_the_refusal(
    tmp_path: Path, private_mariadb
) -> None:  # type: ignore[no-untyped-def]
    """The route where only the scrubber (`config.scrub`) stands between a secret and the
    output: the password pasted as the database name as well. The server's refusal names
    the database and hybridwb's one-line message names it too (`Database … does not
    exist`), unquoted, so the rule for server text does not remove it; the scrubber must.
    (`test_source_errors_leak_no_password_anywhere[password-as-database]` follows the same
    password into reprs, frames and CLI output.)"""
    private_mariadb.start()
    _prepare(tmp_path)
    source = private_mariadb.url(PRIVATE_RO_USER, MYSQL_CANARY, MYSQL_CANARY)
    wb = hybridwb.connect(source=source.render_as_string(hide_password=False))
    try:
        with pytest.raises(hybridwb.HybridwbError) as caught:
            wb.sql("SELECT 1")
        shown = {
            "error": str(caught.value),
            "test_connection": str(wb.test_connection().error),
            "status line": wb.status_line(),
        }
        shown["query log"] = " ".join(f"{e.database} {e.errorMessage}" for e in wb.querylog.entries)
    finally:
        wb.close()
    leaks = {where: hits for where, text in shown.items() if (hits := Needles().hits(text))}
    assert not leaks, "leaks:\n" + _report(leaks)
    assert "***" in shown["error"], shown["error"]  # the refusal did name the database


@pytest.mark.parametrize(
    "case", ["store-wrong-password", "store-password-as-database", "store-unreachable"]
)
def test_store_errors_leak_no_password_anywhere(tmp_path: Path, private_pg, case: str) -> None:  # type: ignore[no-untyped-def]
    _prepare(tmp_path)
    private_pg.start()
    store = _bad_stores(private_pg)[case]
    needles = Needles()
    leaks: dict[str, list[str]] = {}
    try:
        wb = hybridwb.connect(store=store)
        try:
            wb.store.workflows.list()
        finally:
            wb.close()
    except hybridwb.HybridwbError as exc:
        leaks |= _frame_leaks(exc, needles)
    else:
        pytest.fail("a bad store did not raise a HybridwbError")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRIDWB_", "MYSQL_", "SUPABASE_"))
    }
    env["HYBRIDWB_STORE_URL"] = store
    for argv in (["doctor"], ["init"], ["stats"]):
        done = subprocess.run(
            [HYBRIDWB, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )
        assert done.returncode != 0, f"`hybridwb {argv[0]}` exits 0 on a {case}"
        if hits := needles.hits(done.stdout + done.stderr):
            leaks[f"`hybridwb {' '.join(argv)}`"] = hits
    assert not leaks, "leaks:\n" + _report(leaks)


# -- the API, objects and DEBUG logs -------------------------------------------------------
def test_api_objects_and_debug_logs_leak_nothing(
    tmp_path: Path, private_mariadb, private_pg, private_store: URL, needles: Needles
) -> None:  # type: ignore[no-untyped-def]
    _prepare(tmp_path, private_mariadb)
    source = private_mariadb.url(PRIVATE_RO_USER, MYSQL_CANARY, "shop").render_as_string(
        hide_password=False
    )
    store = private_store.render_as_string(hide_password=False)
    phone, email = _one_customer(private_mariadb)
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    logging.basicConfig(level=logging.DEBUG, stream=buffer, force=True)
    leaks: dict[str, list[str]] = {}
    try:
        wb = hybridwb.connect(
            source=source,
            store=store,
            supabase_service_role_key=KEY_CANARY,
            supabase_anon_key=ANON_CANARY,
        )
        try:
            wb.store.init()
            wb.sql("SELECT customer_id FROM customers WHERE phone = :p", {"p": phone})
            wb.search("customers", email)
            for bad in (
                "SELECT * FROM customers WHERE email = :e AND no_such_column = 1",
                f"SELECT * FROM customers WHERE phone = '{phone}' AND no_such_column = 1",
            ):
                try:
                    wb.sql(bad, {"e": email})
                except hybridwb.HybridwbError as exc:
                    leaks |= _frame_leaks(exc, needles)
            objects = {
                "repr(wb)": repr(wb),
                "repr(wb.source)": repr(wb.source),
                "vars(wb.source)": repr(vars(wb.source)),
                "repr(wb.settings)": repr(wb.settings),
                "str(wb.settings)": str(wb.settings),
                "vars(wb.store)": repr(vars(wb.store)),
                "vars(wb.store.backend)": repr(vars(getattr(wb.store, "backend", object()))),
                "status_line": wb.status_line(),
            }
            for where, text in objects.items():
                if hits := needles.hits(text):
                    leaks[where] = hits
        finally:
            wb.close()
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
    if hits := needles.hits(buffer.getvalue()):
        leaks["DEBUG log"] = hits
    for table, text in _store_dump(private_pg, str(private_store.database)).items():
        if hits := needles.hits(text):
            leaks[f"store table {table}"] = hits
    assert not leaks, "leaks:\n" + _report(leaks)
