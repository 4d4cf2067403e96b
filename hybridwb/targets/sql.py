"""Target conditions -> a SQLAlchemy Core WHERE clause (no SQL text is written here).

Identifiers come from the relation graph and are checked against the mapping and the live
schema (`Resolver.table` / `Resolver.column`); values are bound parameters; relative dates
become bound datetimes computed from the `now` the caller passes (tests inject time).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError as PydanticError

from hybridwb.errors import ValidationError
from hybridwb.mapping.graph import Hop
from hybridwb.mapping.resolve import Resolver, Selection, real_date, text_date
from hybridwb.search.predicates import LIKE_ESCAPE, escape_like, holds
from hybridwb.targets.consent import NO_SPELLINGS, YES_SPELLINGS, temporal_type, type_family
from hybridwb.targets.definition import (
    OPS_BY_TYPE,
    Aggregate,
    Condition,
    Exists,
    Group,
    Span,
)
from hybridwb.validation import short

_CMP = {
    "eq": "__eq__",
    "ne": "__ne__",
    "gt": "__gt__",
    "gte": "__ge__",
    "lt": "__lt__",
    "lte": "__le__",
}
#: operators comparing a text field with a text the user gives (`Builder._held`)
_TEXT_OPS = ("eq", "ne", "in", "not_in", "prefix")
_EQ = ("eq", "ne")
_AGG: dict[str, Callable[..., Any]] = {
    "count": sa.func.count,
    "sum": sa.func.sum,
    "min": sa.func.min,
    "max": sa.func.max,
}
_AGG["avg"] = sa.func.avg


def coerce(value: Any, ftype: str, where: str) -> Any:
    """A condition value as the field's type, or one clear error."""
    try:
        if ftype == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            # a number as itself (a float's text decided int or float: `1e-05` has no `.`
            # and became `int(1e-05)`, 0); text as a float when it has a point or exponent
            number: int | float
            if isinstance(value, float):
                number = float.__float__(value)
            elif isinstance(value, int):
                number = int.__int__(value)
            else:
                text = str.__str__(value)
                number = float(text) if any(c in text for c in ".eE") else int(text)
            if not math.isfinite(number) or not -(2**63) <= number < 2**63:
                raise ValueError  # NaN, infinity or beyond a 64-bit column
            return number
        if ftype == "date":
            if isinstance(value, dt.datetime):
                return value.date()
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if ftype == "datetime":
            if isinstance(value, dt.datetime):
                return value
            return dt.datetime.fromisoformat(str(value))
        if ftype == "boolean":
            if isinstance(value, bool) or value in (0, 1):
                return int(bool(value))
            raise ValueError
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError
        # the text itself, never a subclass's `__str__`
        return str.__str__(value) if isinstance(value, str) else str(int.__int__(value))
    except (ValueError, TypeError, OverflowError):
        raise ValidationError(f"{where}: {short(value)} is not a {ftype}; fix the value.") from None


def truthy(column: Any, ftype: str, live_type: str | None = None) -> Any:
    """`column` holds no clear no (`consent.consent_of`): a yes, or a value the run then
    excludes and counts as unclear (`policies.UNCLEAR_CONSENT`) rather than one left out
    of the frozen set unseen. A number is kept when not zero, as MySQL's `WHERE flag` (a
    TINYINT(1) may hold 2 or -1, a DECIMAL 1.0); text unless it spells no; NULL never.

    Which of the two comparisons is made follows the column's type as the server states
    it (`live_type`) when it states one, the mapping's `ftype` otherwise: a CHAR 'Y'/'N'
    flag mapped as boolean compared `!= 0` read every 'Y' as the number 0, and every
    consenting customer was left out unseen (round 53)."""
    family = type_family(live_type or "")
    if family == "text":
        ftype = "string"
    elif family in ("number", "decimal", "floating-point", "BIT"):
        ftype = "number"
    if ftype in ("boolean", "number"):
        return column != 0
    # as text first: MySQL's LOWER() leaves a binary string (a VARBINARY flag, which the
    # run decodes and reads) as it is, so 'N' would not be 'n'. Compared by its UTF-8 bytes
    # (HEX, in MySQL and SQLite alike): the connection's collation folds accents, so 'ñ'
    # or 'nó' (unclear to the run) would equal 'n' or 'no' and be left out unseen
    text = sa.func.lower(sa.func.trim(sa.cast(column, sa.CHAR)))
    return sa.func.hex(text).not_in(_NO_HEX)


