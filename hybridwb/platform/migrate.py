"""Schema migrations with alembic, driven programmatically (no alembic.ini to find)."""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(url: str = "postgresql://", output: io.StringIO | None = None) -> Config:
    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def head() -> str:
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection) -> tuple[str | None, str]:
    """Bring the schema to head on this connection; returns (before, after)."""
    before = current(conn)
    cfg = _config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
    return before, head()


def sql_script(dialect: str = "postgresql") -> str:
    """The SQL of every migration, for teams that apply it with Supabase's own tooling."""
    out = io.StringIO()
    command.upgrade(_config(f"{dialect}://", out), "head", sql=True)
    return out.getvalue()
