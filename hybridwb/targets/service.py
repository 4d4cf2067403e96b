"""`wb.targets`: validate, preview and stream the recipients of a target definition.

Every statement is built with SQLAlchemy Core over the relation graph (`targets.sql`,
`mapping.resolve`) and paged by the audience key (`key > last ORDER BY key`), which must be
unique; nothing is cut silently: streams page to the end, previews say when they estimate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from hybridwb.errors import HybridwbError, ScanRefused, ValidationError
from hybridwb.mapping.graph import Path
from hybridwb.mapping.model import CONSENT_PATHS
from hybridwb.mapping.resolve import (
    Selection,
    audience_table,
    compile_sql,
    explain_sql,
    is_scan,
    limit,
)
from hybridwb.mapping.suggest import too_short_for_phone
from hybridwb.search.predicates import consent
from hybridwb.source import zones
from hybridwb.targets.consent import temporal_type
from hybridwb.targets.definition import TargetDefinition, parse
from hybridwb.targets.determinism import refuse_nondeterministic
from hybridwb.targets.quality import (
    NIGHT_INFORMATIONAL,
    NIGHT_NO_FIELD,
    NIGHT_NO_RUN,
    UNKNOWN_NIGHT_HOLD,
    quality,
)
from hybridwb.targets.sql import Builder, truthy
from hybridwb.validation import checked_calls, refuse_far_now, short

if TYPE_CHECKING:
    import pandas as pd

    from hybridwb.mapping import MappingService
    from hybridwb.mapping.model import TableMapping
    from hybridwb.search import SearchService

EXACT_COUNT_LIMIT = 100_000
QUALITY_SAMPLE = 10_000
KEYWORD_PAGE = 500
TIE_LIMIT = 1000  # keys one collation holds equal (case, trailing spaces): a handful
#: the server's refusal to EXPLAIN a read of a view the account may not SHOW
EXPLAIN_REFUSED = 1345


@dataclass
class Preview:
    count: int
    exact: bool
    sample: pd.DataFrame
    quality: dict[str, Any] = field(default_factory=dict)
    sql: str = ""  # the generated statement (binds as :name)
    explain: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = ""  # "index" | "scan (allowed)" | "not checked (embedded sample)"
    #: the columns of `sample` that carry personal data, masked wherever the sample is shown
    pii: frozenset[str] = frozenset()

    @property
    def count_text(self) -> str:
        return f"{self.count:,}" if self.exact else f"more than {self.count:,} (estimate)"


@dataclass(frozen=True)
class Verdicts:
    """What an advertising run decides by consent of each of a preview's rows (`Refused`).

    `shared`: whether it is excluded because another row of the audience refused marketing
    for its recipient (True), decided by its own consent (False), or excluded before its
    consent is read (None: no recipient, or not deliverable). `night`: whether a run at
    night holds it for night consent, its own or another row's (quiet hours), when asked;
    None when not asked, or when no run can message the audience."""

    shared: list[bool | None]
    night: list[bool] | None = None


class Refused(Protocol):
    """The `Verdicts` of a preview's rows (`night`: the night holds asked for too), read
    with the run's own refusal read; None when not known within the preview's limits."""

    def __call__(
        self,
        targets: TargetService,
        plan: Plan,
        rows: list[dict[str, Any]],
        *,
        now: dt.datetime | None,
        allow_scan: bool,
        cache_ttl: float | None,
        refresh: bool,
        night: bool,
    ) -> Verdicts | None: ...


@dataclass
class Plan:
    """A resolved definition: the audience, its key, the recipient's row label, the WHERE."""

    table: str
    key: str
    recipient: str | None
    columns: list[str]
    definition: TargetDefinition
    sql: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    selection: Selection | None = None
    where: Any = None
    paths: list[Path] = field(default_factory=list)
    consent: str | None = None
    #: the mapped type of the consent field (`sql.truthy`), for a saved query's filter
    consent_type: str = "boolean"
    #: {consent column as a read returns it: its type when planned}, what each batch's
    #: read is checked against (`audience.refuse_retyped_consent`)
    consent_types: dict[str, str] = field(default_factory=dict)
    #: why a table target cannot be sent to though it plans (`TargetService._phone_part`)
    unusable: str | None = None
    #: the server's clock a run's reads see (epoch seconds, `Source.clock` at its freeze):
    #: a saved query's or a view's NOW() or CURDATE() picks the rows it froze, in every
    #: page and batch and in a resume days later. None: the server's clock as it reads
    clock: float | None = None
    #: the root's columns a relation starts from that are not mapped fields (`cust.acc` of
    #: `account.addresses.phone`): read only when `only` asks for them (a template's
    #: variable through the relation, `audience.columns_for`), never shown in a preview
    locals: list[str] = field(default_factory=list)

    def statement(
        self,
        *,
        after: Any = None,
        n: int | None = None,
        keys: list[Any] | None = None,
        only: Collection[str | None] | None = None,
    ) -> Any:
        """SELECT the target rows in key order (after a key, at most n, within keys);
        `only` names the columns wanted besides the key (default: every mapped one), so a
        run reads what it uses and not every column of a wide customer table."""
        wanted = (
            self.columns
            if only is None
            else [c for c in [*self.columns, *self.locals] if c == self.key or c in only]
        )
        if self.sql is not None:
            saved = _bound_text(self.sql, self.params)
            saved = saved.columns(*(sa.column(c) for c in self.columns))
            sub = saved.subquery("saved")
            key = sub.c[self.key]
            stmt = sa.select(*(sub.c[c] for c in wanted))
            if self.consent is not None and self.definition.exclude_opt_out:
                # the consent filter, as a table target's (`_plan`): on the column returned
                stmt = stmt.where(
                    truthy(
                        sub.c[self.consent], self.consent_type, self.consent_types.get(self.consent)
                    )
                )
        else:
            assert self.selection is not None
            sel = self.selection
            key = sel.key
            cols = [sel.base.c[c] for c in wanted if c in sel.base.c and "." not in c]
            cols += [sel.column(p).label(p.name) for p in self.paths if p.name in wanted]
            stmt = sa.select(*cols).select_from(sel.from_clause())
            if self.where is not None:
                stmt = stmt.where(self.where)
        if after is not None:
            stmt = stmt.where(key > after)
        if keys is not None:
            stmt = stmt.where(key.in_(keys))
        stmt = stmt.order_by(key)
        return stmt.limit(limit(n)) if n is not None else stmt

    def count_statement(self, n: int) -> Any:
        """COUNT(*) of at most n target rows: the same FROM and WHERE as `statement`, only
        the key selected and no order, so the server reads the condition's index and drops
        to-one joins nothing needs (MariaDB's table elimination)."""
        if self.sql is not None:
            inner = self.statement(n=n).order_by(None).subquery("c")
        else:
            assert self.selection is not None
            sel = self.selection
            self.statement()  # the same joins the rows are read with
            inner = sa.select(sel.key).select_from(sel.from_clause())
            if self.where is not None:
                inner = inner.where(self.where)
            inner = inner.limit(limit(n)).subquery("c")
        return sa.select(sa.func.count().label("n")).select_from(inner)

    def recipient_column(self, stmt: Any) -> Any:
        return stmt.selected_columns[self.recipient]


