"""A saved query a run can freeze: one whose rows do not change from read to read.

A run reads its saved query once per freeze page (`key > last LIMIT n` over it) and again
in every batch (by key range), so a query whose rows are drawn at random (`ORDER BY RAND()
LIMIT 20`) is a new sample each time: the frozen set is not one sample, and most of it is
then excluded as gone (round 49). Such a query is refused where it is planned (the
workflow's save, the run's start, the preview), from the guard's tokens, no I/O. The
server's clock is not in this list: a run's reads see its freeze's (`Source.clock`),
except SYSDATE(), which the server's `timestamp` does not fix.

Not seen: a view's body (SHOW CREATE VIEW may not be granted) and a stored function's.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from sqlglot.tokens import TokenType

from hybridwb.errors import ValidationError

#: the built-ins whose value changes from call to call (or from connection to connection)
NONDETERMINISTIC = frozenset(
    {"RAND", "RANDOM_BYTES", "UUID", "UUID_SHORT", "SYS_GUID", "SYSDATE", "CONNECTION_ID"}
)


def nondeterministic_calls(tokens: Sequence[Any]) -> list[str]:
    """The non-deterministic built-ins the statement calls, in order, each once: a bare
    name (not quoted, not `db.name`: those are stored functions) right before "("."""
    found: dict[str, None] = {}
    prev = None
    for tok, nxt in pairwise(tokens):
        name = tok.text.upper().split()[-1] if tok.text.strip() else ""
        if (
            tok.token_type not in (TokenType.IDENTIFIER, TokenType.STRING)
            and nxt.token_type == TokenType.L_PAREN
            and name in NONDETERMINISTIC
            and (prev is None or prev.token_type != TokenType.DOT)
        ):
            found[name] = None
        prev = tok
    return list(found)


def refuse_nondeterministic(tokens: Sequence[Any]) -> None:
    """Refuses, in one line, a saved query that calls a non-deterministic built-in."""
    calls = nondeterministic_calls(tokens)
    if calls:
        names = ", ".join(f"{c}()" for c in calls)
        raise ValidationError(
            f"target.sql calls {names}, whose value changes from read to read, and a run reads "
            "its query again for every page and batch, so it would not freeze one set; sample "
            "another way, e.g. ORDER BY MD5(CONCAT(key, 'seed')) LIMIT n. Nothing was saved.",
            path="sql",
        )
