"""Every package hybridwb imports is declared in pyproject.toml; the base API needs no extra.

    python scripts/check_imports.py      # exit 1 and one line per problem

1. Each third-party module imported anywhere under hybridwb/ belongs to a distribution
   listed in `dependencies` or an extra.
2. The modules that `import hybridwb` (workbench, magics, CLI) loads and hybridwb imports
   directly belong to a distribution in the base `dependencies`.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_API = ("hybridwb", "hybridwb.workbench", "hybridwb.magics", "hybridwb.cli")


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    return base, base | extras


def imported_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "hybridwb").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "hybridwb"}


def loaded_by_base_api() -> set[str]:
    code = f"import sys, json\nfor m in {BASE_API!r}: __import__(m)\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return {m.split(".")[0] for m in json.loads(out.stdout)}


def problems() -> list[str]:
    base, everything = declared()
    dists = packages_distributions()
    found: list[str] = []
    loaded = loaded_by_base_api()
    for module in sorted(imported_modules()):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not names:
            found.append(f"{module}: imported but not installed, cannot tell its package")
        elif not names & everything:
            found.append(f"{module}: package {', '.join(sorted(names))} is not declared")
        elif module in loaded and not names & base:
            found.append(f"{module}: `import hybridwb` loads it, but it is only in an extra")
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
