"""The search widget: table picker, keyword box, paged results, selection, actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError
from hybridwb.widgets._html import status, table

if TYPE_CHECKING:
    from hybridwb.search import SearchResult
    from hybridwb.workbench import Workbench


class SearchWidget(w.VBox):
    def __init__(self, wb: Workbench, limit: int = 20) -> None:
        self.wb = wb
        self.limit = limit
        self.table = w.Dropdown(options=[], description="테이블")
        self.term = w.Text(
            placeholder="이름, 휴대폰번호, 이메일, ID",
            description="검색어",
            continuous_update=False,
        )
        self.search_button = w.Button(description="검색", icon="search", button_style="primary")
        self.prev_button = w.Button(description="◀ 이전", disabled=True)
        self.next_button = w.Button(description="다음 ▶", disabled=True)
        self.grid = w.HTML()
        self.rows = w.SelectMultiple(
            options=[], description="선택", rows=6, layout=w.Layout(width="100%")
        )
        self.variables_button = w.Button(description="변수 보기 (show variables)")
        self.targets_button = w.Button(description="대상으로 사용 (use as targets)")
        self.variables = w.HTML()
        self.message = w.HTML()
        self.result: SearchResult | None = None
        self.targets: list[Any] = []
        self._pages: list[str | None] = [None]
        self.search_button.on_click(lambda _: self.run())
        self.term.observe(lambda _: self.run(), names="value")
        self.next_button.on_click(lambda _: self.next_page())
        self.prev_button.on_click(lambda _: self.previous_page())
        self.variables_button.on_click(lambda _: self.show_variables())
        self.targets_button.on_click(lambda _: self.use_as_targets())
        super().__init__(
            [
                w.HBox([self.table, self.term, self.search_button]),
                self.message,
                self.grid,
                w.HBox([self.prev_button, self.next_button]),
                self.rows,
                w.HBox([self.variables_button, self.targets_button]),
                self.variables,
            ]
        )

    def refresh(self, table: str | None = None) -> None:
        tables = self.wb.mappings.tables()
        self.table.options = [
            (f"{m.displayName} ({name})", name) for name, m in tables.items() if m.isActive
        ]
        active = [name for name, m in tables.items() if m.isActive]
        if table or active:  # by default the audience table, else the first mapped one
            audience = [name for name in active if tables[name].audience]
            self.table.value = table or (audience or active)[0]

    def run(self, page: str | None = None) -> None:
        if page is None:
            self._pages = [None]
        if not self.term.value.strip():
            self.message.value = status("검색어를 입력하세요", "info")
            return
        try:
            self.result = self.wb.search(
                self.table.value, self.term.value, limit=self.limit, page=page
            )
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        result = self.result
        labels = {n: f.displayName for n, f in self.wb.mappings.get(result.table).fields.items()}
        self.grid.value = table(result.raw_rows, list(labels), labels)
        self.rows.options = [
            (" · ".join(str(r.get(c, "")) for c in list(labels)[:3]), i)
            for i, r in enumerate(result.raw_rows)
        ]
        self.next_button.disabled = result.next_page is None
        self.prev_button.disabled = len(self._pages) <= 1
        meta = result.meta
        self.message.value = status(
            f"{len(result)}건 · {meta['elapsed_ms']:.0f} ms · {', '.join(meta['predicates'])}"
            + (" · index" if meta.get("index_used") else ""),
            "ok",
        )

    def next_page(self) -> None:
        if self.result and self.result.next_page:
            self._pages.append(self.result.next_page)
            self.run(self.result.next_page)

    def previous_page(self) -> None:
        if len(self._pages) > 1:
            self._pages.pop()
            pages = self._pages
            self.run(pages[-1])
            self._pages = pages
            self.prev_button.disabled = len(self._pages) <= 1

    def selected(self) -> list[dict[str, Any]]:
        if self.result is None:
            return []
        return [self.result.raw_rows[i] for i in self.rows.value]

    def show_variables(self) -> None:
        chosen = self.selected()
        if not chosen:
            self.variables.value = status("행을 선택하세요", "info")
            return
        values = self.wb.search.variables(self.table.value, chosen[0])
        self.variables.value = table([{"변수": k, "값": v} for k, v in values.items()])

    def use_as_targets(self) -> None:
        """Keep the chosen keys; `widget.definition()` makes them a target definition."""
        assert self.result is not None
        self.targets = [row[self.result.key] for row in self.selected()]
        self.message.value = status(f"{len(self.targets)}명을 대상으로 선택했습니다", "ok")

    def definition(self) -> dict[str, Any]:
        key = self.result.key if self.result else "id"
        return {
            "table": self.table.value,
            "where": {"field": key, "op": "in", "value": list(self.targets)},
        }
