"""A batch's messages: rendered ahead where the history cannot change them, then decided
by the send policies against the store's history and rendered where they were not.

`Processor.process` renders a batch's messages while the store writes the batch before and
checks this one (`writer`), and decides it when the check's answer comes; what it writes
is what deciding first and rendering after gives (a message depends on its row and related
row alone).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hybridwb.errors import HybridwbError
from hybridwb.templating.masked import masked_inputs
from hybridwb.workflows import policies
from hybridwb.workflows.advertising import truthy as advertising_truthy
from hybridwb.workflows.report import mask_text


@dataclass(frozen=True)
class Checked:
    """A batch's check (`Processor.process`): the cap lock's connection (None without a
    cap), the rules at the batch's time, the history's spellings and their counts as the
    store summed them (`Campaigns.seen`); `seen`, what they say, is read from the counts
    where it is first asked for: the run's thread, not the store's step that every batch
    waits for."""

    lock: Any
    rules: policies.Rules
    spellings: dict[str, str]
    counts: list[tuple[str, int, int, int, int]]

    @functools.cached_property
    def seen(self) -> policies.Seen:
        return policies.Seen.of_counts(self.counts, self.spellings)


def messaged(
    todo: list[tuple[policies.Candidate, str | None]],
    outs: dict[str, Any],
    skips: list[tuple[str, str]],
) -> tuple[list[tuple[policies.Candidate, Any]], int]:
    """The batch's decided candidates with their rendered messages, in order; the
    excluded ones added to `skips` (those not rendered as "not rendered"), and how many
    wait for the end of quiet hours (neither messaged nor excluded)."""
    sent: list[tuple[policies.Candidate, Any]] = []
    add, skip, get, wait = sent.append, skips.append, outs.get, policies.WAIT
    waiting = 0
    for c, reason in todo:
        if reason is None:
            out = get(c[0])  # `Candidate.key`, by position: one per target
            if out is not None and out.text is not None:
                add((c, out))
            else:
                skip((c[0], "not rendered"))
        elif reason == wait:
            waiting += 1
        else:
            skip((c[0], reason))
    return sent, waiting


def count_sizes(
    sent: list[tuple[policies.Candidate, Any]],
    message_type: str,
    sizes: Counter[str],
    size_bytes: Counter[str],
) -> None:
    """Add the messages' count and EUC-KR bytes by the type that fits them (the
    message's own type when it has no size)."""
    measured = [out.size for _, out in sent]
    kinds = [message_type if s is None else s[2] for s in measured]  # `Size.fits`
    if len(set(kinds)) == 1:  # nearly always one type: counted at once
        sizes[kinds[0]] += len(kinds)
        size_bytes[kinds[0]] += sum(0 if s is None else s[1] for s in measured)
        return
    for kind, s in zip(kinds, measured, strict=True):
        sizes[kind] += 1
        size_bytes[kind] += 0 if s is None else s[1]


def render_ahead(
    candidates: list[policies.Candidate],
    rows: dict[str, dict[str, Any]],
    render: Callable[[dict[str, Any], dict[str, Any] | None], Any],
    related: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    consent: bool,
) -> dict[str, Any]:
    """The messages of a batch's candidates that the history may let through, rendered
    before the history is read (while the store writes the batch before and checks this
    one), by key: what `decide_and_render` would render for them, since a message depends
    on its row and related row alone. A candidate with no row, no recipient or (when
    `consent` is decided on) no clear consent is left for `decide_and_render`, which
    excludes it without rendering. A render that raises is kept as its error: `decide_and_render` raises it
    where it would have rendered that message, and only there (an excluded one's error is
    never raised, as before). If the related rows cannot be read now, nothing is rendered
    ahead, and `decide_and_render` reads them when it renders, as it always did."""
    truthy = advertising_truthy
    # fields by position (`Candidate`: key, recipient, consent, night, present, checked):
    # a run looks at every target here, and a named field is a call
    wanted = [c for c in candidates if c[4] and c[1] and (not consent or truthy(c[2]))]
    if not wanted:
        return {}
    wanted_rows = [rows[c.key] for c in wanted]
    try:
        rels = related(wanted_rows)
    except Exception:  # read again, and raised if it fails again, where it was read before
        return {}
    many = getattr(render, "many", None)  # a renderer's batch form (`templating.batch`)
    if many is not None and len(rels) == len(wanted_rows):
        return dict(zip([c.key for c in wanted], many(wanted_rows, rels), strict=True))
    out: dict[str, Any] = {}
    for c, row, rel in zip(wanted, wanted_rows, rels, strict=True):
        try:
            out[c.key] = render(row, rel)
        except Exception as exc:
            out[c.key] = exc
    return out


