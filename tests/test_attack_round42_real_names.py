"""Attack round 42, "real schemas": names nobody here chose, read by a SELECT-only account.

Each break read a wrong column, sent a wrong message or raised a raw exception on a schema
MariaDB allows:

- a field's display name (or alias) that is another field's name: a path is read by label,
  first field first, so the consent `ok` was read from `ok_old` displayed as "ok" (where
  everyone said yes) and the recipient `tel` from the old number `tel2` displayed as "tel":
  all 8 members were messaged advertising at the wrong numbers, 4 of them had said no. Now
  refused in one line when the mapping is saved or loaded; a field's own name always wins.
- a recipient path through a relation whose last segment is a live column the related
  mapping leaves out, while another field there is displayed by that name: save checked the
  live column, the run read the other field. Now the leaf must be a mapped field's name, at
  save and at every use;
- a relation's column spelt in another case (`ADDR` for `addr`): saved, then every use
  failed; now refused at save with the spelling to use;
- a related table's own column `hybridwb_rank`: the latest-row query labels its rank so,
  and SQLAlchemy raised a raw `InvalidRequestError` (the run failed);
- tables named like hybridwb's own aliases: an audience `j1` whose recipient is reached by
  a join (`j1` is the first join's alias) was "Not unique table/alias"; an audience `r1`
  correlated an EXISTS over its alias `r1` with itself, so `{"exists": "orders"}` counted 0
  members (2 have orders); a search on `k` joined `k` to the union of its branches `AS k`;
- two mapped tables with one display name (one comment, as `suggest` names them): a target
  by that name read the first in the file, an archive; now refused, naming both;
- a relation named like a field (`address` beside the text column `address`): both
  variables were reported mapped and every message of the run failed; now refused at save,
  and a foreign key's relation named so is left out of the graph;
- `{{ self }}` (a column `self`) rendered "<TemplateReference None>" in every message, and
  `{{ none }}` rendered "None" with the variable not even reported: both refused where the
  template is parsed, saying to write `#{self}`, which renders the column;
- `{{ orders.items }}` (a column `items`, `values`, `keys`) rendered "<built-in method items
  of dict object>"; now the value;
- `{{ home address.city }}` said "Check the {{ }} and {% %} pairs"; now it says to write
  `#{home address.city}`, which a run fills.

Source: one MariaDB database for the module, read by the SELECT-only account; oracle: the
same data read as root with pymysql, the mapping file on disk, the store's `send_records`
read with sqlite3.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hybridwb
from hybridwb.errors import HybridwbError, TemplateError, ValidationError
from hybridwb.mapping.model import FieldMapping, TableMapping
from hybridwb.platform.campaigns import Campaigns
from hybridwb.templating import parse
from tests.conftest import mariadb_db
from tests.test_attack_once_round2 import DAY, source_url, src
from tests.test_attack_round30_debug_rows import F
from tests.test_attack_round30_dotted_columns import (
    mapping_files,
    one_line,
    rewrite_mapping,
    run_refused,
    sent_keys,
)

pytestmark = [pytest.mark.mysql]

AD = "(광고) 하이브리드몰\n{{ 이름 }}님, 봄 세일!\n무료수신거부 080-123-4567"
N = 8
DDL = (
    # `ok` is the members' own consent (odd said yes); `ok_old` says yes for all; `tel2` is
    # an old number
    "CREATE TABLE members (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20), "
    "tel2 VARCHAR(20), ok CHAR(1), ok_old CHAR(1))",
    # an audience named like the first join's alias, its phone and consent one join away
    "CREATE TABLE j1 (code INT PRIMARY KEY, name VARCHAR(20), addr INT)",
    "CREATE TABLE j2 (id INT PRIMARY KEY, tel VARCHAR(20), tel2 VARCHAR(20), ok CHAR(1))",
    # an audience named like an EXISTS subquery's alias, and its orders
    "CREATE TABLE r1 (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20))",
    "CREATE TABLE orders (id INT PRIMARY KEY, owner INT NOT NULL, total INT, "
    "hybridwb_rank INT, `self` VARCHAR(20), code INT, items INT)",
    # a table named like the search's union of branches
    "CREATE TABLE k (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20), n INT)",
    # two tables with one comment, as `suggest` names their mappings: `people_old` is the
    # archive of `people`
    "CREATE TABLE people_old (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20)) "
    "COMMENT '사람'",
    "CREATE TABLE people (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20)) COMMENT '사람'",
    # a text column `address` beside the foreign key `address_id` (a relation `address`)
    "CREATE TABLE town (id INT PRIMARY KEY, city VARCHAR(20))",
    "CREATE TABLE dwellers (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20), "
    "address VARCHAR(40), address_id INT, FOREIGN KEY (address_id) REFERENCES town (id))",
    # a column named `self`
    "CREATE TABLE shop (code INT PRIMARY KEY, name VARCHAR(20), tel VARCHAR(20), "
    "`self` VARCHAR(20))",
)
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "members": [
        (i, f"회원{i}", f"010-7000-{i:04d}", f"010-9999-{i:04d}", "Y" if i % 2 else "N", "Y")
        for i in range(1, N + 1)
    ],
    "j1": [(i, f"회원{i}", i) for i in range(1, N + 1)],
    "j2": [
        (i, f"010-7000-{i:04d}", f"010-9999-{i:04d}", "Y" if i % 2 else "N")
        for i in range(1, N + 1)
    ],
    "r1": [(i, f"회원{i}", f"010-7000-{i:04d}") for i in range(1, N + 1)],
    # members 1 and 2 ordered (1 twice); the rank column counts down, unlike the id; an
    # order's own `code` (named like the members' key) is 5
    "orders": [
        (1, 1, 100, 9, "o1", 5, 1),
        (2, 2, 200, 8, "o2", 5, 2),
        (3, 1, 300, 7, "o3", 5, 3),
    ],
    "k": [(i, f"회원{i}", f"010-7000-{i:04d}", N + 1 - i) for i in range(1, N + 1)],
    "people_old": [(i, f"옛회원{i}", f"010-9000-{i:04d}") for i in range(1, N + 1)],
    "people": [(i, f"회원{i}", f"010-7000-{i:04d}") for i in range(1, 4)],
    "town": [(i, f"도시{i}") for i in range(1, N + 1)],
    "dwellers": [(i, f"회원{i}", f"010-7000-{i:04d}", f"주소{i}", N + 1 - i) for i in range(1, 5)],
    "shop": [(i, f"회원{i}", f"010-7000-{i:04d}", f"셀프{i}") for i in range(1, N + 1)],
}
TO_ONE = {"kind": "many-to-one"}
PERSON = {
    "code": F("번호", "number", "id"),
    "name": F("이름", role="name", searchable=True),
    "tel": F("전화", role="phone", pii=True, searchable=True),
}
ORDERS = {
    "displayName": "주문",
    "key": "id",
    "fields": {
        "id": F("주문번호", "number", "id"),
        "owner": F("고객", "number", "reference"),
        "total": F("합계", "number"),
        "hybridwb_rank": F("순위", "number"),
        "self": F("주문메모"),
        "items": F("품목수", "number"),
    },
}
#: `r1`'s members and their orders (the latest by id)
R1 = {
    "displayName": "회원",
    "key": "code",
    "audience": True,
    "recipient": "tel",
    "fields": PERSON,
    "relations": [{"table": "orders", "localField": "code", "foreignField": "owner",
                   "orderBy": "id"}],
}  # fmt: skip
#: members 1 and 2 have orders: the latest (by id) of member 1 is order 3
HAS_ORDERS = "SELECT COUNT(*) FROM r1 WHERE EXISTS (SELECT 1 FROM orders o WHERE o.owner = r1.code)"


@pytest.fixture(scope="module")
def db() -> Iterator[str]:
    yield from mariadb_db("hybridwb_names42", *DDL, rows=ROWS)


def connect(db: str, tmp_path: Path) -> hybridwb.Workbench:
    wb = hybridwb.connect(source=source_url(db), store=f"sqlite:///{tmp_path / 's.db'}")
    wb.store.init()
    return wb


def run_sent(db: str, store: Path, wf: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """A run of `wf` processed to its end on the SQLite `store`: {target key: (recipient,
    content)} of its send records, read with sqlite3."""
    with hybridwb.connect(source=source_url(db), store=f"sqlite:///{store}") as wb:
        run = wb.store.runs.create(wf["id"], {})
        Campaigns(wb.store.backend).start_state(run["id"], "test:1", "manual")
        wb.workflows.process(wf["id"], run["id"], progress=False, now=DAY)
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT target_key, recipient, content FROM send_records").fetchall()
    return {key: (to, text) for key, to, text in rows}


def said_yes(db: str, table: str) -> set[str]:
    return {str(r[0]) for r in src(db, f"SELECT code FROM {table} WHERE ok = 'Y'")}


# -- a display name that is another field's name -----------------------------------------------
LABELLED = {
    "displayName": "회원",
    "key": "code",
    "audience": True,
    "recipient": "tel",
    "consent": "ok",
    # each labelled field listed before the field of that name: the first found was read
    "fields": {
        "code": PERSON["code"],
        "name": PERSON["name"],
        "tel2": F("tel"),
        "tel": PERSON["tel"],
        "ok_old": F("ok"),
        "ok": F("동의"),
    },
}
SOUND = {**LABELLED, "fields": {**LABELLED["fields"], "tel2": F("옛번호"), "ok_old": F("옛동의")}}


@pytest.mark.parametrize(
    "field, label",
    [("tel2", {"displayName": "tel"}), ("ok_old", {"displayName": "ok"}),
     ("tel2", {"displayName": "옛번호", "aliases": ["tel"]})],
    ids=["display-name-of-recipient", "display-name-of-consent", "alias-of-recipient"],
)  # fmt: skip
def test_a_label_that_is_another_fields_name_is_refused_at_save(
    db: str, tmp_path: Path, field: str, label: dict[str, Any]
) -> None:
    mapping = {**SOUND, "fields": {**SOUND["fields"], field: {**F("x"), **label}}}
    with connect(db, tmp_path) as wb:
        before = mapping_files(tmp_path)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("members", mapping)
        text = one_line(refused.value)
        assert repr(field) in text and "display name or alias" in text, text
        assert mapping_files(tmp_path) == before  # nothing was saved


def test_a_mapping_file_edited_to_such_a_label_fails_the_run_and_sends_nothing(
    db: str, tmp_path: Path
) -> None:
    """Before: every member was messaged advertising at the old number `tel2`, the 4 who
    said no (`ok`) included: the consent was read from `ok_old`."""
    store = tmp_path / "s.db"
    with connect(db, tmp_path) as wb:
        wb.mappings.save("members", SOUND)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "labels", target_config={"table": "members"}, message_config={"template": "세일"}
        )
    rewrite_mapping(tmp_path, "members", LABELLED)
    assert "'tel2'" in one_line(run_refused(db, store, wf))
    assert not sent_keys(store)
    # the sound mapping sends to the members who said yes, at their own numbers
    rewrite_mapping(tmp_path, "members", SOUND)
    sent = run_sent(db, store, wf)
    assert set(sent) == said_yes(db, "members") == {"1", "3", "5", "7"}
    phones = {str(c): t for c, t in src(db, "SELECT code, tel FROM members")}
    assert {k: to for k, (to, _) in sent.items()} == {
        k: "+82" + phones[k][1:].replace("-", "") for k in sent
    }


def test_a_field_name_wins_over_a_label_in_every_lookup() -> None:
    """Pure: the lookup paths and variables share reads a field by its own name first, even
    in a mapping built past validation (the first field labelled `tel` was read before)."""
    forged = TableMapping.model_construct(
        displayName="회원",
        fields={"tel2": FieldMapping(displayName="tel"), "tel": FieldMapping(displayName="전화")},
    )
    assert forged.field_by_label("tel") == "tel"
    assert forged.field_by_label("전화") == "tel" and forged.field_by_label("x") is None


# -- a role path through a relation reads the column it names ---------------------------------
J2 = {
    "displayName": "연락처",
    "key": "id",
    "fields": {"id": F("번호", "number", "id"), "tel": F("전화"), "tel2": F("옛번호"), "ok": F("동의")},
}  # fmt: skip
J1 = {
    "displayName": "회원",
    "key": "code",
    "audience": True,
    "recipient": "j2.tel",
    "consent": "j2.ok",
    "fields": {"code": F("번호", "number", "id"), "name": F("이름", role="name"),
               "addr": F("주소", "number", "reference")},
    "relations": [{"table": "j2", "localField": "addr", "foreignField": "id", **TO_ONE}],
}  # fmt: skip
#: `j2` without its column `tel`, its old number displayed as "tel"
J2_TEL_LEFT_OUT = {
    **J2,
    "fields": {"id": F("번호", "number", "id"), "tel2": F("tel"), "ok": F("동의")},
}


def test_a_recipient_path_to_a_column_the_related_mapping_leaves_out_is_refused(
    db: str, tmp_path: Path
) -> None:
    """Save checked that `j2` has a live column `tel`; the run read `j2`'s field labelled
    "tel", the old number `tel2`."""
    with connect(db, tmp_path) as wb:
        wb.mappings.save("j2", J2_TEL_LEFT_OUT)
        before = mapping_files(tmp_path)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("j1", J1)
        text = one_line(refused.value)
        assert "'tel' is not a mapped field of j2" in text, text
        assert mapping_files(tmp_path) == before


def test_a_file_edited_so_the_recipient_leaf_is_only_a_label_fails_the_run(
    db: str, tmp_path: Path
) -> None:
    store = tmp_path / "s.db"
    with connect(db, tmp_path) as wb:
        wb.mappings.save("j2", J2)
        wb.mappings.save("j1", J1)
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "leaf", target_config={"table": "j1"}, message_config={"template": "세일"}
        )
    rewrite_mapping(tmp_path, "j2", J2_TEL_LEFT_OUT)
    assert "tel" in one_line(run_refused(db, store, wf))
    assert not sent_keys(store)  # before: sent to the old numbers `tel2`


@pytest.mark.parametrize(
    "attr, spelt, hint",
    [("localField", "ADDR", "'addr'"), ("foreignField", "ID", "'id'"),
     ("localField", "nope", "fix the name")],
    ids=["local-case", "foreign-case", "unknown"],
)  # fmt: skip
def test_a_relation_column_spelt_unlike_the_schema_is_refused_at_save(
    db: str, tmp_path: Path, attr: str, spelt: str, hint: str
) -> None:
    """MariaDB reads `ADDR` as `addr`; every use of the relation looked `ADDR` up as written
    and failed, after the mapping had saved."""
    relation = {**J1["relations"][0], attr: spelt}
    with connect(db, tmp_path) as wb:
        wb.mappings.save("j2", J2)
        before = mapping_files(tmp_path)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("j1", {**J1, "relations": [relation]})
        text = one_line(refused.value)
        assert f"relations[0].{attr}" in text and hint in text, text
        assert mapping_files(tmp_path) == before


# -- a relation named like a field ---------------------------------------------------------------
TOWN = {
    "displayName": "도시",
    "key": "id",
    "fields": {"id": F("번호", "number", "id"), "city": F("도시명")},
}
DWELLERS = {
    "displayName": "주민",
    "key": "code",
    "audience": True,
    "recipient": "tel",
    "fields": {**PERSON, "address": F("주소"), "address_id": F("주소번호", "number", "reference")},
}


@pytest.mark.parametrize("name", ["address", "주소"], ids=["field-name", "display-name"])
def test_a_relation_named_like_a_field_is_refused_at_save(
    db: str, tmp_path: Path, name: str
) -> None:
    """`{{ address }}` (the text) and `{{ address.city }}` (through the relation) were both
    reported mapped, and every message of the run failed: the values cannot hold both."""
    relation = {"table": "town", "localField": "address_id", "foreignField": "id", "name": name}
    with connect(db, tmp_path) as wb:
        wb.mappings.save("town", TOWN)
        before = mapping_files(tmp_path)
        with pytest.raises(ValidationError) as refused:
            wb.mappings.save("dwellers", {**DWELLERS, "relations": [{**relation, **TO_ONE}]})
        text = one_line(refused.value)
        assert f"path name {name!r}" in text and "'address'" in text, text
        assert mapping_files(tmp_path) == before


def test_a_foreign_key_named_like_a_field_is_no_path_and_suggest_names_it_apart(
    db: str, tmp_path: Path
) -> None:
    """`address_id` -> `address` beside the column `address`: the live schema's relation is
    left out of the graph (the variable is reported missing, not mapped then failed), and
    the relation `suggest` proposes has a name of its own, which a run fills."""
    store = tmp_path / "s.db"
    with connect(db, tmp_path) as wb:
        wb.mappings.save("town", TOWN)
        wb.mappings.save("dwellers", DWELLERS)
        report = wb.templates.automap("{{ address }} {{ address.city }}", "dwellers")
        assert report.get("address").status == "mapped"
        assert report.get("address.city").status == "missing"
        suggested = wb.mappings.suggest("dwellers")
        (relation,) = [r for r in suggested.relations if r.table == "town"]
        assert relation.path_name not in ("address", "주소")
        wb.mappings.save("dwellers", {**DWELLERS, "relations": [relation.model_dump()]})
        text = "{{ address }} #{" + relation.path_name + ".city}"
        wb.templates.create("주소", text)
        wf = wb.workflows.create(
            "town", target_config={"table": "dwellers"}, message_config={"template": "주소"}
        )
    sent = run_sent(db, store, wf)
    oracle = src(db, "SELECT code, address, city FROM dwellers JOIN town ON id = address_id")
    assert {k: c for k, (_, c) in sent.items()} == {
        str(code): f"{address} {city}" for code, address, city in oracle
    }


# -- two tables with one display name ---------------------------------------------------------
def test_a_display_name_two_tables_share_is_refused_not_read_as_the_first(
    db: str, tmp_path: Path
) -> None:
    """The workflow targets "사람" while only `people` is mapped; then its archive is mapped
    too (suggest names both after the comment). Before: the run (and the preview) read the
    first in the file, the archive, and messaged its 8 old customers."""
    store = tmp_path / "s.db"
    with connect(db, tmp_path) as wb:
        wb.mappings.save("people", wb.mappings.suggest("people"))
        wb.templates.create("인사", "{{ 이름 }}님, 안녕하세요.")
        wf = wb.workflows.create(
            "people", target_config={"table": "사람"}, message_config={"template": "인사"}
        )
        mappings = mapping_files(tmp_path)
        assert len(mappings) == 1
        path, text = next(iter(mappings.items()))
        archive = {"people_old": wb.mappings.suggest("people_old").model_dump(exclude_unset=True)}
    Path(path).write_text(  # the archive first in the file
        json.dumps({**archive, **json.loads(text)}, ensure_ascii=False), encoding="utf-8"
    )
    with connect(db, tmp_path) as wb:
        with pytest.raises(ValidationError) as refused:
            wb.targets.preview({"table": "사람"})
        text = one_line(refused.value)
        assert "'people_old'" in text and "'people'" in text and "name the table" in text
        assert (
            wb.targets.preview({"table": "people"}).count
            == src(db, "SELECT COUNT(*) FROM people")[0][0]
        )
    assert "several mapped tables" in one_line(run_refused(db, store, wf))
    assert not sent_keys(store)


# -- tables named like hybridwb's own aliases ---------------------------------------------------
def test_an_audience_named_like_a_join_alias_is_counted_and_sent(db: str, tmp_path: Path) -> None:
    """`j1`'s phone and consent are one join away, and the first join's alias was `j1`."""
    store = tmp_path / "s.db"
    with connect(db, tmp_path) as wb:
        wb.mappings.save("j2", J2)
        wb.mappings.save("j1", J1)
        preview = wb.targets.preview({"table": "j1", "exclude_opt_out": True})
        (expected,) = src(db, "SELECT COUNT(*) FROM j1 JOIN j2 ON j2.id = j1.addr WHERE ok = 'Y'")
        assert preview.count == expected[0] == 4
        wb.templates.create("세일", AD, advertising=True, sender="하이브리드몰")
        wf = wb.workflows.create(
            "alias", target_config={"table": "j1"}, message_config={"template": "세일"}
        )
    sent = run_sent(db, store, wf)
    oracle = src(db, "SELECT j1.code, j2.tel FROM j1 JOIN j2 ON j2.id = j1.addr WHERE ok = 'Y'")
    assert {k: to for k, (to, _) in sent.items()} == {
        str(code): "+82" + tel[1:].replace("-", "") for code, tel in oracle
    }


@pytest.mark.parametrize(
    "where, oracle",
    [({"exists": "orders"}, HAS_ORDERS),
     ({"not_exists": "orders"}, HAS_ORDERS.replace("WHERE EXISTS", "WHERE NOT EXISTS")),
     ({"aggregate": "count", "relation": "orders", "op": "gte", "value": 2},
      "SELECT COUNT(*) FROM r1 WHERE (SELECT COUNT(*) FROM orders o WHERE o.owner = r1.code) >= 2")],
    ids=["exists", "not-exists", "count"],
)  # fmt: skip
def test_an_audience_named_like_a_subquery_alias_is_correlated_with_itself_no_more(
    db: str, tmp_path: Path, where: dict[str, Any], oracle: str
) -> None:
    """Before: `r1` and the EXISTS's alias `r1` were one name, so `r1.code` in the subquery
    was the order's own `code`: 0 members had orders (2 have), and all 8 had none."""
    with connect(db, tmp_path) as wb:
        wb.mappings.save("orders", ORDERS)
        wb.mappings.save("r1", R1)
        counted = wb.targets.preview({"table": "r1", "where": where}).count
    assert counted == src(db, oracle)[0][0]


