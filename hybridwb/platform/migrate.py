"""Schema migrations with alembic, driven programmatically (no alembic.ini to find).

Only `hybridwb init` (`Store.init`) migrates, and the embedded SQLite store once, when its
file is created. Opening a store only compares `alembic_version` with `head_revision()`,
which reads the revision ids from the migration files without importing alembic.
"""

from __future__ import annotations

import ast
import functools
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(url: str = "postgresql://", output: io.StringIO | None = None) -> Any:
    from alembic.config import Config

    cfg = Config(output_buffer=output) if output is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _assigned(path: Path, name: str) -> str | None:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return value if isinstance(value, str) else None
    return None


@functools.cache
def head_revision() -> str:
    """The newest revision, from the `revision`/`down_revision` of each migration file
    (read once per process: every store opened compares its schema with it)."""
    revisions: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        revision = _assigned(path, "revision")
        if revision:
            revisions[revision] = _assigned(path, "down_revision")
    heads = set(revisions) - set(revisions.values())
    if len(heads) != 1:  # pragma: no cover - a broken migration chain is a packaging bug
        raise RuntimeError(f"migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def head() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config()).get_current_head())


def current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection) -> tuple[str | None, str]:
    """Bring the schema to head on this connection; returns (before, after)."""
    from alembic import command

    before = current(conn)
    cfg = _config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
    return before, head()


def sql_script(dialect: str = "postgresql") -> str:
    """The SQL of every migration, for teams that apply it with Supabase's own tooling."""
    from alembic import command

    out = io.StringIO()
    command.upgrade(_config(f"{dialect}://", out), "head", sql=True)
    return out.getvalue()
