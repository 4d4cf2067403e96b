"""Consent is the recipient's: who refused, by recipient, read when an advertising run freezes.

A phone (or mailbox) held by two customers of the audience table, one of whom said no to
marketing (or gave a value that is not a clear yes, which is no consent), gets no
advertisement for the other: the holder of the number refused (정보통신망법 §50). Likewise
at night, for night consent. The refusing rows may be outside the target definition (its
consent filter drops clear refusals), so the run reads the whole audience table's rows
without a clear yes: through the target's own resolver (recipient and consent may sit in
related tables reached by to-one relations), built as SQLAlchemy Core, paged by key in short
statements of a bounded number of rows each (`_windows`). What it keeps is one entry per refusing recipient.

The freeze decides with it (`suppressing`): a target whose recipient another refusing row
holds is excluded before the set is marked frozen (marketing), or its seq number is kept
with the frozen set (night: decided at night only, by `policies.decide`), so a resume
decides the same whatever the source says by then.

A target preview counts the same exclusions with the same read (`in_preview`, handed to
`wb.targets` by the workbench), and the targets a run at night would hold for night consent
by the run's own steps over its rows (`held_at_night`): one statement of at most `WINDOW` rows when the audience
table holds fewer, the whole walk only when the preview may scan (`allow_scan=True`);
otherwise the counts are not known, and the preview says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.mapping.resolve import compile_sql, limit
from hybridwb.platform.campaigns import FrozenPage
from hybridwb.targets.consent import consent_of
from hybridwb.targets.service import TIE_LIMIT, Verdicts
from hybridwb.targets.sql import not_surely_yes
from hybridwb.workflows import advertising, batches, policies
from hybridwb.workflows.audience import Audience, audience_for, by_key_text, key_text
from hybridwb.workflows.config import SendPolicy
from hybridwb.workflows.query_recipient import Column, Joined, source_of

if TYPE_CHECKING:
    from hybridwb.platform.campaigns import Campaigns
    from hybridwb.platform.store import Store
    from hybridwb.targets import TargetService
    from hybridwb.targets.service import Plan

#: the holder of a recipient that refusing rows of more than one key hold: every target
#: with that recipient is refused by another
MANY = "\x00"  # never a key: `key_text` escapes a NUL


@dataclass(repr=False)
class Refusals:
    """{normalized recipient: the key text of the one row without a clear yes holding it,
    or `MANY`}, for marketing and for night consent. Its repr counts them: the recipients
    are customers' phones and mailboxes."""

    consent: dict[str, str] = field(default_factory=dict)
    night: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Refusals(consent={len(self.consent)} recipients, night={len(self.night)})"

    @staticmethod
    def by_another(table: dict[str, str], recipient: str | None, key: str) -> bool:
        """Whether a row other than `key`'s refused for `recipient` (its own refusal is
        decided with its own row, under its own reason, when its batch is read)."""
        holder = table.get(recipient) if recipient else None
        return holder is not None and holder != key


#: audience rows one statement of the refusal read walks at most, by the key's index: each
#: statement stays short however few rows refused (a filter paged by match count would walk
#: the whole table in one statement to find none)
WINDOW = 20_000

#: statements of rows a preview that may not scan reads refusals with: one window, so the
#: audience table is walked only when it holds fewer than `WINDOW` rows (fewer than the
#: preview's own scan limit, `resolve.SCAN_ROWS`)
PREVIEW_WINDOWS = 1


class TooLong(Exception):
    """The refusal read would need more windows than it was given (`read`'s `windows`);
    raised before a row of the window past them is read."""


