"""A batch's messages: decided by the send policies and rendered (`decide_and_render`),
under the cap lock, a recipient counting as messaged only by a message that rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hybridwb.workflows import policies


def decide_and_render(
    candidates: list[policies.Candidate],
    rows: dict[str, dict[str, Any]],
    seen: policies.Seen,
    rules: policies.Rules,
    render: Callable[[dict[str, Any], dict[str, Any] | None], Any],
    related: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
) -> tuple[list[tuple[policies.Candidate, str | None]], dict[str, Any]]:
    """Each candidate's exclusion reason (None: message it) and the rendered messages.

    A recipient counts as messaged (duplicate, frequency cap) only by a message that was
    rendered: when one fails to render (strict mode, a missing value), the candidates are
    decided again without it, so the next key with the same phone is not excluded as a
    duplicate of a message never written. Removing a candidate only frees its recipient,
    so the messages already rendered stay decided; this ends after at most one more pass
    per failed render of the same recipient."""
    failed: dict[str, str] = {}
    outs: dict[str, Any] = {}
    live = candidates  # those not failed, read again after a pass in which one failed
    while True:
        decisions = policies.decide(live, seen, rules)
        new = [c for c, r in zip(live, decisions, strict=True) if r is None and c.key not in outs]
        if not new:
            break
        failing = len(failed)
        new_rows = [rows[c.key] for c in new]
        for c, row, rel in zip(new, new_rows, related(new_rows), strict=True):
            out = render(row, rel)
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
