"""`hybridwb doctor`: each part of the set-up checked, OK / WARN / FAIL with what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hybridwb.errors import HybridwbError
from hybridwb.source.catalogue import server_text

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", None, "")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    message: str
    fix: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, message: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, message, fix))

    @property
    def failed(self) -> bool:
        return any(c.status == "FAIL" for c in self.checks)

    def status_of(self, name: str) -> str:
        return next(c.status for c in self.checks if c.name == name)

    def render(self) -> str:
        lines = []
        for c in self.checks:
            line = f"{c.status:4}  {c.name:16} {c.message}"
            if c.fix and c.status != "OK":
                line += f" → {c.fix}"
            lines.append(line)
        return "\n".join(lines)


def run_doctor(wb: Workbench) -> Report:
    """Never raises: every problem becomes a line (an unexpected one names its section)."""
    report = Report()
    for section in (_configuration, _budget, _source, _store, _mappings, _runs, _schedules):
        try:
            section(wb, report)
        except HybridwbError as exc:
            report.add(section.__name__.strip("_"), "FAIL", str(exc).splitlines()[0])
        except Exception as exc:  # doctor is where a broken set-up is diagnosed: keep going
            scrubbed = server_text(wb.settings.secret_values().scrub(str(exc)))
            report.add(
                section.__name__.strip("_"),
                "FAIL",
                f"{type(exc).__name__}: {scrubbed}",
                "this is a hybridwb bug; please report it with this line",
            )
    return report


def _configuration(wb: Workbench, report: Report) -> None:
    settings = wb.settings
    described = settings.describe()
    origins = sorted({v.rsplit("(", 1)[-1].rstrip(")") for v in described.values()})
    report.add("configuration", "OK", f"{len(described)} settings from {', '.join(origins)}")
    report.add("project", "OK", f"{settings.project_root}")
    for key in ("source_url", "mysql_host", "store_url", "supabase_url", "supabase_db_url"):
        if key in described:
            report.add("configuration", "OK", f"{key} = {described[key]}")


def _budget(wb: Workbench, report: Report) -> None:
    s = wb.settings
    line = (
        f"at most {s.connection_budget} source connections per process "
        f"(source_pool_size {s.source_pool_size} + source_max_overflow {s.source_max_overflow}); "
        "N processes hold up to N x that"
    )
    if s.source_is_sample:
        report.add("connection budget", "OK", line)
        return
    try:
        allowed = int(wb.source.records("SELECT @@max_connections AS m", limit=1)[0]["m"])
    except (HybridwbError, KeyError, IndexError, TypeError, ValueError):
        report.add("connection budget", "OK", line)
        return
    fits = allowed // s.connection_budget
    status = "OK" if fits >= 2 else "WARN"
    report.add(
        "connection budget",
        status,
        f"{line}; the server allows {allowed}, room for {fits} such processes",
        "lower HYBRIDWB_POOL_SIZE / HYBRIDWB_MAX_OVERFLOW",
    )


def _source(wb: Workbench, report: Report) -> None:
    info = wb.test_connection()
    if info.status != "ok":
        report.add(
            "source",
            "FAIL",
            info.error or "unreachable",
            "check MYSQL_HOST/MYSQL_PORT and that the server runs",
        )
        return
    report.add(
        "source", "OK", f"{info.flavour} {info.version} reachable in {info.latency_ms:.0f} ms"
    )
    if info.read_only:
        report.add("read-only session", "OK", "every session is READ ONLY")
    else:
        report.add(
            "read-only session",
            "FAIL",
            "the session can write",
            "report this: hybridwb sets READ ONLY on every connection",
        )
    if info.flavour == "SQLite":
        report.add("account grants", "OK", "embedded sample (opened read-only by the file system)")
        return
    if info.can_write:
        report.add(
            "account grants",
            "FAIL",
            f"the account holds more than SELECT/SHOW VIEW: {'; '.join(info.write_privileges)}",
            "run: " + "; ".join(info.revokes),
        )
    else:
        report.add("account grants", "OK", "SELECT / SHOW VIEW only (roles included)")
    host = wb.source.url.host
    if info.ssl:
        report.add("ssl", "OK", "connection encrypted")
    elif host in LOCAL_HOSTS:
        report.add("ssl", "OK", f"not encrypted, but {host} is this machine")
    else:
        report.add(
            "ssl",
            "WARN",
            f"connection to {host} is not encrypted",
            "set MYSQL_SSL_MODE=REQUIRED (and MYSQL_SSL_CA)",
        )
    if info.statement_timeout and info.statement_timeout > 0:
        report.add("statement limit", "OK", f"{info.statement_timeout:g} s on the server")
    else:
        report.add(
            "statement limit",
            "WARN",
            "no server-side statement limit",
            "the server ignored it; check max_statement_time support",
        )


def _store(wb: Workbench, report: Report) -> None:
    try:
        store = wb.store
        store.workflows.list(limit=1)
    except HybridwbError as exc:
        report.add(
            "store",
            "FAIL",
            str(exc),
            "check HYBRIDWB_STORE_URL / SUPABASE_DB_URL, then run hybridwb init",
        )
        return
    report.add("store", "OK", f"{wb.store_description} reachable")
    if not store.is_sql:
        report.add("schema", "OK", "Supabase REST: schema checked only by use")
        return
    from hybridwb.platform import migrate

    try:
        version = store.schema_version()
    except HybridwbError as exc:
        report.add("schema", "FAIL", str(exc))
        return
    if version == migrate.head():
        report.add("schema", "OK", f"version {version}")
    else:
        report.add(
            "schema",
            "WARN",
            f"version {version or 'none'}, newest {migrate.head()}",
            "run hybridwb init",
        )
    if store.backend.name == "postgresql":
        df = store.sql(
            "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relrowsecurity AND c.relname <> 'alembic_version'"
        )
        if len(df):
            report.add(
                "row level security",
                "WARN",
                f"off on {', '.join(df['name'])}",
                "run hybridwb init (migration 0002 enables it)",
            )
        else:
            report.add("row level security", "OK", "on for every table")


def _mappings(wb: Workbench, report: Report) -> None:
    try:
        findings = wb.mappings.check()
    except HybridwbError as exc:
        report.add("mappings", "WARN", str(exc), "fix mappings/table-mappings.json")
        return
    errors = [f for f in findings if f.severity == "error"]
    changed = [f for f in findings if f.severity == "warning"]
    if errors:
        report.add(
            "mapping drift",
            "WARN",
            "; ".join(f.message for f in errors[:3]),
            "hybridwb mappings check",
        )
    elif changed:
        report.add(
            "mapping drift",
            "WARN",
            "; ".join(f.message for f in changed[:3]),
            "update the field types",
        )
    else:
        report.add(
            "mapping drift",
            "OK",
            f"{len(wb.mappings.tables())} mapped tables match the live schema",
        )


def _runs(wb: Workbench, report: Report) -> None:
    try:
        runs = wb.store.runs.list(limit=5)
    except HybridwbError:
        return
    try:  # runs whose heartbeat stopped (a killed `hybridwb run`, a store outage)
        from hybridwb.workflows.runner import stale_runs

        for run in stale_runs(wb.store):
            report.add(
                "stale run",
                "FAIL",
                f"run {run['id']} is {run['status']} but its heartbeat stopped",
                f"hybridwb run --resume {run['id']}",
            )
    except HybridwbError as exc:
        report.add("stale run", "WARN", f"could not check run heartbeats: {exc}")
    if not runs:
        report.add("last runs", "OK", "no workflow runs yet")
        return
    outcomes = ", ".join(r["status"] for r in runs)
    if runs[0]["status"] == "failed":
        report.add(
            "last runs",
            "WARN",
            f"latest run failed: {runs[0].get('error')}",
            f"hybridwb run --resume {runs[0]['id']}",
        )
    else:
        report.add("last runs", "OK", f"latest first: {outcomes}")


def _schedules(wb: Workbench, report: Report) -> None:
    """Active scheduled workflows whose saved schedule can no longer run (a cron that never
    fires, an unknown time zone: rows written before validation, or by hand). `run --due`
    and the scheduler skip them and say so; doctor says so before anyone waits."""
    import importlib.util

    try:
        workflows = wb.store.workflows.list()
    except HybridwbError:
        return  # the store section has said why
    scheduled = [
        wf
        for wf in workflows
        if wf.get("trigger_type") == "schedule" and wf.get("status") == "active"
    ]
    if not scheduled:
        return
    if importlib.util.find_spec("croniter") is None:
        report.add(
            "schedules",
            "WARN",
            f"{len(scheduled)} scheduled workflows, but croniter is not installed",
            "pip install 'hybridwb[workflows]'",
        )
        return
    from hybridwb.workflows.scheduler import due

    problems = due(scheduled).problems
    for problem in problems:
        report.add(
            "schedule",
            "FAIL",
            problem,
            "save the workflow with a valid schedule_config (cron, timezone)",
        )
    if not problems:
        report.add("schedules", "OK", f"{len(scheduled)} scheduled workflows can run")
