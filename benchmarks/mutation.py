"""Mutation testing of the modules that carry guarantees (`make mutation`, not `make test`).

mutmut (2.x) makes the mutants; this script runs them, because mutmut's own runner starts a
fresh pytest per mutant (about 10 s here, mostly imports), which made a full run take hours:

- the source is never changed: each mutant is compiled from memory by an import hook, in a
  child process forked from one parent that has already imported the libraries (sqlglot,
  SQLAlchemy, pandas, pytest), so a mutant costs the tests that cover it and nothing more;
- per-mutant test selection: the module's tests run once under coverage with one context per
  test, and a mutant runs only the tests that execute the statement it changes (all of the
  module's tests for module-level statements), with `-x`;
- a mutant that runs past its time limit is run once more with four times the limit (on a
  loaded machine a limit measured on a quiet one is often just too short), and counted as
  `timeout` (detected) only if it runs past that too; each timeout is listed with its diff;
- equivalent mutants (the program cannot behave differently) are listed with a written reason
  in benchmarks/mutation_equivalent.json, matched by the original and mutated line text;
  they are counted apart and leave the score's denominator, never silently.

    python benchmarks/mutation.py                 # every module
    python benchmarks/mutation.py guard binds     # some
    python benchmarks/mutation.py --reclassify    # apply new equivalence reasons, no re-run
    python benchmarks/mutation.py --reclassify rawguard   # only to these modules' records
    MUTATION_RETRY=1 python benchmarks/mutation.py guard   # re-run only the recorded survivors
    MUTATION_CONTINUE=1 python benchmarks/mutation.py guard   # run what a partial run left
    MUTATION_BUDGET=1800 python benchmarks/mutation.py guard   # stop after 30 min: partial
    MUTATION_SAMPLE=120 MUTATION_SEED=14 python benchmarks/mutation.py guard   # a random
                            # sample of 120 mutants (seeded, recorded with the result): partial
    MUTATION_LINES=205-256 python benchmarks/mutation.py binds   # only these lines: partial
    kill -USR1 <pid>        # stop after the current mutant and record what was run: partial

Mutants run in a stride order over the file, so a run cut short by the budget is recorded as
`partial` with a sample of the whole module and the untested count.

Scores (killed, timeout, survived, equivalent, score) go to benchmarks/results/mutation.json
with every surviving mutant's diff. Runs under `nice -n 19`: it must not disturb benchmarks.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import hashlib
import importlib
import importlib.abc
import importlib.util
import io
import json
import os
import random
import re
import select
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "mutation.json"
EQUIVALENT = REPO / "benchmarks" / "mutation_equivalent.json"

#: module -> (file to mutate, the test files that cover it)
MODULES: dict[str, tuple[str, list[str]]] = {
    # the in-place tests prove `values_in_place` (the search fast path) against sqlglot's
    # tokens and MariaDB as root (the shared server; unmarked, so in the fast tier)
    "binds": (
        "hybridwb/source/binds.py",
        ["tests/test_binds.py", "tests/test_guard_in_place.py", "tests/test_attack_in_place.py"],
    ),
    "guard": ("hybridwb/source/guard.py", ["tests/test_guard.py", "tests/test_guard_rules.py"]),
    "verdicts": ("hybridwb/source/verdicts.py", ["tests/test_guard_verdicts.py"]),
    "grants": (
        "hybridwb/source/grants.py",
        ["tests/test_grants.py", "tests/test_readonly_grants.py"],
    ),
    "templating.parse": (
        "hybridwb/templating/parse.py",
        ["tests/test_template_parse.py", "tests/test_templating.py"],
    ),
    "templating.matching": (
        "hybridwb/templating/matching.py",
        ["tests/test_matching.py", "tests/test_templating.py"],
    ),
    "workflows.policies": (
        "hybridwb/workflows/policies.py",
        ["tests/test_policies.py", "tests/test_campaigns.py", "tests/test_wf_read_fast.py"],
    ),
    "workflows.spelling": (
        "hybridwb/workflows/spelling.py",
        # tests/test_history_canonical.py: legacy_canonical (migration 0006's rewrite)
        ["tests/test_policies.py", "tests/test_campaigns.py", "tests/test_history_canonical.py"],
    ),
    "targets.definition": (
        "hybridwb/targets/definition.py",
        ["tests/test_target_definition_pure.py"],
    ),
    "targets.sql": (
        "hybridwb/targets/sql.py",
        ["tests/test_target_sql_pure.py"],
    ),
    "platform.campaigns": (
        "hybridwb/platform/campaigns.py",
        [
            "tests/test_run_locks.py",
            "tests/test_runner_state.py",
            "tests/test_campaigns.py",
            "tests/test_history_canonical.py",
        ],
    ),
    # the driver-level guard on pooled DB-API connections: the read-only attack rounds that
    # reach it (raw_connection, jupysql, pandas) and its own refusals (both drivers)
    "rawguard": (
        "hybridwb/source/rawguard.py",
        [
            "tests/test_rawguard.py",
            "tests/test_attack_readonly_round3.py",
            "tests/test_attack_readonly_round2.py",
        ],
    ),
    # tests/test_runner_run.py runs `Runner.run` around a stand-in for papermill (a second a
    # test); the real kernels of tests/test_runner_state.py run the same path, and the slow
    # tier (tests/test_run_feedback.py: progress, cell time limits) is left to `make test`
    "workflows.runner": (
        "hybridwb/workflows/runner.py",
        [
            "tests/test_runner_run.py",
            "tests/test_runner_state.py",
            "tests/test_run_locks.py",
            "tests/test_campaigns.py",
        ],
    ),
}
FAST = "not mysql and not postgres and not slow and not browser and not faults and not secrets"
#: modules whose guarantees live partly in one backend's code path: campaigns COPies rows and
#: binds arrays only on PostgreSQL, so its run includes the tests marked `postgres` (the
#: shared server; a session database per child, dropped after)
MARKERS: dict[str, str] = {
    "platform.campaigns": "not mysql and not slow and not browser and not faults and not secrets",
    "rawguard": "not postgres and not slow and not browser and not faults and not secrets",
}
#: test files chosen by their own marker expression, not the module's (a file whose every test
#: needs MariaDB, in a module whose other files' MariaDB tests are left to `make test`)
FILE_MARKERS: dict[str, str] = {
    # migration 0006's legacy probe (platform.campaigns): MariaDB source, SQLite and Postgres
    "tests/test_history_canonical.py": "not slow and not browser and not faults and not secrets",
}
GOAL = 0.90
#: plugins are not auto-loaded (nbval, faker, anyio cost a second per child); pytest_timeout is
#: named because pyproject sets `timeout`
#: unraisableexception/threadexception run gc.collect() twice per session (0.6 s a child)
PYTEST_ARGS = [
    "-q",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:unraisableexception",
    "-p",
    "no:threadexception",
    "-p",
    "pytest_timeout",
    "-W",
    "ignore",
]


# ---------------------------------------------------------------- mutants (mutmut)


def mutants(path: Path) -> list[dict[str, Any]]:
    """Every mutant mutmut makes of `path`: line number, original and mutated source (kept
    in .mutation-cache/ by the source's hash: mutmut parses the file once per mutant, which
    takes minutes for the guard)."""
    source = path.read_text()
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    cache = REPO / ".mutation-cache" / f"{path.stem}-{digest}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    found = _make_mutants(path, source)
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps(found))
    return found


def _make_mutants(path: Path, source: str) -> list[dict[str, Any]]:
    from mutmut import ALL, Context, list_mutations, mutate

    ids = list_mutations(Context(source=source, filename=str(path), mutation_id=ALL))
    out = []
    for mid in ids:
        mutated, n = mutate(Context(source=source, filename=str(path), mutation_id=mid))
        if n != 1:
            continue
        old, new = source.splitlines(), mutated.splitlines()
        line = mid.line_number  # 0-based
        out.append(
            {
                "line": line + 1,
                "original": old[line].strip(),
                "mutated": new[line].strip() if line < len(new) else "",
                "source": mutated,
            }
        )
    return out


def diff(path: str, original: str, mutated: str) -> str:
    lines = difflib.unified_diff(
        original.splitlines(), mutated.splitlines(), path, path, n=0, lineterm=""
    )
    return "\n".join(list(lines)[2:])


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def lines_to_run(tree: ast.Module, line: int) -> tuple[set[int] | None, set[str]]:
    """The lines whose tests can see a change at `line`: the innermost statement inside a
    function that holds it; for code that runs once at import (a constant, a decorator, a
    class attribute), every line in a function that uses a name the top-level statement
    defines (followed through other top-level statements), and those names (a test that
    uses them directly is chosen too). None when nothing uses it."""
    inner: tuple[int, int] | None = None
    top: ast.stmt | None = None

    def visit(node: ast.AST, in_function: bool) -> None:
        nonlocal inner, top
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.stmt):
                continue
            first = min([child.lineno] + [d.lineno for d in getattr(child, "decorator_list", [])])
            if not first <= line <= (child.end_lineno or 0):
                continue
            is_def = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if in_function:
                inner = (child.lineno, child.end_lineno or child.lineno)
            elif top is None or isinstance(node, ast.ClassDef):
                top = child
            # a decorator or a default value runs at import, not inside the function
            in_body = is_def and any(s.lineno <= line for s in child.body)
            visit(child, in_function or in_body)

    visit(tree, False)
    if inner is not None:
        return set(range(inner[0], inner[1] + 1)), set()
    if top is None:
        return None, set()
    names = _defined_names(top)
    if isinstance(top, ast.ClassDef | ast.FunctionDef):
        names = {top.name}
    out: set[int] = set()
    seen: set[str] = set()
    while names - seen:
        name = (names - seen).pop()
        seen.add(name)
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(func):
                    used = (isinstance(node, ast.Name) and node.id == name) or (
                        isinstance(node, ast.Attribute) and node.attr == name
                    )
                    if used and isinstance(node, ast.expr):
                        out.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        for stmt in tree.body:  # another top-level name built from this one
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(stmt)):
                names |= _defined_names(stmt)
    return out or None, seen


# ---------------------------------------------------------------- running tests in a fork


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `name` from the mutated source in memory (the file on disk is untouched)."""

    def __init__(self, name: str, path: Path, source: str) -> None:
        self.name, self.path, self.source = name, path, source

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        exec(compile(self.source, str(self.path), "exec"), module.__dict__)


