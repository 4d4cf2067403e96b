"""`make guides`: run the six guides on the seeded sample and commit their outputs.

The guides are checked by strict nbval (tests/test_guides.py): every output a cell makes
is compared with the one stored in the notebook, after tests/guides_sanitize.cfg has
rewritten what varies between runs. This script makes those stored outputs, in the same
set-up the test uses (tests/_guides.py), and writes them already sanitized, so the
committed notebooks hold no run ids, timestamps or paths of the machine that made them.
Run it after a change to anything a guide shows; `git diff notebooks/guides` is the review.

    python scripts/regen_guides.py [GUIDE ...]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from tests import _guides  # noqa: E402


def _clean(nb: nbformat.NotebookNode, rules: list[tuple[str, str]]) -> None:
    """Sanitized outputs, numbered 1..n, without the kernel's timing metadata."""
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        count += 1
        cell.execution_count = count
        for output in cell.outputs:
            if "execution_count" in output:
                output.execution_count = count
            if output.output_type == "stream":
                output.text = _guides.sanitize(output.text, rules)
            elif output.output_type == "error":
                output.evalue = _guides.sanitize(output.evalue, rules)
                output.traceback = []
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str):
                    output.data[mime] = _guides.sanitize(value, rules)
    nb.metadata.setdefault("hybridwb", {})["outputs_made_with"] = _guides.versions()
    nb.metadata.pop("widgets", None)  # widget state is the kernel's, not the guide's


def regenerate(paths: list[Path]) -> None:
    from hybridwb.source.sample import build_sqlite

    rules = _guides.patterns()
    with tempfile.TemporaryDirectory(prefix="hwb-guides-") as tmp:
        root = Path(tmp)
        sample = root / "seed" / "sample.db"
        build_sqlite(sample, _guides.SAMPLE_CUSTOMERS)  # seeded: the same rows every time
        # the kernels inherit this process's environment, as nbval's do from pytest's
        env = _guides.project(root / "project", sample, {})
        os.environ.clear()
        os.environ.update(env)
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = []
            client = NotebookClient(
                nb,
                timeout=300,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )
            client.execute()
            _clean(nb, rules)
            nbformat.write(nb, path)
            print(f"{path.relative_to(REPO)}: {sum(c.cell_type == 'code' for c in nb.cells)} cells")


def main(argv: list[str]) -> int:
    chosen = [Path(a).resolve() for a in argv] or _guides.guides()
    # the guides share one project (05 runs a workflow that 06's doctor lists): always run
    # every guide up to the last one asked for, write only the ones asked for
    everything = _guides.guides()
    last = max(everything.index(p) for p in chosen)
    wanted = set(chosen)
    regenerate_all = everything[: last + 1]
    if wanted == set(regenerate_all):
        regenerate(regenerate_all)
    else:
        originals = {p: p.read_bytes() for p in regenerate_all if p not in wanted}
        try:
            regenerate(regenerate_all)
        finally:
            for p, data in originals.items():
                p.write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
