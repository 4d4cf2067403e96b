"""`wb.templates`: the template library, variable extraction, automatic mapping, rendering."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hybridwb.errors import TemplateError, ValidationError
from hybridwb.mapping.resolve import audience_table
from hybridwb.templating import matching, parse
from hybridwb.templating.formatters import FORMATTERS, zero_date_none
from hybridwb.templating.message import (
    CHAR_LIMITS,
    Size,
    byte_limit,
    euc_kr_size,
    max_chars,
    over_limit,
    type_warnings,
)
from hybridwb.validation import checked_calls, short

if TYPE_CHECKING:
    from hybridwb.mapping import MappingService
    from hybridwb.platform.store import Store


@dataclass
class Rendered:
    text: str | None
    size: Size | None
    message_type: str
    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the recipient was skipped (strict mode)


def _row_and_related(row: Any, related: Any) -> None:
    if not isinstance(row, Mapping):
        raise ValidationError(
            f"row must be a dict of field -> value (a search result's row), not "
            f"{type(row).__name__}."
        )
    if related is not None and not isinstance(related, Mapping):
        raise ValidationError(
            f"related must be a dict (from wb.templates.related()), not {type(related).__name__}."
        )


def _report_and_rows(report: Any, rows: Any) -> None:
    if not isinstance(report, matching.Report):
        raise ValidationError(
            f"report must be what wb.templates.automap() returns, not {type(report).__name__}."
        )
    if not isinstance(rows, list):
        raise ValidationError("rows must be a list of dicts (target rows, field -> value).")
    # plain dicts (a run's rows, every batch) told by their types in C; anything else row
    # by row
    if {*map(type, rows)} - {dict} and not all(isinstance(r, Mapping) for r in rows):
        raise ValidationError("rows must be a list of dicts (target rows, field -> value).")


def _check_content(content: Any) -> None:
    if not isinstance(content, str):
        raise ValidationError(
            f"template.content must be the message text, not {type(content).__name__}; "
            "nothing was saved."
        )
    if "\x00" in content:  # no store text holds it, and no record of it could be written
        raise ValidationError(
            "template.content holds a NUL character; remove it. Nothing was saved."
        )
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:  # no store holds it, and no record of it could be written
        raise ValidationError(
            "template.content is not valid text (a lone surrogate); retype it. Nothing was saved."
        ) from None


def evaluate(expression: str, row: dict[str, Any]) -> Any:
    """A small expression over fields (e.g. `monthly_fee * 12`), in the sandbox."""
    return parse.evaluate(expression, row)  # bounded like templates, one-line errors


#: the mapped types whose fields read MySQL's zero date as no value (`zero_date_none`)
DATE_TYPES = ("date", "datetime")


def resolve_values(
    report: matching.Report, row: dict[str, Any], related: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The value of every variable for one target row; the names that had no value.

    `related` is this row's `{path name: value}` from `Resolver.fetch` (see `related()`)."""
    related = related or {}
    values: dict[str, Any] = {}
    empty: list[str] = []
    for status in report.variables:
        value: Any = None
        src = status.source
        var = src.variable if src else None
        if status.status in ("mapped", "type mismatch") and src is not None:
            if var and var.get("source_type") == "constant":
                value = var["source"]
            elif var and var.get("source_type") == "expression":
                value = evaluate(var["source"], row)
            elif src.path is not None and src.path.hops:
                value = related.get(src.path.name)
            elif src.field is not None:
                value = row.get(src.field)
            if src.field_type in DATE_TYPES:
                value = zero_date_none(value)
            formatter = var.get("formatter") if var else None
            if formatter in FORMATTERS and value not in (None, ""):
                value = FORMATTERS[formatter](value)
        if value in (None, ""):
            fallback = matching.fallback_for(status)
            if fallback is not None:
                value = fallback
            else:
                empty.append(status.name)
        values[status.name] = value
    return values, empty


#: how `value_resolver` reads a variable (what `resolve_values` decides per row)
_NONE, _CONSTANT, _EXPRESSION, _RELATED, _FIELD = range(5)


