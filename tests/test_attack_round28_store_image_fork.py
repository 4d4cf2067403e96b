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

import sqlite3
from pathlib import Path

import pytest
from _fork import held_by_a_thread, in_child

from hybridwb.config import Settings
from hybridwb.platform import store as store_module
from hybridwb.platform.store import open_store


def test_a_child_forked_while_the_image_is_made_still_creates_its_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_IMAGE", None)  # this process makes it again
    target = tmp_path / "child" / ".hybridwb" / "platform.db"
    with held_by_a_thread(store_module._IMAGE_LOCK):  # a thread of the parent, mid migration
        said = in_child(lambda: open_store(Settings(store_url=f"sqlite:///{target}")).close(), 20)
    assert said == "ok", said
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert conn.execute("SELECT count(*) FROM template_categories").fetchone()[0] > 0
