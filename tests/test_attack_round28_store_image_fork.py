"""Attack round 28: a child forked while a thread of its parent made the migrated image
still creates its embedded store.

An embedded SQLite store after a process's first is a copy of a schema the migrations made
once (`store._migrated_image`, under `_IMAGE_LOCK` for the ~0.2 s of DDL). A process forked
while another of its threads held that lock (a notebook's `Pool().map` while a background
thread opened a project) inherited it held, and no thread of the child would ever release
it: the child's first new store waited forever.

Oracle: the child's store file on disk, read with sqlite3.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from hybridwb.config import Settings
from hybridwb.platform import store as store_module
from hybridwb.platform.store import open_store


def test_a_child_forked_while_the_image_is_made_still_creates_its_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_IMAGE", None)  # this process makes it again
    making, release = threading.Event(), threading.Event()

    def make_image_slowly() -> None:
        with store_module._IMAGE_LOCK:  # a thread of the parent, mid migration
            making.set()
            release.wait(30)

    thread = threading.Thread(target=make_image_slowly)
    thread.start()
    making.wait(30)
    target = tmp_path / "child" / ".hybridwb" / "platform.db"
    read, write = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                done = threading.Event()

                def create() -> None:
                    open_store(Settings(store_url=f"sqlite:///{target}")).close()
                    done.set()

                threading.Thread(target=create, daemon=True).start()
                said = b"ok" if done.wait(20) else b"child: its store waited for the lock"
                os.write(write, said)
            except BaseException as exc:
                os.write(write, f"child: {type(exc).__name__}: {exc}"[:200].encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        said = os.read(read, 256).decode()
        os.close(read)
    finally:
        release.set()
        thread.join()
    assert said == "ok", said
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert conn.execute("SELECT count(*) FROM template_categories").fetchone()[0] > 0