def _importers(target: str) -> set[str]:
    """`target` and every hybridwb module that imports it, directly or through another
    (read from the import statements: `from X import a` depends on X and on X.a)."""
    deps: dict[str, set[str]] = {}
    for file in (REPO / "hybridwb").rglob("*.py"):
        parts = file.relative_to(REPO).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        here = name if is_package else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                module = node.module or ""
                source = f"{base}.{module}".strip(".") if node.level else module
                found.add(source)
                found.update(f"{source}.{alias.name}" for alias in node.names)
        deps[name] = found
    stale = {target}
    while True:
        more = {name for name, uses in deps.items() if name not in stale and uses & stale}
        if not more:
            return stale
        stale |= more


def _forget_project_modules(keep_hybridwb: frozenset[str] = frozenset()) -> None:
    """Drop the modules loaded from this checkout that must run again with the mutant in
    place: the tests and conftest, and every hybridwb module not in `keep_hybridwb` (those
    that do not import the mutated module, directly or not)."""
    tests = str(REPO / "tests") + os.sep
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        ours = name == "hybridwb" or name.startswith("hybridwb.")
        # a namespace package (a folder without __init__.py, e.g. hybridwb.platform) finds
        # its path through its parent's: kept while `hybridwb` is imported again, it looks
        # the parent up mid-import and fails (KeyError 'hybridwb'); it is rebuilt for free
        namespace = ours and not file
        if (ours and name not in keep_hybridwb) or namespace or file.startswith(tests):
            del sys.modules[name]


