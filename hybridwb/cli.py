"""The `hybridwb` command: gathers arguments, makes one workbench call, prints the result."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

import hybridwb
from hybridwb.errors import HybridwbError
from hybridwb.extras import require
from hybridwb.limits import MAX_SAMPLE_CUSTOMERS


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Expected errors become one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HybridwbError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(hybridwb.__version__, prog_name="hybridwb")
def main() -> None:
    """hybridwb: a Jupyter workbench over a read-only production MySQL and a Supabase store."""


@main.command("test-connection")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly
def test_connection(as_json: bool) -> None:
    """Reach the source and report flavour, latency, read-only state and grants."""
    with hybridwb.connect() as wb:
        info = wb.test_connection()
    if as_json:
        click.echo(json.dumps(info.as_dict(), ensure_ascii=False, default=str))
    else:
        for key, value in info.as_dict().items():
            click.echo(f"{key:18} {value}")
    if info.status != "ok":
        sys.exit(1)


@main.command()
@click.option(
    "--sql", "as_sql", is_flag=True, help="Print the Postgres SQL instead of applying it."
)
@friendly
def init(as_sql: bool) -> None:
    """Create or upgrade the platform store's schema and seed data (idempotent)."""
    if as_sql:
        from hybridwb.platform.migrate import sql_script

        click.echo(sql_script())
        return
    with hybridwb.connect() as wb:
        report = wb.store.init()
    click.echo(
        f"store schema {report['from'] or 'none'} -> {report['to']} on {report['backend']}; "
        f"{report['seeded']} seed rows added"
    )


@main.command()
@click.option(
    "--customers",
    default=10_000,
    show_default=True,
    type=click.IntRange(1, MAX_SAMPLE_CUSTOMERS),
    help="Sample shop size.",
)
@friendly
def demo(customers: int) -> None:
    """Build the embedded sample shop and run the main job on it."""
    from hybridwb.demo import run_demo

    if customers <= 0:
        raise click.BadParameter("must be a positive number of customers", param_hint="--customers")
    for module in ("faker", "papermill", "ipykernel"):
        require(module, "hybridwb demo")
    with run_demo(customers, echo=click.echo):
        pass


@main.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--print-only", is_flag=True, help="Print the command and its set-up instead of starting it."
)
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
@friendly
def lab(print_only: bool, jupyter_args: tuple[str, ...]) -> None:
    """Open JupyterLab on the project, with the hybridwb extension loaded in every kernel."""
    require("jupyterlab", "hybridwb lab")
    with hybridwb.connect() as wb:  # builds the embedded sample when it is the source
        root = wb.settings.project_root
        ipython_dir = wb.settings.home / "ipython"
    profile = ipython_dir / "profile_default"
    try:
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "ipython_config.py").write_text(
            "# written by `hybridwb lab`: every kernel of this lab loads hybridwb\n"
            "c.InteractiveShellApp.extensions = ['hybridwb']\n",
            encoding="utf-8",
        )
    except OSError as exc:
        raise click.ClickException(
            f"Cannot write {profile} ({exc.strerror}); check its permissions."
        ) from None
    env = {**os.environ, "IPYTHONDIR": str(ipython_dir), "HYBRIDWB_HOME": str(root)}
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", *jupyter_args]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in command:
        command.append("--allow-root")  # containers often run as root; JupyterLab refuses it
    if print_only:
        click.echo(" ".join(command))
        click.echo(f"IPYTHONDIR={ipython_dir}")
        click.echo(f"HYBRIDWB_HOME={root}")
        return
    import subprocess

    sys.exit(subprocess.run(command, env=env, check=False).returncode)


@main.command()
@click.argument("table")
@click.argument("term")
@click.option("--limit", default=20, show_default=True, help="Rows per page.")
@click.option("--page", default=None, help="The page token printed by the previous page.")
@click.option("--allow-scan", is_flag=True, help="Run predicates that would scan a large table.")
@click.option("--reveal", is_flag=True, help="Show personal data (fields marked pii) unmasked.")
@friendly
def search(
    table: str, term: str, limit: int, page: str | None, allow_scan: bool, reveal: bool
) -> None:
    """Search TABLE (name or display name) for TERM: ids, phones, emails, name prefixes."""
    from hybridwb.render import field_index, text_table

    with hybridwb.connect() as wb:
        result = wb.search(table, term, limit=limit, page=page, allow_scan=allow_scan)
        tables = wb.mappings.tables()
        fields = field_index(tables, result.table, wb.mappings.resolver.foreign_relations(tables))
    labels = {name: f.displayName for name, f in fields.items()}
    shown = text_table(result.raw_rows, fields, reveal=reveal, labels=labels)
    click.echo(shown if len(result) else "no matches")
    click.echo(
        f"-- {len(result)} rows, {result.meta['elapsed_ms']:.1f} ms, predicates: {', '.join(result.meta['predicates']) or '-'}"
    )
    if result.next_page:
        click.echo(f"-- next page: --page {result.next_page}")