def pairs(
    rows: list[dict[str, Any]], aud: Audience, column: str | None
) -> list[tuple[str, str | None]]:
    """(stored key, normalized recipient) of each row, as the freeze stores them and the
    refusals are matched against. Every row is frozen, one with a NUL byte too (its key
    escaped, see `audience.key_text`): the run then excludes and counts it, so no source row
    is lost without a reason."""
    normalize = policies.normalizer(aud.channel)
    # column by column (no tuple per row to unpack), `key_text` and `batches.has_nul`
    # inline for the common values (an int key is its digits; only text can hold a NUL):
    # a run freezes every target
    keys = [str(k) if type(k) is int else key_text(k) for k in map(itemgetter(aud.key), rows)]
    values = [r.get(column) for r in rows] if column else [None] * len(rows)
    recipients = [None if isinstance(v, str) and "\x00" in v else normalize(v) for v in values]
    return list(zip(keys, recipients, strict=True))


def read(
    targets: TargetService,
    aud: Audience,
    *,
    recipient: str | None,
    now: datetime | None,
    window: int = WINDOW,
    windows: int | None = None,
    cache_ttl: float | None = None,
    refresh: bool = False,
    clock: float | None = None,
    joined: Joined | None = None,
) -> Refusals:
    """The refusing recipients of the whole audience table (`Refusals`), for an advertising
    run: rows whose consent or night consent (each when mapped) is not a clear yes, read
    `window` rows of key order at a time (`_windows`); memory grows with the refusing
    recipients only. `recipient`: the target definition's own recipient path, if any.
    `windows`: the windows it may read (None: as many as the table needs); a table that
    needs more raises `TooLong` before a row of it is read. `cache_ttl`: the source's result
    cache, for a preview (a run reads the source as it is now); `refresh`: read anew all
    the same (and cached), for a preview whose own rows were read anew. `clock`: the
    server's clock the reads see, the run's freeze's (`Plan.clock`). `joined`: the parts a
    saved query's recipient joins (`recipient_for`), read and joined as the server joins
    them instead of the recipient column."""
    refused = Refusals()
    if aud.consent is None and aud.night_consent is None:
        return refused  # no consent mapped: nobody consents, every target is excluded
    definition: dict[str, Any] = {"table": aud.table, "exclude_opt_out": False}
    if recipient:
        definition["recipient"] = recipient
    plan = replace(targets.plan(definition, now=now), clock=clock)
    label, sel = plan.recipient, plan.selection
    assert sel is not None and label is not None
    graph = targets.resolver.graph
    kinds: list[tuple[str, dict[str, str]]] = []
    where = []
    for dotted, table in ((aud.consent, refused.consent), (aud.night_consent, refused.night)):
        if dotted is not None:
            path = graph.path(aud.table, dotted, to_one=True)
            where.append(not_surely_yes(sel.column(path)))
            kinds.append((path.name, table))
    plan = replace(plan, where=sa.or_(*where))
    key = plan.key
    normalize = policies.normalizer(aud.channel)
    wanted = {label, *(name for name, _ in kinds)}
    if joined is not None:  # the parts, read as the table's own columns
        parts = [c for c in joined.columns if c not in plan.columns]
        plan = replace(plan, locals=list(dict.fromkeys([*plan.locals, *parts])))
        wanted |= set(joined.columns)
    source = targets.mappings.source
    for row in _windows(source, plan, wanted, window, windows, cache_ttl, refresh):
        value = row.get(label) if joined is None else joined.value(row)
        if isinstance(value, str) and "\x00" in value:
            continue  # no one's address (`pairs`)
        address = normalize(value)
        if address is None:
            continue
        # a row with no key (NULL: never a target) refuses for every target holding it
        holder = MANY if row[key] is None else key_text(row[key])
        for name, table in kinds:
            if consent_of(row.get(name)) is not True:
                was = table.get(address)
                table[address] = holder if was is None or was == holder else MANY
    return refused