def _pytest_in_child(
    args: list[str], finder: _MutantFinder, keep: frozenset[str], timeout: float
) -> int:
    """Run pytest with the mutant in a forked child; its exit code, or -1 when it ran past
    `timeout`."""
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            import pytest

            os.setpgid(0, 0)
            _forget_project_modules(keep)
            sys.meta_path.insert(0, finder)
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                code = int(pytest.main(args))
            if os.environ.get("MUTATION_DEBUG"):
                sys.__stderr__.write(sink.getvalue()[-3000:])
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -1
        select.select([], [], [], 0.02)


class _Contexts:
    """pytest plugin: one coverage context per test, and each test's duration."""

    def __init__(self, cov: Any) -> None:
        self.cov = cov
        self.durations: dict[str, float] = {}
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call":
            self.durations[report.nodeid] = report.duration
        if report.failed:
            self.failed.append(report.nodeid)

    import pytest as _pytest

    @_pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Any:
        self.cov.switch_context(item.nodeid)
        yield
        self.cov.switch_context("")


class _Collected:
    """pytest plugin: the node ids a collection selected."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def pytest_collection_finish(self, session: Any) -> None:
        self.ids = [item.nodeid for item in session.items]


def _collect(tests: list[str], markers: str) -> list[str]:
    """The node ids `-m markers` selects in `tests` (collected in a child)."""
    out = REPO / f".mutation-collect-{os.getpid()}.json"
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            import pytest

            _forget_project_modules()
            plugin = _Collected()
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                code = int(
                    pytest.main(
                        [*PYTEST_ARGS, "--collect-only", "-m", markers, *tests], plugins=[plugin]
                    )
                )
            out.write_text(json.dumps(plugin.ids))
        finally:
            os._exit(code)
    os.waitpid(pid, 0)
    ids: list[str] = json.loads(out.read_text())
    out.unlink()
    return ids


def _selection(tests: list[str], markers: str) -> list[str]:
    """The pytest arguments that select the module's tests: `-m markers` and the files, or,
    when a file has its own expression (FILE_MARKERS), the node ids each group selects."""
    if not any(t in FILE_MARKERS for t in tests):
        return ["-m", markers, *tests]
    groups: dict[str, list[str]] = {}
    for t in tests:
        groups.setdefault(FILE_MARKERS.get(t, markers), []).append(t)
    return [node for expr, files in groups.items() for node in _collect(files, expr)]


def baseline(path: Path, tests: list[str], markers: str = FAST) -> dict[str, Any]:
    """Run the module's fast tests once under coverage (in a child): which tests execute each
    line, each test's duration, and whether they all pass without a mutant."""
    selection = _selection(tests, markers)
    out = REPO / f".mutation-baseline-{os.getpid()}.json"  # runs of two modules may overlap
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            import coverage
            import pytest

            _forget_project_modules()
            cov = coverage.Coverage(data_file=None, include=[str(path)], branch=False)
            plugin = _Contexts(cov)
            cov.start()
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                code = int(pytest.main([*PYTEST_ARGS, *selection], plugins=[plugin]))
            cov.stop()
            data = cov.get_data()
            by_line = data.contexts_by_lineno(str(path))
            out.write_text(
                json.dumps(
                    {
                        "code": code,
                        "failed": plugin.failed,
                        "durations": plugin.durations,
                        "lines": {str(k): [c for c in v if c] for k, v in by_line.items()},
                        "log": sink.getvalue()[-3000:] if code else "",
                    }
                )
            )
        finally:
            os._exit(code)
    os.waitpid(pid, 0)
    result = json.loads(out.read_text())
    out.unlink()
    return result


