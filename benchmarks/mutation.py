"""Mutation testing of the modules that carry guarantees (`make mutation`, not `make test`).

For each module, a copy of the working tree is mutated by mutmut (never this checkout: an
interrupted run must not leave a mutant behind), the module's fast tests run against every
mutant, and the score goes to benchmarks/results/mutation.json together with the surviving
mutants' diffs. A surviving mutant needs a test or a written reason.

    python benchmarks/mutation.py                 # every module
    python benchmarks/mutation.py guard binds     # some
    MUTATION_BUDGET=600 python benchmarks/mutation.py guard   # seconds per module

A module that runs out of budget is recorded as partial (untested mutants counted).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "mutation.json"

#: module -> (file to mutate, the fast test files that cover it); the tests run with
#: FAST (no server tiers) so that each mutant costs seconds
MODULES: dict[str, tuple[str, list[str]]] = {
    "guard": ("hybridwb/source/guard.py", ["tests/test_guard.py", "tests/test_readonly_grants.py"]),
    "binds": ("hybridwb/source/binds.py", ["tests/test_source_sample.py"]),
    "grants": ("hybridwb/source/grants.py", ["tests/test_readonly_grants.py"]),
    "targets.definition": ("hybridwb/targets/definition.py", ["tests/test_search.py"]),
    "templating.parse": ("hybridwb/templating/parse.py", ["tests/test_templating.py"]),
    "templating.matching": ("hybridwb/templating/matching.py", ["tests/test_templating.py"]),
    "workflows.config": ("hybridwb/workflows/config.py", ["tests/test_workflows.py"]),
}
FAST = "not mysql and not postgres and not slow and not browser and not faults and not secrets"
GOAL = 0.90
IGNORED = shutil.ignore_patterns(
    ".venv",
    ".git",
    ".mutmut-cache",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "reports",
    ".hybridwb",
    "node_modules",
)


def _copy_tree() -> Path:
    work = Path(tempfile.mkdtemp(prefix="hwb-mutation-"))
    shutil.copytree(REPO, work / "repo", ignore=IGNORED)
    return work / "repo"


def _counts(cache: Path) -> dict[str, int]:
    """Mutant statuses straight from mutmut's cache (independent of its console output)."""
    if not cache.exists():
        return {}
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT status, count(*) FROM Mutant GROUP BY status").fetchall()
    return {status: n for status, n in rows}


def _survivors(repo: Path, cache: Path, limit: int = 40) -> list[dict[str, object]]:
    with sqlite3.connect(cache) as db:
        ids = [
            r[0]
            for r in db.execute(
                "SELECT id FROM Mutant WHERE status IN ('bad_survived', 'bad_timeout') ORDER BY id"
            ).fetchall()
        ]
    out: list[dict[str, object]] = []
    for mutant in ids[:limit]:
        shown = subprocess.run(
            [sys.executable, "-m", "mutmut", "show", str(mutant)],
            cwd=repo,
            capture_output=True,
            text=True,
        ).stdout
        diff = [line for line in shown.splitlines() if line.startswith(("+", "-", "@@"))]
        out.append({"id": mutant, "diff": "\n".join(diff[2:] if len(diff) > 2 else diff)})
    return out


def run_module(name: str, budget: float) -> dict[str, object]:
    path, tests = MODULES[name]
    repo = _copy_tree()
    runner = (
        f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p pytest_timeout "
        f"--timeout 120 -m '{FAST}' {' '.join(tests)}"
    )
    started = time.monotonic()
    # plugins load only when named: halves the start-up that dominates each mutant's run
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mutmut",
                "run",
                "--paths-to-mutate",
                path,
                "--runner",
                runner,
                "--tests-dir",
                "tests",
                "--no-progress",
                "--simple-output",
            ],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=budget,
            env=env,
        )
        partial = False
        log = (proc.stdout + proc.stderr)[-2000:]
    except subprocess.TimeoutExpired as exc:
        partial = True
        log = str(exc)[-500:]
    elapsed = time.monotonic() - started
    cache = repo / ".mutmut-cache"
    counts = _counts(cache)
    killed = counts.get("ok_killed", 0)
    survived = counts.get("bad_survived", 0)
    timeout = counts.get("bad_timeout", 0)
    suspicious = counts.get("ok_suspicious", 0)
    tested = killed + survived + timeout + suspicious
    result: dict[str, object] = {
        "path": path,
        "tests": tests,
        "killed": killed + suspicious,
        "survived": survived,
        "timeout": timeout,
        "untested": counts.get("untested", 0),
        "tested": tested,
        "score": round((killed + suspicious + timeout) / tested, 3) if tested else None,
        "goal": GOAL,
        "partial": partial,
        "seconds": round(elapsed, 1),
        "survivors": _survivors(repo, cache) if cache.exists() else [],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if not tested:
        result["log"] = log
    shutil.rmtree(repo.parent, ignore_errors=True)
    return result


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"unknown module(s) {unknown}; choose from {sorted(MODULES)}", file=sys.stderr)
        return 2
    budget = float(os.environ.get("MUTATION_BUDGET", "300"))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("modules", {})
    for name in names:
        print(f"mutation: {name} (budget {budget:.0f} s)", flush=True)
        result = run_module(name, budget)
        results["modules"][name] = result
        print(
            f"  {name}: score {result['score']} · killed {result['killed']} · survived "
            f"{result['survived']} · timeout {result['timeout']} · untested {result['untested']}"
            f"{' (partial)' if result['partial'] else ''}",
            flush=True,
        )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    below = [
        n
        for n, r in results["modules"].items()
        if r.get("score") is not None and r["score"] < GOAL and n in names
    ]
    if below:
        print(f"below the {GOAL:.0%} goal: {', '.join(below)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