@pytest.mark.parametrize(
    "term, codes",
    [("3", {3, 6}), ("010-7000-0003", {3}), ("회원5", {5})],
    ids=["id-or-n", "phone", "name"],
)
def test_a_table_named_like_the_search_union_is_searched(
    db: str, tmp_path: Path, term: str, codes: set[int]
) -> None:
    """Before: the union of the search's branches (`3` is a code and an `n`), `AS k`, was
    joined to the table `k`."""
    code = F("번호", "number", "id", searchable=True)
    k = {
        "displayName": "케이",
        "key": "code",
        "fields": {**PERSON, "code": code, "n": F("수", "number", searchable=True)},
    }
    with connect(db, tmp_path) as wb:
        wb.mappings.save("k", k)
        found = {int(r["code"]) for r in wb.search("k", term).raw_rows}
    oracle = {r[0] for r in src(db, "SELECT code, name, tel, n FROM k") if term in map(str, r)}
    assert found == codes == oracle


# -- a related column named like hybridwb's rank label, and a column `self` ---------------------
def test_a_related_column_named_hybridwb_rank_is_rendered_from_the_latest_row(
    db: str, tmp_path: Path
) -> None:
    """Before: a raw `InvalidRequestError` from SQLAlchemy failed the run."""
    store = tmp_path / "s.db"
    text = "{{ 이름 }} #{orders.hybridwb_rank} {{ 주문.합계 }}"
    with connect(db, tmp_path) as wb:
        wb.mappings.save("orders", ORDERS)
        wb.mappings.save("r1", R1)
        wb.templates.create("순위", text)
        wf = wb.workflows.create(
            "rank",
            target_config={"table": "r1", "where": {"exists": "orders"}},
            message_config={"template": "순위"},
        )
    sent = run_sent(db, store, wf)
    latest = src(
        db,
        "SELECT r1.code, r1.name, o.hybridwb_rank, o.total FROM r1 JOIN orders o ON o.id = "
        "(SELECT MAX(id) FROM orders WHERE owner = r1.code)",
    )
    assert {k: c for k, (_, c) in sent.items()} == {
        str(code): f"{name} {rank} {total}" for code, name, rank, total in latest
    }


