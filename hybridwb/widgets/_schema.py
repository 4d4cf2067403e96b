"""The schema browser: tables with row estimates; pick one for columns, indexes and samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as w

from hybridwb.errors import HybridwbError
from hybridwb.render import render_table
from hybridwb.widgets._html import fields_of, status

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench


class SchemaBrowser(w.VBox):
    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.tables = w.Select(options=[], rows=8, description="테이블")
        self.columns = w.HTML()
        self.indexes = w.HTML()
        self.sample = w.HTML()
        self.message = w.HTML()
        self.refresh_button = w.Button(description="새로고침", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.tables.observe(lambda change: self.show(change["new"]), names="value")
        super().__init__(
            [
                w.HBox([self.tables, self.refresh_button]),
                self.message,
                self.columns,
                self.indexes,
                self.sample,
            ]
        )

    def refresh(self) -> None:
        try:
            infos = self.wb.mappings.discover()
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        self.tables.options = [
            (
                f"{i.name} (view)" if i.is_view else f"{i.name} (~{i.rows_estimate or 0:,} rows)",
                i.name,
            )
            for i in infos
        ]
        self.message.value = status(f"{len(infos)} tables", "info")

    def show(self, name: str | None) -> None:
        if not name:
            return
        try:
            info = self.wb.mappings.describe(name)
            rows = self.wb.mappings.sample(name, 5).to_dict("records")
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        pk = set(info.primary_key)
        refers = {
            col: f"→ {fk['referred_table']}.{ref}"
            for fk in info.foreign_keys
            for col, ref in zip(fk["constrained_columns"], fk["referred_columns"], strict=False)
        }
        self.columns.value = render_table(
            [
                {
                    "column": c.name,
                    "type": c.type,
                    "null": "YES" if c.nullable else "NO",
                    "key": "PRI" if c.name in pk else refers.get(c.name, ""),
                    "comment": c.comment or "",
                }
                for c in info.columns
            ]
        )
        self.indexes.value = render_table(
            [
                {
                    "index": i.get("name"),
                    "columns": ", ".join(c for c in i.get("column_names") or [] if c),
                    "unique": bool(i.get("unique")),
                }
                for i in info.indexes
            ]
        )
        fields = fields_of(self.wb, name)
        if not fields:  # unmapped: mask by the suggestion's pii flags, never show raw
            try:
                fields = dict(self.wb.mappings.suggest(name).fields)
            except HybridwbError:
                fields = {}
        self.sample.value = render_table(rows, fields=fields, caption=f"{name} sample")
        self.message.value = status(
            f"{name}: {len(info.columns)} columns, {len(info.indexes)} indexes", "ok"
        )