def spelt(column: Any, spellings: tuple[str, ...]) -> Any:
    """`column`, as text trimmed and lower-cased, is one of `spellings` (compared by its
    UTF-8 bytes, as `truthy`)."""
    text = sa.func.lower(sa.func.trim(sa.cast(column, sa.CHAR)))
    return sa.func.hex(text).in_(tuple(s.encode("utf-8").hex().upper() for s in spellings))


#: `NO_SPELLINGS` as MySQL's and SQLite's HEX() of their UTF-8 text gives them
_NO_HEX = tuple(s.encode("utf-8").hex().upper() for s in NO_SPELLINGS)
#: `YES_SPELLINGS` the same way
_YES_HEX = tuple(s.encode("utf-8").hex().upper() for s in YES_SPELLINGS)


def not_surely_yes(column: Any) -> Any:
    """`column` may hold something other than a clear yes (`consent.consent_of`): every row
    whose value is not a clear yes matches, and a few that are (a DECIMAL 1.0, a BIT 1, a
    yes padded with a tab), which the caller reads with `consent_of` again. A clear yes the
    server reads as one spelling of `YES_SPELLINGS` (an integer 1, 'Y', '동의') does not
    match, compared by its UTF-8 bytes as `truthy` does (a collation that folds accents
    would make 'ÿ', unclear to the run, equal 'y'). NULL matches: it is no consent."""
    text = sa.func.lower(sa.func.trim(sa.cast(column, sa.CHAR)))
    return sa.or_(column.is_(None), sa.func.hex(text).not_in(_YES_HEX))


def by_day(col: Any, op: str, day: dt.date) -> Any:
    """`col <op> day` for a DATETIME / TIMESTAMP a mapping calls a date, by its day: MariaDB
    (and SQLite's text) reads a date as its midnight, so "logged in on 2026-02-20" chose
    only those of 00:00:00, "not on" and "after" it those of 09:00 that day (round 61). A
    day's end bounds `eq`, `ne`, `lte` and `gt`, on the column itself (its index serves)."""
    if op == "eq":
        return col.between(day, _day_end(day))
    if op == "ne":
        return sa.or_(col < day, col > _day_end(day))
    return getattr(col, _CMP[op])(_day_end(day) if op in ("lte", "gt") else day)


def _day_end(day: dt.date) -> dt.datetime:
    """The last microsecond of `day`."""
    return dt.datetime.combine(day, dt.time.max)


