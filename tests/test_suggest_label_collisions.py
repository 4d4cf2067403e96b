"""`wb.mappings.suggest` never proposes a mapping the mapping model refuses.

Round 42 made the model refuse a display name (or alias) that is another field's name or
label, and a relation whose path name is a field's name or label: a path or a variable by
that name could read either. `suggest` names fields from column comments and relations from
foreign keys, so on a real schema (a comment `tel` on the old number `tel2` beside `tel`, a
comment `town` on a note beside the foreign key `town_id`) it raised a raw pydantic
ValidationError instead of a mapping. Now such a label or relation gets a name of its own.

Source: a MariaDB database read by the SELECT-only account; oracle: the mapping file on
disk after the suggestion is saved, and the columns as root reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import hybridwb
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import source_url, src

pytestmark = [pytest.mark.mysql]

DDL = (
    "CREATE TABLE town (id INT PRIMARY KEY, city VARCHAR(20))",
    # `tel2` (an old number) is commented `tel`, `name` is commented `id`, `note` is
    # commented like the relation its foreign key `town_id` gets
    "CREATE TABLE members (id INT PRIMARY KEY, tel VARCHAR(20), "
    "tel2 VARCHAR(20) COMMENT 'tel', name VARCHAR(20) COMMENT 'id', "
    "note VARCHAR(20) COMMENT 'town', town_id INT, "
    "FOREIGN KEY (town_id) REFERENCES town (id))",
)
ROWS = {
    "town": [(1, "서울")],
    "members": [(1, "010-7000-0001", "010-9999-0001", "김", "메모", 1)],
}


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_suggest_labels", *DDL, rows=ROWS)


def test_a_suggestion_on_colliding_comments_saves_and_names_each_column_apart(
    db: str, tmp_path: Path
) -> None:
    with hybridwb.connect(source=source_url(db), cwd=tmp_path, home=str(tmp_path / ".hb")) as wb:
        wb.mappings.save("town", wb.mappings.suggest("town"))
        wb.mappings.save("members", wb.mappings.suggest("members"))
    files = list(tmp_path.rglob("mappings/**/*.json"))
    assert files, "nothing was saved"
    saved = {}
    for path in files:
        saved.update(json.loads(path.read_text(encoding="utf-8")))
    members = saved["members"]
    live = {row[0] for row in src(db, "SHOW COLUMNS FROM members")}
    assert set(members["fields"]) <= live
    names = set(members["fields"])
    owner: dict[str, str] = {}
    for name, field in members["fields"].items():
        for label in [field["displayName"], *field.get("aliases", [])]:
            # a label is its own field's name, or no field's name or other label
            assert label == name or label not in names, (name, label)
            assert owner.setdefault(label, name) == name, (name, label)
    for relation in members.get("relations", []):
        path_name = relation.get("name") or relation["table"]
        assert path_name not in names and path_name not in owner, relation
    assert any(r["localField"] == "town_id" for r in members.get("relations", []))
