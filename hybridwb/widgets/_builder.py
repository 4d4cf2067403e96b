"""The visual target builder: conditions without SQL, previewed live, saved into a workflow.

It only builds the target-definition JSON that `wb.targets` accepts and shows what
`wb.targets.preview` says about it; every rule (operators by type, relations, aggregates)
lives in `hybridwb.targets`. What it offers follows the installed definition model: fields of
related tables, aggregates and EXISTS appear when the model knows them.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.mapping.graph import merge_relations
from hybridwb.targets import definition as model
from hybridwb.widgets._html import status, wide
from hybridwb.widgets._targets import PreviewPanel

if TYPE_CHECKING:
    from hybridwb.mapping.model import Relation, TableMapping
    from hybridwb.workbench import Workbench

RELATIVE = set(getattr(model, "RELATIVE", set()))
RELATIONS = hasattr(model, "Aggregate")  # the model takes related paths and aggregates
AGG_OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "between"]
NO_VALUE = {"is_null", "not_null", "exists", "not_exists"}
OP_LABELS = {
    "eq": "= (같음)",
    "ne": "!= (다름)",
    "in": "in (목록, 쉼표로)",
    "not_in": "not in",
    "gt": "> (초과)",
    "gte": ">= (이상)",
    "lt": "< (미만)",
    "lte": "<= (이하)",
    "between": "between (a, b)",
    "prefix": "starts with (시작)",
    "is_null": "is empty (비어 있음)",
    "not_null": "is not empty",
    "within_last": "within the last (최근)",
    "within_next": "within the next (앞으로)",
    "older_than": "older than (이전)",
    "exists": "has any (있음)",
    "not_exists": "has none (없음)",
}


def field_choices(
    tables: dict[str, TableMapping],
    table: str,
    extra: dict[str, list[Relation]] | None = None,
) -> list[tuple[str, str, str]]:
    """(label, code, type) for what a condition can test on `table` (pure); `extra` are the
    relations the live schema's foreign keys add (the resolver's graph has them too).

    Codes: `f:<path>` a field or to-one path, `agg:` and `agg_code`'s JSON an aggregate,
    `rel:<relation>` the existence of related rows."""
    mapping = tables[table]
    out: list[tuple[str, str, str]] = [
        (f"{f.displayName} ({n})", f"f:{n}", f.type) for n, f in mapping.fields.items()
    ]
    if not RELATIONS:
        return out
    for rel in merge_relations(mapping.relations, (extra or {}).get(table, [])):
        other = tables.get(rel.table)
        if other is None:
            continue
        name = rel.path_name
        if rel.kind == "many-to-one":
            out += [
                (f"{other.displayName}.{f.displayName} ({name}.{n})", f"f:{name}.{n}", f.type)
                for n, f in other.fields.items()
            ]
            continue
        out.append((f"{other.displayName}: 있음/없음 (exists {name})", f"rel:{name}", "relation"))
        out.append(
            (f"{other.displayName} 건수 (count of {name})", agg_code("count", name, ""), "number")
        )
        for n, f in other.fields.items():
            if f.type == "number" and f.role not in ("id", "reference"):
                for fn in ("sum", "avg", "min", "max"):
                    out.append(
                        (
                            f"{other.displayName}.{f.displayName} {fn} ({fn} of {name}.{n})",
                            agg_code(fn, name, n),
                            "number",
                        )
                    )
            elif f.type in ("date", "datetime"):
                for fn in ("min", "max"):
                    out.append(
                        (
                            f"{other.displayName}.{f.displayName} {fn} ({fn} of {name}.{n})",
                            agg_code(fn, name, n),
                            f.type,
                        )
                    )
    return out


def agg_code(fn: str, relation: str, field: str) -> str:
    """The builder's code of an aggregate: its parts as JSON, so a relation or field whose
    name holds a colon is read back whole (`agg:fn:relation:field` split a relation
    `a:b` into relation `a` and field `b:…`)."""
    return "agg:" + json.dumps([fn, relation, field], ensure_ascii=False)


def ops_for(code: str, ftype: str) -> list[str]:
    if code.startswith("rel:"):
        return ["exists", "not_exists"]
    if code.startswith("agg:"):
        return AGG_OPS
    allowed = model.OPS_BY_TYPE.get(ftype, set())
    return [op for op in OP_LABELS if op in allowed]


def typed(text: str, ftype: str) -> Any:
    """One value typed in the box as the field's type (left as text when it does not parse,
    so the target service answers with its one clear error)."""
    text = text.strip()
    if ftype == "boolean":
        low = text.lower()
        if low in ("1", "true", "yes", "y", "예"):
            return True
        if low in ("0", "false", "no", "n", "아니오"):
            return False
        return text
    if ftype == "number":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text
    return text


def condition(code: str, ftype: str, op: str, value: str, unit: str, window: int) -> dict[str, Any]:
    """The definition node for one row of the builder (pure)."""
    if code.startswith("rel:"):
        return {op: code[4:]}
    if op in ("in", "not_in", "between"):
        parts = [typed(p, ftype) for p in value.split(",") if p.strip()]
        val: Any = parts
    elif op in RELATIVE:
        val = {unit: typed(value, "number")}
    else:
        val = typed(value, ftype)
    if code.startswith("agg:"):
        fn, relation, field = json.loads(code[4:])
        node: dict[str, Any] = {"aggregate": fn, "relation": relation}
        if field:
            node["field"] = field
        node.update(op=op, value=val)
        if window:
            node["within_last"] = {"days": window}
        return node
    node = {"field": code[2:], "op": op}
    if op not in NO_VALUE:
        node["value"] = val
    return node


class ConditionRow(w.HBox):
    def __init__(self, choices: list[tuple[str, str, str]], on_change: Any) -> None:
        self.types = {code: t for _, code, t in choices}
        self.field = w.Dropdown(
            options=[(label, code) for label, code, _ in choices],
            layout=w.Layout(width="300px"),
        )
        self.op = w.Dropdown(options=[], layout=w.Layout(width="170px"))
        self.value = w.Text(placeholder="값 (value)", layout=w.Layout(width="180px"))
        self.unit = w.Dropdown(
            options=[("일 (days)", "days"), ("시간 (hours)", "hours")],
            value="days",
            layout=w.Layout(width="100px", display="none"),
        )
        self.window = w.BoundedIntText(
            value=0,
            min=0,
            max=36_600,
            description="최근 N일",
            layout=w.Layout(width="150px", display="none"),
        )
        self.remove = w.Button(description="삭제", icon="times", layout=w.Layout(width="70px"))
        self.field.observe(lambda _: self._field_changed(), names="value")
        self.op.observe(lambda _: self._op_changed(), names="value")
        self._field_changed()
        for control in (self.field, self.op, self.value, self.unit, self.window):
            control.observe(lambda _: on_change(), names="value")
        super().__init__(
            [self.field, self.op, self.value, self.unit, self.window, self.remove],
            layout=w.Layout(flex_flow="row wrap"),
        )

    @property
    def ftype(self) -> str:
        return self.types.get(self.field.value or "", "string")

    def _field_changed(self) -> None:
        code = self.field.value or ""
        self.op.options = [(OP_LABELS[o], o) for o in ops_for(code, self.ftype)]
        self.window.layout.display = "" if code.startswith("agg:") else "none"
        self._op_changed()

    def _op_changed(self) -> None:
        op = self.op.value
        self.value.layout.display = "none" if op in NO_VALUE else ""
        self.unit.layout.display = "" if op in RELATIVE else "none"
        if op in RELATIVE:
            self.value.placeholder = "N"
        elif op == "between":
            self.value.placeholder = "a, b"
        else:
            self.value.placeholder = "값 (value)"

    def node(self) -> dict[str, Any]:
        return condition(
            self.field.value or "",
            self.ftype,
            self.op.value or "",
            self.value.value,
            self.unit.value,
            self.window.value,
        )


class GroupBox(w.VBox):
    def __init__(self, builder: TargetBuilder) -> None:
        self.builder = builder
        self.join = w.ToggleButtons(
            options=[("AND (모두)", "all"), ("OR (하나라도)", "any")], value="all"
        )
        self.rows: list[ConditionRow] = []
        self.add_button = w.Button(
            description="조건 추가 (add condition)", icon="plus", layout=wide()
        )
        self.add_button.on_click(lambda _: self.add())
        self.join.observe(lambda _: builder.changed(), names="value")
        self.box = w.VBox()
        super().__init__(
            [self.join, self.box, self.add_button],
            layout=w.Layout(border="1px solid var(--jp-border-color2, #ccc)", padding="4px"),
        )

    def add(self) -> ConditionRow:
        row = ConditionRow(self.builder.choices, self.builder.changed)
        row.remove.on_click(lambda _, r=row: self.drop(r))
        self.rows.append(row)
        self.box.children = self.rows
        return row

    def drop(self, row: ConditionRow) -> None:
        self.rows.remove(row)
        self.box.children = self.rows
        self.builder.changed()

    def node(self) -> dict[str, Any] | None:
        nodes = [r.node() for r in self.rows]
        if not nodes:
            return None
        return nodes[0] if len(nodes) == 1 else {self.join.value: nodes}


class TargetBuilder(w.VBox):
    def __init__(self, wb: Workbench) -> None:
        self.wb = wb
        self.choices: list[tuple[str, str, str]] = []
        self.table = w.Dropdown(options=[], description="대상 테이블")
        self.join = w.ToggleButtons(options=[("그룹 AND", "all"), ("그룹 OR", "any")], value="all")
        self.groups: list[GroupBox] = []
        self.groups_box = w.VBox()
        self.add_group_button = w.Button(
            description="그룹 추가 (add group)", icon="plus-square", layout=wide()
        )
        self.opt_out = w.Checkbox(
            value=True, description="수신 거부 제외 (exclude opt-out)", indent=False
        )
        self.live = w.Checkbox(value=True, description="실시간 (live count)", indent=False)
        self.picks_info = w.HTML()
        self.clear_picks_button = w.Button(description="선택 비우기 (clear picks)", layout=wide())
        self.preview_button = w.Button(
            description="미리보기 (preview)", icon="eye", button_style="primary", layout=wide()
        )
        self.json = w.HTML()
        self.workflow = w.Combobox(placeholder="workflow name", description="워크플로")
        self.save_button = w.Button(
            description="워크플로에 저장 (save)", icon="save", layout=wide()
        )
        self.message = w.HTML()
        self.panel = PreviewPanel()
        self.picks: list[tuple[str, Any]] = []
        self._quiet = False
        self._previewed: dict[str, Any] | None = None
        self.table.observe(lambda _: self._table_changed(), names="value")
        self.join.observe(lambda _: self.changed(), names="value")
        self.opt_out.observe(lambda _: self.changed(), names="value")
        self.add_group_button.on_click(lambda _: self.add_group())
        self.clear_picks_button.on_click(lambda _: self.clear_picks())
        self.preview_button.on_click(lambda _: self.run())
        self.save_button.on_click(lambda _: self.save())
        super().__init__(
            [
                self.table,
                w.HBox([self.picks_info, self.clear_picks_button]),
                self.join,
                self.groups_box,
                self.add_group_button,
                w.HBox([self.opt_out, self.live, self.preview_button]),
                self.message,
                self.panel,
                self.json,
                w.HBox([self.workflow, self.save_button]),
            ]
        )

    # -- set-up (the factory calls refresh; the constructor never reads anything) ----------
    def refresh(self, table: str | None = None) -> None:
        try:
            tables = self.wb.mappings.tables()
            names = [n for n, m in tables.items() if m.isActive]
            audience = [n for n in names if tables[n].audience]
            self.workflow.options = [str(wf["name"]) for wf in self.wb.workflows.list()]
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        self.table.options = [(f"{tables[n].displayName} ({n})", n) for n in names]
        chosen = table or next(iter(audience or names), None)
        if chosen is not None:
            self.table.value = chosen
            self._table_changed()

    def _table_changed(self) -> None:
        table = self.table.value
        if not table:
            return
        try:
            tables = self.wb.mappings.tables()
            extra = self.wb.mappings.resolver.foreign_relations(tables)
            self.choices = field_choices(tables, table, extra)
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return
        self._quiet = True
        self.groups = []
        self.add_group()
        self._quiet = False
        self._show_picks()
        self.changed()

    def add_group(self) -> GroupBox:
        group = GroupBox(self)
        self.groups.append(group)
        self.groups_box.children = self.groups
        return group

    def condition(self, group: int = 0) -> ConditionRow:
        """Add a condition row (to group `group`, made if missing) and return it."""
        while len(self.groups) <= group:
            self.add_group()
        return self.groups[group].add()

    # -- picks from the search widget -----------------------------------------------------
    def use_picks(self, picks: Any) -> None:
        """Target the rows picked in search (a SearchWidget or (table, key) pairs); they stay
        ids of their own table: the builder switches to it, and refuses them on another."""
        try:
            pairs = list(getattr(picks, "targets", None) or getattr(picks, "picks", None) or picks)
        except TypeError:  # not iterable
            pairs = [None]
        if any(not isinstance(p, tuple) or len(p) != 2 for p in pairs):
            raise ValidationError("use_picks takes the search widget or (table, key) pairs.")
        tables = {t for t, _ in pairs}
        if len(tables) > 1:
            raise ValidationError(
                f"The picks come from {len(tables)} tables ({', '.join(sorted(tables))}); "
                "clear the picks of all but one in the search widget."
            )
        self.picks = pairs
        if pairs and self.table.value != pairs[0][0]:
            self.table.value = pairs[0][0]
        self._show_picks()
        self.changed()

    def clear_picks(self) -> None:
        self.picks = []
        self._show_picks()
        self.changed()

    def _show_picks(self) -> None:
        if not self.picks:
            self.picks_info.value = ""
            return
        table = self.picks[0][0]
        kind = "info" if table == self.table.value else "warn"
        extra = "" if kind == "info" else f" - not {self.table.value}: switch back or clear them"
        self.picks_info.value = status(
            f"검색에서 선택한 {len(self.picks)}명 ({table} ids){extra}", kind
        )

    # -- the definition ---------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        """The target definition the controls describe (what is previewed and saved)."""
        table = self.table.value
        if not table:
            raise ValidationError("Choose the audience table first.")
        nodes = [n for n in (g.node() for g in self.groups) if n is not None]
        where: dict[str, Any] | None = None
        if nodes:
            where = nodes[0] if len(nodes) == 1 else {self.join.value: nodes}
        if self.picks:
            picked = self.picks[0][0]
            if picked != table:
                raise ValidationError(
                    f"The {len(self.picks)} picked rows are ids of {picked}, not {table}; "
                    f"switch the table back to {picked} or clear the picks."
                )
            key = self.wb.mappings.get(table).key
            if not key:
                raise ValidationError(f"{table} has no 'key' in its mapping; set one first.")
            keys = {"field": key, "op": "in", "value": [k for _, k in self.picks]}
            where = keys if where is None else {"all": [keys, where]}
        out: dict[str, Any] = {"table": table}
        if where is not None:
            out["where"] = where
        if not self.opt_out.value:
            out["exclude_opt_out"] = False
        return out

    def changed(self) -> None:
        if self._quiet:
            return
        try:
            data = self.definition()
        except HybridwbError as exc:
            self.message.value = status(str(exc), "warn")
            self.json.value = ""
            self.panel.clear()
            return
        self.json.value = (
            "<details><summary>definition (JSON)</summary><pre>"
            + escape(json.dumps(data, ensure_ascii=False, indent=2, default=str))
            + "</pre></details>"
        )
        self.message.value = ""
        if self.live.value and self.table.value and data != self._previewed:
            self.run()  # one preview per distinct definition, not one per control event

    def run(self) -> bool:
        """Preview the definition: count, exclusions by reason, sample, SQL."""
        try:
            data = self.definition()
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            self.panel.clear()
            return False
        self._previewed = data
        return self.panel.show(self.wb, data)

    @property
    def count(self) -> int | None:
        return self.panel.preview.count if self.panel.preview is not None else None

    def save(self) -> bool:
        """Save the definition as the chosen workflow's target (the workflow must exist)."""
        name = self.workflow.value.strip()
        if not name:
            self.message.value = status("워크플로 이름을 입력하세요 (name the workflow)", "warn")
            return False
        try:
            data = self.definition()
            self.wb.targets.validate(data)
            self.wb.workflows.update(name, target_config=data)
        except HybridwbError as exc:
            self.message.value = status(str(exc), "error")
            return False
        self.message.value = status(f"saved the target into workflow {name}", "ok")
        return True
