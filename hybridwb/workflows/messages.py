"""A batch's messages: rendered ahead in the read-ahead worker (`prerender`), then decided
by the send policies and rendered where not yet (`decide_and_render`) under the cap lock.

Both render with the run's one compiled renderer and the one resolver's related values, so
a message rendered ahead is the message rendered on demand; the decisions never depend on
where a message was rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hybridwb.workflows import policies


def prerender(
    candidates: list[policies.Candidate],
    rows: dict[str, dict[str, Any]],
    render: Callable[[dict[str, Any], dict[str, Any] | None], Any],
    related: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
) -> dict[str, Any]:
    """The batch's messages, rendered before the history check: in the read-ahead worker,
    while the run's thread waits on the store for the batch before (rendering is about a
    fifth of a message's CPU in the run's thread, which the run's pace waits for).

    Each candidate the policies may let through (its row exists, it has a recipient) is
    rendered from its row and related values, as `decide_and_render` would render it;
    one the policies then exclude was rendered for nothing. What fails here is left out
    and rendered again where it is decided, so it fails, or is never tried, exactly as
    without this: a render that raises, or related values that cannot be read."""
    todo = [c for c in candidates if c.present and c.recipient]
    if not todo:
        return {}
    todo_rows = [rows[c.key] for c in todo]
    try:
        fetched = related(todo_rows)
    except Exception:
        return {}
    ready: dict[str, Any] = {}
    for c, row, rel in zip(todo, todo_rows, fetched, strict=True):
        try:
            ready[c.key] = render(row, rel)
        except Exception:
            continue
    return ready


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
    per failed render of the same recipient. A candidate in `ready` (`prerender`) takes
    the message rendered there instead of being rendered here."""
    failed: dict[str, str] = {}
    outs: dict[str, Any] = {}
    ready = ready or {}
    live = candidates  # those not failed, read again after a pass in which one failed
    while True:
        decisions = policies.decide(live, seen, rules)
        new = [c for c, r in zip(live, decisions, strict=True) if r is None and c.key not in outs]
        if not new:
            break
        failing = len(failed)
        late = [c for c in new if c.key not in ready]  # not rendered ahead: rendered now
        late_rows = [rows[c.key] for c in late]
        late_outs = {
            c.key: render(row, rel)
            for c, row, rel in zip(late, late_rows, related(late_rows) if late else [], strict=True)
        }
        for c in new:
            out = ready[c.key] if c.key in ready else late_outs[c.key]
            if out.skipped or out.text is None:
                failed[c.key] = out.skipped or "not rendered"
            else:
                outs[c.key] = out
        if len(failed) == failing:  # all rendered: deciding again gives these decisions
            break
        live = [c for c in candidates if c.key not in failed]
    if not failed:  # nearly always: every candidate was decided in the last pass
        return list(zip(candidates, decisions, strict=True)), outs
    reasons = dict(zip((c.key for c in live), decisions, strict=True))
    return [(c, reasons[c.key] if c.key in reasons else failed[c.key]) for c in candidates], outs