@main.command()
@click.argument("workflow", required=False)
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A notebook parameter (NAME a Python identifier, VALUE JSON or text).",
)
@click.option("--dry-run", is_flag=True, help="Render and report; write no send records.")
@click.option("--limit", type=int, default=None, help="At most this many targets.")
@click.option(
    "--resume", "resume", default=None, metavar="RUN_ID", help="Continue a failed or stale run."
)
@click.option("--due", is_flag=True, help="Run every scheduled workflow whose time has come.")
@click.option(
    "--now",
    "now",
    default=None,
    metavar="ISO_TIME",
    help="Decide quiet hours and policy windows as of this time (default: the clock); "
    "a time without a UTC offset is Asia/Seoul time.",
)
@friendly
def run(
    workflow: str | None,
    parameters: tuple[tuple[str, str], ...],
    dry_run: bool,
    limit: int | None,
    resume: str | None,
    due: bool,
    now: str | None,
) -> None:
    """Run WORKFLOW's notebook with papermill (or --resume RUN_ID, or --due).

    Exit status 0 only when the run succeeded (or waits for 08:00 KST); a run that sent
    nothing, failed or was refused exits 1 with the reason."""
    from hybridwb.platform.campaigns import this_owner

    at = _parse_time(now)
    with _workbench() as wb:
        if due:
            runs = wb.workflows.run_due(owner=this_owner(), now=at)
            for r in runs:
                click.echo(f"{r['status']:10} run {r['id']}  report {r.get('report_path')}")
            for problem in wb.workflows.last_problems:
                click.echo(f"problem: {problem}", err=True)
            if not runs and not wb.workflows.last_problems:
                click.echo("nothing is due")
            if wb.workflows.last_problems or any(r["status"] not in OK_STATUSES for r in runs):
                sys.exit(1)
            return
        if not workflow and not resume:
            raise click.UsageError("Name a WORKFLOW, or use --resume RUN_ID or --due.")
        params = {name: _parse_value(value) for name, value in parameters}
        final = wb.workflows.run(
            workflow, params, dry_run=dry_run, limit=limit, resume=resume, now=at
        )
    click.echo(
        f"run {final['id']}: {final['status']} · targets {final.get('target_count', 0):,} · "
        f"records {final.get('sent_count', 0):,} · excluded {final.get('skipped_count', 0):,}"
    )
    click.echo(f"report: {final.get('report_path')}")
    from hybridwb.workflows.report import excluded_note

    note = excluded_note(final)
    if note:
        click.echo(f"warning: {note}", err=True)
    if final.get("report_error"):
        click.echo(f"warning: {final['report_error']}", err=True)
    if final["status"] not in OK_STATUSES:
        click.echo(f"{final['status']}: {final.get('error')}", err=True)
        if final["status"] != "empty":
            click.echo(f"resume with: hybridwb run --resume {final['id']}", err=True)
        sys.exit(1)
    if final["status"] == "waiting":
        click.echo(f"waiting: {final.get('error')}")


OK_STATUSES = ("succeeded", "waiting")


def _workbench() -> Any:
    """The workbench as a context manager (closed, so the query log reaches the store)."""
    from contextlib import closing

    return closing(hybridwb.connect())


def _parse_time(value: str | None) -> Any:
    from hybridwb.workflows.clock import parse_now

    try:
        return parse_now(value)  # the one parser: a time without an offset is Seoul time
    except HybridwbError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None


def _interval(value: float) -> float:
    """A finite interval the scheduler can sleep: no busy loop, no NaN, no forever."""
    if not 0.1 <= value <= 86_400:  # False for NaN too
        raise click.BadParameter(f"{value:g} is not from 0.1 to 86400 seconds.")
    return value


def _parse_value(value: str) -> Any:
    """-p values are JSON when they parse as JSON (numbers, true, null), else text."""
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # not JSON, a number of over 4,300 digits, too deep
        return value


@main.command()
@click.option(
    "--interval",
    default=30.0,
    show_default=True,
    callback=lambda _ctx, _param, value: _interval(value),
    help="Seconds between checks (0.1 to 86400).",
)
@click.option("--once", is_flag=True, help="Check once and exit (what cron does).")
@friendly
def schedule(interval: float, once: bool) -> None:
    """A long-running scheduler: runs due workflows, once per scheduled time.

    A bad schedule row or a failing workflow is reported and skipped; the scheduler goes on."""
    import time

    from hybridwb.platform.campaigns import this_owner

    owner = this_owner()
    click.echo(f"scheduler {owner} checking every {interval:g} s (Ctrl-C stops)")
    with _workbench() as wb:
        try:
            while True:
                try:
                    for r in wb.workflows.run_due(owner=owner):
                        click.echo(f"{r['status']:10} run {r['id']}  report {r.get('report_path')}")
                    for problem in wb.workflows.last_problems:
                        click.echo(f"problem: {problem}", err=True)
                except hybridwb.HybridwbError as exc:  # the store is down: try again next time
                    click.echo(f"problem: {exc}", err=True)
                if once:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            click.echo("scheduler stopped")