@pytest.mark.parametrize("column", ["items", "values", "keys"])
def test_a_related_column_named_like_a_dict_method_renders_its_value(column: str) -> None:
    """Before: "<built-in method items of dict object at 0x...>" in every message."""
    text = "{{ orders." + column + " }} {{ 주문." + column + " }}"
    assert parse.render(text, {f"orders.{column}": 3, f"주문.{column}": 4}) == "3 4"
    with pytest.raises(TemplateError):  # not given: undefined, not the method
        parse.render("{{ orders.items }}", {"orders.total": 3})


def test_a_related_column_items_is_sent_from_the_latest_row(db: str, tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    with connect(db, tmp_path) as wb:
        wb.mappings.save("orders", ORDERS)
        wb.mappings.save("r1", R1)
        wb.templates.create("품목", "{{ 이름 }} {{ orders.items }}")
        wf = wb.workflows.create(
            "items",
            target_config={"table": "r1", "where": {"exists": "orders"}},
            message_config={"template": "품목"},
        )
    sent = run_sent(db, store, wf)
    latest = src(
        db,
        "SELECT r1.code, r1.name, o.items FROM r1 JOIN orders o ON o.id = "
        "(SELECT MAX(id) FROM orders WHERE owner = r1.code)",
    )
    assert {k: c for k, (_, c) in sent.items()} == {
        str(code): f"{name} {items}" for code, name, items in latest
    }


@pytest.mark.parametrize(
    "text", ["{{ self }}", "{{ self | upper }}", "{{ none }}", "{{ True }}", "{{ self.x }}"]
)
def test_a_variable_jinja_fills_itself_is_refused_where_the_template_is_parsed(text: str) -> None:
    with pytest.raises(TemplateError) as refused:
        parse.variables(text)
    assert "#{" in one_line(refused.value)


@pytest.mark.parametrize("name", ["home address.city", "주문 내역.total", "50%", "it's", "2023년"])
def test_a_name_jinja_cannot_read_is_refused_saying_how_to_write_it(name: str) -> None:
    """Before: "Check the {{ }} and {% %} pairs", which the template had right."""
    with pytest.raises(TemplateError) as refused:
        parse.variables("안녕 {{ " + name + " }}")
    assert one_line(refused.value).endswith(f"is written #{{{name}}}."), str(refused.value)
    assert parse.names("안녕 #{" + name + "}") == [name]


def test_a_relation_named_with_a_space_fills_a_variable_in_a_run(db: str, tmp_path: Path) -> None:
    """`#{home address.tel}` through the relation `home address` (a table `j2` the mapping
    names so), in every message, the value the related row holds."""
    store = tmp_path / "s.db"
    j1 = {
        **J1,
        "recipient": "home address.tel",
        "consent": "home address.ok",
        "relations": [{**J1["relations"][0], "name": "home address"}],
    }
    with connect(db, tmp_path) as wb:
        wb.mappings.save("j2", J2)
        wb.mappings.save("j1", j1)
        with pytest.raises(TemplateError) as refused:
            wb.templates.create("주소", "{{ 이름 }} {{ home address.tel2 }}")
        assert "#{home address.tel2}" in one_line(refused.value)
        wb.templates.create("주소", "{{ 이름 }} #{home address.tel2}")
        wf = wb.workflows.create(
            "spaced", target_config={"table": "j1"}, message_config={"template": "주소"}
        )
    sent = run_sent(db, store, wf)
    oracle = src(db, "SELECT j1.code, name, tel2 FROM j1 JOIN j2 ON j2.id = j1.addr WHERE ok = 'Y'")
    assert {k: c for k, (_, c) in sent.items()} == {
        str(code): f"{name} {tel2}" for code, name, tel2 in oracle
    }


def test_a_column_named_self_is_rendered_through_the_hash_syntax(db: str, tmp_path: Path) -> None:
    """`{{ self }}` rendered "<TemplateReference None>" in all 8 messages; now the template
    is refused when it is saved, and `#{self}` renders the column."""
    store = tmp_path / "s.db"
    shop = {
        "displayName": "상점",
        "key": "code",
        "audience": True,
        "recipient": "tel",
        "fields": {**PERSON, "self": F("메모")},
    }
    with connect(db, tmp_path) as wb:
        wb.mappings.save("shop", shop)
        with pytest.raises(HybridwbError) as refused:
            wb.templates.create("셀프", "{{ 이름 }} {{ self }}")
        assert "#{self}" in one_line(refused.value)
        wb.templates.create("셀프", "{{ 이름 }} #{self}")
        wf = wb.workflows.create(
            "self", target_config={"table": "shop"}, message_config={"template": "셀프"}
        )
    sent = run_sent(db, store, wf)
    assert {k: c for k, (_, c) in sent.items()} == {
        str(code): f"{name} {memo}"
        for code, name, memo in src(db, "SELECT code, name, `self` FROM shop")
    }
