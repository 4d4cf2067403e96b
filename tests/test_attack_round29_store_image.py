"""Attack round 29 on the embedded store made by copying a migrated image
(`store._create_sqlite`, `_migrated_image`): the copy is written by Python, not by SQLite,
and took Python's file mode (0666 less the umask) instead of SQLite's (0644 less the
umask). Under the umask 002 of a user-private-group system the store was group-writable,
under a container's umask 0 writable by every local user: anyone could rewrite the send
history that the once-per-recipient and cooldown policies read, or a run's frozen set.

Oracle: `os.stat` of the store file against a file SQLite itself made under the same umask
(what a store migrated in place had), in a fresh process with that umask.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, os, sqlite3, stat, sys
os.umask(int(sys.argv[2], 8))
from hybridwb.config import Settings
from hybridwb.platform.store import open_store
root = sys.argv[1]
modes = {}
for name in ("first", "second"):  # the image is made with the first, copied for both
    store = open_store(Settings(store_url=f"sqlite:///{root}/{name}/platform.db"))
    store.init()
    store.close()
    modes[name] = stat.S_IMODE(os.stat(f"{root}/{name}/platform.db").st_mode)
conn = sqlite3.connect(f"{root}/own.db")
conn.execute("CREATE TABLE t (a)")
conn.close()
modes["sqlite"] = stat.S_IMODE(os.stat(f"{root}/own.db").st_mode)
print(json.dumps(modes))
"""


@pytest.mark.parametrize("umask", ["002", "000", "077"])
def test_the_copied_store_has_the_mode_sqlite_gives_a_store_it_makes(
    tmp_path: Path, umask: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), umask],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    modes = json.loads(out.stdout.strip().splitlines()[-1])
    assert modes["first"] == modes["second"] == modes["sqlite"], modes
    assert not modes["first"] & 0o022  # writable by its owner only
