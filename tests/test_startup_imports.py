"""Start-up imports: `import hybridwb`, the CLI's help and version, and a workflow run's
processing (SQLite sample, MariaDB) leave pandas (and numpy through it) unimported; a bare
`import hybridwb` and the CLI's help and version leave the whole workbench unimported
(`hybridwb.Workbench` and `hybridwb.connect` are imported on first use).

Each check runs in a fresh interpreter (this test process has pandas long since): the
oracle is that process's own `sys.modules`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HEAVY = ("pandas", "numpy")


def _child(
    code: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Any:
    """Run `code` in a fresh interpreter; its last stdout line is the JSON it reports."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


_LOADED = f"{{m: m in sys.modules for m in {HEAVY!r}}}"


def test_import_hybridwb_imports_no_pandas() -> None:
    code = (
        f"import json, sys\nimport hybridwb\nassert hybridwb.connect\nprint(json.dumps({_LOADED}))"
    )
    assert _child(code) == dict.fromkeys(HEAVY, False)


_CLI = f"""
import json, sys
from hybridwb.cli import main
try:
    main(sys.argv[1:], prog_name="hybridwb")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print()
print(json.dumps({_LOADED}))
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["run", "--help"], ["demo", "--help"]],
    ids=lambda a: " ".join(a),
)
def test_the_cli_help_and_version_import_no_pandas(args: list[str]) -> None:
    assert _child(_CLI, *args) == dict.fromkeys(HEAVY, False)


#: what the workbench needs and a bare `import hybridwb` or the CLI's help does not
#: (`hybridwb.Workbench` and `hybridwb.connect` are imported on first use)
ENGINE = ("sqlalchemy", "sqlglot", "pydantic", "jinja2", "hybridwb.workbench", "hybridwb.config")
_ENGINE_LOADED = f"{{m: m in sys.modules for m in {ENGINE!r}}}"


@pytest.mark.parametrize(
    "code",
    [
        "import hybridwb",
        "import hybridwb\nfrom hybridwb import errors\nassert hybridwb.__version__",
        "from hybridwb.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from hybridwb.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass",
    ],
    ids=["import", "errors", "--help", "--version"],
)
def test_import_hybridwb_and_the_cli_help_leave_the_workbench_unimported(code: str) -> None:
    out = _child(f"import json, sys\n{code}\nprint()\nprint(json.dumps({_ENGINE_LOADED}))")
    assert out == dict.fromkeys(ENGINE, False)


def test_the_workbench_is_imported_on_first_use_and_is_the_same_object() -> None:
    code = f"""
import json, sys
import hybridwb
before = {_ENGINE_LOADED}
missing_from_dir = sorted(set(hybridwb.__all__) - set(dir(hybridwb)))
from hybridwb import Workbench, connect
import hybridwb.workbench as module
out = {{
    "before": before,
    "same": Workbench is module.Workbench and connect is module.connect,
    "attr": hybridwb.Workbench is Workbench and hybridwb.connect is connect,
    "dir": missing_from_dir,
}}
try:
    hybridwb.no_such_name
except AttributeError as exc:
    out["missing"] = str(exc)
print(json.dumps(out))
"""
    out = _child(code)
    assert out["before"] == dict.fromkeys(ENGINE, False)
    assert out["same"] and out["attr"]
    assert out["dir"] == []
    assert out["missing"] == "module 'hybridwb' has no attribute 'no_such_name'"


def test_a_star_import_gives_every_public_name() -> None:
    import hybridwb

    code = "import json\nfrom hybridwb import *\nprint(json.dumps(dir()))"
    assert set(hybridwb.__all__) <= set(_child(code))


_PROCESS = f"""
import json, sys
import hybridwb
wb = hybridwb.connect()
stats = wb.workflows.process(sys.argv[1], sys.argv[2], progress=True)
wb.close()
out = {_LOADED}
out["records"] = stats["records"]
print()
print(json.dumps(out))
"""


def _process_in_a_fresh_kernel(wb: Any, cwd: Path, env: dict[str, str] | None = None) -> None:
    """What the campaign notebook's kernel does after `hybridwb run` made the run row."""
    from hybridwb.demo import ensure_workflow

    wb.store.init()
    wf = ensure_workflow(wb)
    run = wb.store.runs.create(wf["id"])
    wb.close()
    out = _child(_PROCESS, str(wf["id"]), str(run["id"]), cwd=cwd, env=env)
    assert out["records"] > 0  # the run did work through its targets
    assert {m: out[m] for m in HEAVY} == dict.fromkeys(HEAVY, False)


