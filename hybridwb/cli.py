"""The `hybridwb` command: gathers arguments, makes one workbench call, prints the result."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

import hybridwb
from hybridwb.errors import HybridwbError


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
    info = hybridwb.connect().test_connection()
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
    report = hybridwb.connect().store.init()
    click.echo(
        f"store schema {report['from'] or 'none'} -> {report['to']} on {report['backend']}; "
        f"{report['seeded']} seed rows added"
    )


@main.command()
@click.option("--customers", default=10_000, show_default=True, help="Sample shop size.")
@friendly
def demo(customers: int) -> None:
    """Build the embedded sample shop and run the main job on it."""
    from hybridwb.demo import run_demo

    run_demo(customers, echo=click.echo)


if __name__ == "__main__":  # pragma: no cover
    main()
