"""Attack round 30: "the sample shop is not the world" — a column whose name holds a dot.

MariaDB allows any character in a quoted column name, `agree.yn` and `id.no` included, and a
schema nobody here designed has them. hybridwb reads a dot as the path separator
(`address.phone`) everywhere, so such a column was silently another thing:

- a consent column `agree.yn` given the consent role (no path: the one field with the role)
  was read as the relation `agree`'s column `yn`: where that table says yes for everyone,
  every customer consented — the members whose own `agree.yn` is 'N' were messaged
  advertising (fail-open);
- a key `id.no` was dropped from the target statement, and saving a workflow raised a raw
  `KeyError: 'id.no'`.

Now a mapped field's name may not hold a dot (one line, nothing saved; a mapping file
edited by hand to hold one refuses every use, the run included), and `suggest` leaves such
columns out, so suggest-then-save still works on the table.

Source: a fresh MariaDB database read by the SELECT-only account; oracle: the mapping file
on disk, the store's `send_records` and the run row read with sqlite3, the source's own
`agree.yn` values read as root.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.platform.campaigns import Campaigns
from tests.conftest import mariadb_maker
from tests.test_attack_once_round2 import DAY, source_url, src
from tests.test_attack_round30_debug_rows import F

pytestmark = [pytest.mark.mysql]

AD = "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일!\n무료수신거부 080-123-4567"
DDL = (
    "CREATE TABLE members (code INT PRIMARY KEY, `id.no` INT NOT NULL UNIQUE, "
    "name VARCHAR(20), tel VARCHAR(20), `agree.yn` CHAR(1) NOT NULL)",
    "CREATE TABLE agree (code INT PRIMARY KEY, yn CHAR(1) NOT NULL)",
)
ROWS = {
    # members 1, 3, 5, 7 agreed; 2, 4, 6, 8 did not (their own `agree.yn`)
    "members": [
        (i, 100 + i, f"회원{i}", f"010-7000-{i:04d}", "Y" if i % 2 else "N") for i in range(1, 9)
    ],
    # another table, `agree`, says yes for everyone
    "agree": [(i, "Y") for i in range(1, 9)],
}


MEMBERS: dict[str, Any] = {
    "displayName": "회원",
    "key": "code",
    "audience": True,
    "recipient": "tel",
    "fields": {
        "code": F("번호", "number", "id"),
        "name": F("이름", role="name"),
        "tel": F("전화", role="phone", pii=True),
        "agree.yn": F("광고동의", role="consent"),  # the consent: the one field with the role
    },
    "relations": [
        {"table": "agree", "localField": "code", "foreignField": "code", "kind": "many-to-one"}
    ],
}
AGREE = {"displayName": "동의", "fields": {"code": F("번호", "number", "reference"), "yn": F("예")}}


@pytest.fixture
def source() -> Iterator[Callable[..., str]]:
    yield from mariadb_maker("hybridwb_dot")


def mapping_files(root: Path) -> dict[str, str]:
    return {str(p): p.read_text(encoding="utf-8") for p in sorted(root.rglob("mappings/**/*.json"))}


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert isinstance(exc, HybridwbError) and "\n" not in text and len(text) < 400, text
    return text


def test_a_dotted_consent_column_is_refused_not_read_through_a_relation(
    source: Callable[..., str], tmp_path: Path
) -> None:
    db = source(*DDL, rows=ROWS)
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{tmp_path / 's.db'}") as wb:
        wb.store.init()
        wb.mappings.save("agree", AGREE)
        before = mapping_files(tmp_path)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("members", MEMBERS)
        assert "agree.yn" in one_line(refused.value) and "dot" in str(refused.value)
        assert mapping_files(tmp_path) == before  # nothing was saved


def test_a_mapping_file_edited_to_a_dotted_consent_fails_the_run_and_sends_nothing(
    source: Callable[..., str], tmp_path: Path
) -> None:
    """The workflow was saved with a sound mapping; the file was then edited by hand."""
    db = source(*DDL, rows=ROWS)
    store = tmp_path / "s.db"
    sound = {**MEMBERS, "fields": {k: v for k, v in MEMBERS["fields"].items() if k != "agree.yn"}}
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{store}") as wb:
        wb.store.init()
        wb.mappings.save("agree", AGREE)
        wb.mappings.save("members", sound)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "dots", target_config={"table": "members"}, message_config={"template": "세일"}
        )
    rewrite_mapping(tmp_path, "members", MEMBERS)
    assert "agree.yn" in one_line(run_refused(db, store, wf))
    sent = sent_keys(store)
    said_no = {str(r[0]) for r in src(db, "SELECT code FROM members WHERE `agree.yn` = 'N'")}
    assert said_no == {"2", "4", "6", "8"}
    assert not sent, sent  # before: all 8 messaged, 2, 4, 6 and 8 had said no


def test_a_dotted_key_is_one_line_not_a_key_error(
    source: Callable[..., str], tmp_path: Path
) -> None:
    db = source(*DDL, rows=ROWS)
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{tmp_path / 's.db'}") as wb:
        wb.store.init()
        fields = {k: v for k, v in MEMBERS["fields"].items() if k != "agree.yn"}
        keyed = {
            **MEMBERS,
            "key": "id.no",
            "relations": [],
            "fields": {**fields, "id.no": F("회원번호", "number", "id")},
        }
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("members", keyed)
        assert "id.no" in one_line(refused.value)


def test_suggest_leaves_dotted_columns_out_so_its_mapping_saves(
    source: Callable[..., str], tmp_path: Path
) -> None:
    db = source(*DDL, rows=ROWS)
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{tmp_path / 's.db'}") as wb:
        wb.store.init()
        suggested = wb.mappings.suggest("members")
        assert not [f for f in suggested.fields if "." in f]
        assert {"code", "name", "tel"} <= set(suggested.fields)
        saved = wb.mappings.save("members", suggested)
        assert set(saved.fields) == set(suggested.fields)


def test_a_consent_column_named_with_a_leading_space_is_refused_not_read_as_another(
    source: Callable[..., str], tmp_path: Path
) -> None:
    """` ok` (MariaDB keeps a leading space) with the consent role was read stripped, as the
    column `ok` beside it: the preview counted all 8 members, 4 of whom said no."""
    db = source(
        "CREATE TABLE members (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20), "
        "` ok` TINYINT(1) NOT NULL, ok TINYINT(1) NOT NULL)",
        rows={"members": [(i, f"회원{i}", f"010-7000-{i:04d}", i % 2, 1) for i in range(1, 9)]},
    )
    fields = {k: v for k, v in MEMBERS["fields"].items() if k != "agree.yn"}
    spaced = {
        **MEMBERS,
        "relations": [],
        "fields": {
            **fields,
            " ok": F("광고동의", "boolean", "consent"),
            "ok": F("기타", "boolean"),
        },
    }
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{tmp_path / 's.db'}") as wb:
        before = mapping_files(tmp_path)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("members", spaced)
        assert "' ok'" in one_line(refused.value)
        assert mapping_files(tmp_path) == before
        suggested = wb.mappings.suggest("members")
        assert " ok" not in suggested.fields and "ok" in suggested.fields
    said_yes = {str(r[0]) for r in src(db, "SELECT code FROM members WHERE ` ok` = 1")}
    assert said_yes == {"1", "3", "5", "7"}


def test_suggest_reads_a_table_whose_name_holds_a_percent_sign(
    source: Callable[..., str], tmp_path: Path
) -> None:
    """`discount 50%`, `we``ird%s`: the sample rows `suggest` reads were asked of a table
    spelt `we``ird%%s` (the compiler doubles `%` for a driver that formats the text; the
    source sends it as it is): "A table of the query doesn't exist". Search, targets and
    runs on the table worked."""
    db = source(
        "CREATE TABLE `discount 50%` (code INT PRIMARY KEY, name VARCHAR(20), "
        "tel VARCHAR(20), `rate%` INT)",
        "INSERT INTO `discount 50%` VALUES (1, '회원1', '010-7000-0001', 50)",
        "CREATE TABLE `we``ird%s` (code INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO `we``ird%s` VALUES (1, '회원1')",
    )
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{tmp_path / 's.db'}") as wb:
        for name, columns in (
            ("discount 50%", {"code", "name", "tel", "rate%"}),
            ("we`ird%s", {"code", "name"}),
        ):
            suggested = wb.mappings.suggest(name)
            assert set(suggested.fields) == columns


def rewrite_mapping(root: Path, table: str, mapping: dict[str, Any]) -> None:
    """The mapping file edited by hand: `table`'s mapping replaced in the file holding it."""
    for path in root.rglob("mappings/**/*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if table in data:
            data[table] = mapping
            path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def run_refused(db: str, store: Path, wf: dict[str, Any]) -> HybridwbError:
    """A run of `wf` started and processed on the SQLite `store`: the error that stopped it."""
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{store}") as wb:
        run = wb.store.runs.create(wf["id"], {})
        Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
        with pytest.raises(HybridwbError) as refused:
            wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY)
    return refused.value


def sent_keys(store: Path) -> list[tuple[Any, ...]]:
    """The send records' keys, read with sqlite3."""
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT target_key FROM send_records").fetchall()
