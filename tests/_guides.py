"""How the guides run: one set-up shared by the strict nbval check (tests/test_guides.py)
and by `make guides` (scripts/regen_guides.py), which regenerates their committed outputs.

Both run the six guides in order, each in a fresh kernel started in notebooks/guides/, over
one project of their own: the seeded sample shop (2,000 customers), the repository's
sample mapping, a fresh store and reports directory. Whatever still varies between two runs
(run ids, timestamps, durations, paths, versions of the machine's SQLite, the store's
schema revision) is rewritten by tests/guides_sanitize.cfg, the same patterns nbval
applies when it compares; the committed outputs are stored already sanitized.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GUIDES = REPO / "notebooks" / "guides"
SANITIZE = REPO / "tests" / "guides_sanitize.cfg"
#: the size of the sample shop the guides' outputs were made on (conftest's sample_db)
SAMPLE_CUSTOMERS = 2000
#: the packages whose output the committed guides depend on: Faker draws the sample's
#: names, e-mails and cities; pandas prints the text tables; itables draws the grids
PINNED = ("Faker", "pandas", "itables")


def guides() -> list[Path]:
    return sorted(GUIDES.glob("*.ipynb"))


def project(root: Path, sample_db: Path | None, extra_env: dict[str, str]) -> dict[str, str]:
    """Lay out a project under `root` and return the environment the guides run in."""
    home = root / ".hybridwb"
    home.mkdir(parents=True, exist_ok=True)
    if sample_db is not None:
        (home / "sample.db").write_bytes(sample_db.read_bytes())
    mappings = root / "mappings" / "table-mappings.json"
    if not mappings.is_file():
        mappings.parent.mkdir(parents=True, exist_ok=True)
        mappings.write_bytes((REPO / "mappings" / "table-mappings.json").read_bytes())
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYBRIDWB_", "MYSQL_", "SUPABASE_", "NEXT_PUBLIC_SUPABASE_"))
    }
    env.update(
        HYBRIDWB_HOME=str(home),
        HYBRIDWB_MAPPINGS=str(mappings),
        HYBRIDWB_REPORTS=str(root / "reports"),
        HYBRIDWB_WORKFLOWS=str(REPO / "notebooks" / "workflows"),
        PYTHONHASHSEED="0",
        **extra_env,
    )
    return env


def patterns() -> list[tuple[str, str]]:
    """The sanitize file's (regex, replacement) pairs, read the way nbval reads them."""
    from nbval.plugin import get_sanitize_patterns

    return list(get_sanitize_patterns(SANITIZE.read_text(encoding="utf-8")))


def sanitize(text: str, rules: list[tuple[str, str]] | None = None) -> str:
    for regex, replacement in rules if rules is not None else patterns():
        text = re.sub(regex, replacement, text)
    return text


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in PINNED}


def recorded_versions(path: Path) -> dict[str, str]:
    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    return dict(meta.get("hybridwb", {}).get("outputs_made_with", {}))


def copy_cleared(guide: Path, dest: Path) -> Path:
    """A copy of a guide without its committed outputs: a browser test then sees only what
    its own run produced (the committed "완성도 100%" would otherwise pass for a new one)."""
    import nbformat

    nb = nbformat.read(guide, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, dest)
    return dest
