"""A run's start imports papermill without jsonschema's IRI grammar (`runner.papermill`),
and nbformat's validation of a run's notebook is what it was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hybridwb

NOTEBOOKS = Path(hybridwb.__file__).parent / "workflows" / "notebooks"

_CHILD = """
import sys, json
from hybridwb.workflows.runner import papermill
pm = papermill()
import nbformat
assert pm.execute_notebook
out = {"grammar": "rfc3987_syntax" in sys.modules, "lark": "lark" in sys.modules}
nb = nbformat.read(sys.argv[1], as_version=4)
nbformat.validate(nb)
nb.cells[0]["cell_type"] = "no such cell type"
try:
    nbformat.validate(nb)
    out["bad_refused"] = False
except nbformat.ValidationError:
    out["bad_refused"] = True
import rfc3987_syntax  # a later import of its own works as ever
out["later_import"] = rfc3987_syntax.is_valid_syntax("iri", "http://example.com/")
print(json.dumps(out))
"""


def _child(code: str) -> dict[str, bool]:
    import json

    [notebook] = sorted(NOTEBOOKS.glob("*.ipynb"))[:1]
    done = subprocess.run(
        [sys.executable, "-c", code, str(notebook)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_papermill_is_imported_without_the_iri_grammar_and_validation_is_unchanged() -> None:
    assert _child(_CHILD) == {
        "grammar": False,
        "lark": False,
        "bad_refused": True,
        "later_import": True,
    }


def test_a_process_that_imported_jsonschema_before_keeps_it_as_it_was() -> None:
    code = "import jsonschema\n" + _CHILD
    out = _child(code)
    assert out["grammar"] is True  # jsonschema found it first: left alone
    assert out["bad_refused"] is True
