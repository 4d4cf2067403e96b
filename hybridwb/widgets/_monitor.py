"""The monitoring view: the `hybridwb stats` page inside the notebook, refreshable."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as w

from hybridwb.errors import HybridwbError
from hybridwb.observability import collect, render_html
from hybridwb.widgets._html import status

if TYPE_CHECKING:
    from hybridwb.workbench import Workbench


class Monitor(w.VBox):
    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.page = w.HTML()
        self.refresh_button = w.Button(description="새로고침", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([self.refresh_button, self.page])

    def refresh(self) -> None:
        try:
            self.page.value = render_html(collect(self.wb))
        except HybridwbError as exc:
            self.page.value = status(str(exc), "error")