def recipient_for(targets: TargetService, plan: Plan, aud: Audience) -> dict[str, Any]:
    """How the refusal read (`read`) finds the recipient `plan`'s messages go to in the
    audience table: {"recipient": a path of the table, or None for the mapping's} for a
    table target, plus {"joined": the parts} for a saved query joining split columns
    (`query_recipient.source_of`). A saved query whose recipient the table's rows cannot
    give (another table's column, an expression) is refused in one line when consent is
    mapped: the read would match refusals against another number than the one messaged
    (round 56), so the advertisement is not sent."""
    if plan.sql is None:
        return {"recipient": plan.definition.recipient}
    if aud.consent is None:
        # round 56: WooCommerce keeps consent as a key/value row (usermeta 'marketing_sms');
        # a query's own consent column would be read for its rows only, never for the other
        # holders of a number the query left out (`read` walks the audience table), so it is
        # not taken; a view cannot be the audience (no unique key): a table is the way
        raise HybridwbError(
            f"target.sql: an advertisement needs marketing consent, and {aud.table}'s mapping "
            "maps none, so everyone would be excluded; a consent kept as key/value rows "
            "(e.g. wp_usermeta 'marketing_sms') must be kept by the DBA in a table with one "
            "row per customer (key, phone, consent), mapped with consent as the audience. "
            "Nothing was sent."
        )
    if plan.recipient is None:
        return {"recipient": None}  # nothing is read (`read`); no recipient: refused elsewhere
    columns = {c.name for c in targets.resolver.info(aud.table).columns}
    found = source_of(plan.sql, plan.recipient, aud.table, columns)
    if isinstance(found, Column):
        return {"recipient": None if found.name == aud.recipient else found.name}
    if isinstance(found, Joined):
        return {"recipient": None, "joined": found}
    raise HybridwbError(
        f"target.sql: an advertisement needs the refusals of everyone holding its numbers, "
        f"but the query's recipient {plan.recipient!r} is not a column of {aud.table} nor "
        f"CONCAT_WS of its columns, so they cannot be read; return it as one of {aud.table}'s "
        "columns (or CONCAT_WS('-', part1, part2, part3) of them). Nothing was sent."
    )


def _windows(
    source: Any,
    plan: Plan,
    wanted: set[str],
    window: int,
    windows: int | None = None,
    cache_ttl: float | None = None,
    refresh: bool = False,
) -> Iterator[dict[str, Any]]:
    """The rows of `plan` (its WHERE: the refusal filter), `window` rows of the audience's
    key order at a time: one statement finds the window's last key (an index read of
    `window` keys), one reads the matching rows up to it (`key > last AND key <= end`, so
    keys the collation holds equal all fall in one window). Statements built with Core.
    A window that is not the last when `windows` have been read raises `TooLong`, before its
    rows are read: a caller bounded to one window reads no row of a larger table."""
    sel = plan.selection
    assert sel is not None
    key, name = sel.key, plan.key
    last: Any = None
    walked = 0
    while True:
        probe = sa.select(key).select_from(sel.base)
        if last is not None:
            probe = probe.where(key > last)
        probe = probe.order_by(key).offset(window - 1).limit(limit(1))
        found = source.records(
            *compile_sql(probe), limit=1, cache_ttl=cache_ttl, refresh=refresh, as_of=plan.clock
        )
        end = found[0][name] if found else None
        if found and end is None:
            raise ValidationError(
                f"target: the key {name!r} is NULL in some rows, so they cannot be messaged "
                f"exactly once; leave them out (WHERE {name} IS NOT NULL) or give them a key."
            )
        walked += 1
        if end is not None and windows is not None and walked >= windows:
            raise TooLong(f"more than {windows * window:,} rows")
        # the first window also holds the rows whose key is NULL (first in the key's order,
        # in no window by `key <= end`, `key > last`: round 49, a guest row with no member
        # code refused and its phone's other holder got the advertisement)
        page = plan
        if end is not None:
            upto = key <= end if last is not None else sa.or_(key.is_(None), key <= end)
            page = replace(plan, where=sa.and_(plan.where, upto))
        most = window + TIE_LIMIT
        statement = page.statement(after=last, n=most + 1, only=wanted)
        rows = source.records(
            *compile_sql(statement),
            limit=most + 1,
            cache_ttl=cache_ttl,
            refresh=refresh,
            as_of=plan.clock,
        )
        if len(rows) > most:
            raise ValidationError(
                f"target: more than {TIE_LIMIT:,} keys of {plan.table!r} are equal under the "
                "source's collation, more than paging by the key can tell apart; use a key "
                "the source compares exactly (a unique column, or a binary collation)."
            )
        yield from rows
        if end is None:
            return
        last = end


