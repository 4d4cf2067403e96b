"""Consent is the recipient's: who refused, by recipient, read when an advertising run freezes.

A phone (or mailbox) held by two customers of the audience table, one of whom said no to
marketing (or gave a value that is not a clear yes, which is no consent), gets no
advertisement for the other: the holder of the number refused (정보통신망법 §50). Likewise
at night, for night consent. The refusing rows may be outside the target definition (its
consent filter drops clear refusals), so the run reads the whole audience table's rows
without a clear yes: through the target's own resolver (recipient and consent may sit in
related tables reached by to-one relations), built as SQLAlchemy Core, paged by key in short
statements (`TargetService.iter_plan`). What it keeps is one entry per refusing recipient.

The freeze decides with it (`suppressing`): a target whose recipient another refusing row
holds is excluded before the set is marked frozen (marketing), or its seq number is kept
with the frozen set (night: decided at night only, by `policies.decide`), so a resume
decides the same whatever the source says by then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hybridwb.platform.campaigns import FrozenPage
from hybridwb.targets.consent import consent_of
from hybridwb.targets.sql import not_surely_yes
from hybridwb.workflows import policies
from hybridwb.workflows.audience import Audience, key_text

if TYPE_CHECKING:
    from hybridwb.targets import TargetService

#: the holder of a recipient that refusing rows of more than one key hold: every target
#: with that recipient is refused by another
MANY = "\x00"  # never a key: `key_text` escapes a NUL


@dataclass
class Refusals:
    """{normalized recipient: the key text of the one row without a clear yes holding it,
    or `MANY`}, for marketing and for night consent."""

    consent: dict[str, str] = field(default_factory=dict)
    night: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def by_another(table: dict[str, str], recipient: str | None, key: str) -> bool:
        """Whether a row other than `key`'s refused for `recipient` (its own refusal is
        decided with its own row, under its own reason, when its batch is read)."""
        holder = table.get(recipient) if recipient else None
        return holder is not None and holder != key


def read(
    targets: TargetService,
    aud: Audience,
    *,
    recipient: str | None,
    batch_size: int,
    now: datetime | None,
) -> Refusals:
    """The refusing recipients of the whole audience table (`Refusals`), for an advertising
    run: rows whose consent or night consent (each when mapped) is not a clear yes, read in
    key order, `batch_size` at a time; memory grows with the refusing recipients only."""
    refused = Refusals()
    if aud.consent is None and aud.night_consent is None:
        return refused  # no consent mapped: nobody consents, every target is excluded
    definition: dict[str, Any] = {"table": aud.table, "exclude_opt_out": False}
    if recipient:
        definition["recipient"] = recipient
    plan = targets.plan(definition, now=now)
    assert plan.selection is not None and plan.recipient is not None
    graph, sel = targets.resolver.graph, plan.selection
    kinds: list[tuple[str, dict[str, str]]] = []
    where = []
    for dotted, table in ((aud.consent, refused.consent), (aud.night_consent, refused.night)):
        if dotted is not None:
            path = graph.path(aud.table, dotted, to_one=True)
            where.append(not_surely_yes(sel.column(path)))
            kinds.append((path.name, table))
    plan = replace(plan, where=sa.or_(*where))
    label, key = plan.recipient, plan.key
    normalize = policies.normalizer(aud.channel)
    wanted = {label, *(name for name, _ in kinds)}
    for rows in targets.iter_plan(plan, batch_size, only=wanted):
        for row in rows:
            value = row.get(label)
            if isinstance(value, str) and "\x00" in value:
                continue  # no one's address (`process._frozen_pairs`)
            address = normalize(value)
            if address is None:
                continue
            holder = key_text(row[key])
            for name, table in kinds:
                if consent_of(row.get(name)) is not True:
                    was = table.get(address)
                    table[address] = holder if was is None or was == holder else MANY
    return refused


def suppressing(
    pages: Iterable[FrozenPage],
    refused: Refusals,
    exclude: Callable[[list[tuple[str, str]]], None],
    hold: Callable[[list[int]], None],
) -> Iterator[FrozenPage]:
    """The frozen pages as given, each one's targets that another row refused marketing
    for excluded first (`exclude`, before the page is stored: the set is marked frozen
    after the last page, so a freeze cut short is redone whole), and, after the last page,
    the seq numbers of those another row refused night consent for (`hold`)."""
    if not refused.consent and not refused.night:
        yield from pages
        return
    by_another, consent, night = Refusals.by_another, refused.consent, refused.night
    held: list[int] = []
    for page in pages:
        skips: list[tuple[str, str]] = []
        for seq, (key, recipient) in enumerate(page.pairs, page.first_seq + 1):
            if by_another(consent, recipient, key):
                skips.append((key, policies.SHARED_NO_CONSENT))
            elif by_another(night, recipient, key):
                held.append(seq)
        if skips:
            exclude(skips)
        yield page
    if held:
        hold(held)
