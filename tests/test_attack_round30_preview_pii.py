"""Attack round 30 on "customer values never leave" through the target preview.

`wb.targets.preview(...)` returns a `Preview` whose sample is the customers a target holds.
Every other object that carries customer rows (`wb.sql`'s frame, `SearchResult`) masks the
personal columns wherever it is shown; the preview did not: its `repr` (what a notebook
cell ending in `wb.targets.preview(target)` saves), `vars()` and display bundle printed
every phone, e-mail and name of the sample. And the CLI's `targets preview` and the target
preview widget masked a saved query's sample by column name only, so a query that returned
the phone as `tel` (the target's own recipient) or the name as `nm` showed them whole.

Source: the sample shop on MariaDB, read by the read-only account; oracle: the customers'
phones, e-mails and names read with pymysql, searched for in what is shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import hybridwb
from tests.conftest import _admin, install_sample_mappings, ro_url

pytestmark = [pytest.mark.mysql]

#: a saved query returning every personal column under another name; `tel` is the recipient
ALIASED = {
    "sql": "SELECT customer_id, phone AS tel, email AS mail, name AS nm, marketing_opt_in "
    "FROM customers WHERE phone IS NOT NULL AND email IS NOT NULL",
    "recipient": "tel",
}
TARGETS = {
    "table": {"table": "customers"},
    "saved-query": {
        "sql": "SELECT customer_id, phone, email, name, marketing_opt_in FROM customers"
    },
    "saved-query-aliased": ALIASED,
    "saved-query-expression": {
        "sql": "SELECT customer_id, CONCAT('', phone) AS p, marketing_opt_in FROM customers",
        "recipient": "p",
    },
}


@pytest.fixture
def project(mysql_db: str, tmp_path: Path) -> Iterator[str]:
    install_sample_mappings(tmp_path, ro_url(mysql_db))
    yield ro_url(mysql_db).render_as_string(hide_password=False)


def customer_values(db: str) -> set[str]:
    """Every phone, e-mail and name (three characters or more) of the shop, read as root."""
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT phone, email, name FROM `{db}`.customers")
            rows = cur.fetchall()
    finally:
        conn.close()
    return {str(v) for row in rows for v in row if v is not None and len(str(v)) >= 3}


def leaks(values: set[str], shown: dict[str, str]) -> dict[str, list[str]]:
    found = {where: sorted(v for v in values if v in text)[:3] for where, text in shown.items()}
    return {where: hits for where, hits in found.items() if hits}


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
def test_a_previews_repr_vars_and_display_show_no_customer_value(
    project: str, mysql_db: str, target: dict[str, Any]
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    with hybridwb.connect(source=project) as wb:
        preview = wb.targets.preview(target, sample=10)
        sample = preview.sample
        shell = InteractiveShell()
        try:
            bundle = shell.display_formatter.format(preview)[0]
            frame = shell.display_formatter.format(sample)[0]
        finally:
            InteractiveShell.clear_instance()
        shown = {
            "repr": repr(preview),
            "str": str(preview),
            "vars": repr(vars(preview)),
            "repr(sample)": repr(sample),
            **{f"display {mime}": str(data) for mime, data in bundle.items()},
            **{f"display sample {mime}": str(data) for mime, data in frame.items()},
        }
        values = customer_values(mysql_db)
        # the sample holds the values (read explicitly), so each place above could show one
        held = {str(v) for row in sample.to_dict("records") for v in row.values()}
        assert held & values
        assert not leaks(values, shown)


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
def test_cli_targets_preview_masks_a_saved_querys_aliased_columns(
    project: str, mysql_db: str, tmp_path: Path, target: dict[str, Any]
) -> None:
    from hybridwb import cli

    (tmp_path / "target.json").write_text(json.dumps(target), encoding="utf-8")
    env = {"HYBRIDWB_SOURCE_URL": project}
    runner = CliRunner()
    masked = runner.invoke(cli.main, ["targets", "preview", "target.json"], env=env)
    revealed = runner.invoke(cli.main, ["targets", "preview", "target.json", "--reveal"], env=env)
    assert masked.exit_code == revealed.exit_code == 0, masked.output + revealed.output
    values = customer_values(mysql_db)
    assert leaks(values, {"--reveal": revealed.output})  # the sample holds them
    assert not leaks(values, {"output": masked.output})


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS.keys())
def test_the_target_preview_widget_masks_a_saved_querys_aliased_columns(
    project: str, mysql_db: str, target: dict[str, Any]
) -> None:
    from hybridwb import widgets

    with hybridwb.connect(source=project) as wb:
        widget = widgets.target_preview(wb, target)
        widget.run_button.click()
        shown = {part: getattr(widget, part).value for part in ("sample", "quality")}
    assert "<td" in shown["sample"], shown
    assert not leaks(customer_values(mysql_db), shown)


def test_the_recipient_is_masked_even_when_its_field_is_not_marked_pii(
    project: str, mysql_db: str, tmp_path: Path
) -> None:
    """The column messages go to is a phone or an address whatever the mapping's flags say
    (a mapping written by hand often leaves `pii` out)."""
    from hybridwb import cli

    for path in (tmp_path / "mappings").rglob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        data["customers"]["fields"]["phone"]["pii"] = False
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "target.json").write_text(json.dumps({"table": "customers"}), encoding="utf-8")
    phones = {p for p in customer_values(mysql_db) if p[:1] in "0+"}
    with hybridwb.connect(source=project) as wb:
        preview = wb.targets.preview({"table": "customers"}, sample=10)
        assert {str(v) for v in preview.sample["phone"]} & phones  # held, read explicitly
        shown = {"repr": repr(preview)}
    output = CliRunner().invoke(
        cli.main, ["targets", "preview", "target.json"], env={"HYBRIDWB_SOURCE_URL": project}
    )
    shown["cli"] = output.output
    assert output.exit_code == 0, output.output
    assert not leaks(phones, shown)
