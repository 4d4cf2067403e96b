"""Store-mirror mode: with no mapping file, mappings come from the platform store.

Runs on the embedded SQLite store and on real PostgreSQL; the mirror rows are checked
with direct SQL, and the file is really gone.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

import hybridwb
from hybridwb.errors import NotFound
from tests._stores import _empty_pg
from tests.conftest import REPO


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def mirrored(
    request: pytest.FixtureRequest, sample_db: Path, tmp_path: Path
) -> Iterator[hybridwb.Workbench]:
    (tmp_path / ".hybridwb").mkdir(exist_ok=True)
    (tmp_path / ".hybridwb" / "sample.db").write_bytes(sample_db.read_bytes())
    (tmp_path / "mappings").mkdir(exist_ok=True)
    shipped = REPO / "mappings" / "table-mappings.json"
    shutil.copy(shipped, tmp_path / "mappings" / "table-mappings.json")
    store = None
    if request.param == "postgres":
        url: URL = request.getfixturevalue("pg_db")
        _empty_pg(url)  # at head, no rows: init below seeds it
        store = url.render_as_string(hide_password=False)
    wb = hybridwb.connect(store=store)
    if store is not None:
        wb.store.init()
    for name, config in json.loads(shipped.read_text(encoding="utf-8")).items():
        wb.mappings.save(name, config)  # writes the file and the store mirror
    (tmp_path / "mappings" / "table-mappings.json").unlink()
    yield wb
    wb.close()


def test_mirror_mode_resolves_by_name_and_display_name(mirrored: hybridwb.Workbench) -> None:
    assert not mirrored.mappings.path.is_file()
    mirror = mirrored.store.mappings.active()
    assert mirror, "the store holds the mirrored mappings"
    for name, config in mirror.items():
        assert mirrored.mappings.resolve(name)[0] == name
        display = config.get("displayName")
        if display:
            assert mirrored.mappings.resolve(display)[0] == name
    with pytest.raises(NotFound, match="No mapping"):
        mirrored.mappings.resolve("no_such_table")
