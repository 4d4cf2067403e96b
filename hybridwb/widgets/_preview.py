"""The variable preview: template editor, live mapping table, recipient picker, rendered text.

Works on any mapped table; the factory picks the audience table from the mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError
from hybridwb.render import mask, option_label, render_table
from hybridwb.templating.masked import masked_inputs
from hybridwb.templating.message import LIMITS
from hybridwb.widgets._html import fields_of, status

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
        self.reveal = w.Checkbox(
            value=False, description="개인정보 표시 (reveal personal data)", indent=False
        )
        self.rendered = w.HTML()
        self.filled = w.HTML()
        self.size = w.HTML()
        self.warnings = w.HTML()
        self._row: dict[str, Any] | None = None
        self._rows: dict[Any, dict[str, Any]] = {}
        self.reveal.observe(lambda _: self.update(), names="value")
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
                w.HBox([self.customers, self.reveal]),
                self.rendered,
                self.size,
                self.filled,
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
            self.filled.value = ""
            self.completeness.value = status("템플릿을 입력하세요", "info")
            return
        try:
            report = self.wb.templates.automap(text, self.table)
        except HybridwbError as exc:
            self.completeness.value = status(str(exc), "error")
            self.mapping.value = ""
            return
        self.mapping.value = render_table(
            report.rows(),
            columns=["variable", "source", "status"],
            labels={"variable": "변수", "source": "소스", "status": "상태"},
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
            holders = self.wb.templates.holders(report, [self._row])[0]
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
        try:
            shown = out if self.reveal.value else self._masked(report, related)
        except HybridwbError:  # the template fails on a masked stand-in: show nothing of it
            shown = None
        fields = fields_of(self.wb, self.table)
        self.filled.value = render_table(
            filled_by(
                report,
                self._row,
                holders,
                shown.values if shown is not None else {},
                fields,
                reveal=self.reveal.value,
            ),
            caption="which row filled each variable",
        )
        if out.skipped:
            self.rendered.value = status(f"발송 제외: {out.skipped}", "warn")
            self.size.value = ""
        else:
            if shown is None or shown.text is None:
                text = "(개인정보를 가린 미리보기를 만들 수 없습니다 — reveal personal data)"
            else:
                text = shown.text
            # the user's limits (Settings), what the size's `fits` was judged by
            limit = (self.wb.templates.limits or LIMITS).get(self.message_type.value)
            assert out.size is not None
            self.rendered.value = bubble(
                text,
                f"{out.size.chars}자 · {out.size.bytes} bytes (EUC-KR)"
                + (f" / {limit}" if limit else "")
                + f" · {self.message_type.value} · fits {out.size.fits}",
            )
            self.size.value = status(
                f"{out.size.bytes} bytes · fits {out.size.fits}",
                "ok" if not out.warnings else "warn",
            )
        self.warnings.value = "<br>".join(status(m, "warn") for m in out.warnings)

    def _masked(self, report: Any, related: dict[str, Any]) -> Any:
        """The message rendered from the row with its pii fields masked (`masked_inputs`),
        so a filter or slice that transforms a value works on the stand-in, never on it."""
        assert self._row is not None
        row, others = masked_inputs(report, self._row, related, self.wb.mappings.tables())
        return self.wb.templates.render(
            self.editor.value,
            row,
            table=self.table,
            mode=self.mode.value,
            message_type=self.message_type.value,
            related=others,
            report=report,
        )

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
        fields = fields_of(self.wb, result.table)
        self._rows = {row[key]: row for row in result.raw_rows}
        mapping = self.wb.mappings.tables().get(result.table)
        shown = list(mapping.fields)[:3] if mapping else list(result.raw_rows[0])[:3]
        self.customers.options = [
            (option_label(row, shown, fields, reveal=self.reveal.value), row[key])
            for row in result.raw_rows
        ]

    def pick(self, key: Any) -> None:
        if key is None:
            return
        self._row = self._rows[key]
        self.update()


BUBBLE = (
    '<div class="hybridwb-bubble" style="max-width:360px;padding:8px 12px;margin:4px 0;'
    "border-radius:14px;background:var(--jp-layout-color2,#eee);"
    "color:var(--jp-ui-font-color1,inherit);white-space:pre-wrap;word-break:keep-all;"
    'overflow-wrap:anywhere">{text}</div>'
    '<div class="hybridwb-bubble-size" style="color:var(--jp-ui-font-color2,inherit);'
    'font-size:var(--jp-ui-font-size0,11px)">{size}</div>'
)


def bubble(text: str, size: str) -> str:
    """The message as the recipient's phone shows it, with its size under it."""
    from html import escape

    return BUBBLE.format(text=escape(text), size=escape(size))


def filled_by(
    report: Any,
    row: dict[str, Any],
    holders: dict[str, tuple[str, str, Any]],
    values: dict[str, Any],
    fields: dict[str, Any],
    *,
    reveal: bool = False,
) -> list[dict[str, Any]]:
    """Per variable: its value, the field it came from, and the row that held it."""
    out = []
    for v in report.variables:
        src = v.source
        value = values.get(v.name)
        where = ""
        field = None
        if src is not None and src.table and src.field:
            if src.table == report.table or src.kind == "field":
                field = fields.get(src.field)
                key = next((k for k in row if k in fields and fields[k].role == "id"), None)
                where = f"{report.table} {row.get(key)}" if key else report.table
            else:
                path = src.path.name if src.path is not None else ""
                held = holders.get(path)
                if held is None:
                    where = src.table  # a related table without a key: named, not pointed at
                elif held[2] is None:
                    where = f"{held[0]} (no related row)"
                else:
                    table, key, value = held
                    key_field = fields.get(f"{path.rsplit('.', 1)[0]}.{key}")
                    if key_field is not None and key_field.pii and not reveal:
                        value = mask(value)
                    where = f"{table} ({key}={value})"
        elif src is not None:
            where = src.describe()
        shown = value
        if field is not None and field.pii and not reveal and value not in (None, ""):
            shown = mask(value)
        out.append(
            {
                "변수 (variable)": v.name,
                "값 (value)": shown,
                "출처 (source)": src.describe() if src is not None else v.status,
                "행 (row)": where,
            }
        )
    return out