# ---------------------------------------------------------------- one module


def _equivalents(module: str) -> list[dict[str, str]]:
    if not EQUIVALENT.exists():
        return []
    return json.loads(EQUIVALENT.read_text()).get(module, [])


def _helpers() -> list[str]:
    """The tests' shared helper modules (tests/_*.py): a change there changes the baseline."""
    return [str(p.relative_to(REPO)) for p in (REPO / "tests").glob("_*.py")]


def run_module(name: str) -> dict[str, Any]:
    rel, test_files = MODULES[name]
    path = REPO / rel
    module_name = rel.removesuffix(".py").replace("/", ".")
    tests = [t for t in test_files if (REPO / t).exists()]
    started = time.monotonic()
    # the coverage run depends only on the module and its tests: kept by their hash
    digest = hashlib.sha256(
        b"".join(
            (REPO / f).read_bytes() for f in [rel, *tests, "tests/conftest.py", *sorted(_helpers())]
        )
        + MARKERS.get(name, FAST).encode()
        + "".join(f"{t}:{FILE_MARKERS[t]}" for t in tests if t in FILE_MARKERS).encode()
    ).hexdigest()[:16]
    cached = REPO / ".mutation-cache" / f"baseline-{name}-{digest}.json"
    if cached.exists():
        base = json.loads(cached.read_text())
    else:
        base = baseline(path, tests, MARKERS.get(name, FAST))
        if base["code"] == 0:
            cached.parent.mkdir(exist_ok=True)
            cached.write_text(json.dumps(base))
    if base["code"] != 0:
        return {"path": rel, "tests": tests, "error": "the tests fail without a mutant", **base}
    durations: dict[str, float] = base["durations"]
    all_tests = list(durations)
    test_text = {t.split("::")[0]: "" for t in all_tests}
    for file in test_text:
        test_text[file] = (REPO / file).read_text()
    total = sum(durations.values())
    tree = ast.parse(path.read_text())
    lines: dict[int, list[str]] = {int(k): v for k, v in base["lines"].items()}
    equivalents = _equivalents(name)
    used_reasons: set[int] = set()
    counts = {"killed": 0, "timeout": 0, "survived": 0, "equivalent": 0, "no_tests": 0}
    survivors: list[dict[str, Any]] = []
    equivalent_rows: list[dict[str, Any]] = []
    timeouts: list[dict[str, Any]] = []
    original = path.read_text()
    found = mutants(path)
    previous: dict[str, Any] | None = None
    carried: dict[str, Any] | None = None
    if os.environ.get("MUTATION_CONTINUE"):
        # a partial record of this same source: run the mutants it left untested (the
        # stride order below is fixed, so those are the last `untested` of it)
        carried = json.loads(RESULTS.read_text())["modules"][name]
        if carried.get("mutants") != len(found):
            return {"path": rel, "tests": tests, "error": "the source changed since that run"}
    elif os.environ.get("MUTATION_RETRY"):
        # run again only the mutants the last record left alive (after new tests)
        previous = json.loads(RESULTS.read_text())["modules"][name]
        # by line too: the same text mutated on another line was judged on its own
        alive = {(r["line"], r["original"], r["mutated"]) for r in previous["survivors"]}
        found = [m for m in found if (m["line"], m["original"], m["mutated"]) in alive]
    # spread over the file: a run cut short by MUTATION_BUDGET has tested a sample of every
    # part of the module, not just its first lines
    stride = 7
    order = [found[i] for k in range(stride) for i in range(k, len(found), stride)]
    if carried is not None:
        order = order[len(order) - (carried.get("untested") or 0) :]
    sample: dict[str, int] | None = None
    if os.environ.get("MUTATION_SAMPLE"):
        # a seeded random sample (a run that cannot finish on a loaded machine), still in
        # stride order so a cut-short sample stays spread over the file
        size = min(int(os.environ["MUTATION_SAMPLE"]), len(order))
        seed = int(os.environ.get("MUTATION_SEED", "14"))
        chosen_ids = set(random.Random(seed).sample(range(len(order)), size))
        order = [m for i, m in enumerate(order) if i in chosen_ids]
        sample = {"size": size, "seed": seed, "of": len(found)}
    lines_run: str | None = os.environ.get("MUTATION_LINES")
    if lines_run:
        # only the mutants on these lines ("205-256,300"): new code in a module whose full
        # run takes longer than there is; recorded as partial with the ranges
        wanted = {
            n
            for part in lines_run.split(",")
            for a, _, b in [part.partition("-")]
            for n in range(int(a), int(b or a) + 1)
        }
        order = [m for m in order if m["line"] in wanted]
    time_budget = float(os.environ.get("MUTATION_BUDGET", "inf"))
    tested = 0
    stale = _importers(module_name)
    keep = frozenset(n for n in sys.modules if n.startswith("hybridwb.") and n not in stale)
    # control: the unmutated source through the same fork and import hook passes every test
    # (a kill then means the mutant failed a test, not that the machinery broke)
    control = _MutantFinder(module_name, path, original)
    code = _pytest_in_child([*PYTEST_ARGS, "-x", *all_tests], control, keep, 60 + 5 * total)
    if code != 0:
        return {"path": rel, "tests": tests, "error": f"the control run failed (exit {code})"}
    for mutant in order:
        if time.monotonic() - started > time_budget or _STOP.is_set():
            break
        tested += 1
        match = next(
            (
                i
                for i, e in enumerate(equivalents)
                if e["original"] == mutant["original"] and e["mutated"] == mutant["mutated"]
            ),
            None,
        )
        run_lines, names = lines_to_run(tree, mutant["line"])
        if run_lines is None:
            selected = all_tests
        else:
            chosen = {t for line in run_lines for t in lines.get(line, [])}
            chosen |= {
                t
                for t in all_tests
                if any(re.search(rf"\b{n}\b", test_text[t.split("::")[0]]) for n in names)
            }
            selected = sorted(chosen, key=durations.__getitem__)  # fastest first (-x)
        if not selected:
            status = "no_tests"
        else:
            budget = 30 + 5 * sum(durations[t] for t in selected)
            finder = _MutantFinder(module_name, path, mutant["source"])
            code = _pytest_in_child([*PYTEST_ARGS, "-x", *selected], finder, keep, budget)
            if code == -1:  # past its limit: once more with a longer one before it counts
                code = _pytest_in_child([*PYTEST_ARGS, "-x", *selected], finder, keep, 4 * budget)
            status = "timeout" if code == -1 else "survived" if code == 0 else "killed"
            if status == "timeout":
                timeouts.append(
                    {"line": mutant["line"], "diff": diff(rel, original, mutant["source"])}
                )
            if code == 5:  # no tests collected: a selection error, not a kill
                status = "no_tests"
        if match is not None and status in ("survived", "no_tests"):
            used_reasons.add(match)
            status = "equivalent"
            equivalent_rows.append(
                {
                    "line": mutant["line"],
                    "diff": diff(rel, original, mutant["source"]),
                    "why": equivalents[match]["why"],
                }
            )
        counts[status] += 1
        if status in ("survived", "no_tests"):
            survivors.append(
                {
                    "line": mutant["line"],
                    "status": status,
                    "original": mutant["original"],
                    "mutated": mutant["mutated"],
                    "diff": diff(rel, original, mutant["source"]),
                }
            )
        if os.environ.get("MUTATION_VERBOSE"):
            print(f"    {mutant['line']:4d} {status:10s} {mutant['mutated'][:80]}", flush=True)
    if carried is not None:  # the earlier run's verdicts stand for the mutants it ran
        for key in ("killed", "timeout", "survived", "no_tests", "equivalent"):
            counts[key] += carried[key]
        survivors += carried.get("survivors", [])
        equivalent_rows += carried.get("equivalent_mutants", [])
        tested += carried["mutants"] - (carried.get("untested") or 0)
    if previous is not None:  # the earlier verdicts stand for the mutants not run again
        for key in ("killed", "timeout", "equivalent"):
            counts[key] += previous[key]
        equivalent_rows += previous.get("equivalent_mutants", [])
        # a reason the earlier run used is not unused because its mutant was not run again
        used_reasons |= {
            i
            for i, e in enumerate(equivalents)
            if any(row["why"] == e["why"] for row in previous.get("equivalent_mutants", []))
        }
        found = [None] * previous["mutants"]  # type: ignore[list-item]
        tested = previous["mutants"] - (previous.get("untested") or 0)
        lines_run = previous.get("lines_run")  # the retried record is still those lines
        sample = previous.get("sample")  # the retried record is still that sample
        timeouts += previous.get("timeouts", [])
    survivors.sort(key=lambda row: row["line"])
    equivalent_rows.sort(key=lambda row: row["line"])
    detected = counts["killed"] + counts["timeout"]
    scored = detected + counts["survived"] + counts["no_tests"]
    return {
        "path": rel,
        "tests": tests,
        "mutants": len(found),
        "untested": len(found) - tested,
        "partial": tested < len(found),
        **counts,
        "score": round(detected / scored, 3) if scored else None,
        "goal": GOAL,
        "reached_goal": bool(scored) and detected / scored >= GOAL,
        "baseline_tests": len(all_tests),
        "baseline_seconds": round(total, 1),
        "seconds": round(time.monotonic() - started, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "unused_equivalent_reasons": [
            e for i, e in enumerate(equivalents) if i not in used_reasons
        ],
        "survivors": survivors,
        "equivalent_mutants": equivalent_rows,
        "timeouts": sorted(timeouts, key=lambda row: row["line"]),
        **({"sample": sample} if sample is not None else {}),
        **({"lines_run": lines_run} if lines_run else {}),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


#: set by SIGUSR1: the module being run stops after its current mutant and is recorded as
#: `partial` (a deadline that comes before the budget is spent)
_STOP = threading.Event()


def _warm_up() -> None:
    """Import every hybridwb module and what pytest imports late (pdb), so the libraries they
    use are loaded once here and not again in each child."""
    import pdb  # noqa: F401  (pytest's debugging plugin imports it at configure)
    import pkgutil

    import hybridwb

    for info in pkgutil.walk_packages(hybridwb.__path__, "hybridwb."):
        if ".migrations" in info.name:
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(info.name)
    for name in ("faker", "pymysql", "psycopg"):
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def reclassify(names: list[str]) -> None:
    """Apply the current mutation_equivalent.json to the recorded survivors (equivalence is a
    property of the mutant, not of a run) and recompute each score; nothing is re-run. Only
    `names` when given (another branch may be recording the other modules)."""
    results = json.loads(RESULTS.read_text())
    for name, result in results["modules"].items():
        if names and name not in names:
            continue
        reasons = _equivalents(name)
        if "survivors" not in result or not reasons:
            continue
        keep: list[dict[str, Any]] = []
        for row in result["survivors"]:
            why = next(
                (
                    e["why"]
                    for e in reasons
                    if e["original"] == row["original"] and e["mutated"] == row["mutated"]
                ),
                None,
            )
            if why is None:
                keep.append(row)
                continue
            result[row["status"]] -= 1
            result["equivalent"] += 1
            result["equivalent_mutants"].append(
                {"line": row["line"], "diff": row["diff"], "why": why}
            )
        result["survivors"] = keep
        detected = result["killed"] + result["timeout"]
        scored = detected + result["survived"] + result["no_tests"]
        result["score"] = round(detected / scored, 3) if scored else None
        result["reached_goal"] = bool(scored) and detected / scored >= GOAL
        result["reclassified_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--reclassify"]:
        reclassify(argv[1:])
        return 0
    names = argv or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"unknown module(s) {unknown}; choose from {sorted(MODULES)}", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):
        os.nice(19)
    signal.signal(signal.SIGUSR1, lambda *_: _STOP.set())
    # bytecode of the unchanged modules and pytest's rewritten tests is cached (a child would
    # otherwise compile ~50 modules again); the mutant is compiled from memory, never cached
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    sys.dont_write_bytecode = True
    os.chdir(REPO)
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    # the libraries the tests use, imported once here so each forked child starts warm
    import pytest  # noqa: F401
    import pytest_timeout  # noqa: F401
    import sqlalchemy  # noqa: F401
    import sqlglot  # noqa: F401

    import hybridwb.workbench  # noqa: F401

    _warm_up()

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("modules", {})
    for name in names:
        print(f"mutation: {name}", flush=True)
        result = run_module(name)
        results["modules"][name] = result
        if "error" in result:
            print(f"  {name}: {result['error']}: {result.get('failed')}", flush=True)
        else:
            print(
                f"  {name}: score {result['score']} · killed {result['killed']} · timeout "
                f"{result['timeout']} · survived {result['survived']} · no tests "
                f"{result['no_tests']} · equivalent {result['equivalent']} "
                f"({result['seconds']} s)",
                flush=True,
            )
        # read again just before writing: another run may have recorded another module
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results.setdefault("modules", {})[name] = result
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    below = [
        n
        for n in names
        if not results["modules"][n].get("reached_goal") and n in results["modules"]
    ]
    if below:
        print(f"below the {GOAL:.0%} goal: {', '.join(below)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
