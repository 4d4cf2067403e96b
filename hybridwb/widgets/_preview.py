"""The variable preview: template editor, live mapping table, recipient picker, rendered text.

Works on any mapped table; the factory picks the audience table from the mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError
from hybridwb.templating.message import LIMITS
from hybridwb.widgets._html import status, table

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench


class VariablePreview(w.VBox):
    def __init__(self, wb: Workbench, table: str | None = None) -> None:
        self.wb = wb
        self._table = table  # None: the audience table from the mapping roles, on first use
        self.editor = w.Textarea(
            placeholder="#{고객명}님, 구독이 #{만료일}에 만료됩니다.",
            layout=w.Layout(width="100%", height="90px"),
        )
        self.message_type = w.Dropdown(
            options=["SMS", "LMS", "alimtalk", "email", "push"], value="SMS", description="유형"
        )
        self.mode = w.ToggleButtons(options=["strict", "fallback"], value="fallback")
        self.mapping = w.HTML()
        self.completeness = w.HTML()
        self.assign_variable = w.Dropdown(options=[], description="변수")
        self.assign_field = w.Dropdown(options=[], description="필드")
        self.assign_button = w.Button(description="연결 (assign)")
        self.customer = w.Text(description="고객 검색", placeholder="이름, 전화번호, 이메일, ID")
        self.customer_button = w.Button(description="찾기", icon="search")
        self.customers = w.Dropdown(options=[], description="고객")
        self.rendered = w.HTML()
        self.size = w.HTML()
        self.warnings = w.HTML()
        self._row: dict[str, Any] | None = None
        self.editor.observe(lambda _: self.update(), names="value")
        self.message_type.observe(lambda _: self.update(), names="value")
        self.mode.observe(lambda _: self.update(), names="value")
        self.assign_button.on_click(
            lambda _: self.assign(self.assign_variable.value, self.assign_field.value)
        )
        self.customer_button.on_click(lambda _: self.find(self.customer.value))
        self.customers.observe(lambda change: self.pick(change["new"]), names="value")
        super().__init__(
            [
                self.editor,
                w.HBox([self.message_type, self.mode]),
                self.completeness,
                self.mapping,
                w.HBox([self.assign_variable, self.assign_field, self.assign_button]),
                w.HBox([self.customer, self.customer_button]),
                self.customers,
                self.rendered,
                self.size,
                self.warnings,
            ]
        )

    @property
    def table(self) -> str:
        return self._table or self.wb.mappings.audience()[0]

    def update(self) -> None:
        text = self.editor.value
        if not text.strip():
            self.mapping.value = self.rendered.value = self.size.value = self.warnings.value = ""
            self.completeness.value = status("템플릿을 입력하세요", "info")
            return
        try:
            report = self.wb.templates.automap(text, self.table)
        except HybridwbError as exc:
            self.completeness.value = status(str(exc), "error")
            self.mapping.value = ""
            return
        self.mapping.value = table(
            report.rows(),
            ["variable", "source", "status"],
            {"variable": "변수", "source": "소스", "status": "상태"},
        )
        kind = "ok" if report.completeness == 100 else "warn"
        self.completeness.value = status(f"매핑 완성도 {report.completeness:g}%", kind)
        unresolved = [v.name for v in report.variables if v.status != "mapped"]
        self.assign_variable.options = unresolved
        fields = []
        for name, mapping in self.wb.mappings.tables().items():
            fields += [
                (f"{mapping.displayName}.{f.displayName} ({name}.{fname})", f"{name}.{fname}")
                for fname, f in mapping.fields.items()
            ]
        self.assign_field.options = fields
        self.warnings.value = "<br>".join(status(m, "warn") for m in report.warnings)
        if self._row is not None:
            self._render(report)

    def _render(self, report: Any) -> None:
        assert self._row is not None
        try:
            related = self.wb.templates.related(report, [self._row])[0]
            out = self.wb.templates.render(
                self.editor.value,
                self._row,
                table=self.table,
                mode=self.mode.value,
                message_type=self.message_type.value,
                related=related,
                report=report,
            )
        except HybridwbError as exc:
            self.rendered.value = status(str(exc), "error")
            return
        if out.skipped:
            self.rendered.value = status(f"발송 제외: {out.skipped}", "warn")
            self.size.value = ""
        else:
            from html import escape

            self.rendered.value = f'<pre class="hybridwb-rendered">{escape(out.text or "")}</pre>'
            limit = LIMITS.get(self.message_type.value)
            self.size.value = status(
                f"{out.size.chars}자 · {out.size.bytes} bytes (EUC-KR){f' / {limit}' if limit else ''} · fits {out.size.fits}",
                "ok" if not out.warnings else "warn",
            )
        self.warnings.value = "<br>".join(status(m, "warn") for m in out.warnings)

    def assign(self, variable: str | None, field: str | None) -> None:
        """Make an individual variable for a missing one, pointing at the chosen field."""
        if not variable or not field:
            return
        try:
            self.wb.variables.create(
                name=variable,
                source_type="field",
                source=field,
                description="assigned in the preview",
            )
        except HybridwbError as exc:
            self.warnings.value = status(str(exc), "error")
            return
        self.update()

    def find(self, term: str) -> None:
        try:
            result = self.wb.search(self.table, term, limit=10)
        except HybridwbError as exc:
            self.warnings.value = status(str(exc), "error")
            return
        key = result.key
        self._rows = {row[key]: row for row in result.raw_rows}
        self.customers.options = [
            (" · ".join(str(v) for v in list(row.values())[:3]), row[key])
            for row in result.raw_rows
        ]

    def pick(self, key: Any) -> None:
        if key is None:
            return
        self._row = self._rows[key]
        self.update()
