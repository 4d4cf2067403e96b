"""The search widget: table picker, keyword box, paged results with checkboxes, picks.

Picks are kept as (table, key): switching the table never re-labels them as the other
table's ids, and `definition()` builds the target on the picks' own table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.render import option_label, render_table
from hybridwb.widgets._html import fields_of, status, wide

if TYPE_CHECKING:
    from hybridwb.search import SearchResult
    from hybridwb.workbench import Workbench

Pick = tuple[str, Any]  # (table, key)


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
        self.prev_button = w.Button(description="< 이전 (previous)", disabled=True, layout=wide())
        self.next_button = w.Button(description="다음 (next) >", disabled=True)
        self.page_info = w.HTML()
        self.grid = w.HTML()
        self.checks: list[w.Checkbox] = []
        self.checklist = w.VBox()
        self.variables_button = w.Button(description="변수 보기 (show variables)", layout=wide())
        self.targets_button = w.Button(description="대상으로 사용 (use as targets)", layout=wide())
        self.clear_button = w.Button(description="선택 비우기 (clear picks)", layout=wide())
        self.picked = w.HTML()
        self.variables = w.HTML()
        self.message = w.HTML()
        self.result: SearchResult | None = None
        self.picks: dict[Pick, str] = {}  # (table, key) -> masked label
        self.targets: list[Pick] = []
        self._pages: list[str | None] = [None]
        self._first_row = 1
        self.search_button.on_click(lambda _: self.run())
        self.term.observe(lambda _: self.run(), names="value")
        self.table.observe(lambda _: self._table_changed(), names="value")
        self.next_button.on_click(lambda _: self.next_page())
        self.prev_button.on_click(lambda _: self.previous_page())
        self.variables_button.on_click(lambda _: self.show_variables())
        self.targets_button.on_click(lambda _: self.use_as_targets())
        self.clear_button.on_click(lambda _: self.clear_picks())
        super().__init__(
            [
                w.HBox([self.table, self.term, self.search_button]),
                self.message,
                self.grid,
                w.HBox([self.prev_button, self.page_info, self.next_button]),
                self.checklist,
                w.HBox([self.variables_button, self.targets_button, self.clear_button]),
                self.picked,
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

    def _table_changed(self) -> None:
        """A new table: the old page and variables go; the picks stay with their table."""
        self.result = None
        self._pages = [None]
        self.grid.value = self.page_info.value = self.variables.value = ""
        self._set_checks([])
        self.next_button.disabled = self.prev_button.disabled = True
        if self.term.value.strip():
            self.run()

    def run(self, page: str | None = None) -> None:
        if page is None:
            self._pages = [None]
        self.variables.value = ""
        if not self.term.value.strip():
            self.message.value = status("검색어를 입력하세요 (type a search term)", "info")
            return
        try:
            self.result = self.wb.search(
                self.table.value, self.term.value, limit=self.limit, page=page
            )
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        result = self.result
        fields = fields_of(self.wb, result.table)
        mapping = self.wb.mappings.tables().get(result.table)
        columns = list(mapping.fields) if mapping else None
        self.grid.value = render_table(result.raw_rows, fields=fields, columns=columns)
        # the key leads every label already: the next two columns say who it is
        shown = columns or (list(result.raw_rows[0]) if result.raw_rows else [])
        labels = [c for c in shown if c != result.key][:2]
        self._set_checks(
            [
                (option_label(row, labels, fields), (result.table, row[result.key]))
                for row in result.raw_rows
            ]
        )
        self.next_button.disabled = result.next_page is None
        self.prev_button.disabled = len(self._pages) <= 1
        page_no = len(self._pages)
        first = (page_no - 1) * self.limit + 1
        last = first + len(result) - 1
        if not len(result):
            span = "no rows"
        elif result.next_page is None:
            span = f"rows {first:,}-{last:,} of {last:,}"
        else:
            span = f"rows {first:,}-{last:,} of more than {last:,}"
        self.page_info.value = status(f"page {page_no} · {span}", "info")
        meta = result.meta
        self.message.value = status(
            f"{len(result)}건 · {meta.get('elapsed_ms', 0):.0f} ms · "
            f"{', '.join(meta.get('predicates', []))}"
            + (" · index" if meta.get("index_used") else ""),
            "ok",
        )

    def _set_checks(self, items: list[tuple[str, Pick]]) -> None:
        self.checks = []
        for label, pick in items:
            box = w.Checkbox(
                value=pick in self.picks,
                description=f"{pick[1]} · {label}",
                indent=False,
                layout=w.Layout(width="100%"),
            )
            box.pick = pick
            box.label = label
            box.observe(lambda change, b=box: self._toggle(b, change["new"]), names="value")
            self.checks.append(box)
        self.checklist.children = self.checks

    def _toggle(self, box: w.Checkbox, on: bool) -> None:
        if on:
            self.picks[box.pick] = box.label
        else:
            self.picks.pop(box.pick, None)
        self._show_picks()

    def _show_picks(self) -> None:
        by_table: dict[str, int] = {}
        for table, _ in self.picks:
            by_table[table] = by_table.get(table, 0) + 1
        self.picked.value = (
            status(
                "선택 (picked): " + ", ".join(f"{n} from {t}" for t, n in by_table.items()),
                "info",
            )
            if by_table
            else ""
        )

    def check(self, *keys: Any) -> None:
        """Tick the rows of the current page with these keys (what a click does)."""
        for box in self.checks:
            if box.pick[1] in keys:
                box.value = True

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
        """The ticked rows of the current page (field names as keys)."""
        if self.result is None:
            return []
        keys = {key for table, key in self.picks if table == self.result.table}
        return [r for r in self.result.raw_rows if r[self.result.key] in keys]

    def show_variables(self) -> None:
        chosen = self.selected()
        if not chosen or self.result is None:
            self.variables.value = status("행을 선택하세요 (tick a row first)", "info")
            return
        values = self.wb.search.variables(self.result.table, chosen[0])
        self.variables.value = render_table(
            [{"변수": k, "값": v} for k, v in values.items()],
            caption=f"{self.result.table} {chosen[0][self.result.key]}",
        )

    def use_as_targets(self) -> None:
        """Keep the picks as (table, key); `definition()` makes them a target definition."""
        if not self.picks:
            why = (
                "검색 후 행을 체크하세요 (search first, then tick rows)"
                if self.result is None
                else "행을 체크하세요 (tick the rows to use as targets)"
            )
            self.message.value = status(why, "warn")
            return
        self.targets = list(self.picks)
        tables = sorted({t for t, _ in self.targets})
        self.message.value = status(
            f"{len(self.targets)}명을 대상으로 선택했습니다 ({', '.join(tables)}); "
            "next: widget.definition() or hybridwb.widgets.target_builder(wb)",
            "ok",
        )

    def definition(self) -> dict[str, Any]:
        """The target definition of the picks, on the table they were picked from."""
        picks = self.targets or list(self.picks)
        tables = {t for t, _ in picks}
        if not picks:
            raise ValidationError("No rows are picked; search, tick rows, then use as targets.")
        if len(tables) > 1:
            raise ValidationError(
                f"The picks come from {len(tables)} tables ({', '.join(sorted(tables))}); "
                "clear the picks of all but one."
            )
        table = tables.pop()
        mapping = self.wb.mappings.get(table)
        if not mapping.key:
            raise ValidationError(f"{table} has no 'key' in its mapping; set one to target it.")
        return {
            "table": table,
            "where": {"field": mapping.key, "op": "in", "value": [k for _, k in picks]},
        }

    def clear_picks(self) -> None:
        self.picks.clear()
        self.targets = []
        for box in self.checks:
            box.value = False
        self._show_picks()
