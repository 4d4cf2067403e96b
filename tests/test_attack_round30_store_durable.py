"""Round 30 residue: a new embedded store is on disk before its name, and its name after.

`open_store` makes an SQLite store whole under a temporary name (the migrated image
copied, then seeded) and links it into place. A power cut soon after must leave either
no store (the next start makes one) or the whole one, never the name of a file whose
bytes never reached the disk; and the link itself must reach the disk, or the first
writes a user makes in the new store go to a file whose name a crash takes back.

The oracle is the kernel's own record of the process: `strace` lists the system calls
of a real `open_store` in a child Python, in order, with each descriptor's path. No
Python function is replaced. It shows that the file's bytes are synced after the last
write to it and before the link (SQLite's close already did that: its checkpoint ends
with an `fdatasync` of the file; hybridwb now syncs the file itself too, so it does not
depend on that), and that the directory is synced after the link (it was not).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(STRACE is None, reason="strace is not installed")

REPO = Path(__file__).resolve().parents[1]
CALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")
#: a descriptor as `strace -y` shows it: 3</path/to/file>
FD = re.compile(r"^\d+<(.*)>")


def traced_open_store(store: Path) -> list[tuple[str, str]]:
    """(call, first argument: a descriptor's path or a quoted path) of each successful
    system call of interest, in order, while a child process creates the store."""
    trace = store.parent.parent / "strace.txt"
    code = (
        "from hybridwb.config import Settings\n"
        "from hybridwb.platform.store import open_store\n"
        f"open_store(Settings(store_url='sqlite:///{store}')).close()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [
            str(STRACE),
            "-f",
            "-y",
            "-e",
            "trace=write,pwrite64,fsync,fdatasync,link,linkat",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            code,
        ],
        check=True,
        env=env,
        cwd=store.parent.parent,
        timeout=240,
    )
    calls = []
    for line in trace.read_text().splitlines():
        m = CALL.match(line)
        if m is None or m.group(3).startswith("-"):
            continue
        name, args = m.group(1), m.group(2)
        first = args.split(", ", 1)[0]
        fd = FD.match(first)
        calls.append((name, fd.group(1) if fd else first.strip('"')))
    return calls


def test_a_new_sqlite_store_is_synced_before_its_link_and_its_directory_after(
    tmp_path: Path,
) -> None:
    store = tmp_path / "data" / "platform.db"
    calls = traced_open_store(store)
    links = [i for i, (name, _) in enumerate(calls) if name in ("link", "linkat")]
    assert len(links) == 1, calls[-20:]
    linked = links[0]
    made = calls[linked][1]  # the temporary name linked into place
    assert made.startswith(str(store.parent / ".platform.db.")), made

    syncs = ("fsync", "fdatasync")
    wrote = [i for i, (n, p) in enumerate(calls) if n in ("write", "pwrite64") and p == made]
    synced = [i for i, (n, p) in enumerate(calls) if n in syncs and p == made]
    assert wrote, "the store's bytes were never written"
    assert any(wrote[-1] < i < linked for i in synced), "the bytes were not synced before the link"

    folder = str(store.parent)
    after = [i for i, (n, p) in enumerate(calls) if n in syncs and p == folder and i > linked]
    assert after, "the directory was not synced after the link: a crash could take the name back"

    with sqlite3.connect(store) as conn:  # the store is whole
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM message_templates").fetchone()[0] > 0
