"""Round 25: `runner.papermill()` keeps jsonschema's IRI grammar out of a run's start, but
not out of the process that ran it (`wb.run` in a user's own kernel, a script).

It kept the `rfc3987_syntax` module out (`sys.modules[...] = None`) while nbformat first
imported jsonschema, so jsonschema registered no `iri` / `iri-reference` format checker
for the life of the process: a user's own `jsonschema.validate(..., format_checker=...)`
after a run accepted any string as an IRI, silently. Each test runs in a fresh process;
the oracle is jsonschema's answer and `sys.modules`.
"""

from __future__ import annotations

import json
import subprocess
import sys

_CHILD = """
import json, sys, threading
from hybridwb.workflows.runner import papermill
{before}
out = {{}}
errors = []
def start():
    try:
        papermill()
    except BaseException as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=start) for _ in range({threads})]
[t.start() for t in threads]
[t.join() for t in threads]
out["errors"] = errors
out["grammar"] = "lark" in sys.modules  # not built by the run's start
import jsonschema
checker = jsonschema.FormatChecker()
def valid(value, fmt):
    try:
        jsonschema.validate(value, {{"type": "string", "format": fmt}}, format_checker=checker)
        return True
    except jsonschema.ValidationError:
        return False
out["iri"] = [valid("http://예시.kr/경로", "iri"), valid("http://exa mple/<>", "iri")]
out["iri_reference"] = [valid("경로/a?b=1", "iri-reference"), valid("a b<>", "iri-reference")]
import rfc3987_syntax
out["module"] = rfc3987_syntax.is_valid_syntax("iri", "http://example.com/")
print(json.dumps(out))
"""


def _child(before: str = "", threads: int = 1) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.format(before=before, threads=threads)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


EXPECTED = {
    "errors": [],
    "grammar": False,
    "iri": [True, False],
    "iri_reference": [True, False],
    "module": True,
}


def test_a_process_that_ran_a_workflow_still_checks_iris_with_jsonschema() -> None:
    """BREAK: after `papermill()`, jsonschema took 'http://exa mple/<>' for an IRI."""
    assert _child() == EXPECTED


def test_threads_starting_runs_at_once_check_iris_too() -> None:
    """HOLDS with the fix: eight threads importing papermill at once (a scheduler's
    workflows starting together) raise nothing and leave the IRI checks working."""
    assert _child("sys.setswitchinterval(1e-6)", threads=8) == EXPECTED


def test_an_import_that_fails_leaves_no_stand_in_behind() -> None:
    """HOLDS: nbformat's import fails (a broken install); the grammar's module entry is
    removed all the same, and a later import gets the real module."""
    code = """
import sys
sys.modules["nbformat"] = None  # ImportError
from hybridwb.workflows.runner import papermill
try:
    papermill()
except ImportError:
    pass
assert "rfc3987_syntax" not in sys.modules, sys.modules["rfc3987_syntax"]
import rfc3987_syntax
assert rfc3987_syntax.is_valid_syntax("iri", "http://example.com/")
assert not rfc3987_syntax.is_valid_syntax("iri", "http://exa mple/<>")
print("{}")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