class Builder:
    """Builds the WHERE clause of one definition; `now` is naive local time in its zone."""

    def __init__(self, resolver: Resolver, now: dt.datetime) -> None:
        self.resolver = resolver
        self.now = now
        self._aliases = 0

    def clause(self, node: Any, scope: Selection) -> Any:
        if isinstance(node, Group):
            parts = [self.clause(child, scope) for child in (node.all or node.any or [])]
            return sa.and_(*parts) if node.all is not None else sa.or_(*parts)
        if isinstance(node, Exists):
            return self._exists(node, scope)
        if isinstance(node, Aggregate):
            return self._aggregate(node, scope)
        if isinstance(node, Condition):
            return self._condition(node, scope)
        raise ValidationError(f"Unknown target condition {short(node)}.")

    # -- a field (through to-one relations) ---------------------------------------------------
    def _condition(self, node: Condition, scope: Selection) -> Any:
        """`_compared`, with a zero date (or one without a month or day) missing to every
        comparison, as it is to `is_null` / `not_null`: ordered before every real date,
        a member who never logged in ('0000-00-00 00:00:00') was "not seen for a year"
        (`older_than`, `lt`, `between`) and "not seen on" any day (`ne`), round 59. The
        comparison stays on the column itself, so an index still serves it."""
        clause = self._compared(node, scope)
        if node.op in ("is_null", "not_null"):
            return clause
        path = self.resolver.graph.path(scope.root, node.field, to_one=True)
        if path.field_type not in ("date", "datetime") or self._kept_as_text(path):
            return clause
        if not self._zero_dated(path):
            return clause
        return sa.and_(clause, real_date(scope.column(path)))

    def _compared(self, node: Condition, scope: Selection) -> Any:
        where = f"target condition on {node.field!r}"
        path = self.resolver.graph.path(scope.root, node.field, to_one=True)
        ftype = path.field_type
        if node.op not in OPS_BY_TYPE[ftype]:
            raise ValidationError(
                f"{where}: operator {node.op} does not apply to a {ftype} field; "
                f"use one of {', '.join(sorted(OPS_BY_TYPE[ftype]))}."
            )
        col = scope.column(path)
        op: str = node.op
        value = node.value
        if ftype in ("date", "datetime") and (
            op not in ("is_null", "not_null") or self._kept_as_text(path)
        ):
            # (a text that is no real date is missing to `is_null` too: gnuboard's '' for
            # "never withdrawn" was a date to `not_null`, round 58)
            col = self._dated(path, col, ftype, where)
        elif ftype in ("date", "datetime") and self._zero_dated(path):
            # a zero date is missing (round 58), the test left on the column itself so that
            # an index still serves it (through `text_date` no index could)
            if op == "is_null":
                return sa.or_(col.is_(None), sa.not_(real_date(col)))
            if op == "not_null":
                return sa.and_(col.is_not(None), real_date(col))
        if ftype == "string" and op in _TEXT_OPS:
            op, value = self._held(path, op, value)
            if op in ("false", "not_null"):  # a text the column cannot hold (round 53)
                return sa.false() if op == "false" else col.is_not(None)
        if op == "is_null":
            return col.is_(None)
        if op == "not_null":
            return col.is_not(None)
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise ValidationError(f"{where}: {op} needs a non-empty list of values.")
            values = [coerce(v, ftype, where) for v in value]
            clause = col.in_(values) if op == "in" else col.not_in(values)
            return self._exactly(path, col, clause, values, equal=op == "in")
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise ValidationError(f"{where}: between needs [low, high].")
            lo, hi = (coerce(v, ftype, where) for v in value)
            return col.between(lo, _day_end(hi) if self._timed(path, ftype) else hi)
        if op == "prefix":
            text = coerce(value, ftype, where)
            return col.like(escape_like(text) + "%", escape=LIKE_ESCAPE)
        if op in ("within_last", "within_next", "older_than"):
            return self._relative(col, op, value, ftype, where, self._timed(path, ftype))
        if value is None:
            raise ValidationError(f"{where}: {op} needs a value (use is_null for missing values).")
        if ftype == "boolean" and self._kept_as_text(path):
            # a 'Y'/'N' flag mapped as boolean: `= 1` read every 'Y' as the number 0, so
            # `eq true` chose nobody and `eq false` everyone (round 53); read as consent is
            said = spelt(col, YES_SPELLINGS if coerce(value, ftype, where) else NO_SPELLINGS)
            return said if op == "eq" else sa.and_(col.is_not(None), sa.not_(said))
        one = coerce(value, ftype, where)
        if self._timed(path, ftype):
            return by_day(col, op, one)
        clause = getattr(col, _CMP[op])(one)
        return self._exactly(path, col, clause, [one], equal=op == "eq") if op in _EQ else clause

    def _exactly(self, path: Any, col: Any, clause: Any, values: list[Any], *, equal: bool) -> Any:
        """`clause` (`eq`/`in`, or `ne`/`not_in` when not `equal`) on the audience key,
        made exact when the schema does not state that key unique and the server compares
        it loosely: a pick of 'k1' (the search widget's `key in [...]`) chose 'K1' and 'k1 '
        too, and a pick of 'a😀' also 'a😎' (utf8mb4_general_ci: every emoji is one
        letter), two people messaged for one picked (round 53). Compared also by the
        UTF-8 bytes, as `truthy`; the collation's comparison stays, for the index."""
        info = self.resolver.info(path.root)
        live = info.column(path.field)
        if (
            path.hops
            or path.field != self.resolver.graph.mappings[path.root].key
            or live is None
            or live.charset is None
            or info.is_unique(path.field)
        ):
            return clause
        hexes = [v.encode("utf-8").hex().upper() for v in values if isinstance(v, str)]
        if len(hexes) != len(values):  # a text key mapped as a number: compared as numbers
            return clause
        exact = sa.func.hex(sa.cast(col, sa.CHAR)).in_(hexes)
        return sa.and_(clause, exact) if equal else sa.or_(clause, sa.not_(exact))

    def _held(self, path: Any, op: str, value: Any) -> tuple[str, Any]:
        """`op` and `value` without the texts `path`'s column cannot hold (a Korean name
        in a latin1 column: MariaDB refused the comparison, "Illegal mix of collations");
        ("false", None) when nothing is left to equal, ("not_null", None) when nothing is
        left to differ from."""
        live = self.resolver.info(path.table).column(path.field)
        charset = live.charset if live is not None else None
        if op in ("in", "not_in") and isinstance(value, list):
            kept = [v for v in value if not isinstance(v, str) or holds(charset, v)]
            if value and not kept:
                return ("false" if op == "in" else "not_null"), None
            return op, kept
        if isinstance(value, str) and not holds(charset, value):
            return ("not_null" if op == "ne" else "false"), None
        return op, value

    def _kept_as_text(self, path: Any) -> bool:
        """Whether the server states `path`'s column a text type (CHAR, ENUM, ...)."""
        live = self.resolver.info(path.table).column(path.field)
        return live is not None and type_family(live.type) == "text"

    def _timed(self, path: Any, ftype: str) -> bool:
        """Whether `path` is a date field (`ftype`) whose column is a DATETIME / TIMESTAMP,
        which `suggest.COMPATIBLE` lets a mapping call a date: compared by its day
        (`by_day`), since MariaDB reads the date as its midnight (round 61)."""
        if ftype != "date":
            return False
        live = self.resolver.info(path.table).column(path.field)
        return live is not None and temporal_type(live.type) in ("DATETIME", "TIMESTAMP")

    def _zero_dated(self, path: Any) -> bool:
        """Whether `path`'s column is a DATE / DATETIME / TIMESTAMP of a MariaDB source,
        which may hold a zero date (gnuboard's `mb_today_login` '0000-00-00 00:00:00' for
        "never logged in"): MariaDB reads `IS NULL` of a NOT NULL one as "is the zero
        date" but `IS NOT NULL` as true for it, so such a member was both "logged in" and
        "never"; in a nullable one the zero date (and '2025-00-00') was a date to
        `not_null` (round 58). Read through `text_date`, it is missing to both."""
        if self.resolver.mappings.source.is_sqlite:
            return False
        live = self.resolver.info(path.table).column(path.field)
        return live is not None and temporal_type(live.type) in ("DATE", "DATETIME", "TIMESTAMP")

    def _dated(self, path: Any, col: Any, ftype: str, where: str) -> Any:
        """`path`'s column as the server compares it with a date: a date the server keeps
        as text ('20240102100000', '20250701', a VARCHAR `reg_date` of a Korean shop) read
        as one (`CAST(... AS DATETIME)`, MariaDB's own reading of every form it accepts),
        since its text compared with '2025-03-03 10:00:00' put '2026030109...' after
        '2026-03-03' ('0' > '-'): a member who joined two days ago was not "within the last
        year" (round 56). A number (unix seconds, `last_login INT`) is refused: compared with
        a date the server reads the date as 2025 and every number as later."""
        live = self.resolver.info(path.table).column(path.field)
        family = type_family(live.type) if live is not None else None
        if family == "text" and self.resolver.mappings.source.is_sqlite and live is not None:
            # (round 57: SQLite has no reading of '20250301' as a date, and compared as text
            # '' and '00000000' were "older than a year", '20250301' and '2025-1-5' not)
            raise ValidationError(
                f"{where}: a SQLite source keeps this date as text ({short(live.type)}) and "
                "compares it as text ('' and '00000000' before any date, '20250301' after "
                "'2025-03-03'), so it cannot be compared with dates; store it as DATETIME "
                "('YYYY-MM-DD HH:MM:SS'), or target with a saved query that reads it as a date."
            )
        if family == "text":
            return text_date(col, ftype)  # (no real date: NULL, chosen by no comparison)
        if family in ("number", "decimal", "floating-point", "BIT") and live is not None:
            raise ValidationError(
                f"{where}: the column is {short(live.type)}, a number, not a date, so it "
                "cannot be compared with dates; map it as a number and compare the number it "
                "holds (unix seconds: e.g. gt 1767225600), or target with a saved query that "
                "reads it as a date (FROM_UNIXTIME)."
            )
        return col

    def _span(self, value: Any, where: str) -> dt.timedelta:
        try:
            span = value if isinstance(value, Span) else Span.model_validate(value)
        except PydanticError:
            raise ValidationError(
                f'{where}: give the span as {{"days": N}} or {{"hours": N}} (N > 0).'
            ) from None
        return dt.timedelta(seconds=span.seconds())

    def _relative(
        self, col: Any, op: str, value: Any, ftype: str, where: str, timed: bool = False
    ) -> Any:
        """A relative window; `timed`: of a DATETIME a mapping calls a date, by its days
        (this morning is "within the last 30 days" of a date field, `by_day`)."""
        span = self._span(value, where)
        now: Any = self.now
        lo, hi = now - span, now + span
        if ftype == "date":
            now, lo, hi = now.date(), lo.date(), hi.date()
        if op == "within_last":
            return sa.and_(col >= lo, col <= (_day_end(now) if timed else now))
        if op == "within_next":
            return sa.and_(col >= now, col <= (_day_end(hi) if timed else hi))
        return col < lo  # older_than

    # -- to-many relations ----------------------------------------------------------------------
    def _related(self, scope: Selection, name: str) -> tuple[Hop, Selection, Any]:
        """The hop named `name` from the scope's table, a fresh aliased scope for its table,
        and the correlation between the two."""
        hop = next((h for h in self.resolver.graph.edges(scope.root) if h.name == name), None)
        if hop is None:
            names = ", ".join(h.name for h in self.resolver.graph.edges(scope.root)) or "none"
            raise ValidationError(f"{scope.root} has no relation {name!r} (relations: {names}).")
        self._aliases += 1
        inner = self.resolver.selection(hop.target, alias=f"r{self._aliases}")
        self.resolver.column(scope.root, hop.local)
        self.resolver.column(hop.target, hop.foreign)
        corr = inner.base.c[hop.foreign] == scope.base.c[hop.local]
        return hop, inner, corr

    def _exists(self, node: Exists, scope: Selection) -> Any:
        _, inner, corr = self._related(scope, node.relation)
        conds = [corr]
        if node.where is not None:
            conds.append(self.clause(node.where, inner))
        sub = sa.select(sa.literal(1)).select_from(inner.from_clause()).where(*conds)
        found = sa.exists(sub)
        return found if node.exists is not None else sa.not_(found)

    def _aggregate(self, node: Aggregate, scope: Selection) -> Any:
        where = f"aggregate {node.aggregate} over {node.relation!r}"
        hop, inner, corr = self._related(scope, node.relation)
        conds = [corr]
        if node.where is not None:
            conds.append(self.clause(node.where, inner))
        if node.within_last is not None:
            date_name = node.date_field or hop.order_by
            if not date_name:
                raise ValidationError(
                    f"{where}: within_last needs 'date_field' (or an orderBy on the relation)."
                )
            date_path = self.resolver.graph.path(hop.target, date_name, to_one=True)
            if date_path.field_type not in ("date", "datetime"):
                raise ValidationError(f"{where}: {date_name!r} is not a date field.")
            dated = inner.column(date_path)
            conds.append(
                self._relative(
                    self._dated(date_path, dated, date_path.field_type, where),
                    "within_last",
                    node.within_last,
                    date_path.field_type,
                    where,
                    self._timed(date_path, date_path.field_type),
                )
            )
            if not self._kept_as_text(date_path) and self._zero_dated(date_path):
                # an order of '2026-03-00' (MariaDB sorts it into March) is in no window, as
                # it is missing to an `exists`'s `within_last` (round 61)
                conds.append(real_date(dated))
        timed = False  # a `min` / `max` of a DATETIME a mapping calls a date: by its day
        if node.aggregate == "count":
            measure: Any = sa.func.count()
            ftype = "number"
        else:
            path = self.resolver.graph.path(hop.target, node.field or "", to_one=True)
            ftype = path.field_type
            if node.aggregate in ("sum", "avg") and ftype != "number":
                raise ValidationError(f"{where}: {node.field!r} is {ftype}, not a number.")
            column = inner.column(path)
            timed = self._timed(path, ftype)
            if ftype in ("date", "datetime"):
                # the dates the texts are: `MAX(odate)` of a VARCHAR was the text's max,
                # compared with the date as text ('20250101' after '2025-06-01'), round 58
                column = self._dated(path, column, ftype, where)
                if not self._kept_as_text(path) and self._zero_dated(path):
                    # a zero date is no order's date: `MIN` was '0000-00-00', the first
                    # order of a customer whose first dated one is recent (round 59)
                    column = sa.case((real_date(column), column), else_=sa.null())
            measure = _AGG[node.aggregate](column)
            if node.aggregate == "sum":
                measure = sa.func.coalesce(measure, 0)  # no rows: a total of 0, not unknown
        sub = sa.select(measure).select_from(inner.from_clause()).where(*conds).scalar_subquery()
        if node.op == "between":
            if not isinstance(node.value, list) or len(node.value) != 2:
                raise ValidationError(f"{where}: between needs [low, high].")
            lo, hi = (coerce(v, ftype, where) for v in node.value)
            return sub.between(lo, _day_end(hi) if timed else hi)
        one = coerce(node.value, ftype, where)
        return by_day(sub, node.op, one) if timed else getattr(sub, _CMP[node.op])(one)
