"""The mapping editor: per field display name, type, role and flags; the audience roles
(key, recipient, channel, consent paths); validate, save and delete."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError, NotFound
from hybridwb.mapping.model import FIELD_TYPES, ROLES, FieldMapping, TableMapping, parse
from hybridwb.render import format_value
from hybridwb.widgets._html import status, wide

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench


#: column widths shared by the header and the field rows, so they line up
WIDTHS = {
    "field": "190px",
    "display": "180px",
    "type": "100px",
    "role": "120px",
    "filterable": "90px",
    "searchable": "95px",
    "pii": "60px",
    "sample": "220px",
}
HEADERS = {
    "field": "필드 (field)",
    "display": "표시 이름 (display name)",
    "type": "타입 (type)",
    "role": "역할 (role)",
    "filterable": "filterable",
    "searchable": "searchable",
    "pii": "pii",
    "sample": "예시 값 (sample) · 설명",
}


def header_row() -> w.HBox:
    return w.HBox(
        [
            w.HTML(f"<b>{HEADERS[k]}</b>", layout=w.Layout(width=width))
            for k, width in WIDTHS.items()
        ]
    )


class FieldRow(w.HBox):
    def __init__(
        self, name: str, field: dict[str, Any], samples: list[Any], comment: str = ""
    ) -> None:
        self.name = name
        self.samples = samples
        self.comment = comment
        # the full field name, wrapping instead of being cut; the title shows it on hover
        self.label = w.HTML(
            f'<span title="{escape(name)}" style="overflow-wrap:anywhere">{escape(name)}</span>',
            layout=w.Layout(width=WIDTHS["field"]),
        )
        self.display = w.Text(
            value=field.get("displayName", name), layout=w.Layout(width=WIDTHS["display"])
        )
        self.type = w.Dropdown(
            options=list(FIELD_TYPES),
            value=field.get("type", "string"),
            layout=w.Layout(width=WIDTHS["type"]),
        )
        self.role = w.Dropdown(
            options=["", *ROLES],
            value=field.get("role") or "",
            layout=w.Layout(width=WIDTHS["role"]),
        )
        self.filterable = w.Checkbox(
            value=bool(field.get("filterable")),
            indent=False,
            layout=w.Layout(width=WIDTHS["filterable"]),
        )
        self.searchable = w.Checkbox(
            value=bool(field.get("searchable")),
            indent=False,
            layout=w.Layout(width=WIDTHS["searchable"]),
        )
        self.pii = w.Checkbox(
            value=bool(field.get("pii")), indent=False, layout=w.Layout(width=WIDTHS["pii"])
        )
        self.sample = w.HTML(layout=w.Layout(width=WIDTHS["sample"]))
        self.aliases = list(field.get("aliases") or [])
        self.pii.observe(lambda _: self._show_sample(), names="value")
        self.type.observe(lambda _: self._show_sample(), names="value")
        self._show_sample()
        super().__init__(
            [
                self.label,
                self.display,
                self.type,
                self.role,
                self.filterable,
                self.searchable,
                self.pii,
                self.sample,
            ]
        )

    def _show_sample(self) -> None:
        """Sample values as the mapping would show them: typed, masked while pii is ticked."""
        field = FieldMapping(displayName="x", type=self.type.value, pii=self.pii.value)
        shown = ", ".join(t for t in (format_value(v, field) for v in self.samples) if t)
        note = f"<br><small>{escape(self.comment)}</small>" if self.comment else ""
        self.sample.value = (
            f'<span style="color:var(--jp-ui-font-color2,inherit);word-break:keep-all">'
            f"{escape(shown)}</span>{note}"
        )

    def value(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "displayName": self.display.value,
            "type": self.type.value,
            "filterable": self.filterable.value,
            "searchable": self.searchable.value,
            "pii": self.pii.value,
        }
        if self.role.value:
            out["role"] = self.role.value
        if self.aliases:
            out["aliases"] = self.aliases
        return out


class MappingEditor(w.VBox):
    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.table = w.Dropdown(options=[], description="테이블")
        self.display = w.Text(description="표시 이름")
        self.description = w.Text(description="설명", layout=w.Layout(width="500px"))
        self.active = w.Checkbox(description="active", value=True)
        self.audience = w.Checkbox(description="audience (수신 대상)", value=False)
        self.key = w.Dropdown(options=[""], value="", description="key")
        self.recipient = w.Text(description="recipient", placeholder="phone 또는 address.phone")
        self.channel = w.Dropdown(
            options=["sms", "email", "other"], value="sms", description="채널"
        )
        self.consent = w.Text(description="consent", placeholder="marketing_opt_in")
        self.night_consent = w.Text(description="night", placeholder="night_opt_in")
        self.rows: list[FieldRow] = []
        self.fields = w.VBox()
        self.validate_button = w.Button(description="검증 (validate)", icon="check", layout=wide())
        self.save_button = w.Button(description="저장 (save)", icon="save", button_style="primary")
        self.delete_button = w.Button(
            description="삭제 (delete)", icon="trash", button_style="danger"
        )
        self.message = w.HTML()
        self._extra: dict[str, Any] = {}
        self.validate_button.on_click(lambda _: self.validate())
        self.save_button.on_click(lambda _: self.save())
        self.delete_button.on_click(lambda _: self.delete())
        self.drafts: dict[str, dict[str, Any]] = {}  # table -> unsaved edits, kept on switch
        self._clean: dict[str, Any] | None = None  # the editor's value as loaded or saved
        self._current: str | None = None
        self.unsaved = w.HTML()
        self.discard_button = w.Button(
            description="변경 취소 (discard edits)", icon="undo", layout=wide()
        )
        self.discard_button.on_click(lambda _: self.discard())
        self.table.observe(lambda change: self._switch(change["new"]), names="value")
        super().__init__(
            [
                self.table,
                self.display,
                self.description,
                self.active,
                w.HBox([self.audience, self.key, self.channel]),
                w.HBox([self.recipient, self.consent, self.night_consent]),
                header_row(),
                self.fields,
                w.HBox([self.validate_button, self.save_button, self.delete_button]),
                w.HBox([self.unsaved, self.discard_button]),
                self.message,
            ]
        )

    def refresh(self, table: str | None = None) -> None:
        try:
            names = self.wb.source.table_names()
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        self.table.options = names
        if table or names:
            self.table.value = table or names[0]

    @property
    def dirty(self) -> bool:
        """True when the shown mapping has edits that are not saved."""
        return self._clean is not None and self.value() != self._clean

    def _switch(self, table: str | None) -> None:
        """Switching table keeps unsaved edits as a draft (never drops them silently)."""
        old = self._current
        if old is not None and old != table and self.dirty:
            self.drafts[old] = self.value()
        self.load(table)
        if old is not None and old in self.drafts:
            self.message.value = status(
                f"{old}: unsaved edits kept (저장되지 않은 변경 보관) - switch back to save "
                "or discard them",
                "warn",
            )

    def load(self, table: str | None) -> None:
        if not table:
            return
        try:
            try:
                mapping = self.wb.mappings.get(table)
                origin = "saved mapping"
            except NotFound:
                mapping = self.wb.mappings.suggest(table)
                origin = "suggestion (not saved yet)"
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        samples, comments = self._samples(table)
        self._current = table
        self.set_mapping(mapping, samples, comments)
        if table in self.drafts:  # the unsaved edits win over the stored mapping
            self.apply(self.drafts[table], samples, comments)
            origin = "unsaved edits (저장되지 않음)"
        self.message.value = status(f"{table}: {origin}", "info")
        self._show_unsaved()

    def _samples(self, table: str) -> tuple[dict[str, list[Any]], dict[str, str]]:
        """Three sample values and the column comment per column (empty when unreadable)."""
        try:
            rows = self.wb.mappings.sample(table, 3).to_dict("records")
            info = self.wb.mappings.describe(table)
        except HybridwbError:
            return {}, {}
        samples: dict[str, list[Any]] = {}
        for row in rows:
            for col, value in row.items():
                samples.setdefault(str(col), []).append(value)
        return samples, {c.name: c.comment or "" for c in info.columns}

    def set_mapping(
        self,
        mapping: TableMapping,
        samples: dict[str, list[Any]] | None = None,
        comments: dict[str, str] | None = None,
    ) -> None:
        self._extra = mapping.model_dump(mode="json", include={"relations"}, exclude_unset=True)
        self.apply(mapping.model_dump(mode="json", exclude_unset=True), samples, comments)
        self._clean = self.value()

    def apply(
        self,
        data: dict[str, Any],
        samples: dict[str, list[Any]] | None = None,
        comments: dict[str, str] | None = None,
    ) -> None:
        """Show a mapping given as its JSON form (a stored mapping or a kept draft)."""
        samples, comments = samples or {}, comments or {}
        fields = data.get("fields") or {}
        self.display.value = data.get("displayName", "")
        self.description.value = data.get("description", "")
        self.active.value = data.get("isActive", True)
        self.key.options = ["", *fields]
        self.key.value = data.get("key") or ""
        self.audience.value = bool(data.get("audience"))
        self.recipient.value = data.get("recipient") or ""
        self.channel.value = data.get("channel", "sms")
        self.consent.value = data.get("consent") or ""
        self.night_consent.value = data.get("nightConsent") or ""
        self.rows = [
            FieldRow(name, f, samples.get(name, []), comments.get(name, ""))
            for name, f in fields.items()
        ]
        for row in self.rows:
            for control in (
                row.display,
                row.type,
                row.role,
                row.filterable,
                row.searchable,
                row.pii,
            ):
                control.observe(lambda _: self._show_unsaved(), names="value")
        self.fields.children = self.rows

    def _show_unsaved(self) -> None:
        others = sorted(t for t in self.drafts if t != self._current)
        parts = []
        if self.dirty:
            parts.append("unsaved edits (저장되지 않은 변경)")
        if others:
            parts.append("drafts kept for " + ", ".join(others))
        self.unsaved.value = status(" · ".join(parts), "warn") if parts else ""

    def discard(self) -> None:
        """Drop the unsaved edits of the shown table and show its stored mapping again."""
        if self._current is not None:
            self.drafts.pop(self._current, None)
            self.load(self._current)

    def row(self, field: str) -> FieldRow:
        return next(r for r in self.rows if r.name == field)

    def value(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "displayName": self.display.value,
            "description": self.description.value,
            "fields": {r.name: r.value() for r in self.rows},
            "isActive": self.active.value,
        }
        if self.key.value:
            data["key"] = self.key.value
        if self._extra.get("relations"):
            data["relations"] = self._extra["relations"]
        if self.audience.value:
            data["audience"] = True
            data["channel"] = self.channel.value
        for name, control in (
            ("recipient", self.recipient),
            ("consent", self.consent),
            ("nightConsent", self.night_consent),
        ):
            if control.value.strip():
                data[name] = control.value.strip()
        return data

    def validate(self) -> bool:
        try:
            parse({self.table.value: self.value()}, "mapping")
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return False
        self.message.value = status("valid", "ok")
        return True

    def save(self) -> bool:
        if not self.validate():
            return False
        try:
            self.wb.mappings.save(self.table.value, self.value())
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return False
        self.drafts.pop(self.table.value, None)
        self._clean = self.value()
        self._show_unsaved()
        self.message.value = status(
            f"saved {self.table.value} to {self.wb.mappings.path.name}", "ok"
        )
        return True

    def delete(self) -> bool:
        """Delete the table's saved mapping; the editor then shows a fresh suggestion."""
        name = self.table.value
        try:
            self.wb.mappings.delete(name)
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return False
        self.drafts.pop(name, None)
        self.load(name)
        self.message.value = status(f"deleted the mapping of {name}", "ok")
        return True