@checked_calls("wb.targets")
class TargetService:
    def __init__(
        self,
        mappings: MappingService,
        search: SearchService,
        pii: Callable[[str, list[str]], set[str]] | None = None,
        refusals: Refused | None = None,
    ) -> None:
        self.mappings = mappings
        self.search = search
        # {columns of a source result of this SQL that lineage traces to personal data}
        # (the workbench's `source_pii`); None: a saved query's sample is masked whole
        self.pii = pii
        # which preview rows an advertising run excludes because another row refused their
        # recipient (the workbench's: the run's own read, `workflows.refusals.in_preview`);
        # None: not known, and the preview says so
        self.refusals = refusals
        self.resolver = search.resolver  # one resolver (and schema cache) for both

    # -- planning ---------------------------------------------------------------------------
    def validate(self, definition: Any, *, now: dt.datetime | None = None) -> TargetDefinition:
        """Parse and check against the mappings and the source: fields, operators, values,
        the key and recipient columns (a zero-row probe for saved queries), and that some
        matching row has a recipient. Raises one clear error."""
        d = parse(definition)
        plan = usable(self.plan(d, now=now))
        if plan.recipient is None:
            raise ValidationError(
                f"target: {plan.table} has no recipient field; set 'recipient' in the "
                "definition or in the audience mapping."
            )
        base = plan.statement().order_by(None).subquery("t")
        any_row = sa.select(base.c[plan.key]).limit(limit(1))
        recipient = base.c[plan.recipient]
        with_recipient = any_row.where(recipient.is_not(None), recipient != "")
        if (
            plan.definition.keyword is None
            and not self._rows(*compile_sql(with_recipient), 1)
            and self._rows(*compile_sql(any_row), 1)
        ):
            raise ValidationError(
                f"target: no matching row has a recipient in {plan.recipient!r}; "
                "every message would be skipped. Choose another recipient field."
            )
        return d

    def plan(self, definition: Any, *, now: dt.datetime | None = None) -> Plan:
        """The definition resolved against the mapping and the live schema (its facts
        cached for a minute: previews and workflow saves ask often)."""
        return self._plan(definition, now, fresh=False)

    def plan_for_run(
        self, definition: Any, *, now: dt.datetime | None = None, clock: float | None = None
    ) -> Plan:
        """`plan` as a run makes it: the consent columns' types read from the server now
        (one statement), not through the schema cache, so an ALTER made within its minute
        (`ok` now a YEAR: 2021 reads as yes) refuses the run instead of messaging all; its
        reads see the server's `clock` of the run's freeze (`Plan.clock`)."""
        return replace(usable(self._plan(definition, now, fresh=True)), clock=clock)

    def _plan(self, definition: Any, now: dt.datetime | None, *, fresh: bool) -> Plan:
        d = parse(definition)
        tables = self.mappings.tables()
        name, mapping = self.mappings.resolve(d.table or audience_table(tables))
        if not mapping.key:
            raise ValidationError(
                f"{name} has no 'key' in its mapping; targets are streamed in key order."
            )
        # a saved query returns the mapped key column: the same column, the same check
        live = {c.name: c.type for c in self.resolver.info(name).columns}
        _refuse_list_key(name, mapping.key, live.get(mapping.key, ""))
        if zones.is_timestamp(live.get(mapping.key, "")):
            _refuse_local_timestamp_key(name, mapping.key, self.mappings.source)
        # a saved query's own columns are typed by a probe each time (`_saved_query_plan`)
        typed = self._refuse_temporal_consent(name, mapping, fresh=fresh and d.sql is None)
        if d.sql is not None:
            return self._saved_query_plan(d, name)
        graph = self.resolver.graph
        sel = self.resolver.selection(name)
        local_now = _local_now(now, d.timezone)
        builder = Builder(self.resolver, local_now)
        conds = []
        if d.where is not None:
            conds.append(builder.clause(d.where, sel))
        paths: list[Path] = []
        # the run's recipient (`audience.audience_of`): the path, else the one field with
        # the channel's role; several are refused as the run refuses them, whether or not
        # the definition names its own recipient
        mapped = mapping.recipient_path(name)
        recipient_name = d.recipient or mapped
        recipient: str | None = None
        phone_part = None
        if recipient_name is not None:
            # the mapping's path by column name (as saved); a definition's by any label
            path = graph.path(
                name, recipient_name, to_one=True, exact=d.recipient is None, latest=True
            )
            recipient = path.name
            if path.hops:
                paths.append(path)
            if mapping.channel == "sms":
                phone_part = self._phone_part(path)
        consent_label = None
        # the path, else the one field with the role: the consent the run reads
        consent_path = mapping.consent_path(name, "consent")
        if consent_path:
            consent = graph.path(name, consent_path, to_one=True, exact=True)
            consent_label = consent.name
            if consent.hops:
                paths.append(consent)
            if d.exclude_opt_out:
                conds.append(
                    truthy(sel.column(consent), consent.field_type, typed.get(consent.name))
                )
        if mapping.nightConsent:
            night = graph.path(name, mapping.nightConsent, to_one=True, exact=True)
            if night.hops:
                paths.append(night)
        paths = list({p.name: p for p in paths}.values())
        columns = list(dict.fromkeys([mapping.key, *mapping.fields, *(p.name for p in paths)]))
        # (round 54: `{{ account.addresses.phone }}` with `cust.acc` not mapped was reported
        # mapped, and every target skipped as missing: the run read mapped columns only)
        locals_ = [h.local for h in graph.edges(name) if h.local in live and h.local not in columns]
        return Plan(
            name,
            mapping.key,
            recipient,
            columns,
            d,
            selection=sel,
            where=sa.and_(*conds) if conds else None,
            paths=paths,
            consent=consent_label,
            consent_types=typed,
            locals=list(dict.fromkeys(locals_)),
            unusable=phone_part,
        )

    def _phone_part(self, path: Path) -> str | None:
        """Why a table target's SMS recipient cannot be sent to, when its column is too
        short to hold a phone number: a part of one split across columns (`mobile1` '010',
        `mobile2`, `mobile3`, as Korean shops keep it), where the run excluded every target
        as "not a valid phone number" and nothing said what to do (round 56). The message
        names the saved query that joins the parts (`usable` raises it for a preview, a
        workflow's save and a run; the refusal read of a saved query's run plans the table
        too, and goes on)."""
        live = self.resolver.info(path.table).column(path.field)
        length = too_short_for_phone(live.type) if live is not None else None
        if length is None:
            return None
        return (
            f"target: the recipient {path.name!r} holds at most {length} characters, too "
            "few for a phone number (a part of a number split across columns?); target "
            'with a saved query that joins the parts, e.g. {"sql": "SELECT <key>, '
            "CONCAT_WS('-', mobile1, mobile2, mobile3) AS hp, <consent> FROM ...\", "
            '"recipient": "hp"}.'
        )

    def _refuse_temporal_consent(
        self, name: str, mapping: TableMapping, *, fresh: bool
    ) -> dict[str, str]:
        """The consent and night-consent paths the run reads (`audience.audience_of`: the
        path, else the one field with the role), refused on a date or time column of the
        live schema: a YEAR 2021 reads as yes (`consent.temporal_type`). Every preview,
        workflow save and run makes its plan here first, so each is refused alike; a run's
        plan (`fresh`) types them by the server now, the others by the minute's cache.
        Returns {path: its type} (`Plan.consent_types`)."""
        ends: list[tuple[str, Path]] = []
        for role, attr in CONSENT_PATHS.items():
            # several fields with the role and no path: refused (`consent_path`)
            dotted = mapping.consent_path(name, role)
            if dotted is not None:
                where = attr if getattr(mapping, attr) is not None else f"fields.{dotted}.role"
                ends.append(
                    (where, self.resolver.graph.path(name, dotted, to_one=True, exact=True))
                )
        columns = [(path.table, path.field) for _, path in ends]
        if fresh:
            types = self.resolver.fresh_types(columns)
        else:
            live = {(t, c): self.resolver.info(t).column(c) for t, c in columns}
            types = {end: col.type for end, col in live.items() if col is not None}
        for where, path in ends:
            kind = temporal_type(types.get((path.table, path.field), ""))
            if kind is not None:
                raise ValidationError(
                    f"{name}.{where}: {path.name!r} is a {kind} column (a date or time, not a "
                    "yes or no); map a yes/no column as consent instead.",
                    path=f"{name}.{where}",
                )
        return {p.name: types[(p.table, p.field)] for _, p in ends if (p.table, p.field) in types}

    def _saved_query_plan(self, d: TargetDefinition, table: str) -> Plan:
        from hybridwb.source import guard

        mapping = self.mappings.get(table)
        # a saved query must be a single guarded read (stored functions: the allowlist)
        refused: HybridwbError | None = None
        try:
            checked = guard.check(
                d.sql or "", allowed_functions=self.mappings.source.allowed_functions
            )
        except HybridwbError as exc:
            refused = exc
        if refused is not None:  # nothing chained: the parser's error repeats the statement
            raise refused.detached()
        # a new sample at every read (RAND()) would not freeze one set (round 49)
        refuse_nondeterministic(checked.tokens)
        typed = self._probe_columns(d.sql or "", d.params)
        columns = list(typed)
        _refuse_temporal_query_consent(table, mapping, typed)
        key = mapping.key or ""
        if key not in columns:
            raise ValidationError(
                f"target.sql: the query must return the audience key column {key!r} "
                f"(it returns {', '.join(columns)}); add it to the SELECT."
            )
        mapped = mapping.recipient_path(table)  # several: refused, as the table's plan
        wanted = d.recipient or mapped
        recipient = None
        if wanted is not None:
            last = wanted.rpartition(".")[2]
            recipient = wanted if wanted in columns else last if last in columns else None
            if recipient == last != wanted and d.recipient is None:
                _refuse_latest_by_query(self.resolver.graph, table, wanted, last)
            if recipient is None:
                raise ValidationError(
                    f"target.sql: the query must return the recipient column {last!r} "
                    f"(it returns {', '.join(columns)}); add it to the SELECT."
                )
        # the consent filter (`exclude_opt_out`) as a table target's: on the column the run
        # reads (the query's, named as the path); one not returned is refused, not ignored
        consent_label, consent_type = None, "boolean"
        dotted = mapping.consent_path(table, "consent")
        if dotted is not None and d.exclude_opt_out:
            if dotted not in columns:
                raise ValidationError(
                    f"target.sql: exclude_opt_out is on, so the query must return the consent "
                    f"column {dotted!r} (it returns {', '.join(columns)}); add it to the SELECT, "
                    "or set exclude_opt_out to false.",
                    path="exclude_opt_out",
                )
            consent_label = dotted
            consent_type = self.resolver.graph.path(table, dotted, to_one=True).field_type
        plan = Plan(
            table,
            key,
            recipient,
            columns,
            d,
            d.sql,
            dict(d.params),
            consent=consent_label,
            consent_type=consent_type,
        )
        paths = (mapping.consent_path(table, role) for role in CONSENT_PATHS)
        plan.consent_types = {p: typed[p] for p in paths if p in typed}
        return plan

    def _probe_columns(self, sql: str, params: dict[str, Any]) -> dict[str, str]:
        """{column: its type as the server states it} of what a saved query returns, read
        with a one-row probe."""
        typed = self.mappings.source.column_types(sql, params)
        if len({c for c, _ in typed}) != len(typed):
            raise ValidationError("target.sql: the query returns two columns with one name.")
        return dict(typed)

    def _rows(self, sql: str, params: dict[str, Any], n: int) -> list[dict[str, Any]]:
        return self.mappings.source.records(sql, params, limit=n)

    # -- preview -----------------------------------------------------------------------------
    def preview(
        self,
        definition: Any,
        sample: int = 20,
        cache_ttl: float | None = 30.0,
        *,
        allow_scan: bool = False,
        now: dt.datetime | None = None,
        advertising: bool = True,
    ) -> Preview:
        """Count (exact up to a limit, else an estimate that says so), a sample, quality,
        the generated SQL and its EXPLAIN verdict; a plan that scans a large table is
        refused unless `allow_scan=True`. Quality's `marketing_opt_out` counts what an
        advertising run excludes for consent, other rows' refusals of a target's recipient
        too (`refusals`): read whole only with `allow_scan=True` on an audience table of
        20,000 rows or more, else None and `marketing_opt_out_unknown` says so. Its
        `night_hold` counts the targets an advertising run at night (21-08 KST) holds for
        night consent, their own or another row's, by the same read and limits (None and
        `night_hold_unknown` past them); for an informational message (`advertising=False`)
        or an audience without a night-consent field it is None, and
        `night_hold_not_counted` says why."""
        if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample <= 10_000:
            raise ValidationError(
                "sample must be a whole number of rows from 0 to 10,000, e.g. sample=20."
            )
        allow_scan = consent(allow_scan)
        if not isinstance(advertising, bool):
            raise ValidationError(
                f"advertising must be True or False, not {short(advertising)}; nothing was read."
            )
        plan = usable(self.plan(definition, now=now))
        source = self.mappings.source
        if plan.definition.keyword is not None:
            rows: list[dict[str, Any]] = []
            for batch in self.iter(plan.definition, 1000, now=now):
                rows += batch
                if len(rows) > EXACT_COUNT_LIMIT:
                    break
            import pandas as pd

            df = pd.DataFrame(rows[:QUALITY_SAMPLE], columns=plan.columns)
            exact = len(rows) <= EXACT_COUNT_LIMIT
            pii = self._sample_pii(plan, list(df.columns))
            return Preview(
                min(len(rows), EXACT_COUNT_LIMIT),
                exact,
                _masked(df.head(sample), pii),
                # its rows read anew: so are the refusals
                self._quality(
                    df, plan, len(rows), now, allow_scan, cache_ttl, advertising, refresh=True
                ),
                verdict="keyword search (index)",
                pii=pii,
            )
        # counting needs no order: without ORDER BY the server reads the condition's index
        count_sql, count_params = compile_sql(plan.count_statement(EXACT_COUNT_LIMIT + 1))
        _, count_verdict = self._explain(count_sql, count_params, allow_scan)
        # what is shown is what the run sends (its pages have this shape): its own EXPLAIN
        head_sql, head_params = compile_sql(plan.statement(n=QUALITY_SAMPLE))
        # the refusals are read as the rows are: from the cache when these are, else anew
        # (round 45: cached by a preview of another definition, a refusal made since was
        # missed while these rows, read anew, already left the refusing row out)
        refresh = not (cache_ttl and source.cached(head_sql, head_params, limit=QUALITY_SAMPLE))
        explain, verdict = self._explain(head_sql, head_params, allow_scan)
        if verdict == "index" or count_verdict.startswith("scan"):
            verdict = count_verdict if count_verdict != "index" else verdict
        # the server counts on a second pooled connection while this one reads the head
        # (two bounded reads the EXPLAIN above approved; the count waits on neither)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hybridwb-count") as pool:
            counting = pool.submit(source.sql, count_sql, count_params, cache_ttl=cache_ttl)
            df = source.sql(head_sql, head_params, limit=QUALITY_SAMPLE, cache_ttl=cache_ttl)
            counted = int(counting.result()["n"].iloc[0])
        exact = counted <= EXACT_COUNT_LIMIT
        pii = self._sample_pii(plan, list(df.columns))
        return Preview(
            counted if exact else EXACT_COUNT_LIMIT,
            exact,
            _masked(df.head(sample), pii),
            self._quality(
                df, plan, counted, now, allow_scan, cache_ttl, advertising, refresh=refresh
            ),
            sql=head_sql,
            explain=explain,
            verdict=verdict,
            pii=pii,
        )

    def _quality(
        self,
        df: pd.DataFrame,
        plan: Plan,
        checked_of: int,
        now: dt.datetime | None,
        allow_scan: bool,
        cache_ttl: float | None,
        advertising: bool,
        *,
        refresh: bool,
    ) -> dict[str, Any]:
        """`quality.quality` of the sample, its consent count with the targets an
        advertising run excludes because another row refused their recipient, and its
        night holds (`refusals`, one read for both); that read is made only when a count
        is asked for (a recipient, and a consent or a night count)."""
        mapping = self.mappings.get(plan.table)
        night_reason = _night_not_counted(plan, mapping, advertising)
        marketing = plan.consent is not None
        shared: list[bool | None] | None = []
        held: list[bool] | None = None
        if (
            (marketing or night_reason is None)
            and plan.recipient is not None
            and plan.recipient in df
        ):
            rows = df.to_dict("records")
            verdicts = (
                None
                if self.refusals is None
                else self.refusals(
                    self,
                    plan,
                    rows,
                    now=now,
                    allow_scan=allow_scan,
                    cache_ttl=cache_ttl,
                    refresh=refresh,
                    night=night_reason is None,
                )
            )
            shared = None if verdicts is None else verdicts.shared
            if night_reason is None:
                if verdicts is None:
                    night_reason = UNKNOWN_NIGHT_HOLD
                elif verdicts.night is None:
                    night_reason = NIGHT_NO_RUN
                else:
                    held = verdicts.night
        return quality(
            df,
            plan,
            mapping,
            checked_of=checked_of,
            shared=shared if marketing else [],
            night_held=held,
            night_reason=night_reason,
        )

    def _sample_pii(self, plan: Plan, columns: list[str]) -> frozenset[str]:
        """The columns of a preview's sample that carry personal data: the recipient, the
        mapped pii fields (own and `relation.field`), and, for a saved query, what lineage
        traces to one under any name (`phone AS tel`, `CONCAT(phone)`). A saved query with
        no tracer is masked whole: a display must not fail open."""
        from hybridwb.grid import pii_columns
        from hybridwb.render import field_index

        tables = self.mappings.tables()
        fields = field_index(tables, plan.table, self.resolver.foreign_relations(tables))
        pii = pii_columns(columns, fields)
        if plan.recipient is not None:
            pii.add(plan.recipient)
        if plan.sql is not None:
            pii |= set(columns) if self.pii is None else self.pii(plan.sql, columns)
        return frozenset(str(c) for c in pii)

    def _explain(
        self, sql: str, params: dict[str, Any], allow_scan: bool
    ) -> tuple[list[dict[str, Any]], str]:
        source = self.mappings.source
        if source.is_sqlite:
            return [], "not checked (embedded sample)"
        try:
            rows = source.records(explain_sql(sql), params, limit=1000)
        except HybridwbError as exc:
            # a view: EXPLAIN needs SHOW VIEW, which we never hold (1345); any other error
            # is the target's own, and its read would meet it too
            if exc.fields.get("code") != EXPLAIN_REFUSED:
                raise
            if allow_scan:
                return [], "not checked (the server would not explain it; scan allowed)"
            raise ScanRefused(
                "The read-only account may not ask the server how it would read this target "
                f"({exc.message}), so a scan cannot be ruled out; pass allow_scan=True to "
                "preview it anyway."
            ) from exc
        scans = [r for r in rows if is_scan(r)]
        if scans and not allow_scan:
            where = ", ".join(f"{r['table']} ({int(r.get('rows') or 0):,} rows)" for r in scans)
            raise ScanRefused(
                f"This target would scan {where}; add a condition on an indexed field or "
                "pass allow_scan=True.",
                explain=rows,
            )
        return rows, "scan (allowed)" if scans else "index"

    # -- streaming ---------------------------------------------------------------------------
    def iter(
        self,
        definition: Any,
        batch_size: int = 1000,
        *,
        now: dt.datetime | None = None,
        only: Collection[str | None] | None = None,
        clock: float | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Batches of matching rows in key order, in constant memory, to the end.

        Each batch is its own short keyset query (`key > last ORDER BY key LIMIT n+1`), so a
        run never holds one long read open on production while it renders and writes; text
        keys the collation holds equal to a page's last key are looked up exactly and added
        to that batch (`_ties`). The key must be unique: a repeated key raises, and so does
        a page that does not advance past the batch before it (`_stuck`), so a key the pager
        cannot step over is an error, never a loop or a repeated message. `clock`: the
        server's clock every page sees (`Plan.clock`)."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValidationError(f"batch_size must be a positive number, not {short(batch_size)}.")
        if only is not None and (
            isinstance(only, str | bytes | bytearray) or not isinstance(only, Collection)
        ):
            raise ValidationError(
                f"only must be a list of column names, e.g. only=['name'], not {short(only)}."
            )
        plan = replace(self.plan(definition, now=now), clock=clock)
        if plan.definition.keyword is not None:
            yield from self._keyword_batches(plan, batch_size, only)
            return
        after: Any = None
        sent: set[Any] = set()  # the keys of the batch before: the next page starts past them
        while True:
            rows = self._page(plan, after=after, n=batch_size + 1, only=only)
            if any(r[plan.key] in sent for r in rows):
                raise _stuck(plan)  # this page repeats the batch before it
            if not rows:
                return
            if len(rows) <= batch_size:
                yield rows
                return
            after = rows[batch_size - 1][plan.key]
            batch = rows[:batch_size] + self._ties(plan, rows[:batch_size], after, only)
            sent = {r[plan.key] for r in batch}
            yield batch

    def _ties(
        self,
        plan: Plan,
        page: list[dict[str, Any]],
        last: Any,
        only: Collection[str | None] | None,
    ) -> list[dict[str, Any]]:
        """Rows the next page (`key > last`) would skip: keys the server's collation holds
        equal to `last` but that are not the same text ('a' and 'A', 'a' and 'a ' in
        MariaDB's default collations) and are not in this page. Looked up exactly by
        `key = last`; a key that truly repeats raises (see `_page`), and so do more such
        keys than `TIE_LIMIT` (the next page would skip those past the limit)."""
        if not isinstance(last, str):
            return []  # numbers, dates and bytes compare exactly
        have = {r[plan.key] for r in page}
        same = self._page(plan, keys=[last], n=TIE_LIMIT + 1, only=only)
        if len(same) > TIE_LIMIT:
            raise ValidationError(
                f"target: more than {TIE_LIMIT:,} keys of {plan.table!r} are equal under the "
                f"source's collation (case, accents, trailing spaces), more than paging by "
                f"{plan.key!r} can tell apart, so targets would be lost; use a key the source "
                "compares exactly (a unique column, or a binary collation)."
            )
        return [r for r in same if r[plan.key] not in have]

    def _page(self, plan: Plan, **kw: Any) -> list[dict[str, Any]]:
        sql, params = compile_sql(plan.statement(**kw))
        rows = self.mappings.source.records(sql, params, limit=kw["n"], as_of=plan.clock)
        keys = [r[plan.key] for r in rows]
        _refuse_null_key(plan.key, keys)
        _refuse_inexact_key(plan.key, keys)
        if len(set(keys)) != len(keys):
            raise ValidationError(
                f"target: the key {plan.key!r} repeats in the results, so paging by it would "
                "lose rows; return one row per key (e.g. GROUP BY the key)."
            )
        return rows

    def _keyword_batches(
        self, plan: Plan, batch_size: int, only: Collection[str | None] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Walk every search page (never cut at one page) and keep the rows that also match
        the conditions; search pages come in key order, so the batches do too."""
        keyword = plan.definition.keyword or ""
        info = self.resolver.info(plan.table)
        column = info.column(plan.key)
        stated = info.is_unique(plan.key) and column is not None and not column.nullable
        page: str | None = None
        pending: list[dict[str, Any]] = []
        while True:
            result = self.search(plan.table, keyword, limit=KEYWORD_PAGE, page=page)
            keys = [r[plan.key] for r in result.raw_rows]
            _refuse_null_key(plan.key, keys)
            _refuse_inexact_key(plan.key, keys)  # else `key IN (...)` finds few or none
            if keys and not stated:
                self._refuse_shared_keys(plan, keys)
            if keys:
                pending += self._page(plan, keys=keys, n=len(keys), only=only)
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                pending = pending[batch_size:]
            page = result.next_page
            if page is None:
                break
        if pending:
            yield pending

    def _refuse_shared_keys(self, plan: Plan, keys: list[Any]) -> None:
        """A search page's rows are read again by `key IN (their keys)`: exactly those rows
        only if no other row has one of those keys as the server compares them. A key the
        schema does not state unique and NOT NULL (a view's, a plain column) may be shared:
        the row the keyword did not find (same key, or 'ß' next to 's' in general_ci) was
        the target instead of the one it found. One statement, only for such a key, counts
        the rows of those keys without the conditions: more than the page found is refused."""
        bare = replace(plan, where=None).statement(keys=keys, n=len(keys) + 1, only=())
        sql, params = compile_sql(bare)
        found = self.mappings.source.records(sql, params, limit=len(keys) + 1, as_of=plan.clock)
        if len(found) > len(keys):
            raise ValidationError(
                f"target: the key {plan.key!r} of {plan.table} is not unique (rows the keyword "
                "did not find share a key with rows it found), so a keyword target could "
                "message the wrong rows; set the mapping's key to a unique, NOT NULL column."
            )


def _night_not_counted(plan: Plan, mapping: TableMapping, advertising: bool) -> str | None:
    """Why a preview has no night-hold count to give, before anything is read: the
    message is informational (exempt from night consent), no run can message the target
    (no recipient), or the audience maps no night-consent field (the run then holds every
    target it would message at night). None: it is counted."""
    if not advertising:
        return NIGHT_INFORMATIONAL
    if plan.recipient is None:
        return NIGHT_NO_RUN
    if mapping.consent_path(plan.table, "night_consent") is None:
        return NIGHT_NO_FIELD
    return None


def _masked(sample: pd.DataFrame, pii: frozenset[str]) -> pd.DataFrame:
    """The sample with its values intact whose own display (the preview's repr, `vars()`,
    a notebook's output) masks the `pii` columns, as `wb.sql`'s frame does."""
    from hybridwb.grid import source_frame

    return source_frame(sample, lambda _columns: pii)


def _stuck(plan: Plan) -> ValidationError:
    """The pager's own progress check failed: a page repeats keys of the batch before it.
    A key whose values do not read back as the server compares them (a FLOAT 0.1 is stored
    as 0.100000001 > 0.1) or a batch ending on a NULL (`key > NULL` is no condition, so the
    walk starts over) would otherwise page the same rows again, once more or forever."""
    return ValidationError(
        f"target: paging {plan.table!r} by the key {plan.key!r} does not advance (a page "
        "repeats keys it already read), so the run would repeat rows; "
        "use a unique, NOT NULL key of exact values (integer, DECIMAL or text)."
    )


def _refuse_latest_by_query(graph: Any, table: str, dotted: str, column: str) -> None:
    """A saved query's `column` standing in for the mapping's recipient `dotted` whose last
    relation is one-to-many: the recipient is the phone of each person's latest related row
    (`Selection._latest`), which a query's column of that name need not be (round 54: `...
    JOIN paddr ... GROUP BY pid` returned the first address's phone, an older one, and the
    run messaged it). Refused; the query's column is messaged only when the target names it
    (`"recipient": "phone"`)."""
    path = graph.path(table, dotted, to_one=True, exact=True, latest=True)
    hop = next((h for h in path.hops if not h.to_one), None)
    if hop is None:
        return
    raise ValidationError(
        f"target.sql: the recipient {dotted!r} is the {column} of each {table} row's latest "
        f"{hop.target} row (by {hop.order_by}), which the query's {column!r} column need "
        "not be, so an older one could be messaged; use a table target (with conditions), "
        f"or name the query's column as the target's recipient ('recipient': {column!r}) "
        "if it is the one to message.",
        path="recipient",
    )


def _refuse_null_key(key: str, keys: list[Any]) -> None:
    """A NULL key identifies no customer: it could not be frozen, looked up or counted
    once (it is neither `> last` nor `IN (...)`), and written as text it would be the key
    'None' of another row. The source's sort puts NULLs first (MariaDB), so the first page
    sees one if any exists."""
    if any(k is None for k in keys):
        raise ValidationError(
            f"target: the key {key!r} is NULL in some rows, so they cannot be messaged "
            f"exactly once; leave them out (WHERE {key} IS NOT NULL) or give them a key."
        )


def _refuse_temporal_query_consent(
    table: str, mapping: TableMapping, typed: dict[str, str]
) -> None:
    """A saved query's consent and night-consent columns (the run reads the query's column
    named as the path, `audience.audience_of`), refused when the query returns a date or
    time there: its type is its expression's, so `since AS ok` is a YEAR (2021 reads as
    yes) under the name of the table's yes/no column."""
    for role, attr in CONSENT_PATHS.items():
        dotted = mapping.consent_path(table, role)
        kind = temporal_type(typed.get(dotted or "", ""))
        if kind is not None:
            raise ValidationError(
                f"target.sql: the query returns {table}.{attr} {dotted!r} as a {kind} column "
                "(a date or time, not a yes or no); return the yes/no column under that name.",
                path=f"{table}.{attr}",
            )


def usable(plan: Plan) -> Plan:
    """`plan`, or its `unusable` reason raised (a preview, a workflow's save, a run)."""
    if plan.unusable is not None:
        raise ValidationError(plan.unusable)
    return plan


def _refuse_list_key(table: str, key: str, key_type: str) -> None:
    """An ENUM (or SET) key sorts by its position in the list but compares as text
    (ENUM('b','a'): ORDER BY gives b, a; `key > 'b'` is false of 'a'), so paging by it
    skipped targets without a word. A BIT key reads back as bytes, which the server does
    not compare with a BIT as the number it is (`key IN (X'01')` finds nothing: a keyword
    target of BIT keys had no targets at all)."""
    if key_type.upper().startswith("BIT"):
        raise ValidationError(
            f"target: the key {key!r} of {table} is a BIT, which reads back as bytes the "
            "server does not compare with it, so targets would be lost; key the audience by "
            "an integer or text column."
        )
    if key_type.upper().startswith(("ENUM(", "SET(")):
        raise ValidationError(
            f"target: the key {key!r} of {table} is an ENUM or SET, which the server sorts "
            "by list position but compares as text, so paging by it would skip targets; key "
            "the audience by an integer or text column."
        )


def _refuse_local_timestamp_key(table: str, key: str, source: Any) -> None:
    """A TIMESTAMP reads back as local time in the session's zone (hybridwb never sets it):
    where the clocks go back, two customers' keys are one text (02:15 CEST and 02:15 CET),
    so `key > '02:15'` skipped the second hour, and a frozen '02:15' was looked up as either
    customer. Exact only in a zone of one offset (see `zones.fixed_offset`)."""
    if not zones.session_zone_is_fixed(source):
        raise ValidationError(
            f"target: the key {key!r} of {table} is a TIMESTAMP, read in the server's time "
            "zone, where daylight saving time gives two instants one text, so targets could "
            "be skipped or mixed up; key the audience by an integer or text column, or set "
            "the server's time_zone to a fixed offset such as '+09:00'."
        )


def _refuse_inexact_key(key: str, keys: list[Any]) -> None:
    """A floating-point key is not the value the server compares: MariaDB prints a FLOAT's
    0.100000001 as 0.1, so `key > 0.1` reads that row again, `key IN (0.1)` finds nothing
    (a keyword target kept one row in five) and a frozen target is looked up as gone."""
    if any(isinstance(k, float) for k in keys):
        raise ValidationError(
            f"target: the key {key!r} is a floating-point number, which the server keeps "
            "approximately, so targets could be repeated or lost; key the audience by an "
            "integer, DECIMAL or text column."
        )


def _bound_text(sql: str, params: dict[str, Any]) -> Any:
    """The saved query as a Core text clause with its parameters bound."""
    clause = sa.text(sql)
    names = set(clause._bindparams)
    missing = sorted(names - set(params))
    if missing:
        raise ValidationError(
            f"target.params: the saved query needs a value for :{missing[0]}; add it to params."
        )
    return clause.bindparams(
        *(sa.bindparam(k, params[k], expanding=isinstance(params[k], list)) for k in names)
    )


def _local_now(now: dt.datetime | None, zone: str) -> dt.datetime:
    """`now` as naive local time in `zone` (source datetimes are naive local times)."""
    tz = ZoneInfo(zone)
    if now is None:
        return dt.datetime.now(tz).replace(tzinfo=None)
    if not isinstance(now, dt.datetime):
        raise ValidationError(f"now must be a datetime, not {type(now).__name__}.")
    refuse_far_now(now)  # a span from it, or its zone's time, past the calendar
    if now.tzinfo is None:
        return now
    return now.astimezone(tz).replace(tzinfo=None)
