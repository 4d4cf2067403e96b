"""The target preview: definition editor, count, sample and quality statistics."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError
from hybridwb.widgets._html import status, table

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench


class TargetPreview(w.VBox):
    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.editor = w.Textarea(
            layout=w.Layout(width="100%", height="140px"),
            placeholder='{"table": "TABLE", "where": {...}}',
        )
        self.run_button = w.Button(
            description="미리보기 (preview)", icon="eye", button_style="primary"
        )
        self.count = w.HTML()
        self.sample = w.HTML()
        self.quality = w.HTML()
        self.message = w.HTML()
        self.run_button.on_click(lambda _: self.run())
        super().__init__(
            [self.editor, self.run_button, self.message, self.count, self.quality, self.sample]
        )

    def set_definition(self, definition: Any) -> None:
        self.editor.value = (
            definition
            if isinstance(definition, str)
            else json.dumps(definition, ensure_ascii=False, indent=2)
        )

    def run(self) -> None:
        self.count.value = self.sample.value = self.quality.value = ""
        try:
            preview = self.wb.targets.preview(self.editor.value)
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        self.message.value = status("ok", "ok")
        self.count.value = f"<b>대상 {preview.count_text}명</b>"
        self.quality.value = table([{"항목": k, "값": v} for k, v in preview.quality.items()])
        self.sample.value = table(preview.sample.to_dict("records"))