@main.command()
def doctor() -> None:
    """Check configuration, both connections, the read-only guarantee, schema, RLS, drift, runs."""
    from hybridwb.observability import run_doctor

    try:
        wb = hybridwb.connect()
    except hybridwb.HybridwbError as exc:
        click.echo(f"FAIL  configuration    {exc}")
        sys.exit(1)
    with wb:
        report = run_doctor(wb)
    click.echo(report.render())
    if report.failed:
        sys.exit(1)


@main.command()
@click.option(
    "--out",
    "out",
    default="reports/stats.html",
    show_default=True,
    help="Where to write the HTML page.",
)
@friendly
def stats(out: str) -> None:
    """Query success rate, latency, errors, slowest queries and runs per day, as HTML."""
    from pathlib import Path

    from hybridwb.observability import collect, render_html

    with hybridwb.connect() as wb:
        wb.querylog.flush()  # this process's own queries count too
        collected = collect(wb)
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(collected), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(
            f"Cannot write {path} ({exc.strerror}); choose another --out."
        ) from None
    rate = "—" if collected.success_rate is None else f"{collected.success_rate:.2%}"
    avg = "—" if collected.avg_ms is None else f"{collected.avg_ms:.1f} ms"
    click.echo(f"{collected.queries:,} queries · success {rate} · average {avg} → {path}")


@main.group()
def targets() -> None:
    """Target definitions: preview."""


@targets.command("preview")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reveal", is_flag=True, help="Show personal data (fields marked pii) unmasked.")
@click.option(
    "--informational",
    is_flag=True,
    help="The message is informational: no night holds (counted for an advertisement).",
)
@friendly
def targets_preview(file: str, reveal: bool, informational: bool) -> None:
    """Count, sample and quality statistics for the definition in FILE (JSON)."""
    from pathlib import Path

    try:
        text = Path(file).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text; save it as UTF-8.") from None
    from hybridwb.render import all_fields, text_table, with_pii

    with hybridwb.connect() as wb:
        preview = wb.targets.preview(text, advertising=not informational)
        fields = with_pii(all_fields(wb.mappings.tables()), preview.pii)
    click.echo(f"targets: {preview.count_text}")
    click.echo(text_table(preview.sample, fields, reveal=reveal))
    for key, value in preview.quality.items():
        click.echo(f"{key:22} {value}")


@main.group()
def mappings() -> None:
    """Table mappings: discover, suggest, show, check, delete, schema."""


@mappings.command("discover")
@friendly
def mappings_discover() -> None:
    """List the source's tables with row estimates, keys and indexes."""
    for info in hybridwb.connect().mappings.discover():
        kind = "view" if info.is_view else "table"
        click.echo(
            f"{info.name:30} {kind:5} ~{info.rows_estimate or 0:>10,} rows  "
            f"pk={','.join(info.primary_key) or '-'}  indexed={','.join(sorted(info.indexed_leading_columns())) or '-'}"
        )


@mappings.command("suggest")
@click.argument("table")
@click.option("--save", is_flag=True, help="Save the suggestion to the mapping file.")
@friendly
def mappings_suggest(table: str, save: bool) -> None:
    """Suggest a mapping for TABLE (types, roles, display names, PII, relations)."""
    wb = hybridwb.connect()
    mapping = wb.mappings.suggest(table)
    click.echo(
        json.dumps(
            {table: mapping.model_dump(mode="json", exclude_defaults=True)},
            ensure_ascii=False,
            indent=2,
        )
    )
    if save:
        wb.mappings.save(table, mapping)
        click.echo(f"saved to {wb.mappings.path}")


@mappings.command("show")
@click.argument("table", required=False)
@friendly
def mappings_show(table: str | None) -> None:
    """Show the mapping file (or one TABLE)."""
    wb = hybridwb.connect()
    data = wb.mappings.load().dump()
    if table:
        name, _ = wb.mappings.resolve(table)
        data = {name: data[name]}
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@mappings.command("check")
@friendly
def mappings_check() -> None:
    """Compare the mappings with the live schema; exit 1 on errors."""
    findings = hybridwb.connect().mappings.check()
    for finding in findings:
        click.echo(f"{finding.severity.upper():7} {finding.message}")
    if not findings:
        click.echo("OK      mappings match the live schema")
    if any(f.severity == "error" for f in findings):
        sys.exit(1)


@mappings.command("delete")
@click.argument("table")
@friendly
def mappings_delete(table: str) -> None:
    """Delete the mapping of TABLE (for this source only)."""
    wb = hybridwb.connect()
    name, _ = wb.mappings.resolve(table)
    wb.mappings.delete(name)
    click.echo(f"deleted the mapping of {name} from {wb.mappings.path}")


@mappings.command("schema")
def mappings_schema() -> None:
    """Print the JSON Schema of table-mappings.json."""
    from hybridwb.mapping.model import json_schema

    click.echo(json.dumps(json_schema(), ensure_ascii=False, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