def in_preview(
    targets: TargetService,
    plan: Plan,
    rows: list[dict[str, Any]],
    *,
    now: datetime | None,
    allow_scan: bool,
    cache_ttl: float | None = None,
    refresh: bool = False,
    night: bool = False,
) -> Verdicts | None:
    """For each row of a target preview, whether an advertising run excludes it because
    another row of the audience refused marketing for its recipient (`Verdicts.shared`):
    the freeze's own read (`read`) and match (`pairs`, `Refusals.by_another`); None for a
    row the run excludes before its own consent is read (no recipient, or one not
    `policies.deliverable`). With `night`, also whether a run at night holds it for night
    consent, its own or another row's (`Verdicts.night`, `held_at_night`). Read in one
    statement when the audience table holds fewer than `WINDOW` rows, whole only when the
    preview may scan (`allow_scan`); None when it would need more: the counts are not known.
    Its statements are answered from the source's result cache as the preview's own are
    (`cache_ttl`), and read anew when those were (`refresh`): a refusal read cached by an
    earlier preview of another definition missed a refusal made since (round 45)."""
    try:
        aud = audience_for(targets.mappings, {"table": plan.table})
    except ValidationError:
        return Verdicts([])  # no run can message this audience (no recipient mapped): it says why
    windows = None if allow_scan else PREVIEW_WINDOWS
    try:
        # no consent mapped: nothing to read (a run refuses such a saved query's advertisement)
        how = recipient_for(targets, plan, aud) if aud.consent else {"recipient": None}
    except HybridwbError:
        return None  # a run refuses it (`recipient_for`): the counts are not known
    try:
        refused = read(
            targets,
            aud,
            **how,
            now=now,
            windows=windows,
            cache_ttl=cache_ttl,
            refresh=refresh,
        )
    except TooLong:
        return None
    by_another, consent, deliverable = Refusals.by_another, refused.consent, policies.deliverable
    keyed = pairs(rows, aud, plan.recipient or aud.recipient)
    # the run's order: another's refusal at the freeze, then (`policies.decide`) no
    # recipient or one not deliverable before the target's own consent
    shared = [
        True if by_another(consent, r, k) else None if r is None or not deliverable(r) else False
        for k, r in keyed
    ]
    return Verdicts(shared, held_at_night(rows, keyed, plan, aud, refused) if night else None)


#: the time a preview's rows are decided at for `held_at_night`: 21:00 in Seoul, night
AT_NIGHT = datetime(2026, 1, 1, 21, 0, tzinfo=advertising.SEOUL)