def decide_and_render(
    candidates: list[policies.Candidate],
    rows: dict[str, dict[str, Any]],
    seen: policies.Seen,
    rules: policies.Rules,
    render: Callable[[dict[str, Any], dict[str, Any] | None], Any],
    related: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    ready: dict[str, Any] | None = None,
) -> tuple[list[tuple[policies.Candidate, str | None]], dict[str, Any]]:
    """Each candidate's exclusion reason (None: message it) and the rendered messages.

    A recipient counts as messaged (duplicate, frequency cap) only by a message that was
    rendered: when one fails to render (strict mode, a missing value), the candidates are
    decided again without it, so the next key with the same phone is not excluded as a
    duplicate of a message never written. Removing a candidate only frees its recipient,
    so the messages already rendered stay decided; this ends after at most one more pass
    per failed render of the same recipient. A message holding a NUL byte (from a related
    row's value: the batch's own rows are checked before) fails as `policies.BAD_ROW`.
    `ready`: messages rendered ahead by key (`render_ahead`), used instead of rendering
    them again; an error kept there is raised where that message would be rendered. A
    renderer with a batch form (`render.many`) renders the others in one call too."""
    failed: dict[str, str] = {}
    outs: dict[str, Any] = {}
    live = candidates  # those not failed, read again after a pass in which one failed
    while True:
        decisions = policies.decide(live, seen, rules)
        new = [c for c, r in zip(live, decisions, strict=True) if r is None and c.key not in outs]
        if not new:
            break
        failing = len(failed)
        # rendered ahead (`render_ahead`) where it could be; the rest now, as before
        ahead = ready or {}
        rest = [rows[c.key] for c in new if c.key not in ahead]
        got = related(rest) if rest else []
        rels = iter(got)
        many = getattr(render, "many", None)  # all at once, each error raised where reached
        made = iter(many(rest, got)) if many and rest and len(got) == len(rest) else None
        for c in new:
            out = ahead.get(c.key)
            if out is None:
                out = render(rows[c.key], next(rels)) if made is None else next(made)
                if made is not None and isinstance(out, Exception):
                    raise out  # what rendering it here raised
            elif isinstance(out, Exception):
                raise out  # what rendering it here would have raised
            if out.skipped or out.text is None:
                failed[c.key] = out.skipped or "not rendered"
            elif "\x00" in out.text:  # from a related row (the batch's own are checked
                failed[c.key] = policies.BAD_ROW  # before): no store text can hold it
            else:
                outs[c.key] = out
        if len(failed) == failing:  # all rendered: deciding again gives these decisions
            break
        live = [c for c in candidates if c.key not in failed]
    if not failed:  # nearly always: every candidate was decided in the last pass
        return list(zip(candidates, decisions, strict=True)), outs
    reasons = dict(zip((c.key for c in live), decisions, strict=True))
    return [(c, reasons[c.key] if c.key in reasons else failed[c.key]) for c in candidates], outs


def sample_text(
    render: Callable[[dict[str, Any], dict[str, Any] | None], Any],
    report: Any,
    row: dict[str, Any],
    related: dict[str, Any],
    tables: Any,
) -> str:
    """A sample message for the report, rendered again from the row with its pii fields
    masked (`masked_inputs`): a template that transforms a value (`{{ name[1:] }}`,
    `replace('@', ' at ')`) works on the stand-in. `mask_text` then hides the other
    values, addresses and digit runs as before."""
    row, related = masked_inputs(report, row, related, tables)
    try:
        out = render(row, related)
    except HybridwbError:  # the template fails on a stand-in: the sample says so, no text
        out = None
    if out is None or out.text is None:
        return "(no masked sample: the template cannot render masked values)"
    return mask_text(out.text, out.values)
