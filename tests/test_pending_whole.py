"""A kept status is on disk whole or not at all (`pending.keep` → `_write_whole`). Written in
place, a write cut short (a full disk, a file size limit, the process killed mid-write) left a
truncated JSON entry: `flush` skipped it for ever (the run never ended, its lock never
released), and written over an entry kept before for the same period, it lost that one too.

The cut is real: a child process writes under a file size limit (`RLIMIT_FSIZE`, SIGXFSZ
ignored), so the kernel stops the write part-way (EFBIG). Oracle: the files on disk, read with
`json` (no hybridwb code)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from hybridwb.workflows import pending

    home, limit = Path(sys.argv[1]), int(sys.argv[2])
    run = {"started_at": "2026-12-06 10:00:00+00:00"}
    pending.keep(home, "wf-1", "run-1", {"status": "failed", "error": "first"}, "owner-a", run)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    big = {"status": "failed", "error": "x" * 5000}
    pending.keep(home, "wf-1", "run-1", big, "owner-a", run)  # the same period: replaces
    pending.keep(home, "wf-1", "run-2", big, "owner-b", run)  # a new entry
    """
)


def _kept(home: Path) -> dict[str, object]:
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((home / "pending-runs").iterdir())
    }


def test_a_write_cut_short_leaves_the_earlier_entry_whole_and_no_part(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), "300"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]  # the cut write was kept quiet (OSError)
    names = [p.name for p in (tmp_path / "pending-runs").iterdir()]
    assert len(names) == 1, names  # nothing half-written beside it, under any name
    [(name, entry)] = _kept(tmp_path).items()  # every file parses whole
    assert name.startswith("run-1.") and name.endswith(".json")
    assert entry["error"] == "first" and entry["owner"] == "owner-a"


def test_without_a_limit_both_entries_are_written(tmp_path: Path) -> None:
    """The control: the same child with room enough writes the new entries whole."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(10**7)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    kept = _kept(tmp_path)
    assert len(kept) == 2
    assert all(entry["error"] == "x" * 5000 for entry in kept.values())


KILLED = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from hybridwb.workflows import pending

    home = Path(sys.argv[1])

    def stuck(fd):  # the write is on disk in the part file; the process dies before the rename
        print("writing", flush=True)
        time.sleep(600)

    os.fsync = stuck
    pending.keep(home, "wf-1", "run-9", {"status": "failed", "error": "late"}, "owner-k")
    """
)


def _killed_mid_write(home: Path) -> None:
    """A child killed (SIGKILL) inside `pending.keep`'s write, after the part file is written
    and before it is renamed: the part stays on disk, as after a real crash."""
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(home)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing", child.stderr.read()[-2000:]
    finally:
        child.kill()
        child.wait(timeout=60)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_flush_removes_the_part_a_killed_writer_left_and_keeps_a_live_ones(
    tmp_path: Path,
) -> None:
    from hybridwb.platform.backend import SqlBackend
    from hybridwb.platform.store import Store
    from hybridwb.workflows import pending
    from tests import _stores

    _killed_mid_write(tmp_path)
    folder = tmp_path / "pending-runs"
    dead = [p.name for p in folder.iterdir()]
    assert len(dead) == 1 and dead[0].startswith(".run-9") and dead[0].endswith(".part"), dead
    store = Store(SqlBackend(_stores.migrated_sqlite(tmp_path / "platform.db")))
    try:
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        try:  # a writer still alive (another command keeping a status now): its part stays
            live = folder / f".run-8.json.{sleeper.pid}.part"
            live.write_text("{", encoding="utf-8")
            pending.flush(store, tmp_path)
            assert sorted(p.name for p in folder.iterdir()) == [live.name]
        finally:
            sleeper.kill()
            sleeper.wait(timeout=60)
        pending.flush(store, tmp_path)  # its writer is gone now
        assert list(folder.iterdir()) == []
    finally:
        store.close()