def held_at_night(
    rows: list[dict[str, Any]],
    keyed: list[tuple[str, str | None]],
    plan: Plan,
    aud: Audience,
    refused: Refusals,
) -> list[bool]:
    """For each row (frozen as `keyed`: `pairs`), whether an advertising run at night
    holds it for night consent: the run's own steps over the rows, not a copy of them
    (round 46: a copy in another layer was a bug). The freeze's `suppressing` (another
    row's marketing refusal excludes it; another's night refusal holds its seq number),
    the batch's `batches.candidates` (a row with a NUL byte in what the run reads is
    excluded), and `policies.decide` at night ("wait": held, whichever of the three quiet
    reasons the "exclude" mode would write). The send policies are decided after the night
    consent, so they hold no one here. Only the columns every run reads are given to
    `candidates`: a NUL byte in a column only the template reads excludes a target there."""
    page = FrozenPage("preview", 0, keyed, None)
    excluded: set[str] = set()
    night: list[int] = []
    for _ in suppressing(
        [(page, None)], refused, lambda skips: excluded.update(k for k, _ in skips), night.extend
    ):
        pass
    recipient = plan.recipient or aud.recipient
    consent = plan.consent or aud.consent
    read = [c for c in (plan.key, recipient, consent, aud.night_consent) if c is not None]
    own = [{c: row.get(c) for c in read} for row in rows]
    kept = [(seq, k, r) for seq, (k, r) in enumerate(keyed, start=1) if k not in excluded]
    frozen: list[dict[str, Any]] = [
        {"target_key": k, "recipient": r, "seq": seq} for seq, k, r in kept
    ]
    found = by_key_text(own, plan.key, {k for _, k, _ in kept})
    candidates, _, _ = batches.candidates(
        frozen, found, aud.channel, recipient, consent, aud.night_consent, frozenset(night)
    )
    rules = policies.Rules(None, None, AT_NIGHT, SendPolicy(), advertising=True)
    decided = policies.decide(candidates, policies.Seen(), rules)
    waiting = {c.key for c, d in zip(candidates, decided, strict=True) if d == policies.WAIT}
    return [k in waiting for k, _ in keyed]


def suppressing(
    pages: Iterable[tuple[FrozenPage, list[Any] | None]],
    refused: Refusals,
    exclude: Callable[[list[tuple[str, str]]], None],
    hold: Callable[[list[int]], None],
) -> Iterator[FrozenPage]:
    """The frozen pages as given, each one's targets that another row refused marketing
    for excluded first (`exclude`, before the page is stored: the set is marked frozen
    after the last page, so a freeze cut short is redone whole), and, after the last page,
    the seq numbers of those another row refused night consent for (`hold`).

    Each page comes with its targets' own marketing consent as the freeze read it (None:
    not read): a target without a clear yes of its own is excluded under its own reason
    (`policies.NO_CONSENT`, `UNCLEAR_CONSENT`), as its batch would have."""
    by_another, consent, night = Refusals.by_another, refused.consent, refused.night
    held: list[int] = []
    for page, consents in pages:
        skips: list[tuple[str, str]] = []
        if consent or night:
            for i, (key, recipient) in enumerate(page.pairs):
                if by_another(consent, recipient, key):
                    said = True if consents is None else consent_of(consents[i])
                    skips.append((key, _REASON[said]))
                elif by_another(night, recipient, key):
                    held.append(page.first_seq + i + 1)
        if skips:
            exclude(skips)
        yield page
    if held:
        hold(held)


#: a target another row refused marketing for, by what its own consent says
_REASON = {
    True: policies.SHARED_NO_CONSENT,
    False: policies.NO_CONSENT,
    None: policies.UNCLEAR_CONSENT,
}


def recorders(
    store: Store, campaigns: Campaigns, wf: dict[str, Any], run_id: Any, owner: str | None
) -> tuple[Callable[[list[tuple[str, str]]], None], Callable[[list[int]], None]]:
    """What `suppressing` records with, as `owner`: the targets another row refused
    marketing for, excluded (`exclude`, skips written with the run's channel), and the seq
    numbers of those refused night consent, kept with the frozen set (`hold`)."""
    from hybridwb.workflows.config import message_config
    from hybridwb.workflows.lock import taken_over

    def exclude(skips: list[tuple[str, str]]) -> None:
        channel = message_config(wf["message_config"]).channel
        if not campaigns.write_batch(
            run_id, wf["id"], owner, records=[], channel=channel, skips=skips
        ):
            raise taken_over(run_id)

    def hold(seqs: list[int]) -> None:
        stats = dict(store.runs.get(run_id).get("stats") or {})
        stats["frozen"] = {**stats.get("frozen", {}), "night_held": seqs}
        if not campaigns.set_stats(run_id, stats, workflow_id=wf["id"], owner=owner):
            raise taken_over(run_id)

    return exclude, hold
