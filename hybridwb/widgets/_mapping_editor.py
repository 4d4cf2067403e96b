"""The mapping editor: per field display name, type, role and flags; the audience roles
(key, recipient, channel, consent paths); validate, save and delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError, NotFound
from hybridwb.mapping.model import FIELD_TYPES, ROLES, TableMapping, parse
from hybridwb.widgets._html import status

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench


class FieldRow(w.HBox):
    def __init__(self, name: str, field: Any) -> None:
        self.name = name
        self.display = w.Text(
            value=field.displayName, description=name, layout=w.Layout(width="320px")
        )
        self.type = w.Dropdown(
            options=list(FIELD_TYPES), value=field.type, layout=w.Layout(width="110px")
        )
        self.role = w.Dropdown(
            options=["", *ROLES], value=field.role or "", layout=w.Layout(width="110px")
        )
        self.filterable = w.Checkbox(value=field.filterable, description="filterable", indent=False)
        self.searchable = w.Checkbox(value=field.searchable, description="searchable", indent=False)
        self.pii = w.Checkbox(value=field.pii, description="pii", indent=False)
        self.aliases = list(field.aliases)
        super().__init__(
            [self.display, self.type, self.role, self.filterable, self.searchable, self.pii]
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
        self.validate_button = w.Button(description="검증 (validate)", icon="check")
        self.save_button = w.Button(description="저장 (save)", icon="save", button_style="primary")
        self.delete_button = w.Button(
            description="삭제 (delete)", icon="trash", button_style="danger"
        )
        self.message = w.HTML()
        self._extra: dict[str, Any] = {}
        self.validate_button.on_click(lambda _: self.validate())
        self.save_button.on_click(lambda _: self.save())
        self.delete_button.on_click(lambda _: self.delete())
        self.table.observe(lambda change: self.load(change["new"]), names="value")
        super().__init__(
            [
                self.table,
                self.display,
                self.description,
                self.active,
                w.HBox([self.audience, self.key, self.channel]),
                w.HBox([self.recipient, self.consent, self.night_consent]),
                self.fields,
                w.HBox([self.validate_button, self.save_button, self.delete_button]),
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
        self.set_mapping(mapping)
        self.message.value = status(f"{table}: {origin}", "info")

    def set_mapping(self, mapping: TableMapping) -> None:
        self.display.value = mapping.displayName
        self.description.value = mapping.description
        self.active.value = mapping.isActive
        self._extra = mapping.model_dump(mode="json", include={"relations"}, exclude_unset=True)
        self.key.options = ["", *mapping.fields]
        self.key.value = mapping.key or ""
        self.audience.value = mapping.audience
        self.recipient.value = mapping.recipient or ""
        self.channel.value = mapping.channel
        self.consent.value = mapping.consent or ""
        self.night_consent.value = mapping.nightConsent or ""
        self.rows = [FieldRow(name, f) for name, f in mapping.fields.items()]
        self.fields.children = self.rows

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
        self.load(name)
        self.message.value = status(f"deleted the mapping of {name}", "ok")
        return True
