"""The target preview: definition editor, count, exclusions by reason, sample, SQL.

`show_preview` is shared with the visual target builder, so both say the same things.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError
from hybridwb.render import render_table, with_pii
from hybridwb.validation import load_json
from hybridwb.widgets._html import fields_of, status, wide

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench

POLICY_NOTE = "applied when the run starts (once per recipient, cooldown, frequency cap)"


class PreviewPanel(w.VBox):
    """Count, exclusions by reason, sample (masked) and the generated SQL of a definition."""

    def __init__(self) -> None:
        self.count = w.HTML()
        self.exclusions = w.HTML()
        self.quality = w.HTML()
        self.sample = w.HTML()
        self.sql = w.HTML()
        self.message = w.HTML()
        self.preview: Any = None
        self.excluded: dict[str, Any] = {}
        super().__init__(
            [self.message, self.count, self.exclusions, self.sample, self.quality, self.sql]
        )

    def clear(self) -> None:
        for part in (self.count, self.exclusions, self.quality, self.sample, self.sql):
            part.value = ""
        self.preview = None
        self.excluded = {}

    def show(self, wb: Workbench, definition: Any) -> bool:
        """Preview `definition` through `wb.targets.preview`; False (and the message) on error."""
        self.clear()
        try:
            data = json.loads(definition) if isinstance(definition, str) else dict(definition)
        except (ValueError, TypeError, RecursionError):
            data = definition  # the service gives the clear error (also "nested too deeply")
        try:
            preview = wb.targets.preview(data)
            everyone = None
            # a saved query honours the filter too (round 29): its opt-outs are counted alike
            if isinstance(data, dict) and data.get("exclude_opt_out", True):
                everyone = wb.targets.preview({**data, "exclude_opt_out": False}, sample=1)
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return False
        self.preview = preview
        self.message.value = status("미리보기입니다 - 저장되지 않았습니다 (preview only)", "info")
        self.count.value = f"<b>대상 {escape(preview.count_text)}명 (targets)</b>"
        quality = dict(preview.quality)
        no_recipient = quality.get("missing_recipient", quality.get("missing_phone"))
        opt_out = (everyone.count - preview.count) if everyone is not None else 0
        # of the targets shown, those an advertising run excludes for consent: their own
        # unclear value, or a recipient another customer refused (None: not known here)
        consent = quality.pop("marketing_opt_out", None)
        unknown = quality.pop("marketing_opt_out_unknown", None)
        # those an advertising run at night holds for night consent (theirs or another's)
        night = quality.pop("night_hold", None)
        night_unknown = quality.pop("night_hold_unknown", None)
        night_none = quality.pop("night_hold_not_counted", None)
        self.excluded = {
            "opt-out (수신 거부)": opt_out,
            CONSENT_AT_SEND: "not known (allow_scan=True counts it)"
            if unknown
            else ("" if consent is None else consent),
            NIGHT_AT_SEND: "not known (allow_scan=True counts it)"
            if night_unknown
            else (night_none or "" if night is None else night),
            "no recipient (수신처 없음)": no_recipient if no_recipient is not None else "",
            "policy (발송 정책)": POLICY_NOTE,
        }
        self.exclusions.value = render_table(
            [{"reason": k, "count": v} for k, v in self.excluded.items()],
            caption="exclusions by reason",
        )
        table = data.get("table") if isinstance(data, dict) else None
        table = table or _audience(wb)
        fields = with_pii(fields_of(wb, table), getattr(preview, "pii", ()))
        self.sample.value = render_table(
            preview.sample, fields=fields, caption="sample", max_rows=20
        )
        nulls = quality.pop("nulls", {})
        rows = [{"check": k, "value": v} for k, v in quality.items()]
        rows += [{"check": f"empty {k}", "value": v} for k, v in nulls.items()]
        self.quality.value = render_table(rows, caption="quality")
        sql = getattr(preview, "sql", "") or _planned_sql(wb, data)
        verdict = getattr(preview, "verdict", "")
        self.sql.value = (
            "<details><summary>SQL"
            + (f" · {escape(verdict)}" if verdict else "")
            + f'</summary><pre style="white-space:pre-wrap">{escape(sql)}</pre></details>'
            if sql
            else ""
        )
        return True


#: the exclusions row of the targets an advertising run excludes for consent
CONSENT_AT_SEND = "no marketing consent, ads only (광고 동의 없음)"
#: the row of the targets an advertising run at night (21-08 KST) holds until 08:00
NIGHT_AT_SEND = "held at night, no night consent, ads only (야간 동의 없음)"


def _audience(wb: Workbench) -> str | None:
    try:
        return wb.mappings.audience()[0]
    except (HybridwbError, AttributeError, IndexError):
        return None


def _planned_sql(wb: Workbench, data: Any) -> str:
    """The statement for services whose Preview does not carry its SQL yet."""
    try:
        plan = wb.targets.plan(data)
        return str(wb.targets._select(plan, limit=20)[0])  # type: ignore[attr-defined]
    except (HybridwbError, AttributeError, TypeError):
        return ""


class TargetPreview(w.VBox):
    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.editor = w.Textarea(
            layout=w.Layout(width="100%", height="140px"),
            placeholder='{"table": "TABLE", "where": {...}}',
        )
        self.run_button = w.Button(
            description="미리보기 (preview)", icon="eye", button_style="primary", layout=wide()
        )
        self.panel = PreviewPanel()
        self.run_button.on_click(lambda _: self.run())
        super().__init__([self.editor, self.run_button, self.panel])

    # the panel's parts, as before the panel existed
    @property
    def count(self) -> w.HTML:
        return self.panel.count

    @property
    def sample(self) -> w.HTML:
        return self.panel.sample

    @property
    def quality(self) -> w.HTML:
        return self.panel.quality

    @property
    def message(self) -> w.HTML:
        return self.panel.message

    def set_definition(self, definition: Any) -> None:
        if not isinstance(definition, str):  # too deep for json.dumps: one line instead
            load_json(definition, "The target definition")
        self.editor.value = (
            definition
            if isinstance(definition, str)
            else json.dumps(definition, ensure_ascii=False, indent=2, default=str)
        )

    def run(self) -> None:
        self.panel.show(self.wb, self.editor.value)