def _plan(report: matching.Report) -> tuple[tuple[str, int, Any, Any, Any], ...]:
    """`(name, kind, what it reads, formatter, fallback)` of each variable: the choices
    `resolve_values` makes for every row, made once."""
    plan = []
    for status in report.variables:
        kind, arg, formatter = _NONE, None, None
        src = status.source
        var = src.variable if src else None
        if status.status in ("mapped", "type mismatch") and src is not None:
            if var and var.get("source_type") == "constant":
                kind, arg = _CONSTANT, var["source"]
            elif var and var.get("source_type") == "expression":
                kind, arg = _EXPRESSION, var["source"]
            elif src.path is not None and src.path.hops:
                kind, arg = _RELATED, src.path.name
            elif src.field is not None:
                kind, arg = _FIELD, src.field
            name: Any = var.get("formatter") if var else None
            formatter = FORMATTERS.get(name)
            if src.field_type in DATE_TYPES and kind in (_FIELD, _RELATED):
                formatter = _no_zero_date(formatter)
        plan.append((status.name, kind, arg, formatter, matching.fallback_for(status)))
    return tuple(plan)


def _no_zero_date(formatter: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """A date field's formatter (or none) reading MySQL's zero date as no value."""
    if formatter is None:
        return zero_date_none
    return lambda value: formatter(zero_date_none(value))


def value_resolver(
    report: matching.Report,
) -> Callable[[dict[str, Any], dict[str, Any] | None], tuple[dict[str, Any], list[str]]]:
    """`resolve_values` for many rows of one report: what each variable reads, its
    formatter and its fallback are looked up once (a run resolves every target's values).
    A report that cannot be planned (a formatter name that is not text) is resolved row by
    row, so it fails as `resolve_values` fails."""

    def each_row(
        row: dict[str, Any], related: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        return resolve_values(report, row, related)

    try:
        plan = _plan(report)
    except Exception:
        return each_row

    def resolve(
        row: dict[str, Any], related: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        related = related or {}
        values: dict[str, Any] = {}
        empty: list[str] = []
        for name, kind, arg, formatter, fallback in plan:
            if kind == _FIELD:
                value = row.get(arg)
            elif kind == _RELATED:
                value = related.get(arg)
            elif kind == _CONSTANT:
                value = arg
            elif kind == _EXPRESSION:
                value = evaluate(arg, row)
            else:
                value = None
            if formatter is not None and value not in (None, ""):
                value = formatter(value)
            if value in (None, ""):
                if fallback is not None:
                    value = fallback
                else:
                    empty.append(name)
            values[name] = value
        return values, empty

    return resolve


@checked_calls("wb.templates")
class TemplateService:
    def __init__(self, store: Callable[[], Store], mappings: MappingService) -> None:
        self._store = store
        self.mappings = mappings
        self._resolver = mappings.resolver
        #: EUC-KR byte limit per message type (the workbench sets it from Settings)
        self.limits: dict[str, int] | None = None

    # -- the library (message_templates) ---------------------------------------------------
    def create(
        self,
        name: str,
        content: str,
        message_type: str = "SMS",
        category: str | None = None,
        *,
        advertising: bool = False,
        sender: str | None = None,
    ) -> dict[str, Any]:
        """Save a template; an advertising one (flagged, or with `(광고)` in its text) must
        follow 정보통신망법 제50조 first."""
        from hybridwb.workflows import advertising as ad_rules

        _check_content(content)
        if ad_rules.is_advertising(content, advertising):
            ad_rules.check(content, sender)
        return self._store().templates.create(
            name=name,
            content=content,
            message_type=message_type,
            category=category,
            variables=parse.names(content),
            advertising=advertising,
            sender=sender,
        )

    def get(self, key: Any) -> dict[str, Any]:
        return self._store().templates.get(key)

    def list(self, **where: Any) -> list[dict[str, Any]]:
        return self._store().templates.list(**where)

    def update(self, key: Any, **fields: Any) -> dict[str, Any]:
        if "content" in fields:
            _check_content(fields["content"])
            fields["variables"] = parse.names(fields["content"])
        merged = {**self.get(key), **fields}
        from hybridwb.workflows import advertising as ad_rules

        if ad_rules.is_advertising(merged.get("content"), bool(merged.get("advertising"))):
            ad_rules.check(merged["content"], merged.get("sender"))
        return self._store().templates.update(key, **fields)

    def delete(self, key: Any) -> None:
        self._store().templates.delete(key)

    # -- analysis --------------------------------------------------------------------------
    @staticmethod
    def variables(text: str) -> builtins.list[parse.VariableUse]:
        return parse.variables(text)

    def individual(self) -> dict[str, dict[str, Any]]:
        return {v["name"]: v for v in self._store().variables.list()}

    def automap(self, text: str, table: str | None = None) -> matching.Report:
        """Each variable -> its source and status, with completeness and warnings.

        `table` defaults to the mapping marked as the audience."""
        name, _ = self.mappings.resolve(table or audience_table(self.mappings.tables()))
        return matching.automap(
            parse.variables(text), name, self._resolver.graph, self.individual()
        )

    def related(
        self, report: matching.Report, rows: builtins.list[dict[str, Any]]
    ) -> builtins.list[dict[str, Any]]:
        """For each target row, `{path name: value}` of the related fields its variables
        need, fetched in bulk by the one resolver (one query per relation hop and chunk of
        keys; a to-many relation gives its latest row by `orderBy`, compared by the server
        as the column's type)."""
        _report_and_rows(report, rows)
        paths = self.related_paths(report)
        if not paths or not rows:
            return [{} for _ in rows]
        return self._resolver.fetch(report.table, rows, paths)

    @staticmethod
    def related_paths(report: matching.Report) -> builtins.list[Any]:
        """The relation paths the report's variables read (`related` reads none without)."""
        return [
            v.source.path
            for v in report.variables
            if v.status in ("mapped", "type mismatch")
            and v.source is not None
            and v.source.path is not None
            and v.source.path.hops
        ]

    def holders(
        self, report: matching.Report, rows: builtins.list[dict[str, Any]]
    ) -> builtins.list[dict[str, tuple[str, str, Any]]]:
        """For each target row, per related path its variables use: `(table, key field, key
        value)` of the related row that holds the value. Fetched by the same resolver walk
        as `related` (a to-many relation's latest row by `orderBy`), so it names the very
        row that filled the variable; a related table with no key is left out."""
        from hybridwb.mapping.graph import Path

        _report_and_rows(report, rows)
        keyed: dict[str, Path] = {}
        for v in report.variables:
            path = v.source.path if v.source is not None else None
            if v.status not in ("mapped", "type mismatch") or path is None or not path.hops:
                continue
            mapping = self._resolver.graph.mapping(path.table)
            key = mapping.key or next(
                (n for n, f in mapping.fields.items() if f.role == "id"), None
            )
            if key is not None and key in mapping.fields:
                keyed[path.name] = Path(path.root, path.hops, key, mapping.fields[key].type)
        if not keyed or not rows:
            return [{} for _ in rows]
        fetched = self._resolver.fetch(report.table, rows, keyed.values())
        return [
            {name: (kp.table, kp.field, got.get(kp.name)) for name, kp in keyed.items()}
            for got in fetched
        ]

    def render(
        self,
        text: str,
        row: dict[str, Any],
        *,
        table: str | None = None,
        mode: str = "strict",
        message_type: str = "SMS",
        related: dict[str, Any] | None = None,
        report: matching.Report | None = None,
    ) -> Rendered:
        """Render for one target row. strict: a missing value skips the recipient;
        fallback: defaults are used and the gap becomes a warning."""
        _row_and_related(row, related)
        one = self.renderer(text, table=table, mode=mode, message_type=message_type, report=report)
        return one(row, related)

    def renderer(
        self,
        text: str,
        *,
        table: str | None = None,
        mode: str = "strict",
        message_type: str = "SMS",
        report: matching.Report | None = None,
        warn: bool = True,
    ) -> Callable[[dict[str, Any], dict[str, Any] | None], Rendered]:
        """`render` for many rows of one template: mapped, checked and compiled once.

        A template that is only text and variables is filled by joining its pieces (what
        Jinja would give, see `parse.pieces`); the size is one EUC-KR encode. `warn=False`
        leaves the per-message warnings out (a run counts sizes by type instead). The
        function returned has `many`, its batch form (`hybridwb.templating.batch`)."""
        if mode not in ("strict", "fallback"):
            raise ValidationError(f"mode must be 'strict' or 'fallback', not {short(mode)}.")
        if not isinstance(message_type, str):
            raise ValidationError(
                f"message_type must be text such as 'SMS', not {short(message_type)}."
            )
        if report is not None and not isinstance(report, matching.Report):
            raise ValidationError(
                f"report must be what wb.templates.automap() returns, not {type(report).__name__}."
            )
        report = report or self.automap(text, table)
        parts = parse.pieces(text)
        longest = max_chars(message_type, self.limits)
        limits = self.limits
        # over_limit() says why a message is refused; these say cheaply whether it is
        most_bytes, most_chars = byte_limit(message_type, limits), CHAR_LIMITS.get(message_type)
        shared = list(report.warnings)
        resolve = value_resolver(report)
        fill = _filler(parts, [v.name for v in report.variables], longest)

        def one(row: dict[str, Any], related: dict[str, Any] | None = None) -> Rendered:
            try:  # (free when it does not raise: a run renders every target through here)
                values, empty = resolve(row, related)
            except AttributeError:
                _row_and_related(row, related)
                raise
            warnings = list(shared) if warn else []
            if empty:
                if mode == "strict":
                    return Rendered(
                        None,
                        None,
                        message_type,
                        values,
                        warnings,
                        skipped=f"missing {', '.join(empty)}",
                    )
                if warn:
                    warnings.append(f"No value for {', '.join(empty)}; rendered as empty.")
                values = {k: ("" if v is None else v) for k, v in values.items()}
            try:
                out = fill(values) if fill is not None else None
                if out is None:
                    out = parse.render(text, values, max_chars=longest)
            except TemplateError as exc:
                if not getattr(exc, "too_long", False):
                    raise
                return Rendered(None, None, message_type, values, warnings, skipped="too long")
            size = euc_kr_size(out, limits)
            over = size.bytes > most_bytes or (most_chars is not None and size.chars > most_chars)
            reason = over_limit(size, message_type, limits) if over else None
            if reason:
                return Rendered(None, size, message_type, values, warnings, skipped=reason)
            if warn:
                warnings += type_warnings(size, message_type, limits)
            return Rendered(out, size, message_type, values, warnings)

        from hybridwb.templating.batch import batch_form  # it builds on this module

        # `one.many(rows, related rows)`: the batch form (`batch.py`), what `one` gives
        # each row (or the error it raises), a run renders its batches with it
        one.__dict__["many"] = batch_form(
            one, report, parts, mode=mode, message_type=message_type, limits=limits, warn=warn
        )
        return one


def _filler(
    parts: tuple[tuple[bool, str], ...] | None, names: list[str], longest: int
) -> Callable[[dict[str, Any]], str | None] | None:
    """`parse.render_pieces(parts, values, longest)` for the values of a report with these
    variable names: when every piece's name is one of them (and none is the `#{}`
    context), each lookup always finds its value, so the pieces are joined with no check;
    else None (the template is rendered some other way)."""
    if parts is None:
        return None
    known = set(names)
    if parse.HASH_CONTEXT in known or any(is_name and p not in known for is_name, p in parts):
        return lambda values: parse.render_pieces(parts, values, longest)
    texts = [p if not is_name else "" for is_name, p in parts]
    slots = tuple((i, p) for i, (is_name, p) in enumerate(parts) if is_name)

    def fill(values: dict[str, Any]) -> str | None:
        out = texts.copy()
        for i, name in slots:
            out[i] = str(values[name])
        text = "".join(out)
        if len(text) > longest:
            raise parse.too_long(longest)
        return text

    return fill