def test_a_workflow_runs_processing_on_the_sqlite_sample_imports_no_pandas(
    shop: Any, tmp_path: Path
) -> None:
    _process_in_a_fresh_kernel(shop, tmp_path)


@pytest.mark.mysql
def test_a_workflow_runs_processing_on_mariadb_imports_no_pandas(
    mysql_db: str, tmp_path: Path
) -> None:
    """The sample shop on MariaDB: dates, decimals and integers (SQLite gives text) are
    rendered and masked without pandas."""
    import hybridwb
    from tests.conftest import install_sample_mappings, ro_url

    url = ro_url(mysql_db).render_as_string(hide_password=False)
    install_sample_mappings(tmp_path, ro_url(mysql_db))
    wb = hybridwb.connect(source=url)
    _process_in_a_fresh_kernel(wb, tmp_path, {"HYBRIDWB_SOURCE_URL": url})


def _pandas_is_null(value: Any) -> bool:
    """`masking.is_null` as it was: pandas decides every value that is not plainly text."""
    import pandas as pd

    if value is None:
        return True
    if isinstance(value, str | bytes | list | tuple | dict):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _values() -> list[Any]:
    import datetime as dt
    import uuid
    from decimal import Decimal

    import numpy as np
    import pandas as pd

    class Num(float):
        pass

    seoul = dt.timezone(dt.timedelta(hours=9))
    return [
        *(0, 1, -7, 2**70, True, False),
        *(0.0, -0.0, 1.5, float("nan"), float("inf"), float("-inf"), Num("nan"), Num(2)),
        *(Decimal("0"), Decimal("1.50"), Decimal("NaN"), Decimal("-NaN"), Decimal("Infinity")),
        *(dt.date(2026, 3, 2), dt.datetime(2026, 3, 2, 9), dt.datetime(2026, 3, 2, tzinfo=seoul)),
        *(dt.time(23, 0), dt.timedelta(0), dt.timedelta(hours=-1)),
        *(pd.NaT, pd.NA, pd.Timestamp("2026-03-02"), pd.Timedelta(1), pd.Timestamp("NaT")),
        *(np.nan, np.float64("nan"), np.float32(1), np.int64(3), np.bool_(False)),
        *(np.datetime64("NaT"), np.datetime64("2026-03-02"), np.timedelta64("NaT")),
        *(np.array([1, 2]), np.array([np.nan]), uuid.UUID(int=1), object(), {1}, bytearray(b"x")),
        *(None, "", "nan", b"", [], (), {}),
    ]


def test_is_null_without_pandas_is_what_pandas_says() -> None:
    """Plain driver values are read without pandas; every value's answer is pandas' own."""
    from hybridwb.masking import is_null, mask

    for value in _values():
        assert is_null(value) is _pandas_is_null(value), repr(value)
        assert mask(value) == ("" if _pandas_is_null(value) else mask(str(value)))


_MASK_PLAIN = f"""
import datetime as dt, json, sys
from decimal import Decimal
from hybridwb.masking import is_null, mask
values = [0, 10_1234_5678, True, 1.5, float("nan"), float("inf"), Decimal("12.30"),
          Decimal("NaN"), dt.date(1990, 5, 17), dt.datetime(2026, 3, 2, 9, 30),
          dt.time(23, 0), dt.timedelta(hours=1), None, "", "010-1234-5678", b"x"]
shown = [[is_null(v), mask(v)] for v in values]
out = {_LOADED}
out["shown"] = shown
print(json.dumps(out))
"""


def test_a_pii_value_of_any_driver_type_is_masked_without_pandas() -> None:
    """A pii field need not be text (a birth date, a phone kept as a number): masking a
    run's inputs reads every plain driver value without importing pandas."""
    out = _child(_MASK_PLAIN)
    assert {m: out[m] for m in HEAVY} == dict.fromkeys(HEAVY, False)
    assert out["shown"] == [
        [False, "*"],
        [False, "1********"],
        [False, "T***"],
        [False, "1**"],
        [True, ""],
        [False, "i**"],
        [False, "1****"],
        [True, ""],
        [False, "1********"],
        [False, "2********"],
        [False, "2*******"],
        [False, "1******"],
        [True, ""],
        [False, "*"],
        [False, "0********"],
        [False, "b***"],
    ]


def test_a_signalling_nan_raises_as_pandas_raises() -> None:
    from decimal import Decimal, InvalidOperation

    from hybridwb.masking import is_null

    with pytest.raises(InvalidOperation):
        _pandas_is_null(Decimal("sNaN"))
    with pytest.raises(InvalidOperation):
        is_null(Decimal("sNaN"))
